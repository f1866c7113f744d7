// The Services page: a Deployment of 2 pods behind a ClusterIP and a NodePort Service, and a
// NetworkPolicy, applied through the API. The page shows the ClusterIP the hub gave, the ports
// as kubectl prints them and 2/2 endpoints (from the hub's EndpointSlices); the Service's page
// lists both pods' addresses; the policy's selector shows; scaling to 1 shows 1/1 live (no
// reload); a viewer sees it all and no write control. The devices run with the network off:
// the hub still gives ClusterIPs and makes EndpointSlices from the pods' reported addresses.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { api, waitFor, NODES } from '../lib/ctl.mjs';
import { openSignedIn, go, see, deployment, podsRunning, removeDeployment, writeControls } from '../lib/ui.mjs';

const APP = 'e2e-svc';
const NS = 'default';
const browsers = [];
after(async () => {
  for (const b of browsers) await b.close();
  for (const [kind, name] of [['services', APP], ['services', `${APP}-np`]]) await api('DELETE', `/api/v1/namespaces/${NS}/${kind}/${name}`);
  for (const name of [`${APP}-in`, `${APP}-deny`]) await api('DELETE', `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies/${name}`);
  await removeDeployment(APP);
});

const objects = [
  { apiVersion: 'v1', kind: 'Service', metadata: { name: APP, namespace: NS },
    spec: { selector: { app: APP }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: `${APP}-np`, namespace: NS },
    spec: { type: 'NodePort', selector: { app: APP }, ports: [{ port: 8081, targetPort: 8080 }] } },
  { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `${APP}-in`, namespace: NS },
    spec: { podSelector: { matchLabels: { app: APP } },
      ingress: [{ from: [{ podSelector: { matchLabels: { role: 'client' } } }], ports: [{ port: 8080 }] },
        { from: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }] } },
  { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `${APP}-deny`, namespace: NS },
    spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } },
];

// The text of the Endpoints cell of a Service's row in the list ('' while the row is missing).
const endpointsCell = (key) => {
  const tr = document.querySelector(`table.services tr[data-service="${key}"]`);
  return tr ? tr.lastElementChild.textContent : '';
};
const rowText = (sel) => {
  const tr = document.querySelector(sel);
  return tr ? [...tr.children].map((td) => td.textContent) : null;
};

