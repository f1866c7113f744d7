// The browser for the dashboard tests: Debian's chromium (/usr/bin/chromium) driven by
// playwright-core, headless, with a fresh profile each launch and the flags this closed network
// needs (no background connections to Google's hosts: they are refused, many at a time).
//   const browser = await launch();            // a BrowserContext-like handle, see below
//   const page = await newPage(browser, {width: 390, height: 844});
//   await shot(page, 'phone-problems');        // $DROVER_E2E_OUT/phone-problems.png
//   await browser.close();                     // also removes the profile
// Each launch is its own persistent context (its own --user-data-dir), so two launches are two
// browsers that share nothing (cookies, storage): one per signed-in user. The hub's CA is made by
// the hub, so pages ignore certificate errors.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.DROVER_CHROMIUM || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication',
  '--metrics-recording-only',
  '--no-default-browser-check',
  '--password-store=basic',
  '--use-mock-keychain',
];

/**
 * Launches headless chromium with a fresh profile. Returns the persistent context, with
 * .close() also removing its profile folder. Options: {width, height} for the first page's
 * viewport (default 1280x800), headless (default true unless DROVER_E2E_HEADED is set).
 */
export async function launch(opts = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drover-e2e-profile-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: opts.headless ?? !process.env.DROVER_E2E_HEADED,
    args: CHROMIUM_ARGS,
    ignoreHTTPSErrors: true,
    viewport: { width: opts.width ?? 1280, height: opts.height ?? 800 },
    timeout: 60_000,
  });
  context.setDefaultTimeout(opts.timeout ?? 15_000);
  const close = context.close.bind(context);
  context.close = async () => {
    try {
      await close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  return context;
}

/**
 * A page of the browser (the context launch() returned) at {width, height} (default 1280x800).
 * HTTPS errors are ignored context-wide (launch). The first call reuses the blank page chromium
 * opens with.
 */
export async function newPage(browser, { width = 1280, height = 800 } = {}) {
  const blank = browser.pages().find((p) => p.url() === 'about:blank' && !p._droverUsed);
  const page = blank ?? (await browser.newPage());
  page._droverUsed = true;
  steadyLoads(page);
  await page.setViewportSize({ width, height });
  // What the page says on its console and its uncaught errors go to the test's output: a
  // failing spec shows why.
  page.on('pageerror', (e) => console.log(`# page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning')
      console.log(`# console ${m.type()}: ${m.text()}`);
  });
  return page;
}

// Chromium aborts what it has in flight, loopback included, with net::ERR_NETWORK_CHANGED
// whenever an interface or address of its network namespace changes. run-e2e.sh gives it a
// namespace of its own for that reason (the devices add a veth for every pod they start); where
// it shares one with the devices all the same (a spec run by other means), a page whose
// document, script or style sheet was lost that way is loaded again (at most 3 times), so that a
// spec sees the dashboard as a person would after a reload, not a page missing a module. What
// the page itself fetches later is the dashboard's own business (it retries).
const NETWORK_CHANGED = /ERR_NETWORK_CHANGED/;
const PAGE_PARTS = new Set(['document', 'script', 'stylesheet']);

function steadyLoads(page) {
  for (const name of ['goto', 'reload']) {
    const load = page[name].bind(page);
    page[name] = async (...args) => {
      for (let attempt = 1; ; attempt++) {
        let lost = null;
        const onFail = (rq) => {
          if (PAGE_PARTS.has(rq.resourceType()) && NETWORK_CHANGED.test(rq.failure()?.errorText || '')) lost = rq.url();
        };
        page.on('requestfailed', onFail);
        try {
          const resp = await load(...args);
          if (!lost || attempt >= 3) return resp;
        } catch (e) {
          if (!NETWORK_CHANGED.test(e.message) || attempt >= 3) throw e;
          lost = lost || 'the page';
        } finally {
          page.off('requestfailed', onFail);
        }
        console.log(`# ${name}: ${lost} lost to a network change (chromium saw an interface change): loading again`);
      }
    };
  }
}

/** The folder screenshots go to: $DROVER_E2E_OUT (made if missing), else a temporary one. */
export function outDir() {
  const dir = process.env.DROVER_E2E_OUT || path.join(os.tmpdir(), 'drover-e2e-screenshots');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Saves a PNG of the page (its whole height with {fullPage: true}); returns its path. */
export async function shot(page, name, { fullPage = false } = {}) {
  const file = path.join(outDir(), `${name.replace(/[^A-Za-z0-9._-]+/g, '-')}.png`);
  await page.screenshot({ path: file, fullPage });
  console.log(`# screenshot ${file}`);
  return file;
}

/** The hub's URL, for page.goto(hubUrl('/ui/')). */
export function hubUrl(p = '/') {
  const base = process.env.DROVER_HUB_URL;
  if (!base) throw new Error('DROVER_HUB_URL is not set: run the spec with tests/e2e/run-e2e.sh');
  return base.replace(/\/$/, '') + p;
}
