// Apply from the page: a stream of two manifests whose second is broken shows the field error
// against document 2 next to the text and writes nothing (not even the good first document);
// fixed, both are created; applied again, both are unchanged.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { api } from '../lib/ctl.mjs';
import { openSignedIn, go, see, removeDeployment, IMAGE } from '../lib/ui.mjs';

let browser;
after(async () => {
  if (browser) await browser.close();
  await removeDeployment('e2e-apply-a');
  await removeDeployment('e2e-apply-b');
});

const doc = (name, image) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      containers:
      - name: main
        command: [sleep, "3600"]
${image ? `        image: ${image}\n` : ''}`;

test('a broken manifest shows its field error and writes nothing', async () => {
  let page;
  ({ browser, page } = await openSignedIn(process.env.DROVER_OPERATOR_TOKEN));
  await go(page, '#/apply', 'Apply');
  const text = page.getByLabel(/Manifests/);

  await text.fill(`${doc('e2e-apply-a', IMAGE)}---\n${doc('e2e-apply-b', '')}`);
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  await see(page, /Nothing was written/);
  const causes = page.locator('#apply-causes li');
  assert.ok((await causes.count()) >= 1, 'at least one problem listed');
  const first = await causes.first().textContent();
  console.log(`# shown: ${first}`);
  assert.match(first, /Document 2 \(Deployment e2e-apply-b, line 19\)/, 'names the document, its kind, name and line');
  assert.match(first, /spec\.template\.spec\.containers\[0\]\.image/, 'names the field');
  assert.equal(await text.getAttribute('aria-invalid'), 'true');
  await shot(page, 'broken');
  // "Show in text" selects the broken document in the text
  await causes.first().getByRole('button', { name: 'Show in text' }).click();
  const selected = await text.evaluate((t) => t.value.slice(t.selectionStart, t.selectionEnd));
  assert.match(selected, /name: e2e-apply-b/);
  assert.doesNotMatch(selected, /e2e-apply-a/);

  for (const name of ['e2e-apply-a', 'e2e-apply-b']) {
    const r = await api('GET', `/apis/apps/v1/namespaces/default/deployments/${name}`);
    assert.equal(r.status, 404, `${name} was not written`);
  }

  await text.fill(`${doc('e2e-apply-a', IMAGE)}---\n${doc('e2e-apply-b', IMAGE)}`);
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  await see(page, 'Applied 2 objects.');
  assert.equal(await page.locator('#apply-causes li').count(), 0, 'the problems are gone');
  const results = page.locator('#apply-results li');
  assert.deepEqual((await results.allTextContents()).map((s) => s.trim()),
    ['created Deployment default/e2e-apply-a', 'created Deployment default/e2e-apply-b']);
  await shot(page, 'created');

  // again: each object is reported again (unchanged, or configured where the hub's controller
  // had added its own annotations since, which a manifest without them replaces)
  await page.locator('#apply-msg').evaluate((el) => { el.textContent = ''; });
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  await see(page, 'Applied 2 objects.');
  const again = (await results.allTextContents()).map((s) => s.trim());
  console.log(`# applied again: ${again.join('; ')}`);
  assert.equal(again.length, 2);
  again.forEach((r, i) => assert.match(r, new RegExp(`^(unchanged|configured) Deployment default/e2e-apply-${'ab'[i]}$`)));

  // and the Workloads view has them
  await go(page, '#/workloads', 'Workloads');
  await see(page, 'default/e2e-apply-b');
});
