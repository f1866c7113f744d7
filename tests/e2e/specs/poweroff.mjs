// A device loses power: within seconds the page shows its node NotReady (Nodes and Problems,
// with how long ago it was last heard from), and its pods come back on the other nodes; power
// back: the node is Ready again. All seen in the page, which is never reloaded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { ctl, NODES, waitFor } from '../lib/ctl.mjs';
import { openSignedIn, go, see, until, deployment, podsRunning, removeDeployment } from '../lib/ui.mjs';

const APP = 'e2e-spread';
let browser;
after(async () => {
  if (browser) await browser.close();
  await removeDeployment(APP);
});

// The state badge of a node's row in the Nodes view ('Ready', 'NotReady', 'Late', ...).
async function nodeState(page, name) {
  return page.evaluate((n) => {
    const a = [...document.querySelectorAll('.vlist a.name')].find((x) => x.textContent === n);
    const b = a && a.parentElement.querySelector('.badge');
    return b ? b.textContent : '';
  }, name);
}
const nodeIs = (page, name, state, secs) =>
  waitFor(`${name} ${state} on the Nodes view`, secs, async () => (await nodeState(page, name)) === state);

test('power off a device, then on', async () => {
  await deployment(APP, { replicas: 3 });
  const pods = await podsRunning(APP, 3);
  const victim = pods[0].node;
  assert.ok(NODES.includes(victim), `a pod on a fleet device (${victim})`);
  let page;
  ({ browser, page } = await openSignedIn(process.env.DROVER_OPERATOR_TOKEN));

  await go(page, '#/nodes', 'Nodes');
  for (const n of NODES) await nodeIs(page, n, 'Ready', 30);

  const t0 = Date.now();
  await ctl('poweroff', victim);
  const t1 = Date.now();
  await nodeIs(page, victim, 'NotReady', 30);
  console.log(`# ${victim} NotReady on the page ${((Date.now() - t0) / 1000).toFixed(1)} s after asking for the power cut` +
    ` (${((Date.now() - t1) / 1000).toFixed(1)} s after it was done)`);
  await shot(page, 'nodes-notready');

  await go(page, '#/problems', 'Problems');
  const problem = page.locator('.problem', { hasText: victim });
  await problem.filter({ hasText: 'Node NotReady' }).first().waitFor({ timeout: 15_000 });
  assert.match(await problem.first().textContent(), /last seen (≤ )?\d+ (s|min) ago/);
  await shot(page, 'problems-notready');

  // its pods come back elsewhere: the Deployment's page lists 3 running pods on other nodes
  await go(page, `#/deployments/default/${APP}`, `default/${APP}`);
  const placed = await until(page, `3 running pods of ${APP} off ${victim}`, 120, (n) => {
    const rows = [...document.querySelectorAll('table.pods tbody tr')].map((tr) => ({
      status: tr.children[1].textContent, node: tr.children[3].textContent,
    }));
    const running = rows.filter((r) => r.status === 'Running' && r.node !== n);
    return running.length >= 3 ? running.map((r) => r.node) : false;
  }, victim);
  assert.ok(placed.every((n) => n !== victim));
  await shot(page, 'pods-moved');

  await ctl('poweron', victim);
  await go(page, '#/nodes', 'Nodes');
  await nodeIs(page, victim, 'Ready', 90);
  await go(page, '#/problems', 'Problems');
  await waitFor(`${victim} off the Problems view`, 30, async () => (await page.locator('.problem', { hasText: victim }).count()) === 0);
  await see(page, `${NODES.length}/${NODES.length}`);
  await shot(page, 'back');
});
