// What the security specs share: signing in through the sign-in form only (nothing else of the
// UI), the session route through the page's own fetch, and a second web server on 127.0.0.1 (the
// "other site") serving the pages an attacker would.
import http from 'node:http';
import { hubUrl } from '../../lib/browser.mjs';
import { waitFor, ctl } from '../../lib/ctl.mjs';

export const SESSION = '/apis/drover.io/v1/session';
export const COOKIE = 'drover_session';

/** The session as the page sees it: GET /session with the page's cookie -> {status, json}. */
export function pageSession(page) {
  return page.evaluate(async (p) => {
    const r = await fetch(p, { credentials: 'same-origin' });
    let json = null;
    try { json = await r.json(); } catch { /* not JSON */ }
    return { status: r.status, json };
  }, SESSION);
}

/** Opens /ui/ and signs in through the form (label "API token", button "Sign in"); resolves
 *  with the session (GET /session, 200) once the hub has one for this browser. */
export async function signInByForm(page, token) {
  await page.goto(hubUrl('/ui/'));
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  return waitFor('a session after signing in', 15, async () => {
    const s = await pageSession(page);
    return s.status === 200 ? s.json : false;
  });
}

/** The drover_session cookie of the browser (context.cookies()), or undefined. */
export async function sessionCookie(browser) {
  return (await browser.cookies(hubUrl('/'))).find((c) => c.name === COOKIE);
}

/**
 * A web server of another origin (http://127.0.0.1:PORT, another port and scheme than the hub):
 * pages is {'/path': html}. Every request is recorded in .requests ({method, url, body}).
 * Returns {url(path), requests, close()}.
 */
export async function otherSite(pages) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString() });
      const html = pages[new URL(req.url, 'http://x').pathname];
      res.writeHead(html === undefined ? 404 : 200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(html ?? 'not found');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  // Chromium lives in a network namespace of its own (run-e2e.sh): the harness relays the port.
  if (process.env.DROVER_E2E_BROWSER_NETNS) await ctl('forward', port);
  return {
    origin: `http://127.0.0.1:${port}`,
    url: (p) => `http://127.0.0.1:${port}${p}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

/** HTML-escapes s for an attribute value. */
export const attr = (s) => String(s).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
