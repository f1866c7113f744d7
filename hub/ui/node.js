// One node: health, facts, labels, conditions, CPU and memory with their history, pods, events;
// cordon, uncordon and drain for operators.
import { store, subscribe, trimmers } from './model.js';
import { request, patch, listPages, objectPath, paths, canWrite, errorText } from './api.js';
import { h, replace, badge, labelChips, facts, conditionsTable, note, confirmButton } from './dom.js';
import { lineChart, quantity, fmtCores, fmtBytes } from './chart.js';
import { healthBadge } from './nodes.js';
import { podTable } from './pods.js';
import { eventFeed } from './events.js';

const WINDOWS = ['15m', '1h', '6h', '24h'];

// The node's part of the cluster network: its pod block, its WireGuard key and addresses (what
// its peers dial), and the NetworkUnavailable condition its agent reports.
function networkFacts(node) {
  const ann = (node.metadata || {}).annotations || {};
  const key = ann['drover.io/wireguard-public-key'] || '';
  const port = ann['drover.io/wireguard-port'] || '';
  const net = ((node.status || {}).conditions || []).find((c) => c.type === 'NetworkUnavailable');
  return facts([
    ['Pod CIDR', (node.spec || {}).podCIDR ? h('code', {}, node.spec.podCIDR) : 'none given yet'],
    ['WireGuard key', key ? h('code', { title: key }, `${key.slice(0, 10)}…`) : 'not reported (network off, or an older agent)'],
    port ? ['WireGuard port', port] : null,
    ann['drover.io/observed-address'] ? ['Observed address', h('code', {}, ann['drover.io/observed-address'])] : null,
    ann['drover.io/wireguard-endpoint'] ? ['Endpoint (set by an admin)', h('code', {}, ann['drover.io/wireguard-endpoint'])] : null,
    net ? ['Network', [badge(net.status === 'False' ? 'available' : `unavailable (${net.status})`, net.status === 'False' ? 'ok' : 'bad'),
      net.reason ? ` ${net.reason}` : '', net.message ? `: ${net.message}` : '']] : null,
  ]);
}

