// At a phone's width (360 px) every view fits: the page never scrolls sideways
// (document.scrollingElement.scrollWidth <= innerWidth); the menu opens from its button.
// Screenshots of each view go to $DROVER_E2E_OUT.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { NODES } from '../lib/ctl.mjs';
import { openSignedIn, go, see, deployment, podsRunning, removeDeployment, overflowX } from '../lib/ui.mjs';

const APP = 'e2e-phone-with-a-rather-long-name';
let browser;
after(async () => {
  if (browser) await browser.close();
  await removeDeployment(APP);
});

test('360 px: no horizontal overflow on any view', async () => {
  await deployment(APP, { replicas: 2, command: ['sh', '-c', 'while :; do echo "a long log line without spaces: $(seq -s_ 1 60)"; sleep 1; done'] });
  const [pod] = await podsRunning(APP, 2);
  let page;
  ({ browser, page } = await openSignedIn(process.env.DROVER_ADMIN_TOKEN, { width: 360, height: 740 }));

  // the menu: hidden behind its button at this width
  assert.equal(await page.locator('#nav').isVisible(), false, 'the menu is folded');
  await page.getByRole('button', { name: 'Menu' }).click();
  await page.locator('#nav').getByRole('link', { name: 'Nodes' }).click();
  await page.getByRole('heading', { name: 'Nodes', level: 1 }).waitFor();
  assert.equal(await page.locator('#nav').isVisible(), false, 'the menu folds after a choice');
  assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1', 'focus moves to the new view');

  const views = [
    ['#/problems', 'Problems', 'nodes ready'],
    ['#/nodes', 'Nodes', NODES[0]],
    [`#/nodes/${NODES[0]}`, NODES[0], 'Conditions'],
    ['#/workloads', 'Workloads', `default/${APP}`],
    [`#/deployments/default/${APP}`, `default/${APP}`, 'Revisions'],
    ['#/pods', 'Pods', `default/${pod.name}`],
    [`#/pods/default/${pod.name}`, `default/${pod.name}`, 'a long log line'],
    ['#/events', 'Events', 'Warnings only'],
    ['#/apply', 'Apply', 'Every document is checked'],
    ['#/enrol', 'Enrol devices', 'Bootstrap tokens'],
    ['#/tokens', 'Tokens', 'All tokens'],
  ];
  const over = [];
  for (const [hash, heading, text] of views) {
    await go(page, hash, heading);
    await see(page, text);
    const name = `phone${hash.replace(/[#/]+/g, '-')}`.slice(0, 60);
    if (hash === '#/enrol') {
      await page.getByRole('button', { name: 'Create bootstrap token' }).click();
      await page.locator('#secret-cmd').waitFor();
    }
    if (hash === '#/apply') {
      await page.getByLabel(/Manifests/).fill('kind: Deployment\napiVersion: apps/v1\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: a}]}}}\n');
      await page.getByRole('button', { name: 'Apply', exact: true }).click();
      await see(page, /Nothing was written|problem/);
    }
    const o = await overflowX(page);
    if (o > 0) over.push(`${hash}: ${o} px`);
    await shot(page, name, { fullPage: true });
  }
  assert.deepEqual(over, [], 'no view is wider than the screen');
});
