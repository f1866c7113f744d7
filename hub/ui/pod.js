// One pod: status, containers, conditions, events and its log. The log follows through fetch
// streaming of .../log?follow=true&tailLines=N; when the stream drops (the agent restarted,
// the hub went away) it reconnects with a tail and aligns that tail with the end of what is
// shown, so the overlap is not shown twice and what was written meanwhile is not lost.
import { store, subscribe, podOwner } from './model.js';
import { request, objectPath, canWrite, errorText } from './api.js';
import { h, replace, badge, facts, conditionsTable, note, confirmButton, labelChips } from './dom.js';
import { podStatus } from './pods.js';
import { eventFeed } from './events.js';

const KEEP_LINES = 5000;
const REALIGN_MAX = 2000;

// Where the new tail `fresh` continues what is shown (`shown`): the index in fresh of the first
// line not shown yet, or -1 when no overlap is found. The longest match of shown's end wins;
// among equals, the earliest (the fewest lines taken as new).
export function alignTail(shown, fresh) {
  const S = shown.length;
  if (!S || !fresh.length) return 0;
  const last = shown[S - 1];
  let best = -1;
  let bestLen = 0;
  for (let m = 1; m <= fresh.length; m++) {
    if (fresh[m - 1] !== last) continue;
    let k = 1;
    while (k < m && k < S && fresh[m - 1 - k] === shown[S - 1 - k]) k++;
    // a match must reach the start of fresh or of shown: anything shorter is a coincidence
    if (k !== m && k !== S) continue;
    if (k > bestLen) [best, bestLen] = [m, k];
  }
  return best;
}

function logView(ns, name, containers) {
  const base = `${objectPath('pods', ns, name)}/log`;
  const pick = h('select', { id: 'log-container' }, containers.map((c) => h('option', { value: c }, c)));
  const tail = h('select', { id: 'log-tail' }, [100, 500, 1000].map((n) => h('option', { value: String(n) }, `last ${n}`)));
  const follow = h('input', { type: 'checkbox', id: 'log-follow', checked: true });
  const state = h('span', { class: 'age', id: 'log-state', role: 'status' });
  const pre = h('pre', { class: 'log', id: 'log', tabindex: '0', 'aria-label': 'Log' });
  const bar = h('div', { class: 'filters' },
    containers.length > 1 ? [h('label', { for: 'log-container' }, 'Container'), pick] : null,
    h('label', { for: 'log-tail' }, 'Show'), tail,
    follow, h('label', { for: 'log-follow' }, 'Follow'), state);
  let lines = [];
  let partial = '';
  let ctrl = null;
  let timer = 0;
  let retry = 0;
  let gen = 0;
  let closed = false;

  const atBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
  function show(newLines, marker) {
    const stick = atBottom();
    const frag = document.createDocumentFragment();
    if (marker) frag.append(h('span', { class: 'gap' }, `${marker}\n`));
    for (const l of newLines) frag.append(document.createTextNode(`${l}\n`));
    pre.append(frag);
    lines.push(...newLines);
    if (lines.length > KEEP_LINES) lines = lines.slice(lines.length - KEEP_LINES);
    while (pre.childNodes.length > KEEP_LINES + 50) pre.firstChild.remove();
    if (stick) pre.scrollTop = pre.scrollHeight;
  }

  function setState(t) { state.textContent = t; }

  function stop() {
    gen++;
    if (ctrl) ctrl.abort();
    ctrl = null;
    clearTimeout(timer);
    timer = 0;
  }

  // One request. again: reconnecting after a drop (align the tail with what is shown).
  async function connect(again) {
    stop();
    const mine = gen;
    const want = Number(tail.value);
    const n = again ? Math.min(REALIGN_MAX, Math.max(want, lines.length)) : want;
    const q = new URLSearchParams({ tailLines: String(n), container: pick.value || containers[0] });
    if (follow.checked) q.set('follow', 'true');
    ctrl = new AbortController();
    setState(again ? 'reconnecting…' : 'loading…');
    let pending = again ? [] : null; // lines held until the tail is aligned
    let alignTimer = 0;
    const align = () => {
      clearTimeout(alignTimer);
      if (!pending) return;
      const got = pending;
      pending = null;
      const at = alignTail(lines, got);
      if (at >= 0) show(got.slice(at));
      else show(got, '— reconnected; lines written meanwhile may be missing —');
    };
    const take = (text) => {
      const parts = (partial + text).split('\n');
      partial = parts.pop();
      if (!parts.length) return;
      if (pending) {
        pending.push(...parts);
        clearTimeout(alignTimer);
        if (pending.length >= n) align();
        else alignTimer = setTimeout(align, 400); // the tail comes in one burst
      } else {
        show(parts);
      }
    };
    try {
      const res = await fetch(`${base}?${q}`, { signal: ctrl.signal, credentials: 'same-origin', cache: 'no-store' });
      if (!res.ok) {
        let m = `HTTP ${res.status}`;
        try { m = `${res.status}: ${(await res.json()).message}`; } catch { /* not a Status */ }
        const err = new Error(m);
        err.status = res.status;
        throw err;
      }
      retry = 0;
      setState(follow.checked ? 'following' : '');
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (mine !== gen) return;
        if (done) break;
        take(dec.decode(value, { stream: true }));
      }
      align();
      if (partial && !follow.checked) { show([partial]); partial = ''; }
      if (!follow.checked) { setState(''); return; }
      throw new Error('the log stream ended');
    } catch (e) {
      clearTimeout(alignTimer);
      if (mine !== gen || closed) return;
      if (pending) align(); // what came is shown
      partial = ''; // an unfinished line comes again in the next tail
      if (e.status === 404 || e.status === 400 || e.status === 403) { setState(''); show([], `— ${e.message} —`); return; }
      if (!follow.checked) { setState(e.message); return; }
      const wait = Math.min(10000, 500 * 2 ** retry++);
      setState(`disconnected (${e.message}); reconnecting in ${Math.round(wait / 100) / 10} s`);
      timer = setTimeout(() => connect(true), wait);
    }
  }

  function restart() {
    lines = [];
    partial = '';
    pre.replaceChildren();
    retry = 0;
    connect(false);
  }
  pick.addEventListener('change', restart);
  tail.addEventListener('change', restart);
  follow.addEventListener('change', () => { if (follow.checked) connect(lines.length > 0); else { stop(); setState('stopped'); } });
  connect(false);
  return {
    el: h('section', { 'aria-labelledby': 'log-title' }, h('h2', { id: 'log-title' }, 'Log'), bar, pre),
    close() { closed = true; stop(); },
  };
}

