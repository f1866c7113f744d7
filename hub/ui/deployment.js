// One Deployment: rollout state, its revisions (status.history) and pods, its events; for
// operators: scale (PATCH spec.replicas), pause/resume (PATCH spec.paused) and rollback to a
// kept revision (PUT of the Deployment with that revision's template, as `drover rollout undo`).
import { store, subscribe } from './model.js';
import { request, patch, objectPath, canWrite, errorText, ApiError } from './api.js';
import { h, replace, badge, facts, conditionsTable, note, confirmButton, labelChips } from './dom.js';
import { podTable } from './pods.js';
import { eventFeed } from './events.js';
import { deploymentState } from './workloads.js';

const images = (tmpl) => ((tmpl && tmpl.spec && tmpl.spec.containers) || []).map((c) => c.image).join(', ');

// The kept revisions, newest first: the annotation when readable, else status.history.
export function history(dep) {
  let hist = null;
  try {
    hist = JSON.parse(((dep.metadata || {}).annotations || {})['drover.io/history'] || 'null');
  } catch { /* fall back to the status */ }
  if (!Array.isArray(hist) || !hist.length) hist = (dep.status || {}).history || [];
  return [...hist].sort((a, b) => (b.revision || 0) - (a.revision || 0));
}

export function mount(main, [ns, name]) {
  const path = objectPath('deployments', ns, name);
  const head = h('div', { class: 'head' });
  const actions = h('div', { class: 'actions', 'aria-label': 'Actions' });
  const msg = h('p', { class: 'note', role: 'status' });
  const info = h('section', { 'aria-label': 'Deployment facts' });
  const revs = h('section', { 'aria-labelledby': 'revs-title' });
  const podsEl = h('section', { 'aria-label': 'Pods of this deployment' });
  const events = eventFeed((e) => e.kind === 'Deployment' && e.objName === name && (e.objNs || e.ns) === ns,
    `/api/v1/namespaces/${encodeURIComponent(ns)}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${name}`)}`);
  main.append(h('p', {}, h('a', { href: '#/workloads' }, '← Workloads')), head, actions, msg, info,
    revs, h('h2', {}, 'Pods'), podsEl, h('h2', {}, 'Events'), events.el);

  let full = null;
  let refetch = 0;
  let busy = false;

  async function load() {
    try {
      full = await request('GET', path);
      draw();
      drawActions();
    } catch (e) {
      if (e.status === 404) { full = null; replace(head, h('h1', {}, `${ns}/${name}`), badge('not found', 'bad')); replace(actions); return; }
      note(msg, errorText(e), 'error');
    }
  }

  function draw() {
    const d = store.deployments.get(`${ns}/${name}`);
    replace(head, h('h1', {}, `${ns}/${name}`), d ? deploymentState(d) : null);
    if (d) {
      const hpa = [...store.horizontalpodautoscalers.values()].find((x) => x.ns === ns && x.targetKind === 'Deployment' && x.targetName === name);
      const ann = full ? (full.metadata.annotations || {}) : {};
      replace(info, facts([
        ['Replicas', `${d.ready} ready of ${d.desired} desired (${d.current} current, ${d.updated} up to date, ${d.available} available)`],
        ['Image', full ? images(full.spec.template) : ''],
        ['Revision', ann['deployment.kubernetes.io/revision'] || '?'],
        ['Selector', labelChips(d.selector)],
        hpa ? ['Autoscaler', `${hpa.name}: ${hpa.min}–${hpa.max} replicas, ${hpa.targets}`] : null,
        d.progressMsg ? ['Progress', d.progressMsg] : null,
      ]), full ? [h('h2', {}, 'Conditions'), conditionsTable((full.status || {}).conditions)] : null);
    }
    drawRevisions();
    replace(podsEl, podTable([...store.pods.values()].filter((p) => p.ns === ns && p.owner === `Deployment/${name}`)));
  }

  // Redrawn only when the revisions change: a Roll back waiting for its Confirm stays put.
  let revsKey = '';
  function drawRevisions() {
    if (!full) { replace(revs); revsKey = ''; return; }
    const hist = history(full);
    const current = images(full.spec.template);
    const curRev = Number((full.metadata.annotations || {})['deployment.kubernetes.io/revision']) || (hist[0] && hist[0].revision);
    const key = JSON.stringify([hist.map((r) => [r.revision, images(r.template)]), curRev, current, canWrite()]);
    if (key === revsKey) return;
    revsKey = key;
    replace(revs, h('h2', { id: 'revs-title' }, 'Revisions'),
      hist.length ? h('table', { class: 'revisions' },
        h('thead', {}, h('tr', {}, ['Revision', 'Image', 'Change cause', canWrite() ? '' : null].filter((x) => x !== null).map((t) => h('th', {}, t)))),
        h('tbody', {}, hist.map((r) => {
          const tm = r.template || {};
          const cause = ((tm.metadata || {}).annotations || {})['kubernetes.io/change-cause'] || '';
          const isCur = r.revision === curRev;
          return h('tr', { 'data-revision': String(r.revision) },
            h('td', {}, String(r.revision), isCur ? [' ', badge('current', 'ok')] : null),
            h('td', {}, images(tm)),
            h('td', {}, cause),
            canWrite() ? h('td', {}, isCur && images(tm) === current ? null
              : confirmButton(`Roll back to ${r.revision}`, `Roll back ${name} to revision ${r.revision} (${images(tm)})?`,
                () => act(`Rolling back to revision ${r.revision}`, () => rollback(r.revision)))) : null);
        }))) : h('p', { class: 'muted' }, 'No revisions kept yet.'));
  }

  // Redrawn only when what it offers changes: a number being typed is not reset by the stream.
  let drawnKey = '';
  let replicas = null;
  function drawActions() {
    const paused = full ? !!full.spec.paused : false;
    const key = canWrite() && full ? `paused=${paused}` : '';
    if (replicas && document.activeElement !== replicas && full) replicas.value = String(full.spec.replicas ?? 1);
    if (key === drawnKey) return;
    drawnKey = key;
    if (!key) { replace(actions); replicas = null; return; }
    replicas = h('input', { id: 'replicas', type: 'number', min: '0', max: '1000', step: '1', value: String(full.spec.replicas ?? 1), inputmode: 'numeric' });
    const scaleForm = h('form', { class: 'actions', 'aria-label': 'Scale' },
      h('label', { for: 'replicas' }, 'Replicas'), replicas, h('button', { type: 'submit' }, 'Scale'));
    scaleForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const n = Number(replicas.value);
      if (!Number.isInteger(n) || n < 0) { note(msg, 'Replicas: a whole number, 0 or more', 'error'); return; }
      act(`Scaling to ${n}`, async () => { await patch(path, { spec: { replicas: n } }); return `${name} scaled to ${n}`; });
    });
    replace(actions, scaleForm,
      paused
        ? h('button', { type: 'button', onclick: () => act('Resuming', async () => { await patch(path, { spec: { paused: false } }); return `${name} resumed`; }) }, 'Resume')
        : h('button', { type: 'button', onclick: () => act('Pausing', async () => { await patch(path, { spec: { paused: true } }); return `${name} paused`; }) }, 'Pause'));
  }

  async function act(label, fn) {
    if (busy) return;
    busy = true;
    note(msg, `${label}…`);
    try { note(msg, await fn(), 'ok'); } catch (e) { note(msg, errorText(e), 'error'); }
    busy = false;
    await load();
  }

  // PUT of the Deployment with the revision's template; a conflict (someone wrote meanwhile)
  // reads it again, a few times.
  async function rollback(rev) {
    for (let i = 0; i < 5; i++) {
      const dep = await request('GET', path);
      const r = history(dep).find((x) => x.revision === rev);
      if (!r || !r.template) throw new Error(`revision ${rev} is no longer kept`);
      dep.spec.template = r.template;
      delete dep.status;
      try {
        await request('PUT', path, { body: dep });
        return `${name} rolled back to revision ${rev} (${images(r.template)})`;
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 409) throw e;
      }
    }
    throw new Error(`${name} keeps changing on the hub; try again`);
  }

  load();
  draw();
  const off = subscribe((kinds) => {
    if (kinds.has('deployments')) {
      const d = store.deployments.get(`${ns}/${name}`);
      const have = full ? Number(full.metadata.resourceVersion) : 0;
      if (d && d.rv > have && !refetch) refetch = setTimeout(() => { refetch = 0; load(); }, 500);
    }
    if (['deployments', 'pods', 'horizontalpodautoscalers'].some((k) => kinds.has(k))) draw();
  });
  return () => { off(); events.close(); clearTimeout(refetch); };
}
