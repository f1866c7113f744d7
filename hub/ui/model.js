// The live model: every kind the dashboard shows, listed page by page from the hub and kept
// trimmed to the fields the views use (5,000 nodes and their pods stay a few MB), then kept
// current by ONE EventSource per tab on /apis/drover.io/v1/watch:
// - resumed from the last resourceVersion seen after a drop; an ERROR 410 (the hub no longer has
//   that history) lists everything again and opens a new stream from the new lists;
// - closed while the tab is hidden; when it shows again, listed again and reopened;
// - when the hub goes away (restart, network) it backs off 0.5, 1, 2 .. 15 s (jittered), checks
//   the session first, and recovers by itself. Nothing polls the lists.
import { listPages, paths, loadSession, clock } from './api.js';

const TRIM = {
  nodes: trimNode, pods: trimPod, deployments: trimDeployment, daemonsets: trimDaemonSet,
  horizontalpodautoscalers: trimHpa, events: trimEvent, services: trimService,
  endpointslices: trimSlice, networkpolicies: trimPolicy, statefulsets: trimStatefulSet,
  jobs: trimJob, cronjobs: trimCronJob, persistentvolumeclaims: trimClaim,
};
const KIND_OF = {
  Node: 'nodes', Pod: 'pods', Deployment: 'deployments', DaemonSet: 'daemonsets',
  HorizontalPodAutoscaler: 'horizontalpodautoscalers', Event: 'events', Service: 'services',
  EndpointSlice: 'endpointslices', NetworkPolicy: 'networkpolicies', StatefulSet: 'statefulsets',
  Job: 'jobs', CronJob: 'cronjobs', PersistentVolumeClaim: 'persistentvolumeclaims',
};
const EVENTS_KEPT = 500;
// A node absent from HEARTBEAT.late was heard from within this long (2 heartbeat periods).
export const LATE_MS = 10000;

export const store = Object.fromEntries(Object.keys(TRIM).map((k) => [k, new Map()]));

// state: 'connecting' | 'live' | 'reconnecting' | 'paused' (tab hidden) | 'stopped'
export const live = { state: 'stopped', loaded: false, beatAt: 0, late: new Map(), error: '' };

let es = null;
let rv = '';
let relist = false; // the next resume lists everything again (after the tab was hidden)
let beatLocal = 0; // this browser's clock at the last sign of life of the stream
let retry = 0;
let timer = 0;
let onSignedOut = () => {};

// ---- change notification: views subscribe; changes are batched (one call per 100 ms) ----
const listeners = new Set();
let pending = new Set();
let flushTimer = 0;

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed(what) {
  pending.add(what);
  if (!flushTimer) {
    flushTimer = setTimeout(() => {
      const kinds = pending;
      pending = new Set();
      flushTimer = 0;
      for (const fn of [...listeners]) fn(kinds);
    }, 100);
  }
}

// ---- trimming: only what the views show ----
const meta = (o) => o.metadata || {};
const rvOf = (o) => Number(meta(o).resourceVersion) || 0;
const cond = (list, type) => (list || []).find((c) => c.type === type);
const keyOf = (m) => `${m.namespace}/${m.name}`;

function trimNode(o) {
  const m = meta(o);
  const st = o.status || {};
  const info = st.nodeInfo || {};
  const r = cond(st.conditions, 'Ready') || {};
  const d = cond(st.conditions, 'DuplicateIdentity');
  return {
    key: m.name, name: m.name, rv: rvOf(o), labels: m.labels || {},
    unschedulable: !!(o.spec && o.spec.unschedulable),
    ready: r.status || 'Unknown', reason: r.reason || '', message: r.message || '',
    heartbeat: Date.parse(r.lastHeartbeatTime) || 0,
    duplicate: d && d.status === 'True' ? d.message || 'two devices use this identity' : '',
    arch: info.architecture || '', version: info.agentVersion || info.kubeletVersion || '',
  };
}

// The workload that owns a pod: a Deployment's pods are owned by its ReplicaSet, named
// <deployment>-<pod-template-hash>, which the page shows as the Deployment.
export function podOwner(m) {
  const o = (m.ownerReferences || [])[0];
  if (!o) return null;
  const hash = (m.labels || {})['pod-template-hash'];
  if (o.kind === 'ReplicaSet' && hash && o.name.endsWith(`-${hash}`)) {
    return { kind: 'Deployment', name: o.name.slice(0, -(hash.length + 1)) };
  }
  return { kind: o.kind, name: o.name };
}

