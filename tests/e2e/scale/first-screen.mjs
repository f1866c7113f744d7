// The dashboard at a fleet's size (tests/bench/dashboard.sh runs it once per fleet): signs in
// through the session API, opens the Nodes view, and prints one JSON line of figures:
//   firstRowMs   navigation start -> the first node's row is visible
//   allMs        navigation start -> the view counts every node (the whole list is in the page)
//   heapMB       the page's JS heap after a garbage collection (CDP Runtime.getHeapUsage), at
//                the first screen and again after LIVE_S seconds of the live stream
//   domNodes     elements in the page (the virtual list keeps it small whatever the fleet)
// Usage: node first-screen.mjs HUB_URL TOKEN NODES FIRST_NODE_NAME [LIVE_S]
import { launch, newPage } from '../lib/browser.mjs';

const [hub, token, nodesArg, firstName, liveArg] = process.argv.slice(2);
const nodes = Number(nodesArg);
const liveS = Number(liveArg || 15);
if (!hub || !token || !nodes || !firstName) {
  console.error('usage: first-screen.mjs HUB_URL TOKEN NODES FIRST_NODE_NAME [LIVE_S]');
  process.exit(2);
}
process.env.DROVER_HUB_URL = hub;

const browser = await launch({ timeout: 120_000 });
try {
  const page = await newPage(browser);
  const r = await page.request.post(`${hub}/apis/drover.io/v1/session`, { data: { token } });
  if (r.status() !== 201) throw new Error(`sign-in: ${r.status()} ${await r.text()}`);
  const cdp = await browser.newCDPSession(page);
  const heap = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    const { usedSize } = await cdp.send('Runtime.getHeapUsage');
    return Math.round((usedSize / 1048576) * 10) / 10;
  };
  await page.goto(`${hub}/ui/#/nodes`, { waitUntil: 'commit' });
  await page.getByRole('link', { name: firstName, exact: true }).first().waitFor({ state: 'visible', timeout: 120_000 });
  const firstRowMs = await page.evaluate(() => Math.round(performance.now()));
  const countText = `${nodes} node${nodes === 1 ? '' : 's'}`;
  await page.getByText(countText, { exact: true }).waitFor({ state: 'visible', timeout: 120_000 });
  const allMs = await page.evaluate(() => Math.round(performance.now()));
  const heapFirst = await heap();
  const domFirst = await page.evaluate(() => document.getElementsByTagName('*').length);
  // The live stream for a while (heartbeats, late nodes): the heap must not grow with it.
  await new Promise((res) => setTimeout(res, liveS * 1000));
  const heapLive = await heap();
  const live = await page.locator('#live').textContent().catch(() => '?');
  const domLive = await page.evaluate(() => document.getElementsByTagName('*').length);
  console.log(JSON.stringify({ nodes, firstRowMs, allMs, heapMB: heapFirst, heapLiveMB: heapLive, liveS,
    domNodes: domFirst, domNodesLive: domLive, live }));
} finally {
  await browser.close();
}
