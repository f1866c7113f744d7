// The admin's views: enrol devices (a bootstrap token shown once with its `drover flash` command
// line, listed, revoked) and API tokens (created and shown once; a session of a revoked token
// ends).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, shot, hubUrl } from '../lib/browser.mjs';
import { api } from '../lib/ctl.mjs';
import { openSignedIn, go, see, signIn } from '../lib/ui.mjs';

const browsers = [];
after(async () => { for (const b of browsers) await b.close(); });

test('enrol devices: a bootstrap token and its flash command line', async () => {
  const { browser, page } = await openSignedIn(process.env.DROVER_ADMIN_TOKEN);
  browsers.push(browser);
  const menu = (await page.locator('#nav a').allTextContents()).map((s) => s.trim());
  assert.ok(menu.includes('Enrol devices') && menu.includes('Tokens'), `admin menu: ${menu}`);
  await go(page, '#/enrol', 'Enrol devices');
  await page.getByLabel('Devices it may enrol').fill('2');
  await page.getByLabel(/Valid for/).fill('1h');
  await page.getByLabel(/Labels of their nodes/).fill('site=e2e, role=cam');
  await page.getByRole('button', { name: 'Create bootstrap token' }).click();
  await page.locator('#new-secret').waitFor();
  const cmd = await page.locator('#secret-cmd').textContent();
  const saved = await page.locator('#secret-token').textContent();
  const token = /'(drv1_[^']+)'/.exec(saved)?.[1];
  assert.ok(token, `the token is shown: ${saved}`);
  const id = /bootstrap-([^.\s]+)\.token/.exec(saved)?.[1];
  console.log(`# command line:\n${cmd}`);
  for (const part of ['drover flash', `--hub-url ${hubUrl('')}`, `--token-file bootstrap-${id}.token`, '--label site=e2e', '--label role=cam', '--broker ssl://'])
    assert.ok(cmd.includes(part), `the command line has ${part}`);
  await shot(page, 'enrol-token', { fullPage: true });

  const r = await api('GET', `/api/v1/tokens/${id}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.kind, 'bootstrap');
  assert.equal(r.json.usesLeft, 2);
  assert.deepEqual(r.json.labels, { site: 'e2e', role: 'cam' });

  const row = page.locator(`tr[data-token-id="${id}"]`);
  await row.getByText('2 left').waitFor();
  await row.getByText('active').waitFor();
  await row.getByRole('button', { name: 'Revoke' }).click();
  await row.getByRole('button', { name: 'Confirm' }).click();
  await row.getByText('revoked').waitFor();
  assert.equal((await api('GET', `/api/v1/tokens/${id}`)).json.state, 'revoked');
  // leaving the view forgets the token: coming back shows no secret
  await go(page, '#/problems', 'Problems');
  await go(page, '#/enrol', 'Enrol devices');
  assert.equal(await page.locator('#new-secret').count(), 0);
});

test('tokens: create a viewer token, sign in with it, revoke it', async () => {
  const { browser, page } = await openSignedIn(process.env.DROVER_ADMIN_TOKEN);
  browsers.push(browser);
  await go(page, '#/tokens', 'Tokens');
  await page.getByLabel('Role').selectOption('viewer');
  await page.getByLabel(/Valid for/).fill('1h');
  await page.getByLabel('Description').fill('e2e temporary viewer');
  await page.getByRole('button', { name: 'Create token' }).click();
  const token = (await page.locator('#secret-token').textContent()).trim();
  assert.match(token, /^drv1_/);
  const row = page.locator('tr', { hasText: 'e2e temporary viewer' });
  await row.getByText('active').waitFor();

  const other = await launch();
  browsers.push(other);
  const vpage = await newPage(other);
  await signIn(vpage, token);
  await see(vpage, 'viewer', { within: '#who' });

  await row.getByRole('button', { name: 'Revoke' }).click();
  await row.getByRole('button', { name: 'Confirm' }).click();
  await row.getByText('revoked').waitFor();
  await shot(page, 'tokens');
  // the revoked token's session is over: the other browser is asked to sign in again
  await vpage.reload();
  await vpage.getByLabel('API token').waitFor({ timeout: 15_000 });
  await vpage.getByLabel('API token').fill(token);
  await vpage.getByRole('button', { name: 'Sign in' }).click();
  await see(vpage, /token was refused/);
});
