// Cross-site requests against a signed-in admin: pages of another origin (a second web server on
// 127.0.0.1) forge form POSTs, no-cors fetches and reads with the victim's browser; none writes
// anything and none reads the API. Then, with the victim's real cookie outside the browser:
// a write without the CSRF token, with a wrong one, or from another Origin is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, hubUrl, shot } from '../lib/browser.mjs';
import { api } from '../lib/ctl.mjs';
import { signInByForm, sessionCookie, pageSession, otherSite, attr, SESSION, COOKIE } from './lib/common.mjs';

const HUB = hubUrl('').replace(/\/$/, '');
const APPLY = '/apis/drover.io/v1/apply';
const cm = (name) => ({
  apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { by: 'csrf' },
});
const exists = async (name) => {
  const r = await api('GET', `/api/v1/namespaces/default/configmaps/${name}`);
  assert.ok(r.status === 200 || r.status === 404, `GET configmap ${name}: ${r.status} ${r.text}`);
  return r.status === 200;
};
const removeCm = (name) => api('DELETE', `/api/v1/namespaces/default/configmaps/${name}`).catch(() => {});

// A text/plain form whose one field makes the body JSON: name='{"a":"' value='x"}' sends
// {"a":"=x"}. The classic way to forge a JSON POST with a form.
function jsonForm(action, obj) {
  const json = JSON.stringify({ ...obj, pad: 'PAD' });
  const cut = json.lastIndexOf('PAD');
  return `<!doctype html><title>win a prize</title>
<form method="POST" action="${attr(action)}" enctype="text/plain">
<input name="${attr(json.slice(0, cut))}" value="${attr(json.slice(cut + 3))}"></form>
<script>document.forms[0].submit()</script>`;
}

let browser, page, site, victim;

before(async () => {
  site = await otherSite({
    '/form-apply': jsonForm(HUB + APPLY, cm('csrf-form-apply')),
    '/form-create': jsonForm(HUB + '/api/v1/namespaces/default/configmaps', cm('csrf-form-create')),
    '/form-urlencoded': `<!doctype html><form method="POST" action="${HUB}/api/v1/namespaces/default/configmaps">
      <input name="metadata.name" value="csrf-form-urlencoded"></form><script>document.forms[0].submit()</script>`,
    '/form-login': jsonForm(HUB + SESSION, { token: process.env.DROVER_VIEWER_TOKEN }),
    '/blank': '<!doctype html><title>other site</title><p>other site</p>',
  });
  browser = await launch();
  page = await newPage(browser);
  victim = await signInByForm(page, process.env.DROVER_ADMIN_TOKEN);
  assert.equal(victim.role, 'admin');
});

after(async () => {
  await browser?.close();
  await site?.close();
  for (const n of ['csrf-form-apply', 'csrf-form-create', 'csrf-form-urlencoded', 'csrf-nocors', 'csrf-control', 'csrf-page-control']) await removeCm(n);
});

test('the forged payload is a valid write: the victim page itself, with its CSRF token, applies it', async () => {
  const status = await page.evaluate(async ({ url, body, csrf }) => {
    const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body });
    return r.status;
  }, { url: APPLY, body: JSON.stringify(cm('csrf-page-control')), csrf: victim.csrfToken });
  assert.equal(status, 200);
  assert.ok(await exists('csrf-page-control'));
});

for (const [path, name] of [['/form-apply', 'csrf-form-apply'], ['/form-create', 'csrf-form-create'], ['/form-urlencoded', 'csrf-form-urlencoded']]) {
  test(`a cross-site form POST (${path}) from the signed-in browser writes nothing`, async () => {
    const tab = await newPage(browser);
    try {
      const answered = tab.waitForResponse((r) => r.url().startsWith(HUB) && r.request().method() === 'POST');
      await tab.goto(site.url(path));
      const r = await answered;
      console.log(`# ${path}: the hub answered ${r.status()}`);
      assert.ok(r.status() >= 400, `the hub answered ${r.status()}`);
      assert.equal(await exists(name), false, `${name} was created`);
      await shot(tab, `forged${path.replace(/\//g, '-')}`); // the hub's refusal, as the victim sees it
    } finally {
      await tab.close();
    }
  });
}

// A text/plain form POST to /session with the attacker's token would replace the victim's
// session with the attacker's (login CSRF: found here, fixed in the hub). A browser of its own,
// so that the other tests keep their victim.
test('a cross-site form cannot sign the victim in as someone else (login CSRF)', async () => {
  const other = await launch();
  try {
    const p = await newPage(other);
    const own = await signInByForm(p, process.env.DROVER_OPERATOR_TOKEN);
    const tab = await newPage(other);
    const answered = tab.waitForResponse((r) => r.url().startsWith(HUB) && r.request().method() === 'POST');
    await tab.goto(site.url('/form-login'));
    const status = (await answered).status();
    console.log(`# /form-login: the hub answered ${status}`);
    assert.ok(status >= 400, `the hub answered ${status}`);
    await tab.close();
    const s = await pageSession(p);
    assert.equal(s.status, 200);
    assert.equal(s.json.role, 'operator', 'the victim\'s session is still their own');
    assert.equal(s.json.tokenId, own.tokenId);
  } finally {
    await other.close();
  }
});

