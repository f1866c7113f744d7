// The hub restarts under an open page: the page says its data is stale, reconnects by itself
// (no reload, no new sign-in), says Live again, and shows what changed meanwhile. Then the tab
// is hidden and shown again.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { api, ctl, waitFor } from '../lib/ctl.mjs';
import { openSignedIn, go, see, liveIs, deployment, removeDeployment } from '../lib/ui.mjs';

let browser;
after(async () => {
  if (browser) await browser.close();
  await removeDeployment('e2e-before');
  await removeDeployment('e2e-after');
  await removeDeployment('e2e-hidden');
  await removeDeployment('e2e-after-410');
});

test('a hub restart: the page recovers by itself', async () => {
  await deployment('e2e-before');
  let page;
  ({ browser, page } = await openSignedIn(process.env.DROVER_OPERATOR_TOKEN));
  await go(page, '#/workloads', 'Workloads');
  await see(page, 'default/e2e-before');
  await liveIs(page, 'Live');
  // every state the indicator goes through, and every sign-in form shown, from now on
  await page.evaluate(() => {
    window.__states = [];
    window.__signin = 0;
    new MutationObserver(() => window.__states.push([Date.now(), document.getElementById('live').textContent]))
      .observe(document.getElementById('live'), { childList: true, characterData: true, subtree: true });
    new MutationObserver(() => { if (document.getElementById('token')) window.__signin++; })
      .observe(document.getElementById('main'), { childList: true, subtree: true });
  });
  const loads = await page.evaluate(() => performance.getEntriesByType('navigation').length);

  const t0 = Date.now();
  await ctl('hub-restart');
  await waitFor('the hub healthy', 30, async () => (await api('GET', '/healthz')).status === 200);
  // what changed while the page was away from the hub (or just after): it shows up
  await deployment('e2e-after');
  await waitFor('the indicator back to Live after a stale state', 60, async () => {
    const s = await page.evaluate(() => window.__states);
    return s.some(([, x]) => x !== 'Live') && (await page.locator('#live').textContent()) === 'Live';
  }, 250);
  const states = await page.evaluate(() => window.__states);
  const stale = states.find(([, x]) => x !== 'Live');
  const back = states.filter(([t, x]) => x === 'Live' && t > stale[0]).pop();
  console.log(`# indicator: ${states.map(([t, x]) => `${((t - t0) / 1000).toFixed(1)} s ${x}`).join(', ')}` +
    ` (stale for ${((back[0] - stale[0]) / 1000).toFixed(1)} s)`);
  await see(page, 'default/e2e-after', { timeout: 30_000 });
  await see(page, 'default/e2e-before');
  assert.equal(await page.evaluate(() => window.__signin), 0, 'no sign-in asked');
  assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation').length), loads, 'no reload');
  await see(page, 'operator', { within: '#who' });
  await shot(page, 'recovered');

  // a write works with the same session (its CSRF token survived the restart)
  await go(page, '#/deployments/default/e2e-after', 'default/e2e-after');
  await page.getByLabel('Replicas').fill('2');
  await page.getByRole('button', { name: 'Scale' }).click();
  await see(page, 'e2e-after scaled to 2');
});

// The tab hidden (document.hidden and its event, as the browser gives them when the tab goes to
// the background): the stream is closed, the page says Paused and shows no change; shown again,
// it lists afresh and is Live with what changed meanwhile.
test('a hidden tab pauses its stream, and lists again when shown', async () => {
  const page = browser.pages()[0];
  await go(page, '#/workloads', 'Workloads');
  await liveIs(page, 'Live');
  const setHidden = (hidden) => page.evaluate((hd) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => hd });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hd ? 'hidden' : 'visible') });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
  await setHidden(true);
  await liveIs(page, 'Paused', 5);
  await deployment('e2e-hidden');
  // nothing arrives while hidden (the stream is closed): give a live stream ample time to show it
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(await page.getByText('default/e2e-hidden').count(), 0, 'no update while hidden');
  await setHidden(false);
  await see(page, 'default/e2e-hidden', { timeout: 15_000 });
  await liveIs(page, 'Live');
});

// A stream the hub can no longer resume (ERROR 410, here by asking from a resourceVersion the
// hub does not have): the page lists again and opens a new stream from the new lists.
test('ERROR 410 on the stream: list again, stream again', async () => {
  const page = browser.pages()[0];
  const watches = [];
  const lists = [];
  page.on('request', (rq) => {
    const u = new URL(rq.url());
    if (u.pathname === '/apis/drover.io/v1/watch') watches.push(u.searchParams.get('resourceVersion'));
    if (u.pathname === '/apis/apps/v1/deployments') lists.push(u.search);
  });
  let rewritten = 0;
  await page.route('**/apis/drover.io/v1/watch?*', (route) => {
    if (rewritten++) return route.continue();
    const u = new URL(route.request().url());
    u.searchParams.set('resourceVersion', '999999999');
    return route.continue({ url: u.toString() });
  });
  // hide and show: the page lists and opens its stream again (the first one is made to fail)
  const setHidden = (hidden) => page.evaluate((hd) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => hd });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
  await setHidden(true);
  await liveIs(page, 'Paused', 5);
  await setHidden(false);
  await waitFor('a second stream after the 410', 20, async () => watches.length >= 2 && rewritten >= 2);
  await liveIs(page, 'Live');
  console.log(`# streams opened from resourceVersion ${watches.join(', ')} (the first rewritten to 999999999); deployments listed ${lists.length} times`);
  assert.ok(lists.length >= 2, 'listed again after the 410');
  assert.notEqual(watches[1], '999999999');
  await deployment('e2e-after-410');
  await see(page, 'default/e2e-after-410', { timeout: 15_000 });
  await page.unroute('**/apis/drover.io/v1/watch?*');
});
