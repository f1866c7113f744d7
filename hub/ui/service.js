// One Service: its address and ports, its endpoints (from its EndpointSlices: address, node,
// pod, ready/serving/terminating), the pods its selector picks, its events. Read-only: a
// Service is changed by applying its manifest.
import { store, subscribe, endpointsByService } from './model.js';
import { h, replace, badge, facts, labelChips } from './dom.js';
import { podTable, podHref } from './pods.js';
import { eventFeed } from './events.js';
import { portsText, clusterIPText, endpointsBadge } from './services.js';

const yesNo = (v, good = true) => badge(v ? 'yes' : 'no', v === good ? 'ok' : 'warn');
const selects = (sel, labels) => Object.entries(sel).every(([k, v]) => labels[k] === v);

function portsTable(s) {
  if (!s.ports.length) return h('p', { class: 'muted' }, 'No ports.');
  return h('table', { class: 'ports' },
    h('thead', {}, h('tr', {}, ['Name', 'Port', 'Target port', 'Node port', 'Protocol'].map((t) => h('th', {}, t)))),
    h('tbody', {}, s.ports.map((p) => h('tr', {},
      h('td', {}, p.name), h('td', { class: 'num' }, String(p.port)), h('td', { class: 'num' }, String(p.targetPort)),
      h('td', { class: 'num' }, p.nodePort ? String(p.nodePort) : ''), h('td', {}, p.protocol)))));
}

function endpointTable(eps) {
  if (!eps.length) return h('p', { class: 'muted' }, 'No endpoints: no pod this Service selects has an address yet.');
  eps.sort((a, b) => (a.ip < b.ip ? -1 : 1));
  return h('table', { class: 'endpoints' },
    h('thead', {}, h('tr', {}, ['Address', 'Node', 'Pod', 'Ready', 'Serving', 'Terminating'].map((t) => h('th', {}, t)))),
    h('tbody', {}, eps.map((e) => h('tr', {},
      h('td', {}, h('code', {}, e.ip)),
      h('td', {}, e.node ? h('a', { href: `#/nodes/${encodeURIComponent(e.node)}` }, e.node) : ''),
      h('td', {}, e.pod ? h('a', { href: podHref({ ns: e.podNs, name: e.pod }) }, e.pod) : ''),
      h('td', {}, yesNo(e.ready)), h('td', {}, yesNo(e.serving)), h('td', {}, yesNo(e.terminating, false))))));
}

export function mount(main, [ns, name]) {
  const key = `${ns}/${name}`;
  const head = h('div', { class: 'head' });
  const info = h('section', { 'aria-label': 'Service facts' });
  const ports = h('section', { 'aria-labelledby': 'ports-title' });
  const epsEl = h('section', { 'aria-labelledby': 'eps-title' });
  const podsEl = h('section', { 'aria-labelledby': 'sel-title' });
  const events = eventFeed((e) => e.kind === 'Service' && e.objName === name && (e.objNs || e.ns) === ns,
    `/api/v1/namespaces/${encodeURIComponent(ns)}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${name}`)}`);
  main.append(h('p', {}, h('a', { href: '#/services' }, '← Services')), head, info, ports, epsEl, podsEl,
    h('h2', {}, 'Events'), events.el);

  function draw() {
    const s = store.services.get(key);
    if (!s) {
      replace(head, h('h1', {}, key), badge('not found', 'bad'));
      for (const el of [info, ports, epsEl, podsEl]) replace(el);
      return;
    }
    const eps = endpointsByService().get(key) || [];
    replace(head, h('h1', {}, key), endpointsBadge(s, eps));
    replace(info, facts([
      ['Type', s.type],
      ['Cluster IP', h('code', {}, clusterIPText(s))],
      s.external.length ? ['External', s.external.join(', ')] : null,
      ['Ports', h('code', {}, portsText(s))],
      ['Selector', s.selector ? labelChips(s.selector) : 'none (endpoints set by hand)'],
      ['Session affinity', s.affinity],
      s.internalPolicy ? ['Internal traffic', s.internalPolicy] : null,
      s.externalPolicy ? ['External traffic', s.externalPolicy] : null,
    ]));
    replace(ports, h('h2', { id: 'ports-title' }, 'Ports'), portsTable(s));
    replace(epsEl, h('h2', { id: 'eps-title' }, `Endpoints (${eps.filter((e) => e.ready).length} ready of ${eps.length})`),
      endpointTable(eps));
    const picked = s.selector ? [...store.pods.values()].filter((p) => p.ns === ns && selects(s.selector, p.labels)) : [];
    replace(podsEl, h('h2', { id: 'sel-title' }, 'Pods its selector picks'),
      s.selector ? podTable(picked) : h('p', { class: 'muted' }, 'No selector.'));
  }

  draw();
  const off = subscribe((kinds) => {
    if (['services', 'endpointslices', 'pods'].some((k) => kinds.has(k))) draw();
  });
  return () => { off(); events.close(); };
}
