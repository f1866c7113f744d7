// A pod's log followed in the page across a restart of its node's agent: the stream drops, the
// page reconnects with a tail and aligns it with what it shows, so every line (they are all
// distinct: numbered) is shown exactly once, in order, with no gap.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { ctl, waitFor } from '../lib/ctl.mjs';
import { openSignedIn, go, deployment, podsRunning, removeDeployment } from '../lib/ui.mjs';

const APP = 'e2e-log';
let browser;
after(async () => {
  if (browser) await browser.close();
  await removeDeployment(APP);
});

// The numbers of the "tick N" lines the page shows, in order.
const shown = (page) => page.evaluate(() =>
  document.getElementById('log').textContent.split('\n').map((l) => /^tick (\d+)$/.exec(l)).filter(Boolean).map((m) => Number(m[1])));

test('the log follows across an agent restart, no line lost or twice', async () => {
  await deployment(APP, { command: ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.2; done'] });
  const [pod] = await podsRunning(APP, 1);
  let page;
  ({ browser, page } = await openSignedIn(process.env.DROVER_OPERATOR_TOKEN));
  await go(page, `#/pods/default/${pod.name}`, `default/${pod.name}`);
  await waitFor('10 lines in the log', 30, async () => (await shown(page)).length >= 10);
  await page.locator('#log-state', { hasText: 'following' }).waitFor();

  const before = await shown(page);
  await ctl('agent-restart', pod.node);
  const last = before[before.length - 1];
  // the page went on: lines written after the restart are shown (the stream came back)
  const after2 = await waitFor('lines from after the restart', 60, async () => {
    const s = await shown(page);
    return s.length && s[s.length - 1] >= last + 40 && (await page.locator('#log-state').textContent()) === 'following' ? s : false;
  }, 500);
  const states = await page.evaluate(() => document.getElementById('log-state').textContent);
  console.log(`# shown ${after2.length} lines, ${after2[0]}..${after2[after2.length - 1]}; state ${states}`);
  await shot(page, 'log-after-restart');

  const dup = after2.filter((n, i) => after2.indexOf(n) !== i);
  assert.deepEqual(dup, [], 'no line shown twice');
  const gaps = after2.slice(1).map((n, i) => [after2[i], n]).filter(([a, b]) => b !== a + 1);
  assert.deepEqual(gaps, [], 'no line missing (each number follows the one before)');
  assert.equal(await page.locator('#log .gap').count(), 0, 'no "lines may be missing" marker');
});