function trimPod(o) {
  const m = meta(o);
  const sp = o.spec || {};
  const st = o.status || {};
  let restarts = 0;
  let waiting = '';
  let waitMsg = '';
  let lastCrash = 0;
  for (const c of st.containerStatuses || []) {
    restarts += c.restartCount || 0;
    const w = c.state && c.state.waiting;
    if (w && w.reason && !waiting) [waiting, waitMsg] = [w.reason, w.message || ''];
    const t = c.lastState && c.lastState.terminated;
    if (t) lastCrash = Math.max(lastCrash, Date.parse(t.finishedAt) || 0);
  }
  const sched = cond(st.conditions, 'PodScheduled');
  const owner = podOwner(m);
  return {
    key: keyOf(m), ns: m.namespace, name: m.name, rv: rvOf(o), labels: m.labels || {},
    node: sp.nodeName || '', phase: st.phase || 'Pending', ip: st.podIP || '',
    restarts, waiting, waitMsg, lastCrash,
    ready: (cond(st.conditions, 'Ready') || {}).status === 'True',
    unschedulable: sched && sched.status === 'False' ? sched.message || sched.reason : '',
    owner: owner ? `${owner.kind}/${owner.name}` : '', deleting: !!m.deletionTimestamp,
    created: Date.parse(m.creationTimestamp) || 0,
  };
}

function trimDeployment(o) {
  const m = meta(o);
  const sp = o.spec || {};
  const st = o.status || {};
  const p = cond(st.conditions, 'Progressing') || {};
  const av = cond(st.conditions, 'Available');
  return {
    key: keyOf(m), ns: m.namespace, name: m.name, rv: rvOf(o),
    desired: sp.replicas ?? 1, current: st.replicas || 0, ready: st.readyReplicas || 0,
    updated: st.updatedReplicas || 0, available: st.availableReplicas || 0,
    paused: !!sp.paused, selector: (sp.selector || {}).matchLabels || {},
    progress: p.reason || '', progressMsg: p.message || '',
    stuck: p.status === 'False' && p.reason === 'ProgressDeadlineExceeded',
    unavailableSince: av && av.status === 'False' ? Date.parse(av.lastTransitionTime) || 0 : 0,
  };
}

function trimDaemonSet(o) {
  const m = meta(o);
  const st = o.status || {};
  return {
    key: keyOf(m), ns: m.namespace, name: m.name, rv: rvOf(o),
    desired: st.desiredNumberScheduled || 0, current: st.currentNumberScheduled || 0,
    ready: st.numberReady || 0, updated: st.updatedNumberScheduled || 0,
    available: st.numberAvailable || 0, selector: ((o.spec || {}).selector || {}).matchLabels || {},
  };
}

// A StatefulSet: its pods are <name>-<ordinal> for ordinals start .. start+desired-1, each with
// the claims <template>-<name>-<ordinal>.
function trimStatefulSet(o) {
  const m = meta(o);
  const sp = o.spec || {};
  const st = o.status || {};
  const ru = (sp.updateStrategy || {}).rollingUpdate || {};
  return {
    key: keyOf(m), ns: m.namespace, name: m.name, rv: rvOf(o),
    desired: sp.replicas ?? 1, current: st.replicas || 0, ready: st.readyReplicas || 0,
    updated: st.updatedReplicas || 0, available: st.availableReplicas || 0,
    currentRevision: st.currentRevision || '', updateRevision: st.updateRevision || '',
    strategy: (sp.updateStrategy || {}).type || 'RollingUpdate', partition: ru.partition || 0,
    policy: sp.podManagementPolicy || 'OrderedReady', service: sp.serviceName || '',
    start: (sp.ordinals || {}).start || 0, selector: (sp.selector || {}).matchLabels || {},
    claims: (sp.volumeClaimTemplates || []).map((t) => (t.metadata || {}).name || ''),
    images: (((sp.template || {}).spec || {}).containers || []).map((c) => c.image).join(', '),
  };
}

// A Job's state as kubectl's STATUS column says it: Complete, Failed, Suspended or Running.
function jobStatus(st) {
  for (const t of ['Complete', 'Failed', 'Suspended']) {
    const c = cond(st.conditions, t);
    if (c && c.status === 'True') return [t, Date.parse(c.lastTransitionTime) || 0];
  }
  return ['Running', 0];
}

