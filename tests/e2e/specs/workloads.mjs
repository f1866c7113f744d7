// A Deployment from its page, as an operator: scale it (the pods appear in the page), then roll
// it back to an earlier revision from the Revisions table (the image changes, in the page and on
// the devices).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { waitFor } from '../lib/ctl.mjs';
import { openSignedIn, go, see, deployment, podsOf, podsRunning, removeDeployment, IMAGE, IMAGE2 } from '../lib/ui.mjs';

const APP = 'e2e-web';
let browser;
after(async () => {
  if (browser) await browser.close();
  await removeDeployment(APP);
});

// The running pods in the Deployment page's table.
const runningRows = () => [...document.querySelectorAll('table.pods tbody tr')]
  .filter((tr) => tr.children[1].textContent === 'Running').length;

test('scale, then roll back to revision 1', async () => {
  await deployment(APP, { replicas: 1, image: IMAGE });
  await podsRunning(APP, 1);
  await deployment(APP, { replicas: 1, image: IMAGE2 }); // revision 2
  await waitFor('revision 2 rolled out', 90, async () => {
    const p = await podsOf(APP);
    return p.length === 1 && p[0].image === IMAGE2 && p[0].phase === 'Running';
  }, 500);

  let page;
  ({ browser, page } = await openSignedIn(process.env.DROVER_OPERATOR_TOKEN));
  await go(page, '#/workloads', 'Workloads');
  await page.getByRole('link', { name: `default/${APP}` }).click();
  await page.getByRole('heading', { name: `default/${APP}`, level: 1 }).waitFor();
  await see(page, IMAGE2, { within: '.facts' });
  await page.locator('tr[data-revision="1"]').waitFor();

  // scale to 3
  const t0 = Date.now();
  await page.getByLabel('Replicas').fill('3');
  await page.getByRole('button', { name: 'Scale' }).click();
  await see(page, `${APP} scaled to 3`);
  await waitFor('3 running pods in the page', 90, async () => (await page.evaluate(runningRows)) === 3);
  console.log(`# 3 pods running in the page ${((Date.now() - t0) / 1000).toFixed(1)} s after Scale`);
  await see(page, '3 ready of 3 desired', { within: '.facts', timeout: 30_000 });
  await shot(page, 'scaled');

  // roll back to revision 1 (two clicks: the button asks to confirm)
  const row = page.locator('tr[data-revision="1"]');
  await row.getByRole('button', { name: 'Roll back to 1' }).click();
  await row.getByRole('button', { name: 'Confirm' }).click();
  await see(page, `${APP} rolled back to revision 1`);
  await see(page, IMAGE, { within: '.facts' });
  assert.equal(await page.locator('.facts').getByText(IMAGE2).count(), 0, 'the page shows the old image');
  await waitFor('3 pods of revision 1 running', 120, async () => {
    const p = await podsOf(APP);
    return p.length === 3 && p.every((x) => x.image === IMAGE && x.phase === 'Running');
  }, 500);
  await waitFor('3 running pods in the page after the rollback', 30, async () => (await page.evaluate(runningRows)) === 3);
  // the current revision is revision 1's template
  await page.locator('table.revisions tbody tr', { hasText: 'current' }).filter({ hasText: IMAGE }).waitFor({ timeout: 30_000 });
  await shot(page, 'rolled-back', { fullPage: true });
});
