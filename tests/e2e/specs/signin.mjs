// Signing in: a wrong token is refused with a message, a good one lands on Problems; a reload
// stays signed in (the cookie), the token is kept nowhere the page can read; signing out ends
// the session.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, shot, hubUrl } from '../lib/browser.mjs';
import { see, open, TF } from '../lib/ui.mjs';

test('sign in, reload, sign out', async () => {
  const browser = await launch();
  try {
    const page = await newPage(browser);
    await open(page, '/');
    await page.getByLabel('API token').waitFor();
    assert.match(page.url(), /\/ui\/$/, 'the hub sends / to the dashboard');

    await page.getByLabel('API token').fill('drv1_not-a-real-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await see(page, /token was refused/);
    assert.equal(await page.getByLabel('API token').inputValue(), '', 'the field is cleared');
    await shot(page, 'bad-token');

    const token = process.env.DROVER_OPERATOR_TOKEN;
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Problems', level: 1 }).waitFor();
    await see(page, 'operator', { within: '#who' });
    await see(page, /nodes ready/);
    await page.locator('#live', { hasText: 'Live' }).waitFor({ timeout: 15_000 * TF });
    await shot(page, 'problems');

    // nothing the page can read holds the token
    const kept = await page.evaluate((t) => {
      const all = [location.href, document.cookie, JSON.stringify({ ...localStorage }), JSON.stringify({ ...sessionStorage }),
        document.documentElement.outerHTML];
      return all.some((s) => s.includes(t));
    }, token);
    assert.equal(kept, false, 'the token is not kept by the page');
    const cookies = await browser.cookies();
    const sess = cookies.find((c) => c.name === 'drover_session');
    assert.ok(sess && sess.httpOnly, 'an HttpOnly session cookie');

    await page.reload();
    await page.getByRole('heading', { name: 'Problems', level: 1 }).waitFor();
    await see(page, 'operator', { within: '#who' });

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    await page.reload();
    await page.getByLabel('API token').waitFor();
  } finally {
    await browser.close();
  }
});

// A module lost while the page loads (the hub restarting, a network change): the page says so
// and loads itself again, then works.
test('a module that fails to load: the page loads itself again', async () => {
  const browser = await launch();
  try {
    const page = await newPage(browser);
    let aborted = 0;
    await page.route('**/ui/nodes.js', (route) => (aborted++ === 0 ? route.abort('failed') : route.continue()));
    await page.goto(hubUrl('/ui/#/nodes'));
    await see(page, /could not be loaded/);
    await page.getByLabel('API token').waitFor({ timeout: 15_000 * TF });
    assert.equal(aborted, 2, 'loaded again once');
    assert.match(page.url(), /#\/nodes$/, 'the route is kept');
  } finally {
    await browser.close();
  }
});
