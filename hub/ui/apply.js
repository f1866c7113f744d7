// Apply: manifests pasted as YAML (several documents allowed) go to POST /apis/drover.io/v1/apply.
// The hub validates every document before writing any; a 422 lists each problem with its
// document and field, shown next to the text (each one selects its document); otherwise each
// object's result (created, configured, unchanged).
import { request, ApiError, errorText } from './api.js';
import { h, replace, note, badge } from './dom.js';

let draft = ''; // kept while the page lives (memory only)

// The documents of a YAML stream as [{start, end (offsets), line, kind, name}], split on "---"
// lines as the hub does; a blank document (nothing but spaces and comments) is no document,
// for the hub counts only the others.
export function documents(text) {
  const docs = [];
  const re = /^---[ \t]*(?:#.*)?$/gm;
  let start = 0;
  let line = 1;
  const push = (end) => {
    const body = text.slice(start, end);
    const blank = !body.replace(/#.*$/gm, '').trim();
    if (!blank) {
      const kind = /^kind:\s*["']?([A-Za-z]+)/m.exec(body);
      const name = /^metadata:\s*\n(?:[ \t]+.*\n)*?[ \t]+name:\s*["']?([^"'\s#]+)/m.exec(body);
      docs.push({ start, end, line, kind: kind ? kind[1] : '', name: name ? name[1] : '' });
    }
  };
  for (let m = re.exec(text); m; m = re.exec(text)) {
    push(m.index);
    line += text.slice(start, m.index + m[0].length).split('\n').length - 1;
    start = Math.min(text.length, m.index + m[0].length + 1);
    line += 1;
  }
  push(text.length);
  return docs;
}

const EXAMPLE = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
      - name: web
        image: registry.local/hello:1
`;

export function mount(main) {
  const text = h('textarea', {
    id: 'manifest', name: 'manifest', spellcheck: 'false', autocomplete: 'off', rows: '24',
    'aria-describedby': 'apply-help apply-causes', placeholder: EXAMPLE,
  });
  text.value = draft;
  const msg = h('p', { class: 'note', role: 'status', id: 'apply-msg' });
  const causes = h('ul', { class: 'causes', id: 'apply-causes', 'aria-label': 'Problems found' });
  const results = h('ul', { class: 'results', id: 'apply-results', 'aria-label': 'Results' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'apply-submit' }, 'Apply');
  const form = h('form', { class: 'apply', 'aria-label': 'Apply manifests' },
    h('div', { class: 'form' },
      h('label', { for: 'manifest' }, 'Manifests (YAML; separate documents with ---)'),
      text,
      h('p', { class: 'muted', id: 'apply-help' },
        'Every document is checked before anything is written: one wrong document writes nothing.'),
      h('div', { class: 'actions' }, submit)),
    h('div', { class: 'side' }, msg, causes, results));
  text.addEventListener('input', () => { draft = text.value; });

  function select(doc) {
    text.focus();
    text.setSelectionRange(doc.start, doc.end);
    // bring the document's first line into view
    const lineHeight = parseFloat(getComputedStyle(text).lineHeight) || 18;
    text.scrollTop = Math.max(0, (doc.line - 2) * lineHeight);
  }

  function showCauses(list, docs) {
    replace(causes, list.map((c) => {
      const d = docs[c.document];
      const which = `Document ${(c.document ?? 0) + 1}${d && d.kind ? ` (${d.kind}${d.name ? ` ${d.name}` : ''}, line ${d.line})` : ''}`;
      return h('li', { class: 'cause', 'data-document': String(c.document ?? '') },
        h('div', {}, h('b', {}, which)),
        h('div', {}, c.field ? h('span', { class: 'field' }, c.field) : null, c.field ? ': ' : null, c.message || ''),
        d ? h('button', { type: 'button', onclick: () => select(d) }, 'Show in text') : null);
    }));
  }

  function showResults(items) {
    replace(results, (items || []).map((it) => h('li', { class: `result ${it.result}` },
      badge(it.result, it.result === 'failed' ? 'bad' : it.result === 'unchanged' ? '' : 'ok'), ' ',
      `${it.kind} ${it.namespace ? `${it.namespace}/` : ''}${it.name}`, it.message ? ` — ${it.message}` : null)));
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = text.value;
    const docs = documents(body);
    replace(causes);
    replace(results);
    text.removeAttribute('aria-invalid');
    if (!body.trim()) { note(msg, 'Paste one or more manifests first.', 'error'); text.focus(); return; }
    submit.disabled = true;
    note(msg, 'Applying…');
    try {
      const out = await request('POST', '/apis/drover.io/v1/apply', { body, type: 'application/yaml' });
      const items = out.items || [];
      note(msg, `Applied ${items.length} object${items.length === 1 ? '' : 's'}.`, 'ok');
      showResults(items);
    } catch (err) {
      const b = err instanceof ApiError && err.body && typeof err.body === 'object' ? err.body : null;
      const list = b && b.details && b.details.causes;
      if (err.status === 422 && list && list.length) {
        note(msg, `Nothing was written: ${list.length} problem${list.length === 1 ? '' : 's'} to fix.`, 'error');
        text.setAttribute('aria-invalid', 'true');
        showCauses(list, docs);
      } else {
        note(msg, errorText(err), 'error');
        if (b && b.items) showResults(b.items);
      }
    } finally {
      submit.disabled = false;
    }
  });
  main.append(h('h1', {}, 'Apply'), form);
}
