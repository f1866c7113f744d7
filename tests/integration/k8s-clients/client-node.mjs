// The official JavaScript client (@kubernetes/client-node, from tests/e2e/node_modules) against
// the hub, with the kubeconfig `drover kubeconfig` printed (KUBECONFIG): lists, a ConfigMap
// created and merge-patched, and an Informer that sees it ADDED then MODIFIED.
// Usage: node client-node.mjs KUBECONFIG NAME   (prints "ok ..." / "FAIL ..." lines; exit 1 on
// any FAIL)
import * as k8s from '@kubernetes/client-node';

const [kubeconfig, name] = process.argv.slice(2);
let fails = 0;
function check(what, cond, seen) {
  console.log(`${cond ? 'ok' : 'FAIL'} node: ${what}${cond ? '' : ` (seen: ${seen})`}`);
  if (!cond) fails++;
}
function brief(e) {
  const body = e && e.body ? (typeof e.body === 'string' ? e.body : JSON.stringify(e.body)) : '';
  return `${e && e.code ? `HTTP ${e.code} ` : ''}${e && e.message ? e.message : e} ${body}`.slice(0, 400);
}
// Runs step; an exception is a FAIL naming it.
async function step(what, fn) {
  try {
    await fn();
  } catch (e) {
    check(what, false, brief(e));
  }
}
const within = (ms, p, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms))]);

const kc = new k8s.KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const ns = 'default';

await step('list pods', async () => {
  const l = await core.listNamespacedPod({ namespace: ns });
  check(`list pods (${l.items.length} pods)`, Array.isArray(l.items) && l.items.length >= 1, JSON.stringify(l).slice(0, 200));
});
await step('list deployments', async () => {
  const l = await apps.listNamespacedDeployment({ namespace: ns });
  check(`list deployments (${l.items.map((d) => d.metadata.name).join(',')})`,
    l.items.some((d) => d.spec && d.spec.replicas >= 1), JSON.stringify(l).slice(0, 200));
});
await step('list nodes', async () => {
  const l = await core.listNode();
  check(`list nodes (${l.items.length})`, l.items.length >= 1, JSON.stringify(l).slice(0, 200));
});

// The informer first: it must see the ConfigMap ADDED, then MODIFIED by the patch.
const seen = [];
let informer = null;
let informerErr = '';
await step('informer start', async () => {
  informer = k8s.makeInformer(kc, `/api/v1/namespaces/${ns}/configmaps`,
    () => core.listNamespacedConfigMap({ namespace: ns }));
  informer.on('add', (o) => { if (o.metadata.name === name) seen.push('ADDED'); });
  informer.on('update', (o) => { if (o.metadata.name === name) seen.push(`MODIFIED:${o.data && o.data.b}`); });
  informer.on('error', (e) => { informerErr = brief(e); });
  await within(10000, informer.start(), 'informer start');
});

await step('create configmap', async () => {
  const cm = await core.createNamespacedConfigMap({
    namespace: ns,
    body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { by: 'client-node' } }, data: { a: '1' } },
  });
  check(`create configmap ${name}`, cm.metadata.name === name && cm.data.a === '1', JSON.stringify(cm).slice(0, 200));
});
await step('merge patch', async () => {
  const cm = await core.patchNamespacedConfigMap({ name, namespace: ns, body: { data: { b: '2' } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  check('merge patch adds data.b, keeps data.a', cm.data.a === '1' && cm.data.b === '2', JSON.stringify(cm.data));
});
await step('read back', async () => {
  const cm = await core.readNamespacedConfigMap({ name, namespace: ns });
  check('read back: data {a: 1, b: 2}', cm.data.a === '1' && cm.data.b === '2', JSON.stringify(cm.data));
});

const deadline = Date.now() + 15000;
while (Date.now() < deadline && !seen.includes('MODIFIED:2')) await new Promise((r) => setTimeout(r, 200));
check('informer: ADDED then MODIFIED', seen[0] === 'ADDED' && seen.includes('MODIFIED:2'),
  `${JSON.stringify(seen)} ${informerErr}`);
if (informer) await within(5000, informer.stop(), 'informer stop').catch(() => {});

await step('delete configmap', async () => {
  await core.deleteNamespacedConfigMap({ name, namespace: ns });
  check(`delete configmap ${name}`, true, '');
});
process.exit(fails ? 1 : 0);
