// Workloads: the Deployments and DaemonSets of the fleet, live, with how far each is rolled out;
// each links to its page (scale, pause, rollback there).
import { store, subscribe } from './model.js';
import { h, replace, badge } from './dom.js';

const href = (kind, w) => `#/${kind}/${encodeURIComponent(w.ns)}/${encodeURIComponent(w.name)}`;
const byKey = (a, b) => (a.key < b.key ? -1 : 1);

export function deploymentState(d) {
  if (d.stuck) return badge('Stuck', 'bad');
  if (d.paused) return badge('Paused', 'warn');
  if (d.ready >= d.desired && d.updated >= d.desired && d.current <= d.desired) return badge('Ready', 'ok');
  return badge('Rolling out', 'warn');
}

export function daemonSetState(s) {
  if (s.ready >= s.desired && s.updated >= s.desired) return badge('Ready', 'ok');
  return badge('Rolling out', 'warn');
}

function table(kind, rows, state) {
  if (!rows.length) return h('p', { class: 'muted' }, 'None.');
  return h('table', { class: 'workloads' },
    h('thead', {}, h('tr', {}, ['Name', 'State', 'Ready', 'Up to date', 'Available'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((w) => h('tr', {},
      h('td', {}, h('a', { href: href(kind, w) }, `${w.ns}/${w.name}`)),
      h('td', {}, state(w)),
      h('td', { class: 'num' }, `${w.ready}/${w.desired}`),
      h('td', { class: 'num' }, String(w.updated)),
      h('td', { class: 'num' }, String(w.available))))));
}

export function mount(main) {
  const deps = h('section', { 'aria-labelledby': 'deps-title' });
  const dss = h('section', { 'aria-labelledby': 'ds-title' });
  main.append(h('h1', {}, 'Workloads'), deps, dss);
  function draw() {
    replace(deps, h('h2', { id: 'deps-title' }, `Deployments (${store.deployments.size})`),
      table('deployments', [...store.deployments.values()].sort(byKey), deploymentState));
    replace(dss, h('h2', { id: 'ds-title' }, `DaemonSets (${store.daemonsets.size})`),
      table('daemonsets', [...store.daemonsets.values()].sort(byKey), daemonSetState));
  }
  draw();
  return subscribe((k) => { if (k.has('deployments') || k.has('daemonsets')) draw(); });
}