test('a page of another origin reads nothing and writes nothing with fetch, XHR or EventSource', async () => {
  const tab = await newPage(browser);
  try {
    await tab.goto(site.url('/blank'));
    const got = await tab.evaluate(async ({ hub, body }) => {
      const out = {};
      const tryFetch = async (url, init) => {
        try {
          const r = await fetch(url, init);
          return `read ${r.status}: ${(await r.text()).slice(0, 80)}`;
        } catch (e) {
          return `refused (${e.name})`;
        }
      };
      out.nodes = await tryFetch(hub + '/api/v1/nodes', { credentials: 'include' });
      out.session = await tryFetch(hub + '/apis/drover.io/v1/session', { credentials: 'include' });
      out.secrets = await tryFetch(hub + '/api/v1/secrets', { credentials: 'include' });
      out.apply = await tryFetch(hub + '/apis/drover.io/v1/apply', {
        method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body,
      });
      // A "simple" request goes out without a preflight; its answer is opaque.
      try {
        const r = await fetch(hub + '/apis/drover.io/v1/apply', {
          method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body,
        });
        out.nocors = `opaque=${r.type === 'opaque'} status=${r.status} body=${JSON.stringify(await r.text())}`;
      } catch (e) {
        out.nocors = `refused (${e.name})`;
      }
      out.xhr = await new Promise((resolve) => {
        const x = new XMLHttpRequest();
        x.withCredentials = true;
        x.open('GET', hub + '/api/v1/nodes');
        x.onload = () => resolve(`read ${x.status}: ${x.responseText.slice(0, 80)}`);
        x.onerror = () => resolve('refused');
        x.send();
      });
      out.watch = await new Promise((resolve) => {
        const es = new EventSource(hub + '/apis/drover.io/v1/watch?kinds=nodes', { withCredentials: true });
        const seen = [];
        for (const k of ['ADDED', 'MODIFIED', 'HEARTBEAT', 'message']) es.addEventListener(k, (e) => seen.push(e.data));
        es.onerror = () => { es.close(); resolve(`error, ${seen.length} events`); };
        setTimeout(() => { es.close(); resolve(`${seen.length} events in 4 s`); }, 4000);
      });
      return out;
    }, { hub: HUB, body: JSON.stringify(cm('csrf-nocors')) });
    console.log(`# from ${site.origin}: ${JSON.stringify(got)}`);
    for (const k of ['nodes', 'session', 'secrets', 'apply']) assert.match(got[k], /^refused/, `${k}: ${got[k]}`);
    assert.equal(got.xhr, 'refused');
    assert.match(got.nocors, /^(opaque=true status=0 body=""|refused)/);
    assert.match(got.watch, /^(error, 0 events|0 events)/);
    assert.equal(await exists('csrf-nocors'), false, 'the no-cors POST created its ConfigMap');
  } finally {
    await tab.close();
  }
});

test('with the victim\'s real cookie: no CSRF token, a wrong one, or another Origin is refused', async () => {
  const c = await sessionCookie(browser);
  assert.ok(c, 'the browser holds the session cookie');
  const cookie = `${COOKIE}=${c.value}`;
  const body = cm('csrf-control');
  const post = (headers) => api('POST', APPLY, { token: '', body, headers: { Cookie: cookie, ...headers } });

  let r = await post({});
  assert.equal(r.status, 403, `no CSRF token: ${r.status} ${r.text}`);
  r = await post({ 'X-CSRF-Token': 'A'.repeat(victim.csrfToken.length) });
  assert.equal(r.status, 403, `a wrong CSRF token: ${r.status} ${r.text}`);
  r = await post({ 'X-CSRF-Token': victim.csrfToken, Origin: 'http://127.0.0.1:9' });
  assert.equal(r.status, 403, `another Origin: ${r.status} ${r.text}`);
  r = await post({ 'X-CSRF-Token': victim.csrfToken, 'Sec-Fetch-Site': 'cross-site' });
  assert.equal(r.status, 403, `Sec-Fetch-Site cross-site: ${r.status} ${r.text}`);
  r = await api('GET', '/api/v1/nodes', { token: '', headers: { Cookie: cookie, Origin: 'http://127.0.0.1:9' } });
  assert.equal(r.status, 403, `a read from another Origin: ${r.status}`);
  assert.equal(await exists('csrf-control'), false);
  assert.equal(r.headers['access-control-allow-origin'], undefined);

  // The same request with the right token and no foreign origin is allowed: the refusals above
  // are the checks, not a broken cookie.
  r = await post({ 'X-CSRF-Token': victim.csrfToken });
  assert.equal(r.status, 200, `the right CSRF token: ${r.status} ${r.text}`);
  assert.ok(await exists('csrf-control'));
});