function containerTable(spec, status) {
  const st = new Map(((status || {}).containerStatuses || []).map((c) => [c.name, c]));
  return h('table', { class: 'containers' },
    h('thead', {}, h('tr', {}, ['Container', 'Image', 'State', 'Ready', 'Restarts'].map((t) => h('th', {}, t)))),
    h('tbody', {}, ((spec || {}).containers || []).map((c) => {
      const s = st.get(c.name) || {};
      const state = s.state || {};
      const what = state.running ? 'running' : state.waiting ? `waiting: ${state.waiting.reason || ''}`
        : state.terminated ? `terminated: ${state.terminated.reason || state.terminated.exitCode}` : '?';
      return h('tr', {}, h('td', {}, c.name), h('td', {}, c.image), h('td', {}, what),
        h('td', {}, s.ready ? badge('yes', 'ok') : badge('no', 'warn')), h('td', { class: 'num' }, String(s.restartCount || 0)));
    })));
}

export function mount(main, [ns, name]) {
  const path = objectPath('pods', ns, name);
  const head = h('div', { class: 'head' });
  const actions = h('div', { class: 'actions' });
  const msg = h('p', { class: 'note', role: 'status' });
  const info = h('section', { 'aria-label': 'Pod facts' });
  const logBox = h('div');
  const events = eventFeed((e) => e.kind === 'Pod' && e.objName === name && (e.objNs || e.ns) === ns,
    `/api/v1/namespaces/${encodeURIComponent(ns)}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${name}`)}`);
  main.append(h('p', {}, h('a', { href: '#/pods' }, '← Pods')), head, actions, msg, info, logBox,
    h('h2', {}, 'Events'), events.el);
  let full = null;
  let log = null;
  let refetch = 0;

  async function load() {
    try {
      full = await request('GET', path);
      draw();
      if (!log) {
        log = logView(ns, name, ((full.spec || {}).containers || []).map((c) => c.name));
        logBox.append(log.el);
      }
    } catch (e) {
      if (e.status === 404) { replace(head, h('h1', {}, `${ns}/${name}`), badge('deleted', 'bad')); replace(actions); return; }
      note(msg, errorText(e), 'error');
    }
  }

  function draw() {
    const p = store.pods.get(`${ns}/${name}`);
    replace(head, h('h1', {}, `${ns}/${name}`), p ? podStatus(p) : null);
    if (!full) return;
    const m = full.metadata || {};
    const st = full.status || {};
    const owner = podOwner(m);
    const ownerRoute = owner && { Deployment: 'deployments', DaemonSet: 'daemonsets' }[owner.kind];
    replace(info, facts([
      ['Node', full.spec.nodeName ? h('a', { href: `#/nodes/${encodeURIComponent(full.spec.nodeName)}` }, full.spec.nodeName) : 'not scheduled'],
      ['Phase', st.phase || 'Pending'],
      ['IP', st.podIP || ''],
      ['Owner', owner ? (ownerRoute ? h('a', { href: `#/${ownerRoute}/${encodeURIComponent(ns)}/${encodeURIComponent(owner.name)}` }, `${owner.kind}/${owner.name}`) : `${owner.kind}/${owner.name}`) : 'none'],
      ['Started', st.startTime || ''],
      ['Labels', labelChips(m.labels)],
    ]), h('h2', {}, 'Containers'), containerTable(full.spec, st), h('h2', {}, 'Conditions'), conditionsTable(st.conditions));
    if (canWrite() && !actions.firstChild) {
      replace(actions, confirmButton('Delete pod', `Delete ${name}? (its owner makes a new one)`, async () => {
        note(msg, 'Deleting…');
        try { await request('DELETE', path); note(msg, `${name} deleted`, 'ok'); } catch (e) { note(msg, errorText(e), 'error'); }
      }));
    }
  }

  load();
  const off = subscribe((k) => {
    if (!k.has('pods')) return;
    const p = store.pods.get(`${ns}/${name}`);
    if (p && full && p.rv > Number(full.metadata.resourceVersion) && !refetch) {
      refetch = setTimeout(() => { refetch = 0; load(); }, 1000);
    }
    draw();
  });
  return () => { off(); events.close(); clearTimeout(refetch); if (log) log.close(); };
}
