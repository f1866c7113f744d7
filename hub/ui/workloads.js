// Workloads: the Deployments, DaemonSets, StatefulSets, Jobs and CronJobs of the fleet, live,
// with how far each is rolled out or run; all but Jobs link to their page (a Deployment's has
// scale, pause and rollback; the others are read only).
import { store, subscribe } from './model.js';
import { clock } from './api.js';
import { h, replace, badge, fmtAge } from './dom.js';

const href = (kind, w) => `#/${kind}/${encodeURIComponent(w.ns)}/${encodeURIComponent(w.name)}`;
const byKey = (a, b) => (a.key < b.key ? -1 : 1);

export function deploymentState(d) {
  if (d.stuck) return badge('Stuck', 'bad');
  if (d.paused) return badge('Paused', 'warn');
  if (d.ready >= d.desired && d.updated >= d.desired && d.current <= d.desired) return badge('Ready', 'ok');
  return badge('Rolling out', 'warn');
}

export function daemonSetState(s) {
  if (s.ready >= s.desired && s.updated >= s.desired) return badge('Ready', 'ok');
  return badge('Rolling out', 'warn');
}

// A StatefulSet is Ready once every pod is ready, runs the update revision, and no extra pod is
// left; a partition keeps the pods below it on the current revision on purpose.
export function statefulSetState(s) {
  const want = Math.max(0, s.desired - (s.strategy === 'RollingUpdate' ? s.partition : 0));
  if (s.ready >= s.desired && s.current <= s.desired && (s.updated >= want || s.strategy === 'OnDelete')) {
    return badge('Ready', 'ok');
  }
  return badge(s.current > s.desired ? 'Scaling down' : 'Rolling out', 'warn');
}

// "web-6c9f (current)" or "web-6c9f → web-7d8e"
export function revisionText(s) {
  if (!s.updateRevision) return '—';
  if (!s.currentRevision || s.currentRevision === s.updateRevision) return `${s.updateRevision} (current)`;
  return `${s.currentRevision} → ${s.updateRevision}`;
}

const JOB_TONE = { Complete: 'ok', Failed: 'bad', Suspended: 'warn', Running: 'warn' };
export const jobState = (j) => badge(j.status, JOB_TONE[j.status]);

// As kubectl: succeeded/completions, "N/1 of P" for a work queue of P pods.
export function jobCompletions(j) {
  if (j.completions !== null) return `${j.succeeded}/${j.completions}`;
  return j.parallelism > 1 ? `${j.succeeded}/1 of ${j.parallelism}` : `${j.succeeded}/1`;
}

// From its start to its end (or now, on the hub's clock, while it runs).
export function jobDuration(j) {
  if (!j.started) return '—';
  return fmtAge((j.ended || clock.now()) - j.started);
}

const ago = (t) => (t ? `${fmtAge(clock.now() - t)} ago` : 'never');

function table(kind, rows, state) {
  if (!rows.length) return h('p', { class: 'muted' }, 'None.');
  return h('table', { class: 'workloads' },
    h('thead', {}, h('tr', {}, ['Name', 'State', 'Ready', 'Up to date', 'Available'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((w) => h('tr', {},
      h('td', {}, h('a', { href: href(kind, w) }, `${w.ns}/${w.name}`)),
      h('td', {}, state(w)),
      h('td', { class: 'num' }, `${w.ready}/${w.desired}`),
      h('td', { class: 'num' }, String(w.updated)),
      h('td', { class: 'num' }, String(w.available))))));
}

function stsTable(rows) {
  if (!rows.length) return h('p', { class: 'muted' }, 'None.');
  return h('table', { class: 'workloads statefulsets' },
    h('thead', {}, h('tr', {}, ['Name', 'State', 'Ready', 'Up to date', 'Revision'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((s) => h('tr', {},
      h('td', {}, h('a', { href: href('statefulsets', s) }, `${s.ns}/${s.name}`)),
      h('td', {}, statefulSetState(s)),
      h('td', { class: 'num' }, `${s.ready}/${s.desired}`),
      h('td', { class: 'num' }, String(s.updated)),
      h('td', {}, revisionText(s))))));
}

export function jobTable(rows) {
  if (!rows.length) return h('p', { class: 'muted' }, 'None.');
  return h('table', { class: 'workloads jobs' },
    h('thead', {}, h('tr', {}, ['Name', 'Status', 'Completions', 'Duration', 'Age'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((j) => h('tr', { 'data-job': j.key },
      h('td', {}, `${j.ns}/${j.name}`),
      h('td', {}, jobState(j)),
      h('td', { class: 'num' }, jobCompletions(j)),
      h('td', { class: 'num' }, jobDuration(j)),
      h('td', { class: 'num' }, j.created ? fmtAge(clock.now() - j.created) : '')))));
}

function cronTable(rows) {
  if (!rows.length) return h('p', { class: 'muted' }, 'None.');
  return h('table', { class: 'workloads cronjobs' },
    h('thead', {}, h('tr', {}, ['Name', 'Schedule', 'Time zone', 'Suspend', 'Active', 'Last schedule'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((c) => h('tr', {},
      h('td', {}, h('a', { href: href('cronjobs', c) }, `${c.ns}/${c.name}`)),
      h('td', {}, h('code', {}, c.schedule)),
      h('td', {}, c.timeZone || 'UTC'),
      h('td', {}, c.suspend ? badge('Suspended', 'warn') : 'No'),
      h('td', { class: 'num' }, String(c.active)),
      h('td', {}, ago(c.lastSchedule))))));
}

const KINDS = ['deployments', 'daemonsets', 'statefulsets', 'jobs', 'cronjobs'];

export function mount(main) {
  const sec = Object.fromEntries(KINDS.map((k) => [k, h('section', { 'aria-labelledby': `${k}-title` })]));
  main.append(h('h1', {}, 'Workloads'), ...KINDS.map((k) => sec[k]));
  const sorted = (k) => [...store[k].values()].sort(byKey);
  const title = (k, text) => h('h2', { id: `${k}-title` }, `${text} (${store[k].size})`);
  function draw() {
    replace(sec.deployments, title('deployments', 'Deployments'), table('deployments', sorted('deployments'), deploymentState));
    replace(sec.daemonsets, title('daemonsets', 'DaemonSets'), table('daemonsets', sorted('daemonsets'), daemonSetState));
    replace(sec.statefulsets, title('statefulsets', 'StatefulSets'), stsTable(sorted('statefulsets')));
    replace(sec.jobs, title('jobs', 'Jobs'), jobTable(sorted('jobs')));
    replace(sec.cronjobs, title('cronjobs', 'CronJobs'), cronTable(sorted('cronjobs')));
  }
  draw();
  // 'tick' (every 5 s): the ages and running durations move on
  return subscribe((k) => { if (KINDS.some((x) => k.has(x)) || k.has('tick')) draw(); });
}