test('services, endpoints and policies, live', async () => {
  await deployment(APP, { replicas: 2 });
  for (const o of objects) {
    const r = await api('POST', '/apis/drover.io/v1/apply', { body: o });
    assert.equal(r.status, 200, `apply ${o.kind} ${o.metadata.name}: ${r.text}`);
  }
  await podsRunning(APP, 2);
  // the pods' addresses as the hub has them
  const ips = await waitFor('2 pod addresses', 60, async () => {
    const r = await api('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=app%3D${APP}`);
    const a = r.json.items.map((p) => (p.status || {}).podIP).filter(Boolean);
    return a.length === 2 ? a : false;
  }, 500);
  const svc = (await api('GET', `/api/v1/namespaces/${NS}/services/${APP}`)).json;
  const np = (await api('GET', `/api/v1/namespaces/${NS}/services/${APP}-np`)).json;
  const clusterIP = svc.spec.clusterIP;
  const nodePort = np.spec.ports[0].nodePort;
  assert.match(clusterIP, /^10\.43\.\d+\.\d+$/, 'the hub gave a ClusterIP');
  assert.ok(nodePort >= 30000 && nodePort <= 32767, `the hub gave a NodePort (${nodePort})`);

  const { browser, page } = await openSignedIn(process.env.DROVER_OPERATOR_TOKEN);
  browsers.push(browser);
  await go(page, '#/services', 'Services');
  await waitFor('2/2 endpoints in the row of the ClusterIP Service', 60,
    async () => (await page.evaluate(endpointsCell, `${NS}/${APP}`)) === '2/2');
  const row = await page.evaluate(rowText, `table.services tr[data-service="${NS}/${APP}"]`);
  assert.deepEqual(row, [`${NS}/${APP}`, 'ClusterIP', clusterIP, '', '80/TCP', '2/2']);
  await waitFor('2/2 for the NodePort Service', 30, async () => (await page.evaluate(endpointsCell, `${NS}/${APP}-np`)) === '2/2');
  const npRow = await page.evaluate(rowText, `table.services tr[data-service="${NS}/${APP}-np"]`);
  assert.deepEqual(npRow, [`${NS}/${APP}-np`, 'NodePort', np.spec.clusterIP, '', `8081:${nodePort}/TCP`, '2/2']);
  // the policies: selector as text, types, rule counts
  assert.deepEqual(await page.evaluate(rowText, `table.policies tr[data-policy="${NS}/${APP}-in"]`),
    [`${NS}/${APP}-in`, `app=${APP}`, 'Ingress', '2', '—']);
  assert.deepEqual(await page.evaluate(rowText, `table.policies tr[data-policy="${NS}/${APP}-deny"]`),
    [`${NS}/${APP}-deny`, '(all pods)', 'Ingress, Egress', '0', '0']);
  await shot(page, 'services', { fullPage: true });

  // the Service's page: both pods' addresses, their nodes and pods, and the pods it selects
  await page.getByRole('link', { name: `${NS}/${APP}`, exact: true }).click();
  await page.getByRole('heading', { name: `${NS}/${APP}`, level: 1 }).waitFor();
  await see(page, 'Endpoints (2 ready of 2)');
  for (const ip of ips) await see(page, ip, { within: 'table.endpoints' });
  assert.equal(await page.locator('table.endpoints tbody tr').count(), 2);
  assert.equal(await page.locator('table.pods tbody tr').count(), 2, 'the pods its selector picks');
  await see(page, clusterIP, { within: '.facts' });
  await shot(page, 'service', { fullPage: true });

  // back to the list, then scale to 1: 1/1 without a reload
  await go(page, '#/services', 'Services');
  await page.evaluate(() => { window.e2eMark = 'same page'; });
  const r = await api('PATCH', `/apis/apps/v1/namespaces/${NS}/deployments/${APP}`,
    { body: JSON.stringify({ spec: { replicas: 1 } }), headers: { 'Content-Type': 'application/merge-patch+json' } });
  assert.equal(r.status, 200, r.text);
  const t0 = Date.now();
  await waitFor('1/1 endpoints in the page', 60, async () => (await page.evaluate(endpointsCell, `${NS}/${APP}`)) === '1/1');
  console.log(`# 1/1 in the page ${((Date.now() - t0) / 1000).toFixed(1)} s after the scale`);
  assert.equal(await page.evaluate(() => window.e2eMark), 'same page', 'the page was not reloaded');

  // the node page: its pod block (the hub's) and the network facts
  const node = (await api('GET', `/api/v1/nodes/${NODES[0]}`)).json;
  await go(page, `#/nodes/${NODES[0]}`, NODES[0]);
  await see(page, 'Pod CIDR', { within: '.facts' });
  if (node.spec.podCIDR) await see(page, node.spec.podCIDR, { within: '.facts' });
  await shot(page, 'node-network', { fullPage: true });

  // a viewer: the same page, read-only
  const v = await openSignedIn(process.env.DROVER_VIEWER_TOKEN);
  browsers.push(v.browser);
  const menu = (await v.page.locator('#nav a').allTextContents()).map((s) => s.trim());
  assert.ok(menu.includes('Services'), `a viewer's menu has Services (${menu})`);
  await go(v.page, '#/services', 'Services');
  await waitFor('1/1 for the viewer', 30, async () => (await v.page.evaluate(endpointsCell, `${NS}/${APP}`)) === '1/1');
  await see(v.page, `app=${APP}`, { within: 'table.policies' });
  assert.deepEqual(await writeControls(v.page), [], 'no write control on the Services page');
  await go(v.page, `#/services/${NS}/${APP}`, `${NS}/${APP}`);
  await see(v.page, 'Endpoints (1 ready of 1)');
  assert.deepEqual(await writeControls(v.page), [], 'no write control on a Service page');
  await shot(v.page, 'viewer-service', { fullPage: true });
});
