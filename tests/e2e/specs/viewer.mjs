// A viewer sees everything and can change nothing: no write control on any view (not even a
// disabled one), no Apply, Enrol or Tokens in the menu, and those routes send back to Problems.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { api, NODES } from '../lib/ctl.mjs';
import { openSignedIn, go, see, deployment, podsRunning, removeDeployment, remove, writeControls, IMAGE } from '../lib/ui.mjs';

const APP = 'e2e-view';
let browser;
after(async () => {
  if (browser) await browser.close();
  await removeDeployment(APP);
  await remove('daemonsets', 'e2e-view-ds');
});

test('a viewer sees no write control anywhere', async () => {
  await deployment(APP, { replicas: 1 });
  const ds = {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'e2e-view-ds', namespace: 'default' },
    spec: { selector: { matchLabels: { app: 'e2e-view-ds' } }, template: { metadata: { labels: { app: 'e2e-view-ds' } },
      spec: { containers: [{ name: 'main', image: IMAGE, command: ['sleep', '3600'] }] } } },
  };
  assert.equal((await api('POST', '/apis/drover.io/v1/apply', { body: ds })).status, 200);
  const [pod] = await podsRunning(APP, 1);

  let page;
  ({ browser, page } = await openSignedIn(process.env.DROVER_VIEWER_TOKEN));
  await see(page, 'viewer', { within: '#who' });
  const menu = (await page.locator('#nav a').allTextContents()).map((s) => s.trim());
  assert.deepEqual(menu, ['Problems', 'Nodes', 'Workloads', 'Services', 'Pods', 'Events'], 'the menu has no write views');

  const views = [
    ['#/problems', 'Problems', 'nodes ready'],
    ['#/nodes', 'Nodes', NODES[0]],
    [`#/nodes/${NODES[0]}`, NODES[0], 'Conditions'],
    ['#/workloads', 'Workloads', `default/${APP}`],
    [`#/deployments/default/${APP}`, `default/${APP}`, 'Revisions'],
    ['#/daemonsets/default/e2e-view-ds', 'default/e2e-view-ds', 'Node selector'],
    ['#/pods', 'Pods', `default/${pod.name}`],
    [`#/pods/default/${pod.name}`, `default/${pod.name}`, 'Containers'],
    ['#/events', 'Events', 'Warnings only'],
  ];
  for (const [hash, heading, text] of views) {
    await go(page, hash, heading);
    await see(page, text);
    const found = await writeControls(page);
    assert.deepEqual(found, [], `no write control on ${hash}`);
    await shot(page, `viewer-${hash.replace(/[#/]+/g, '-')}`);
  }
  for (const hash of ['#/apply', '#/enrol', '#/tokens']) {
    await page.evaluate((h) => { location.hash = h; }, hash);
    await page.getByRole('heading', { name: 'Problems', level: 1 }).waitFor();
    assert.equal(await page.evaluate(() => location.hash), '#/problems', `${hash} is not for a viewer`);
  }
  // and the hub agrees: a viewer's write through the session is refused
  const csrf = await page.evaluate(async () => (await (await fetch('/apis/drover.io/v1/session')).json()).csrfToken);
  const status = await page.evaluate(async ([t, n]) => (await fetch(`/api/v1/nodes/${n}`, {
    method: 'PATCH', headers: { 'Content-Type': 'application/merge-patch+json', 'X-CSRF-Token': t },
    body: '{"spec":{"unschedulable":true}}',
  })).status, [csrf, NODES[0]]);
  assert.equal(status, 403);
});
