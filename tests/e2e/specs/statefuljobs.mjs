// StatefulSets, Jobs and CronJobs in the dashboard, as a viewer: the Workloads tables show
// their figures, the StatefulSet's page its pods by ordinal with their claims, the CronJob's
// page its Jobs; each changes in place as the hub's stream says (no reload).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { api, waitFor } from '../lib/ctl.mjs';
import { openSignedIn, go, see, until, IMAGE } from '../lib/ui.mjs';

const NS = 'default';
const STS = 'e2e-db';
const JOB = 'e2e-once';
const CRON = 'e2e-tick';
const pod = (command, more = {}) => ({ terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: IMAGE, command, ...more }] });

let browser;
after(async () => {
  if (browser) await browser.close();
  const del = (path) => api('DELETE', path).catch(() => {});
  await del(`/apis/apps/v1/namespaces/${NS}/statefulsets/${STS}`);
  await del(`/apis/batch/v1/namespaces/${NS}/jobs/${JOB}`);
  await del(`/apis/batch/v1/namespaces/${NS}/cronjobs/${CRON}`);
  await waitFor('the StatefulSet\'s pods gone', 20, async () => {
    const r = await api('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=app%3D${STS}`);
    return r.status === 200 && r.json.items.length === 0;
  }, 500).catch((e) => console.log(`# clean-up: ${e.message}`));
  for (const i of [0, 1, 2]) await del(`/api/v1/namespaces/${NS}/persistentvolumeclaims/data-${STS}-${i}`);
});

async function apply(obj) {
  const r = await api('POST', '/apis/drover.io/v1/apply', { body: obj });
  assert.equal(r.status, 200, `apply ${obj.kind} ${obj.metadata.name}: ${r.text}`);
}

const mergePatch = (path, body) => api('PATCH', path, { body, headers: { 'Content-Type': 'application/merge-patch+json' } });

// The cells' texts of the row of `name` in table `sel` (null: no such row).
const rowOf = (page, sel, name) => page.evaluate(([s, n]) => {
  const tr = [...document.querySelectorAll(`${s} tbody tr`)].find((r) => r.children[0].textContent === n);
  return tr ? [...tr.children].map((td) => td.textContent.trim()) : null;
}, [sel, name]);

async function rowIs(page, sel, name, what, check, secs = 60) {
  return waitFor(`${name} in ${sel}: ${what}`, secs, async () => {
    const r = await rowOf(page, sel, name);
    return r && check(r) ? r : false;
  }, 250);
}

test('StatefulSet, Job and CronJob: tables, pages and live updates', async () => {
  await apply({
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: STS, namespace: NS },
    spec: {
      replicas: 2, serviceName: STS, podManagementPolicy: 'Parallel',
      selector: { matchLabels: { app: STS } },
      template: { metadata: { labels: { app: STS } }, spec: pod(['sleep', '3600'], { volumeMounts: [{ name: 'data', mountPath: '/data' }] }) },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Mi' } } } }],
    },
  });
  await apply({
    apiVersion: 'batch/v1', kind: 'Job', metadata: { name: JOB, namespace: NS },
    spec: { completions: 2, parallelism: 1, template: { spec: { ...pod(['sleep', '6']), restartPolicy: 'Never' } } },
  });
  await apply({
    apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: CRON, namespace: NS },
    spec: {
      schedule: '* * * * *', timeZone: 'Europe/Paris', successfulJobsHistoryLimit: 3,
      jobTemplate: { spec: { template: { spec: { ...pod(['true']), restartPolicy: 'Never' } } } },
    },
  });

  let page;
  ({ browser, page } = await openSignedIn(process.env.DROVER_VIEWER_TOKEN));
  page.on('pageerror', (e) => console.log(`# page error: ${e.message}`));
  await go(page, '#/workloads', 'Workloads');
  await until(page, 'the live indicator', 20, () => document.getElementById('live').textContent === 'Live')
    .catch(async (e) => { throw new Error(`${e.message}: ${await page.locator('#live').getAttribute('title')}`); });
  await page.getByRole('heading', { name: 'StatefulSets (1)', level: 2 }).waitFor();
  await page.getByRole('heading', { name: /^Jobs \(\d+\)$/, level: 2 }).waitFor();
  await page.getByRole('heading', { name: 'CronJobs (1)', level: 2 }).waitFor();

  // the Job runs, then completes 2/2 with a duration of at least its two pods' 6 s each
  const jobName = `${NS}/${JOB}`;
  await rowIs(page, 'table.jobs', jobName, 'Running', (r) => r[1] === 'Running' && /^[01]\/2$/.test(r[2]), 60);
  const done = await rowIs(page, 'table.jobs', jobName, 'Complete 2/2', (r) => r[1] === 'Complete' && r[2] === '2/2', 120);
  const secs = Number(done[3].replace(/ s$/, ''));
  assert.ok(secs >= 12 && secs < 120, `the Job's duration: ${done[3]}`);

  // the StatefulSet: 2 of 2 ready on one revision
  const stsName = `${NS}/${STS}`;
  const sts = await rowIs(page, 'table.statefulsets', stsName, 'Ready 2/2', (r) => r[1] === 'Ready' && r[2] === '2/2', 120);
  assert.equal(sts[3], '2', 'up to date');
  assert.match(sts[4], new RegExp(`^${STS}-\\S+ \\(current\\)$`), 'revision state');

  // the CronJob's figures
  const cron = await rowIs(page, 'table.cronjobs', `${NS}/${CRON}`, 'listed', () => true);
  assert.deepEqual(cron.slice(1, 4), ['* * * * *', 'Europe/Paris', 'No']);
  await shot(page, 'workloads', { fullPage: true });

  // the StatefulSet's page: pods by ordinal, each with its claim Bound; scaled to 3 through the
  // API, ordinal 2 and its claim appear in place
  await page.getByRole('link', { name: stsName }).click();
  await page.getByRole('heading', { name: stsName, level: 1 }).waitFor();
  await see(page, '2 ready of 2 desired', { within: '.facts' });
  const ordinals = () => page.evaluate(() => [...document.querySelectorAll('table.ordinals tbody tr')]
    .map((tr) => [...tr.children].map((td) => td.textContent.trim())));
  const boundRows = (n) => waitFor(`${n} ordinals Running with a Bound claim`, 90, async () => {
    const rows = await ordinals();
    return rows.length === n && rows.every((x, i) => x[0] === String(i) && x[1] === `${STS}-${i}`
      && x[2] === 'Running' && x[5] === `data-${STS}-${i} Bound`) && rows;
  }, 250).catch(async (e) => { throw new Error(`${e.message}: ${JSON.stringify(await ordinals())}`); });
  await boundRows(2);
  const t0 = Date.now();
  const r = await mergePatch(`/apis/apps/v1/namespaces/${NS}/statefulsets/${STS}`, { spec: { replicas: 3 } });
  assert.equal(r.status, 200, r.text);
  await boundRows(3);
  console.log(`# ordinal 2 Running with its claim Bound in the page ${((Date.now() - t0) / 1000).toFixed(1)} s after the scale`);
  await see(page, '3 ready of 3 desired', { within: '.facts', timeout: 30_000 });
  await shot(page, 'statefulset', { fullPage: true });

  // the CronJob's page: its first Job shows up (and completes) as the schedule fires, then a
  // suspend through the API shows at once
  await go(page, '#/workloads', 'Workloads');
  await page.getByRole('link', { name: `${NS}/${CRON}` }).click();
  await page.getByRole('heading', { name: `${NS}/${CRON}`, level: 1 }).waitFor();
  await see(page, 'Europe/Paris', { within: '.facts' });
  const firstJob = await until(page, 'a Job of the CronJob completed', 150, (prefix) => {
    const row = [...document.querySelectorAll('table.jobs tbody tr')].find((tr) => tr.children[0].textContent.startsWith(prefix));
    return row && row.children[1].textContent === 'Complete' && row.children[2].textContent === '1/1' && row.children[0].textContent;
  }, `${NS}/${CRON}-`);
  console.log(`# ${firstJob} completed, in the CronJob's page`);
  await until(page, 'a last schedule', 30, () => /ago\)$/.test([...document.querySelectorAll('.facts dt')]
    .find((dt) => dt.textContent === 'Last schedule').nextElementSibling.textContent));
  const s = await mergePatch(`/apis/batch/v1/namespaces/${NS}/cronjobs/${CRON}`, { spec: { suspend: true } });
  assert.equal(s.status, 200, s.text);
  await page.locator('.head .badge', { hasText: 'Suspended' }).waitFor({ timeout: 15_000 });
  await shot(page, 'cronjob', { fullPage: true });
  await go(page, '#/workloads', 'Workloads');
  await rowIs(page, 'table.cronjobs', `${NS}/${CRON}`, 'suspended', (x) => x[3] === 'Suspended', 15);
});