function trimJob(o) {
  const m = meta(o);
  const sp = o.spec || {};
  const st = o.status || {};
  const [status, endedAt] = jobStatus(st);
  const owner = (m.ownerReferences || []).find((r) => r.kind === 'CronJob');
  return {
    key: keyOf(m), ns: m.namespace, name: m.name, rv: rvOf(o), status,
    completions: sp.completions ?? null, parallelism: sp.parallelism ?? 1,
    succeeded: st.succeeded || 0, failed: st.failed || 0, active: st.active || 0,
    started: Date.parse(st.startTime) || 0,
    ended: Date.parse(st.completionTime) || (status === 'Failed' ? endedAt : 0),
    created: Date.parse(m.creationTimestamp) || 0, cronjob: owner ? owner.name : '',
  };
}

function trimCronJob(o) {
  const m = meta(o);
  const sp = o.spec || {};
  const st = o.status || {};
  return {
    key: keyOf(m), ns: m.namespace, name: m.name, rv: rvOf(o),
    schedule: sp.schedule || '', timeZone: sp.timeZone || '', suspend: !!sp.suspend,
    concurrency: sp.concurrencyPolicy || 'Allow', active: (st.active || []).length,
    lastSchedule: Date.parse(st.lastScheduleTime) || 0,
    lastSuccess: Date.parse(st.lastSuccessfulTime) || 0,
  };
}

function trimClaim(o) {
  const m = meta(o);
  const sp = o.spec || {};
  return {
    key: keyOf(m), ns: m.namespace, name: m.name, rv: rvOf(o),
    phase: (o.status || {}).phase || 'Pending', volume: sp.volumeName || '',
    size: ((sp.resources || {}).requests || {}).storage || '', deleting: !!m.deletionTimestamp,
  };
}

// "cpu 34% / 50%" for each metric of an autoscaling/v2 HPA.
function hpaTargets(sp, st) {
  return (sp.metrics || []).map((mt) => {
    const r = mt.resource || {};
    const tgt = r.target || {};
    const cur = ((st.currentMetrics || []).find((c) => c.resource && c.resource.name === r.name) || {}).resource;
    const curV = cur && cur.current ? cur.current : {};
    const pct = tgt.averageUtilization !== undefined;
    const now = pct ? curV.averageUtilization : curV.averageValue;
    return `${r.name || mt.type} ${now ?? '?'}${pct ? '%' : ''} / ${pct ? `${tgt.averageUtilization}%` : tgt.averageValue || tgt.value || '?'}`;
  }).join(', ');
}

function trimHpa(o) {
  const m = meta(o);
  const sp = o.spec || {};
  const st = o.status || {};
  const ref = sp.scaleTargetRef || {};
  return {
    key: keyOf(m), ns: m.namespace, name: m.name, rv: rvOf(o),
    targetKind: ref.kind || '', targetName: ref.name || '',
    min: sp.minReplicas ?? 1, max: sp.maxReplicas ?? 0,
    current: st.currentReplicas ?? 0, desired: st.desiredReplicas ?? 0,
    targets: hpaTargets(sp, st),
  };
}

function trimEvent(o) {
  const m = meta(o);
  const io = o.involvedObject || {};
  return {
    key: m.uid || keyOf(m), ns: m.namespace, rv: rvOf(o), type: o.type || 'Normal',
    reason: o.reason || '', message: o.message || '', count: o.count || 1,
    kind: io.kind || '', objName: io.name || '', objNs: io.namespace || '',
    time: Date.parse(o.lastTimestamp || o.eventTime || m.creationTimestamp) || 0,
  };
}