export function mount(main, [name]) {
  const path = objectPath('nodes', '', name);
  const head = h('div', { class: 'head' });
  const actions = h('div', { class: 'actions' });
  const msg = h('p', { class: 'note', role: 'status' });
  const info = h('section', { 'aria-label': 'Node facts' });
  const usage = h('section', { class: 'usage', 'aria-label': 'Usage' });
  const podsEl = h('section', { 'aria-label': 'Pods on this node' });
  const events = eventFeed((e) => e.kind === 'Node' && e.objName === name,
    `/api/v1/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${name}`)}`);
  main.append(h('p', {}, h('a', { href: '#/nodes' }, '← Nodes')), head, actions, msg, info,
    h('h2', {}, 'CPU and memory'), usage, h('h2', {}, 'Pods'), podsEl, h('h2', {}, 'Events'), events.el);

  let full = null;
  let refetch = 0;
  let win = '1h';

  async function load() {
    try {
      full = await request('GET', path);
      store.nodes.set(name, trimmers.nodes(full));
      draw();
    } catch (e) {
      note(msg, errorText(e), 'error');
    }
  }

  function draw() {
    const n = store.nodes.get(name);
    if (!n) { replace(head, h('h1', {}, name), badge('deleted', 'bad')); return; }
    replace(head, h('h1', {}, name), healthBadge(n), n.unschedulable ? badge('cordoned (unschedulable)', 'warn') : null);
    if (full) {
      const st = full.status || {};
      const cap = st.capacity || {};
      replace(info, facts([
        ['Architecture', n.arch], ['Agent', n.version],
        ['OS', (st.nodeInfo || {}).osImage || ''], ['Kernel', (st.nodeInfo || {}).kernelVersion || ''],
        ['Addresses', (st.addresses || []).map((a) => a.address).join(', ')],
        ['Capacity', `${cap.cpu || '?'} cpu, ${cap.memory ? fmtBytes(quantity(cap.memory)) : '?'}, ${cap.pods || '?'} pods`],
        ['Labels', labelChips(n.labels)],
      ]), h('h2', {}, 'Network'), networkFacts(full), h('h2', {}, 'Conditions'), conditionsTable(st.conditions));
    }
    replace(podsEl, podTable([...store.pods.values()].filter((p) => p.node === name), false));
    drawActions(n);
  }

  // Redrawn only when what it offers changes: a Drain waiting for its Confirm stays put while
  // the stream redraws the rest of the page.
  let drawnKey = '';
  function drawActions(n) {
    const key = canWrite() ? `unschedulable=${n.unschedulable}` : '';
    if (key === drawnKey) return;
    drawnKey = key;
    if (!key) { replace(actions); return; }
    const act = (label, fn) => async () => {
      note(msg, `${label}…`);
      try { note(msg, await fn(), 'ok'); } catch (e) { note(msg, errorText(e), 'error'); }
      load();
    };
    replace(actions,
      n.unschedulable
        ? h('button', { type: 'button', onclick: act('Uncordoning', uncordon) }, 'Uncordon')
        : h('button', { type: 'button', onclick: act('Cordoning', cordon) }, 'Cordon'),
      confirmButton('Drain', `Drain ${name}: cordon it and evict its pods?`, act('Draining', drain)));
  }

  const cordon = async () => { await patch(path, { spec: { unschedulable: true } }); return `${name} cordoned`; };
  const uncordon = async () => { await patch(path, { spec: { unschedulable: false } }); return `${name} uncordoned`; };
  async function drain() {
    await patch(path, { spec: { unschedulable: true } });
    const victims = [];
    await listPages(paths.pods, { fieldSelector: `spec.nodeName=${name}` }, (items) => {
      for (const p of items) {
        const owners = (p.metadata.ownerReferences || []).map((o) => o.kind);
        if (!owners.includes('DaemonSet') && !p.metadata.deletionTimestamp) victims.push(p.metadata);
      }
    });
    for (const m of victims) await request('DELETE', objectPath('pods', m.namespace, m.name));
    return `${name} cordoned, ${victims.length} pod${victims.length === 1 ? '' : 's'} evicted`;
  }

  async function drawUsage() {
    const pick = h('select', { id: 'usage-window', 'aria-label': 'History window' },
      WINDOWS.map((w) => h('option', { value: w, selected: w === win }, w)));
    pick.addEventListener('change', () => { win = pick.value; drawUsage(); });
    const refresh = h('button', { type: 'button', onclick: drawUsage }, 'Refresh');
    replace(usage, h('div', { class: 'filters' }, h('label', { for: 'usage-window' }, 'Window'), pick, refresh), h('p', { class: 'muted' }, 'Loading…'));
    try {
      const [now, hist] = await Promise.all([
        request('GET', `/apis/metrics.k8s.io/v1beta1/nodes/${encodeURIComponent(name)}`).catch(() => null),
        request('GET', `/apis/drover.io/v1/usage/nodes/${encodeURIComponent(name)}?window=${win}`),
      ]);
      const pts = hist.points || [];
      const u = (now && now.usage) || {};
      replace(usage, usage.firstChild,
        h('p', {}, now ? `Now: ${fmtCores(quantity(u.cpu))} cpu, ${fmtBytes(quantity(u.memory))} memory (over ${now.window || '?'})` : 'No current usage reported.'),
        lineChart(pts.map((p) => ({ time: p.time, value: p.cpuNanocores === null ? null : p.cpuNanocores / 1e9 })), { label: 'CPU (cores)', fmt: fmtCores }),
        lineChart(pts.map((p) => ({ time: p.time, value: p.memoryBytes })), { label: 'Memory', fmt: fmtBytes }));
    } catch (e) {
      replace(usage, usage.firstChild, h('p', { class: 'note error' }, errorText(e)));
    }
  }

  load();
  drawUsage();
  const off = subscribe((kinds) => {
    if (kinds.has('nodes')) {
      const n = store.nodes.get(name);
      if (n && full && n.rv > Number(full.metadata.resourceVersion) && !refetch) {
        refetch = setTimeout(() => { refetch = 0; load(); }, 1000); // conditions: at most one GET a second
      }
    }
    if (['nodes', 'pods', 'beat', 'tick'].some((k) => kinds.has(k))) draw();
  });
  return () => { off(); events.close(); clearTimeout(refetch); };
}
