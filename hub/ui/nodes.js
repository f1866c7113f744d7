// Nodes: the whole fleet in a virtual list, live; a label selector and the order go to the hub
// (labelSelector, sortBy), which pages the answer; rows always show the live model.
import { store, subscribe, nodeHealth, trimmers } from './model.js';
import { listPages, paths, errorText } from './api.js';
import { h, fmtAge, badge, note } from './dom.js';
import { vlist } from './vlist.js';

const TONE = { Ready: 'ok', Late: 'warn', NotReady: 'bad', Unknown: 'bad' };
const query = { selector: '', sortBy: 'metadata.name' }; // kept while the page lives
let names = null; // the hub's answer to the query (null: every node, by name)

export function healthBadge(n) {
  const hl = nodeHealth(n);
  return [badge(hl.status, TONE[hl.status]),
    h('span', { class: 'age' }, `seen ${hl.bound ? '≤ ' : ''}${fmtAge(hl.age)} ago`)];
}

export function podsPerNode() {
  const count = new Map();
  for (const p of store.pods.values()) if (p.node) count.set(p.node, (count.get(p.node) || 0) + 1);
  return count;
}

export function mount(main) {
  let counts = podsPerNode();
  const list = vlist({
    rowHeight: 60,
    label: 'Nodes',
    empty: 'No node matches.',
    row: (n) => h('div', { class: 'row' },
      h('div', { class: 'line' },
        h('a', { href: `#/nodes/${encodeURIComponent(n.name)}`, class: 'name' }, n.name),
        healthBadge(n),
        n.unschedulable ? badge('cordoned', 'warn') : null),
      h('div', { class: 'line sub' },
        `${n.arch || '?'} · ${n.version || '?'} · ${counts.get(n.name) || 0} pods · `,
        Object.entries(n.labels).filter(([k]) => !k.startsWith('kubernetes.io/')).map(([k, v]) => `${k}=${v}`).join(' '))),
  });
  const sel = h('input', { id: 'node-selector', name: 'labelSelector', value: query.selector, placeholder: 'site=north,device!=d3', spellcheck: 'false' });
  const sort = h('select', { id: 'node-sort', name: 'sortBy' },
    [['metadata.name', 'Name'], ['-metadata.creationTimestamp', 'Newest'], ['status.nodeInfo.architecture', 'Architecture']]
      .map(([v, t]) => h('option', { value: v, selected: v === query.sortBy }, t)));
  const msg = h('p', { class: 'note', role: 'status' });
  const count = h('p', { class: 'muted' });
  let asked = 0;

  async function ask() {
    query.selector = sel.value.trim();
    query.sortBy = sort.value;
    const mine = ++asked;
    if (!query.selector && query.sortBy === 'metadata.name') {
      names = null;
      note(msg, '');
      draw();
      return;
    }
    const got = [];
    note(msg, 'Asking the hub…');
    try {
      const params = { sortBy: query.sortBy };
      if (query.selector) params.labelSelector = query.selector;
      await listPages(paths.nodes, params, (items) => {
        if (mine !== asked) return false;
        for (const o of items) {
          const t = trimmers.nodes(o);
          if (!store.nodes.has(t.key)) store.nodes.set(t.key, t);
          got.push(t.key);
        }
        names = got;
        draw();
        return true;
      });
      if (mine === asked) note(msg, '');
    } catch (e) {
      if (mine === asked) note(msg, errorText(e), 'error');
    }
  }

  function draw() {
    counts = podsPerNode();
    const rows = names
      ? names.map((k) => store.nodes.get(k)).filter(Boolean)
      : [...store.nodes.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    count.textContent = `${rows.length} node${rows.length === 1 ? '' : 's'}${names ? ' match' : ''}`;
    list.update(rows);
  }

  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter nodes' },
    h('label', { for: 'node-selector' }, 'Label selector'), sel,
    h('label', { for: 'node-sort' }, 'Order'), sort,
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => { e.preventDefault(); ask(); });
  sort.addEventListener('change', ask);
  main.append(h('h1', {}, 'Nodes'), form, msg, count, list.el);
  if (names || query.selector) ask();
  else draw();
  return subscribe((kinds) => { if (kinds.has('nodes') || kinds.has('pods') || kinds.has('beat') || kinds.has('tick')) draw(); });
}
