// Events: the stream of everything that happens, newest first; and eventFeed, the events of
// one object (listed once, then kept current from the stream).
import { store, subscribe, trimmers } from './model.js';
import { request, clock, errorText } from './api.js';
import { h, replace, fmtAge, badge } from './dom.js';
import { vlist } from './vlist.js';

const KIND_ROUTE = { Node: 'nodes', Pod: 'pods', Deployment: 'deployments', DaemonSet: 'daemonsets', Service: 'services' };

function objectRef(e) {
  const route = KIND_ROUTE[e.kind];
  const text = `${e.kind}/${e.objNs ? `${e.objNs}/` : ''}${e.objName}`;
  if (!route) return h('span', { class: 'obj' }, text);
  const p = route === 'nodes' ? encodeURIComponent(e.objName) : `${encodeURIComponent(e.objNs || e.ns)}/${encodeURIComponent(e.objName)}`;
  return h('a', { class: 'obj', href: `#/${route}/${p}` }, text);
}

export function eventRow(e, tag = 'div') {
  return h(tag, { class: 'row event' },
    h('div', { class: 'line' }, badge(e.type, e.type === 'Warning' ? 'warn' : ''), h('b', {}, e.reason), objectRef(e),
      h('span', { class: 'age' }, `${fmtAge(clock.now() - e.time)} ago${e.count > 1 ? ` ×${e.count}` : ''}`)),
    h('div', { class: 'line sub' }, e.message));
}

const newestFirst = (a, b) => b.time - a.time;

// The events of one object: the hub's list (fieldSelector) merged with the stream's.
export function eventFeed(match, url) {
  const el = h('ul', { class: 'feed', 'aria-label': 'Events' });
  const mine = new Map();
  function draw() {
    for (const e of store.events.values()) if (match(e)) mine.set(e.key, e);
    const all = [...mine.values()].sort(newestFirst).slice(0, 100);
    replace(el, all.length ? all.map((e) => eventRow(e, 'li')) : h('li', { class: 'muted' }, 'No events.'));
  }
  request('GET', url).then((list) => {
    for (const o of list.items || []) {
      const t = trimmers.events(o);
      if (match(t)) mine.set(t.key, t); // the URL selects by name only: a Deployment and a Service share names
    }
    draw();
  }, (e) => replace(el, h('li', { class: 'note error' }, errorText(e))));
  draw();
  const off = subscribe((k) => { if (k.has('events') || k.has('tick')) draw(); });
  return { el, close: off };
}

export function mount(main) {
  const only = h('input', { type: 'checkbox', id: 'warnings-only' });
  const list = vlist({ rowHeight: 60, label: 'Events', empty: 'No events yet.', row: (e) => eventRow(e) });
  const draw = () => {
    const all = [...store.events.values()].filter((e) => !only.checked || e.type === 'Warning');
    list.update(all.sort(newestFirst));
  };
  only.addEventListener('change', draw);
  main.append(h('h1', {}, 'Events'),
    h('div', { class: 'filters' }, only, h('label', { for: 'warnings-only' }, 'Warnings only')),
    list.el);
  draw();
  return subscribe((k) => { if (k.has('events') || k.has('tick')) draw(); });
}
