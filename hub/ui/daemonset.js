// One DaemonSet: how many nodes run it, its image, its pods and events (read only: a DaemonSet
// is changed through Apply).
import { store, subscribe } from './model.js';
import { request, objectPath, errorText } from './api.js';
import { h, replace, badge, facts, labelChips, note } from './dom.js';
import { podTable } from './pods.js';
import { eventFeed } from './events.js';
import { daemonSetState } from './workloads.js';

export function mount(main, [ns, name]) {
  const path = objectPath('daemonsets', ns, name);
  const head = h('div', { class: 'head' });
  const msg = h('p', { class: 'note', role: 'status' });
  const info = h('section', { 'aria-label': 'DaemonSet facts' });
  const podsEl = h('section', { 'aria-label': 'Pods of this DaemonSet' });
  const events = eventFeed((e) => e.kind === 'DaemonSet' && e.objName === name && (e.objNs || e.ns) === ns,
    `/api/v1/namespaces/${encodeURIComponent(ns)}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${name}`)}`);
  main.append(h('p', {}, h('a', { href: '#/workloads' }, '← Workloads')), head, msg, info,
    h('h2', {}, 'Pods'), podsEl, h('h2', {}, 'Events'), events.el);
  let full = null;

  async function load() {
    try {
      full = await request('GET', path);
      draw();
    } catch (e) {
      note(msg, errorText(e), 'error');
    }
  }

  function draw() {
    const s = store.daemonsets.get(`${ns}/${name}`);
    replace(head, h('h1', {}, `${ns}/${name}`), s ? daemonSetState(s) : badge('not found', 'bad'));
    if (s) {
      const sp = full ? full.spec || {} : {};
      const tmpl = sp.template || {};
      replace(info, facts([
        ['Nodes', `${s.ready} ready of ${s.desired} scheduled (${s.updated} up to date, ${s.available} available)`],
        ['Image', ((tmpl.spec || {}).containers || []).map((c) => c.image).join(', ')],
        ['Node selector', labelChips((tmpl.spec || {}).nodeSelector)],
        ['Selector', labelChips(s.selector)],
      ]));
    }
    replace(podsEl, podTable([...store.pods.values()].filter((p) => p.ns === ns && p.owner === `DaemonSet/${name}`)));
  }

  load();
  draw();
  const off = subscribe((k) => { if (k.has('daemonsets') || k.has('pods')) draw(); });
  return () => { off(); events.close(); };
}
