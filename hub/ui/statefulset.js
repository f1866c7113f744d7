// One StatefulSet: its revisions, its pods by ordinal with the claims each one holds, and its
// events (read only: a StatefulSet is changed through Apply).
import { store, subscribe } from './model.js';
import { h, replace, badge, facts, labelChips } from './dom.js';
import { podHref, podStatus } from './pods.js';
import { eventFeed } from './events.js';
import { statefulSetState, revisionText } from './workloads.js';

const CLAIM_TONE = { Bound: 'ok', Pending: 'warn', Lost: 'bad' };

function claimCell(ns, name) {
  const c = store.persistentvolumeclaims.get(`${ns}/${name}`);
  return h('span', { class: 'claim' }, name, ' ',
    c ? badge(c.deleting ? 'Terminating' : c.phase, c.deleting ? 'warn' : CLAIM_TONE[c.phase]) : badge('not made', 'muted'));
}

// One row per ordinal the set wants (and any pod of a higher ordinal still there).
function ordinalTable(s, pods) {
  const byOrdinal = new Map();
  for (const p of pods) {
    const n = Number(p.labels['apps.kubernetes.io/pod-index'] ?? p.name.slice(s.name.length + 1));
    if (Number.isInteger(n)) byOrdinal.set(n, p);
  }
  const ordinals = new Set([...Array(s.desired).keys()].map((i) => s.start + i));
  for (const n of byOrdinal.keys()) ordinals.add(n);
  const rows = [...ordinals].sort((a, b) => a - b);
  if (!rows.length) return h('p', { class: 'muted' }, 'No pods.');
  return h('table', { class: 'pods ordinals' },
    h('thead', {}, h('tr', {}, ['Ordinal', 'Pod', 'Status', 'Node', 'Revision', 'Claims'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((n) => {
      const p = byOrdinal.get(n);
      const rev = p ? p.labels['controller-revision-hash'] || '' : '';
      return h('tr', { 'data-ordinal': String(n) },
        h('td', { class: 'num' }, String(n)),
        h('td', {}, p ? h('a', { href: podHref(p) }, p.name) : `${s.name}-${n}`),
        h('td', {}, p ? podStatus(p) : badge('not created', 'muted')),
        h('td', {}, p && p.node ? h('a', { href: `#/nodes/${encodeURIComponent(p.node)}` }, p.node) : ''),
        h('td', {}, rev ? [rev, rev === s.updateRevision ? null : [' ', badge('old', 'warn')]] : ''),
        h('td', {}, s.claims.map((t) => claimCell(s.ns, `${t}-${s.name}-${n}`))));
    })));
}

export function mount(main, [ns, name]) {
  const head = h('div', { class: 'head' });
  const info = h('section', { 'aria-label': 'StatefulSet facts' });
  const podsEl = h('section', { 'aria-label': 'Pods of this StatefulSet' });
  const events = eventFeed((e) => e.kind === 'StatefulSet' && e.objName === name && (e.objNs || e.ns) === ns,
    `/api/v1/namespaces/${encodeURIComponent(ns)}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${name}`)}`);
  main.append(h('p', {}, h('a', { href: '#/workloads' }, '← Workloads')), head, info,
    h('h2', {}, 'Pods'), podsEl, h('h2', {}, 'Events'), events.el);

  function draw() {
    const s = store.statefulsets.get(`${ns}/${name}`);
    replace(head, h('h1', {}, `${ns}/${name}`), s ? statefulSetState(s) : badge('not found', 'bad'));
    if (!s) { replace(info); replace(podsEl); return; }
    const strategy = s.strategy === 'RollingUpdate' && s.partition ? `RollingUpdate, partition ${s.partition}` : s.strategy;
    replace(info, facts([
      ['Replicas', `${s.ready} ready of ${s.desired} desired (${s.current} current, ${s.updated} up to date, ${s.available} available)`],
      ['Revision', revisionText(s)],
      ['Image', s.images],
      ['Update strategy', strategy],
      ['Pod management', s.policy],
      s.service ? ['Service', s.service] : null,
      ['Claim templates', s.claims.length ? s.claims.join(', ') : 'none'],
      ['Selector', labelChips(s.selector)],
    ]));
    replace(podsEl, ordinalTable(s, [...store.pods.values()].filter((p) => p.ns === ns && p.owner === `StatefulSet/${name}`)));
  }

  draw();
  const off = subscribe((k) => { if (['statefulsets', 'pods', 'persistentvolumeclaims'].some((x) => k.has(x))) draw(); });
  return () => { off(); events.close(); };
}
