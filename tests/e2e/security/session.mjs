// After signing in through the form the API token is nowhere the page or a script can read
// (localStorage, sessionStorage, IndexedDB, Cache Storage, document.cookie, the URL); the
// session cookie is HttpOnly, Secure, SameSite=Strict. Signing out makes the old cookie useless,
// in the browser and outside it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, hubUrl, shot } from '../lib/browser.mjs';
import { api } from '../lib/ctl.mjs';
import { signInByForm, sessionCookie, pageSession, SESSION, COOKIE } from './lib/common.mjs';

const TOKEN = process.env.DROVER_OPERATOR_TOKEN;
// drv1_<id>_<secret>: the secret alone must not be found either.
const SECRET = TOKEN.split('_').pop();

let browser, page, session;

before(async () => {
  browser = await launch();
  page = await newPage(browser);
  session = await signInByForm(page, TOKEN);
  assert.equal(session.role, 'operator');
  assert.ok(session.csrfToken, 'the session carries a CSRF token');
});

after(async () => {
  await browser?.close();
});

// Everything the page's scripts can read of its own storage, as one string per place.
const readStorage = (p) => p.evaluate(async () => {
  const dump = (s) => JSON.stringify(Object.entries(s));
  const out = { local: dump(localStorage), session: dump(sessionStorage), cookie: document.cookie,
    url: location.href, history: String(history.state ?? ''), idb: '', caches: '' };
  if (indexedDB.databases) {
    for (const { name } of await indexedDB.databases()) {
      out.idb += `db ${name};`;
      const db = await new Promise((res, rej) => { const r = indexedDB.open(name); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
      for (const store of db.objectStoreNames) {
        const all = await new Promise((res) => { const r = db.transaction(store).objectStore(store).getAll(); r.onsuccess = () => res(r.result); r.onerror = () => res([]); });
        out.idb += `${store}=${JSON.stringify(all)};`;
      }
      db.close();
    }
  }
  for (const k of await caches.keys()) out.caches += `${k};`;
  return out;
});

function assertNoToken(where, s) {
  for (const [k, v] of Object.entries(s)) {
    assert.ok(!v.includes(TOKEN), `the token is in ${where} ${k}`);
    assert.ok(!v.includes(SECRET), `the token's secret is in ${where} ${k}`);
  }
}

test('the token is in no storage the page can read, also after a reload', async () => {
  const field = page.getByLabel('API token');
  if (await field.count()) assert.equal(await field.inputValue(), '', 'the sign-in field still holds the token');
  let s = await readStorage(page);
  console.log(`# after sign-in: ${JSON.stringify(s).slice(0, 300)}`);
  assertNoToken('after sign-in', s);
  assert.ok(!s.cookie.includes(COOKIE), `document.cookie shows the session cookie: ${s.cookie}`);
  assert.ok(s.url.startsWith(hubUrl('/ui/')), `the page is the dashboard: ${s.url}`);
  await page.reload();
  assert.equal((await pageSession(page)).status, 200, 'a reload keeps the session (the cookie)');
  s = await readStorage(page);
  assertNoToken('after a reload', s);
  for (const p of browser.pages()) assert.ok(!p.url().includes(SECRET), `a page's URL holds the token: ${p.url()}`);
  await shot(page, 'signed-in-no-token-stored');
});

test('the session cookie is HttpOnly, Secure, SameSite=Strict, and is not the token', async () => {
  const c = await sessionCookie(browser);
  assert.ok(c, 'a drover_session cookie');
  assert.equal(c.httpOnly, true);
  assert.equal(c.secure, true);
  assert.equal(c.sameSite, 'Strict');
  assert.equal(c.path, '/');
  assert.ok(!c.value.includes(SECRET), 'the cookie carries the token');
  const others = (await browser.cookies()).filter((x) => x.name !== COOKIE);
  for (const x of others) assert.ok(!x.value.includes(SECRET), `cookie ${x.name} holds the token`);
  // The GET answer gives the CSRF token back, never the API token.
  const again = await pageSession(page);
  assert.equal(again.json.csrfToken, session.csrfToken);
  assert.ok(!JSON.stringify(again.json).includes(SECRET));
});

test('signing out makes the old cookie useless, in this browser and any other', async () => {
  const old = await sessionCookie(browser);
  const cookie = `${COOKIE}=${old.value}`;
  // Control: the cookie works outside the browser while the session lasts.
  let r = await api('GET', '/api/v1/nodes', { token: '', headers: { Cookie: cookie } });
  assert.equal(r.status, 200, `the live cookie: ${r.status} ${r.text}`);

  const out = await page.evaluate(async ({ url, csrf }) => {
    const res = await fetch(url, { method: 'DELETE', headers: { 'X-CSRF-Token': csrf } });
    return res.status;
  }, { url: SESSION, csrf: session.csrfToken });
  assert.equal(out, 200, 'DELETE /session');
  assert.equal(await sessionCookie(browser), undefined, 'the browser dropped the cookie');
  assert.equal((await pageSession(page)).status, 401);

  for (const p of ['/api/v1/nodes', SESSION, '/api/v1/namespaces/default/pods']) {
    r = await api('GET', p, { token: '', headers: { Cookie: cookie } });
    assert.equal(r.status, 401, `GET ${p} with the old cookie: ${r.status} ${r.text}`);
  }
  r = await api('POST', '/apis/drover.io/v1/apply', {
    token: '', headers: { Cookie: cookie, 'X-CSRF-Token': session.csrfToken },
    body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after-signout', namespace: 'default' } },
  });
  assert.equal(r.status, 401, `a write with the old cookie and its CSRF token: ${r.status} ${r.text}`);

  // The old cookie put into a fresh browser is no session either.
  const other = await launch();
  try {
    await other.addCookies([{ ...old, expires: Math.floor(Date.now() / 1000) + 3600 }]);
    const p2 = await newPage(other);
    await p2.goto(hubUrl('/ui/'));
    assert.equal((await pageSession(p2)).status, 401, 'the old cookie in another browser');
    const nodes = await p2.evaluate(async () => (await fetch('/api/v1/nodes')).status);
    assert.equal(nodes, 401);
  } finally {
    await other.close();
  }
  // Signed-out: the sign-in form is back after a reload.
  await page.reload();
  await page.getByLabel('API token').waitFor();
});

// DELETE /session with the cookie is held to the CSRF token, as every non-GET with the cookie
// is (found here answering 200 without it, fixed in the hub).
test('signing out without the CSRF token is refused', async () => {
  const other = await launch();
  try {
    const p = await newPage(other);
    await signInByForm(p, TOKEN);
    const c = await sessionCookie(other);
    const r = await api('DELETE', SESSION, { token: '', headers: { Cookie: `${COOKIE}=${c.value}` } });
    assert.equal(r.status, 403, `DELETE /session without the CSRF token: ${r.status} ${r.text}`);
    assert.equal((await pageSession(p)).status, 200, 'the session goes on');
  } finally {
    await other.close();
  }
});
