// The Problems view names what needs a look: a Deployment whose image cannot be pulled shows
// its pod there (with the reason the device gives), linked to the pod's page; fixed, it goes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { waitFor } from '../lib/ctl.mjs';
import { openSignedIn, see, deployment, podsRunning, removeDeployment, IMAGE } from '../lib/ui.mjs';

const APP = 'e2e-broken';
let browser;
after(async () => {
  if (browser) await browser.close();
  await removeDeployment(APP);
});

test('a pod that cannot start is listed, then gone once fixed', async () => {
  let page;
  ({ browser, page } = await openSignedIn(process.env.DROVER_VIEWER_TOKEN));
  const missing = IMAGE.replace(/[^/:]+:[^/:]+$/, 'no-such-image:1');
  await deployment(APP, { image: missing });
  const item = page.locator('.problem', { hasText: `default/${APP}-` });
  await item.first().waitFor({ timeout: 60_000 });
  const text = await item.first().textContent();
  console.log(`# listed: ${text}`);
  assert.match(text, /ErrImagePull|ImagePullBackOff|Pending|Not ready|Crash/);
  await shot(page, 'broken-pod');
  await item.first().getByRole('link').click();
  await page.getByRole('heading', { name: new RegExp(`default/${APP}-`), level: 1 }).waitFor();
  await see(page, missing);

  await deployment(APP, { image: IMAGE });
  await podsRunning(APP, 1);
  await page.evaluate(() => { location.hash = '#/problems'; });
  await waitFor(`${APP} off the Problems view`, 60, async () => (await item.count()) === 0);
});
