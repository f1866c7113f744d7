// One CronJob: its schedule, its Jobs (newest first) and its events (read only: a CronJob is
// changed through Apply).
import { store, subscribe } from './model.js';
import { clock } from './api.js';
import { h, replace, badge, facts, fmtAge } from './dom.js';
import { eventFeed } from './events.js';
import { jobTable } from './workloads.js';

const when = (t) => (t ? `${new Date(t).toISOString().replace('.000Z', 'Z')} (${fmtAge(clock.now() - t)} ago)` : 'never');

export function mount(main, [ns, name]) {
  const head = h('div', { class: 'head' });
  const info = h('section', { 'aria-label': 'CronJob facts' });
  const jobsEl = h('section', { 'aria-label': 'Jobs of this CronJob' });
  const events = eventFeed((e) => e.kind === 'CronJob' && e.objName === name && (e.objNs || e.ns) === ns,
    `/api/v1/namespaces/${encodeURIComponent(ns)}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${name}`)}`);
  main.append(h('p', {}, h('a', { href: '#/workloads' }, '← Workloads')), head, info,
    h('h2', {}, 'Jobs'), jobsEl, h('h2', {}, 'Events'), events.el);

  function draw() {
    const c = store.cronjobs.get(`${ns}/${name}`);
    replace(head, h('h1', {}, `${ns}/${name}`),
      !c ? badge('not found', 'bad') : c.suspend ? badge('Suspended', 'warn') : badge('Scheduled', 'ok'));
    if (!c) { replace(info); replace(jobsEl); return; }
    replace(info, facts([
      ['Schedule', h('code', {}, c.schedule)],
      ['Time zone', c.timeZone || 'UTC'],
      ['Suspend', c.suspend ? 'Yes' : 'No'],
      ['Concurrency', c.concurrency],
      ['Active', String(c.active)],
      ['Last schedule', when(c.lastSchedule)],
      ['Last success', when(c.lastSuccess)],
    ]));
    const jobs = [...store.jobs.values()].filter((j) => j.ns === ns && j.cronjob === name)
      .sort((a, b) => b.created - a.created || (a.key < b.key ? -1 : 1));
    replace(jobsEl, jobTable(jobs));
  }

  draw();
  const off = subscribe((k) => { if (['cronjobs', 'jobs', 'tick'].some((x) => k.has(x))) draw(); });
  return () => { off(); events.close(); };
}