// A label selector as kubectl prints it: "app=web,tier in (a,b),!legacy"; {} selects all.
export function selectorText(sel) {
  const parts = Object.entries((sel && sel.matchLabels) || {}).map(([k, v]) => `${k}=${v}`);
  for (const e of (sel && sel.matchExpressions) || []) {
    const vals = (e.values || []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${vals})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${vals})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

function trimService(o) {
  const m = meta(o);
  const sp = o.spec || {};
  const lb = ((o.status || {}).loadBalancer || {}).ingress || [];
  return {
    key: keyOf(m), ns: m.namespace, name: m.name, rv: rvOf(o),
    type: sp.type || 'ClusterIP', clusterIP: sp.clusterIP || '',
    external: lb.map((i) => i.ip || i.hostname).filter(Boolean),
    ports: (sp.ports || []).map((p) => ({
      name: p.name || '', protocol: p.protocol || 'TCP', port: p.port,
      targetPort: p.targetPort ?? p.port, nodePort: p.nodePort || 0,
    })),
    selector: sp.selector && Object.keys(sp.selector).length ? sp.selector : null, affinity: sp.sessionAffinity || 'None',
    internalPolicy: sp.internalTrafficPolicy || '', externalPolicy: sp.externalTrafficPolicy || '',
    created: Date.parse(m.creationTimestamp) || 0,
  };
}

// Kubernetes: an endpoint whose ready is unset counts as ready; serving unset is as ready.
function trimSlice(o) {
  const m = meta(o);
  return {
    key: keyOf(m), ns: m.namespace, name: m.name, rv: rvOf(o),
    service: (m.labels || {})['kubernetes.io/service-name'] || '',
    ports: (o.ports || []).map((p) => ({ name: p.name || '', port: p.port, protocol: p.protocol || 'TCP' })),
    endpoints: (o.endpoints || []).map((e) => {
      const c = e.conditions || {};
      const ready = c.ready !== false;
      const ref = e.targetRef || {};
      return {
        ip: (e.addresses || []).join(', '), node: e.nodeName || '',
        pod: ref.kind === 'Pod' ? ref.name || '' : '', podNs: ref.namespace || m.namespace,
        ready, serving: c.serving ?? ready, terminating: !!c.terminating,
      };
    }),
  };
}

// policyTypes unset: Ingress, plus Egress when there are egress rules (as the apiserver says).
function trimPolicy(o) {
  const m = meta(o);
  const sp = o.spec || {};
  const types = sp.policyTypes && sp.policyTypes.length ? sp.policyTypes
    : ['Ingress', ...(sp.egress && sp.egress.length ? ['Egress'] : [])];
  return {
    key: keyOf(m), ns: m.namespace, name: m.name, rv: rvOf(o),
    selector: selectorText(sp.podSelector) || '(all pods)', types,
    ingress: (sp.ingress || []).length, egress: (sp.egress || []).length,
  };
}

// The endpoints of every Service from its EndpointSlices (label kubernetes.io/service-name):
// "ns/name" -> [endpoint], one pass over the slices.
export function endpointsByService() {
  const by = new Map();
  for (const s of store.endpointslices.values()) {
    if (!s.service) continue;
    const k = `${s.ns}/${s.service}`;
    if (!by.has(k)) by.set(k, []);
    by.get(k).push(...s.endpoints);
  }
  return by;
}

export const trimmers = TRIM;

function put(kind, t) {
  const map = store[kind];
  if (kind === 'events') {
    map.delete(t.key); // re-inserted: the newest last
    map.set(t.key, t);
    for (const k of map.keys()) {
      if (map.size <= EVENTS_KEPT) break;
      map.delete(k);
    }
  } else {
    map.set(t.key, t);
  }
}

// ---- lists ----
async function listAll() {
  const fresh = !live.loaded;
  const maps = fresh ? store : Object.fromEntries(Object.keys(TRIM).map((k) => [k, new Map()]));
  let min = Infinity;
  const seen = (md) => { min = Math.min(min, Number(md.resourceVersion) || Infinity); };
  await Promise.all(Object.keys(TRIM).map((kind) => {
    const params = kind === 'events' ? { sortBy: '-metadata.creationTimestamp' } : { sortBy: 'metadata.name' };
    let first = true;
    return listPages(paths[kind], params, (items, md) => {
      if (first) seen(md);
      first = false;
      for (const o of items) {
        const t = TRIM[kind](o);
        maps[kind].set(t.key, t);
      }
      if (fresh) changed(kind);
      return kind !== 'events'; // the newest page of events is enough
    });
  }));
  if (!fresh) {
    for (const kind of Object.keys(TRIM)) {
      store[kind] = maps[kind];
      changed(kind);
    }
  }
  rv = Number.isFinite(min) ? String(min) : '';
  live.loaded = true;
}

// ---- the stream ----
function setState(s, error = '') {
  live.state = s;
  live.error = error;
  changed('live');
}

function onChange(type, e) {
  let obj;
  try { obj = JSON.parse(e.data); } catch { return; }
  if (e.lastEventId) rv = e.lastEventId;
  const kind = KIND_OF[obj.kind];
  if (!kind) return;
  const t = TRIM[kind](obj);
  const old = store[kind].get(t.key);
  if (old && old.rv > t.rv) return; // a replay older than what the list gave
  if (type === 'DELETED') store[kind].delete(t.key);
  else put(kind, t);
  changed(kind);
}

function onBeat(e) {
  let b;
  try { b = JSON.parse(e.data); } catch { return; }
  const now = Date.parse(b.now);
  beatLocal = Date.now();
  clock.set(now, true);
  live.beatAt = now;
  live.late = new Map(Object.entries(b.late || {}).map(([k, v]) => [k, Date.parse(v)]));
  changed('beat');
}

async function onError(e) {
  let st = {};
  try { st = JSON.parse(e.data); } catch { /* not a Status */ }
  close();
  if (st.code !== 410) {
    broken(st.message || 'the stream ended');
    return;
  }
  setState('connecting', 'relisting (the hub no longer has that history)');
  try {
    await listAll();
    open();
  } catch (err) {
    broken(err.message);
  }
}

function open() {
  close();
  const q = new URLSearchParams({ kinds: Object.keys(TRIM).join(',') });
  if (rv) q.set('resourceVersion', rv);
  es = new EventSource(`/apis/drover.io/v1/watch?${q}`);
  es.onopen = () => { retry = 0; beatLocal = Date.now(); setState('live'); };
  for (const t of ['ADDED', 'MODIFIED', 'DELETED']) es.addEventListener(t, (e) => onChange(t, e));
  es.addEventListener('HEARTBEAT', onBeat);
  es.addEventListener('ERROR', onError);
  es.onerror = () => broken('the stream broke');
}

function close() {
  if (es) es.close();
  es = null;
  clearTimeout(timer);
  timer = 0;
}

function broken(why) {
  close();
  const base = Math.min(15000, 500 * 2 ** retry);
  retry++;
  setState('reconnecting', why);
  timer = setTimeout(resume, Math.min(15000, base * (0.8 + Math.random() * 0.4)));
}

// Session first (it may have ended while the hub was away), then lists if never listed, then
// the stream from the last resourceVersion.
async function resume() {
  timer = 0;
  if (document.hidden || live.state === 'stopped') return;
  try {
    if (!(await loadSession())) {
      stop();
      onSignedOut();
      return;
    }
    if (!live.loaded || relist) {
      relist = false;
      await listAll();
    }
    open();
  } catch (err) {
    broken(err.message);
  }
}

export function start(signedOut) {
  onSignedOut = signedOut;
  retry = 0;
  setState('connecting');
  (async () => {
    try {
      await listAll();
      if (live.state !== 'stopped' && !document.hidden) open();
    } catch (err) {
      if (live.state !== 'stopped') broken(err.message);
    }
  })();
}

export function stop() {
  close();
  setState('stopped');
  live.loaded = false;
  rv = '';
  for (const m of Object.values(store)) m.clear();
}

document.addEventListener('visibilitychange', () => {
  if (live.state === 'stopped') return;
  if (document.hidden) {
    close();
    setState('paused');
  } else {
    retry = 0;
    relist = true; // what happened while hidden: a fresh list, then the stream from there
    setState('connecting');
    resume();
  }
});

// A stream that went silent (no HEARTBEAT for 3 periods) is as good as broken: the page says so
// and reconnects rather than showing stale data as live.
setInterval(() => {
  if (live.state === 'live' && Date.now() - beatLocal > 16000) broken('no heartbeat from the hub for 15 s');
}, 2000);

// Ages on the page move on: one redraw of the texts every 5 s (nothing is fetched).
setInterval(() => { if (live.state !== 'stopped' && !document.hidden) changed('tick'); }, 5000);

// What the page says of a node: never "Ready" unless heard from lately.
// status: Ready | Late | NotReady; seen: hub ms of the last time heard from, at least;
// bound: true when seen is only a bound ("within the last 10 s").
export function nodeHealth(n) {
  const now = clock.now();
  const lateAt = live.late.get(n.name);
  const streamFresh = live.state === 'live' && now - live.beatAt < LATE_MS + 2000;
  let seen = n.heartbeat;
  let bound = false;
  if (lateAt !== undefined) seen = lateAt;
  else if (streamFresh && live.beatAt - LATE_MS > seen) [seen, bound] = [live.beatAt - LATE_MS, true];
  const fresh = lateAt === undefined && now - seen <= LATE_MS + 2000;
  // Ready False or Unknown (not heard from: the node-lifecycle controller's NodeStatusUnknown)
  // are both NotReady to the user, as kubectl says; the reason tells which.
  let status = n.ready === 'True' ? 'Ready' : 'NotReady';
  if (status === 'Ready' && !fresh) status = 'Late';
  return { status, seen, age: Math.max(0, now - seen), bound };
}
