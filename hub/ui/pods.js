// Pods: every pod of the fleet, live, in a virtual list; podTable for the pods of one node or
// workload.
import { store, subscribe } from './model.js';
import { h, badge } from './dom.js';
import { vlist } from './vlist.js';

const PHASE_TONE = { Running: 'ok', Succeeded: 'ok', Pending: 'warn', Failed: 'bad', Unknown: 'bad' };

export const podHref = (p) => `#/pods/${encodeURIComponent(p.ns)}/${encodeURIComponent(p.name)}`;

export function podStatus(p) {
  if (p.deleting) return badge('Terminating', 'warn');
  if (p.waiting) return badge(p.waiting, 'bad');
  return badge(p.phase, p.phase === 'Running' && !p.ready ? 'warn' : PHASE_TONE[p.phase]);
}

const nodeLink = (p) => (p.node ? h('a', { href: `#/nodes/${encodeURIComponent(p.node)}` }, p.node) : 'not scheduled');

export function podTable(pods, showNode = true) {
  if (!pods.length) return h('p', { class: 'muted' }, 'No pods.');
  pods.sort((a, b) => (a.key < b.key ? -1 : 1));
  return h('table', { class: 'pods' },
    h('thead', {}, h('tr', {}, ['Pod', 'Status', 'Restarts', showNode ? 'Node' : null, 'IP'].filter(Boolean).map((t) => h('th', {}, t)))),
    h('tbody', {}, pods.map((p) => h('tr', {},
      h('td', {}, h('a', { href: podHref(p) }, `${p.ns}/${p.name}`)),
      h('td', {}, podStatus(p)),
      h('td', { class: 'num' }, String(p.restarts)),
      showNode ? h('td', {}, nodeLink(p)) : null,
      h('td', {}, p.ip)))));
}

export function mount(main) {
  const filter = h('input', { id: 'pod-filter', type: 'search', placeholder: 'name, namespace or node', spellcheck: 'false' });
  const count = h('p', { class: 'muted' });
  const list = vlist({
    rowHeight: 60,
    label: 'Pods',
    empty: 'No pod matches.',
    row: (p) => h('div', { class: 'row' },
      h('div', { class: 'line' }, h('a', { href: podHref(p), class: 'name' }, `${p.ns}/${p.name}`), podStatus(p),
        p.restarts ? h('span', { class: 'age' }, `${p.restarts} restarts`) : null),
      h('div', { class: 'line sub' }, nodeLink(p), ` · ${p.ip || 'no IP'}${p.owner ? ` · ${p.owner}` : ''}`)),
  });
  function draw() {
    const q = filter.value.trim();
    const rows = [...store.pods.values()]
      .filter((p) => !q || p.key.includes(q) || p.node.includes(q))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
    count.textContent = `${rows.length} pod${rows.length === 1 ? '' : 's'}`;
    list.update(rows);
  }
  filter.addEventListener('input', draw);
  main.append(h('h1', {}, 'Pods'),
    h('div', { class: 'filters', role: 'search' }, h('label', { for: 'pod-filter' }, 'Filter'), filter),
    count, list.el);
  draw();
  return subscribe((k) => { if (k.has('pods')) draw(); });
}
