// What the dashboard specs share: signing in through the page, waiting for what a user would
// see (bounded, polled), the live indicator, and objects set up through the API.
//   const { browser, page } = await openSignedIn(process.env.DROVER_OPERATOR_TOKEN);
//   await see(page, 'dev1');  await liveIs(page, 'Live');
import assert from 'node:assert/strict';
import { launch, newPage, hubUrl } from './browser.mjs';
import { api, waitFor } from './ctl.mjs';

export const TF = Number(process.env.DROVER_TEST_TIME_FACTOR || 1);
export const IMAGE = process.env.DROVER_E2E_IMAGE;
export const IMAGE2 = process.env.DROVER_E2E_IMAGE2;

// Chromium aborts loads with ERR_NETWORK_CHANGED when the devices' pods add or remove links in
// its network namespace (lib/browser.mjs loads again the pages that lost a part that way); a
// navigation may still end on chromium's error page or be cut by the dashboard reloading itself
// (boot.js). Tried again here, a few times, until the dashboard shows (sign-in form or a view).
const LOST = /ERR_NETWORK_CHANGED|interrupted by another navigation|chrome-error|ERR_ABORTED/;
export async function open(page, path = '/ui/') {
  for (let i = 1; ; i++) {
    try {
      await page.goto(hubUrl(path));
      await page.locator('#token, main h1').first().waitFor({ timeout: 10_000 * TF });
      return;
    } catch (e) {
      if (i >= 4 || !(LOST.test(e.message) || /Timeout/.test(e.message))) throw e;
      console.log(`# open ${path}: ${e.message.split('\n')[0]}; again`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Opens the dashboard and signs in with token; resolves when the Problems view shows. */
export async function signIn(page, token) {
  await open(page);
  await page.locator('#token').waitFor({ timeout: 30_000 * TF });
  await page.locator('#token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Problems', level: 1 }).waitFor({ timeout: 15_000 * TF });
}

/** A new browser (its own profile) with one page signed in with token. */
export async function openSignedIn(token, viewport = {}) {
  const browser = await launch(viewport);
  try {
    const page = await newPage(browser, viewport);
    await signIn(page, token);
    return { browser, page };
  } catch (e) {
    await browser.close(); // a browser left open would keep the spec's process alive
    throw e;
  }
}

/** Goes to a view by its hash route ('#/nodes', '#/pods/default/x') and waits for its h1. */
export async function go(page, hash, heading) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  if (heading) await page.getByRole('heading', { name: heading, level: 1 }).waitFor({ timeout: 15_000 * TF });
}

/** Waits until text (string or RegExp) is visible somewhere in the page (or in `within`). */
export async function see(page, text, { timeout = 15_000, within } = {}) {
  const root = within ? page.locator(within) : page;
  await root.getByText(text).first().waitFor({ state: 'visible', timeout: timeout * TF });
}

/** Polls fn(page) in the page's context until it returns truthy; returns that value. */
export async function until(page, what, secs, fn, arg) {
  return waitFor(what, secs, () => page.evaluate(fn, arg), 250);
}

/** The live indicator's text ('Live', 'Stale · reconnecting', ...). */
export const liveText = (page) => page.locator('#live').textContent();

export async function liveIs(page, text, secs = 20) {
  await waitFor(`the live indicator to say ${text}`, secs, async () => (await liveText(page)) === text);
}

/** Creates (or replaces) a Deployment of `replicas` pods running `command` through the API. */
export async function deployment(name, { replicas = 1, image = IMAGE, command = ['sleep', '3600'], ns = 'default', labels = {} } = {}) {
  const obj = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, ...labels } },
        spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image, command }] },
      },
    },
  };
  const r = await api('POST', '/apis/drover.io/v1/apply', { body: obj });
  assert.equal(r.status, 200, `apply ${name}: ${r.text}`);
  return obj;
}

/** The pods of app=name, from the API: [{name, node, phase, ready, image}]. */
export async function podsOf(name, ns = 'default') {
  const r = await api('GET', `/api/v1/namespaces/${ns}/pods?labelSelector=app%3D${encodeURIComponent(name)}`);
  assert.equal(r.status, 200, r.text);
  return r.json.items.filter((p) => !p.metadata.deletionTimestamp).map((p) => ({
    name: p.metadata.name,
    node: p.spec.nodeName || '',
    phase: (p.status || {}).phase || 'Pending',
    ready: ((p.status || {}).conditions || []).some((c) => c.type === 'Ready' && c.status === 'True'),
    image: p.spec.containers[0].image,
  }));
}

/** Waits until n pods of app=name run and are ready; returns them. */
export async function podsRunning(name, n, secs = 90) {
  return waitFor(`${n} running pods of ${name}`, secs, async () => {
    const pods = await podsOf(name);
    const ok = pods.filter((p) => p.phase === 'Running' && p.ready);
    return ok.length === n && pods.length === n ? ok : false;
  }, 500);
}

/** Deletes a Deployment and waits (20 s at most) until its pods are gone, so that the next
 * spec does not start while their network links are being removed (best effort, for clean-up). */
export async function removeDeployment(name, ns = 'default') {
  await remove('deployments', name, ns);
}

/** The same for any workload of apps/v1 ('deployments', 'daemonsets') whose pods are app=name. */
export async function remove(kind, name, ns = 'default') {
  await api('DELETE', `/apis/apps/v1/namespaces/${ns}/${kind}/${name}`).catch(() => {});
  await waitFor(`the pods of ${name} gone`, 20, async () => {
    const r = await api('GET', `/api/v1/namespaces/${ns}/pods?labelSelector=app%3D${encodeURIComponent(name)}`);
    return r.status === 200 && r.json.items.length === 0;
  }, 500).catch((e) => console.log(`# clean-up: ${e.message}`));
}

/** The page's horizontal overflow: scrollWidth - innerWidth (<= 0 is none). */
export const overflowX = (page) => page.evaluate(() => document.scrollingElement.scrollWidth - window.innerWidth);

/** The texts of the visible write controls (buttons and links that change something). */
export const WRITE_WORDS = /^(Cordon|Uncordon|Drain|Scale|Pause|Resume|Roll back.*|Apply|Create.*|Revoke|Delete.*|Confirm)$/;
export async function writeControls(page) {
  return page.evaluate((src) => {
    const re = new RegExp(src);
    const seen = [];
    for (const el of document.querySelectorAll('button, input[type=submit], a, textarea, input[type=number]')) {
      const text = (el.textContent || el.value || '').trim();
      if (el.tagName === 'TEXTAREA' || (el.tagName === 'INPUT' && el.type === 'number') || re.test(text)) seen.push(`${el.tagName}:${text || el.id}`);
    }
    return seen;
  }, WRITE_WORDS.source);
}
