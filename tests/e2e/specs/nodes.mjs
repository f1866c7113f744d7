// Nodes as an operator: the hub's label selector narrows the list; cordon a node from its page
// (the list says so), drain it (its pods go to the other nodes), uncordon it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { api, waitFor, NODES } from '../lib/ctl.mjs';
import { openSignedIn, go, see, deployment, podsOf, podsRunning, removeDeployment } from '../lib/ui.mjs';

const APP = 'e2e-drain';
let browser;
let target;
after(async () => {
  if (browser) await browser.close();
  if (target) await api('PATCH', `/api/v1/nodes/${target}`, { body: '{"spec":{"unschedulable":false}}', headers: { 'Content-Type': 'application/merge-patch+json' } });
  await removeDeployment(APP);
});

const rowNames = (page) => page.evaluate(() => [...document.querySelectorAll('.vlist a.name')].map((a) => a.textContent));

test('filter, cordon, drain, uncordon', async () => {
  await deployment(APP, { replicas: 3 });
  const pods = await podsRunning(APP, 3);
  target = pods[0].node;
  let page;
  ({ browser, page } = await openSignedIn(process.env.DROVER_OPERATOR_TOKEN));

  await go(page, '#/nodes', 'Nodes');
  await waitFor('every node listed', 15, async () => (await rowNames(page)).length === NODES.length);
  const label = (await api('GET', `/api/v1/nodes/${target}`)).json.metadata.labels.device;
  await page.getByLabel('Label selector').fill(`device=${label}`);
  await page.getByRole('button', { name: 'Filter' }).click();
  await waitFor(`only ${target} listed`, 15, async () => JSON.stringify(await rowNames(page)) === JSON.stringify([target]));
  await see(page, '1 node match');
  await page.getByLabel('Label selector').fill('');
  await page.getByRole('button', { name: 'Filter' }).click();
  await waitFor('every node listed again', 15, async () => (await rowNames(page)).length === NODES.length);

  await page.getByRole('link', { name: target, exact: true }).click();
  await page.getByRole('heading', { name: target, level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Cordon' }).click();
  await see(page, `${target} cordoned`);
  await see(page, 'cordoned (unschedulable)');
  assert.equal((await api('GET', `/api/v1/nodes/${target}`)).json.spec.unschedulable, true);

  await page.getByRole('button', { name: 'Drain' }).click();
  await page.getByRole('button', { name: 'Confirm' }).click();
  await see(page, new RegExp(`${target} cordoned, \\d+ pods? evicted`));
  await waitFor(`3 pods of ${APP} running off ${target}`, 90, async () => {
    const p = await podsOf(APP);
    return p.length === 3 && p.every((x) => x.node !== target && x.phase === 'Running');
  }, 500);
  await waitFor(`no ${APP} pod on the node's page`, 30, async () =>
    (await page.locator('section[aria-label="Pods on this node"]').getByText(`default/${APP}-`).count()) === 0);
  await shot(page, 'drained', { fullPage: true });

  await go(page, '#/nodes', 'Nodes');
  await page.locator('.vlist .row', { hasText: target }).getByText('cordoned').waitFor();
  await page.getByRole('link', { name: target, exact: true }).click();
  await page.getByRole('button', { name: 'Uncordon' }).click();
  await see(page, `${target} uncordoned`);
  await waitFor('the cordoned badge gone', 15, async () => (await page.getByText('cordoned (unschedulable)').count()) === 0);
  assert.equal((await api('GET', `/api/v1/nodes/${target}`)).json.spec.unschedulable, false);
});
