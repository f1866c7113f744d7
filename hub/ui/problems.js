// The landing view: what needs a look, worst first, each a link to the object.
import { store, subscribe, nodeHealth } from './model.js';
import { clock } from './api.js';
import { h, replace, fmtAge, badge } from './dom.js';

const SHOWN = 300;
const CRASH_WINDOW_MS = 10 * 60 * 1000;
const PENDING_LATE_MS = 60 * 1000;
const NOT_READY_LATE_MS = 30 * 1000; // a starting pod is not ready for a while: that is no problem
const UNAVAILABLE_LATE_MS = 60 * 1000;
const STUCK_WAITING = new Set(['ErrImagePull', 'ImagePullBackOff', 'CreateContainerError',
  'CreateContainerConfigError', 'InvalidImageName', 'RunContainerError']);

const href = (kind, ns, name) => `#/${kind}/${ns ? `${encodeURIComponent(ns)}/` : ''}${encodeURIComponent(name)}`;

// [{rank, tone, what, href, title, detail}]
export function findProblems() {
  const now = clock.now();
  const out = [];
  for (const n of store.nodes.values()) {
    if (n.duplicate) {
      out.push({ rank: 0, tone: 'bad', what: 'Duplicate identity', href: href('nodes', '', n.name), title: n.name, detail: n.duplicate });
    }
    const hl = nodeHealth(n);
    if (hl.status !== 'Ready') {
      out.push({
        rank: 1, tone: 'bad', what: `Node ${hl.status}`, href: href('nodes', '', n.name), title: n.name,
        detail: `last seen ${hl.bound ? '≤ ' : ''}${fmtAge(hl.age)} ago${n.message && hl.status !== 'Late' ? ` — ${n.message}` : ''}`,
      });
    }
  }
  for (const d of store.deployments.values()) {
    if (d.stuck) {
      out.push({ rank: 2, tone: 'bad', what: 'Rollout stuck', href: href('deployments', d.ns, d.name), title: `${d.ns}/${d.name}`, detail: d.progressMsg || 'progress deadline exceeded' });
    } else if (d.unavailableSince && now - d.unavailableSince > UNAVAILABLE_LATE_MS && d.desired > 0) {
      out.push({ rank: 2, tone: 'warn', what: 'Deployment unavailable', href: href('deployments', d.ns, d.name), title: `${d.ns}/${d.name}`, detail: `${d.ready}/${d.desired} ready for ${fmtAge(now - d.unavailableSince)}` });
    }
  }
  for (const s of store.daemonsets.values()) {
    if (s.desired > 0 && s.available < s.desired && s.updated >= s.desired) {
      out.push({ rank: 2, tone: 'warn', what: 'DaemonSet unavailable', href: href('daemonsets', s.ns, s.name), title: `${s.ns}/${s.name}`, detail: `${s.available}/${s.desired} nodes available` });
    }
  }
  for (const p of store.pods.values()) {
    if (p.deleting) continue;
    const link = href('pods', p.ns, p.name);
    const title = `${p.ns}/${p.name}`;
    if (p.waiting === 'CrashLoopBackOff' || (p.restarts >= 3 && now - p.lastCrash < CRASH_WINDOW_MS)) {
      out.push({ rank: 3, tone: 'bad', what: 'Crash-looping', href: link, title, detail: `${p.restarts} restarts${p.node ? ` on ${p.node}` : ''}${p.waitMsg ? ` — ${p.waitMsg}` : ''}` });
    } else if (p.phase === 'Pending' && p.unschedulable) {
      out.push({ rank: 4, tone: 'warn', what: 'Pending', href: link, title, detail: p.unschedulable });
    } else if (STUCK_WAITING.has(p.waiting)) {
      out.push({ rank: 4, tone: 'warn', what: p.waiting, href: link, title, detail: p.waitMsg || `on ${p.node}` });
    } else if (p.phase === 'Failed' || p.phase === 'Unknown') {
      out.push({ rank: 3, tone: 'bad', what: p.phase, href: link, title, detail: p.node ? `on ${p.node}` : 'not scheduled' });
    } else if (p.phase === 'Running' && !p.ready && now - p.created > NOT_READY_LATE_MS) {
      out.push({ rank: 4, tone: 'warn', what: 'Not ready', href: link, title, detail: `running on ${p.node}, not ready${p.restarts ? ` (${p.restarts} restarts)` : ''}` });
    } else if (p.phase === 'Pending' && now - p.created > PENDING_LATE_MS) {
      out.push({ rank: 5, tone: 'warn', what: 'Pending', href: link, title, detail: `for ${fmtAge(now - p.created)}${p.node ? ` on ${p.node}` : ' (not scheduled)'}` });
    }
  }
  return out.sort((a, b) => a.rank - b.rank || a.title.localeCompare(b.title));
}

function summary() {
  let ready = 0;
  for (const n of store.nodes.values()) if (nodeHealth(n).status === 'Ready') ready++;
  let running = 0;
  for (const p of store.pods.values()) if (p.phase === 'Running') running++;
  let rolled = 0;
  for (const d of store.deployments.values()) if (d.ready >= d.desired) rolled++;
  return h('ul', { class: 'summary', 'aria-label': 'Fleet summary' },
    h('li', {}, h('a', { href: '#/nodes' }, h('b', {}, `${ready}/${store.nodes.size}`), ' nodes ready')),
    h('li', {}, h('a', { href: '#/pods' }, h('b', {}, `${running}/${store.pods.size}`), ' pods running')),
    h('li', {}, h('a', { href: '#/workloads' }, h('b', {}, `${rolled}/${store.deployments.size}`), ' deployments ready')));
}

export function mount(main) {
  const head = h('div');
  const list = h('ul', { class: 'problems', 'aria-label': 'Problems' });
  main.append(h('h1', {}, 'Problems'), head, list);
  function draw() {
    const all = findProblems();
    replace(head, summary(), all.length ? null : h('p', { class: 'ok-text' }, 'No problems: every node is heard from, every pod and rollout is on track.'));
    replace(list, all.slice(0, SHOWN).map((p) => h('li', { class: `problem ${p.tone}` },
      h('a', { href: p.href },
        h('span', { class: 'what' }, badge(p.what, p.tone)),
        h('span', { class: 'title' }, p.title),
        h('span', { class: 'detail' }, p.detail)))),
    all.length > SHOWN ? h('li', { class: 'muted' }, `and ${all.length - SHOWN} more`) : null);
  }
  draw();
  return subscribe(draw);
}
