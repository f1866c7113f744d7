// Building the page from data: every text goes in as a text node (never innerHTML), so nothing
// the hub or a device reports can inject markup.

// h('a', {href: '#/x', class: 'c', onclick: fn}, 'text', child...)
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const link = (href, text, cls) => h('a', { href, class: cls }, text);
export const objLink = (kind, ns, name) =>
  link(`#/${kind}/${ns ? `${encodeURIComponent(ns)}/` : ''}${encodeURIComponent(name)}`, ns ? `${ns}/${name}` : name);

// "4 s", "3 min", "2 h", "5 d"
export function fmtAge(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

export function badge(text, tone) {
  return h('span', { class: `badge ${tone || ''}` }, text);
}

export function labelChips(labels) {
  return h('span', { class: 'chips' },
    Object.entries(labels || {}).map(([k, v]) => h('span', { class: 'chip' }, `${k}=${v}`)));
}

// A status line for the result of an action: note(el, 'text', 'error'|'ok').
export function note(el, text, tone) {
  el.className = `note ${tone || ''}`;
  el.textContent = text;
}

// A write button that asks once more before acting: first click shows Confirm / Cancel.
export function confirmButton(label, question, action) {
  const box = h('span', { class: 'confirm' });
  const ask = () => replace(box, h('span', { class: 'question' }, question),
    h('button', { type: 'button', class: 'danger', onclick: () => { reset(); action(); } }, 'Confirm'),
    h('button', { type: 'button', onclick: reset }, 'Cancel'));
  const reset = () => replace(box, h('button', { type: 'button', onclick: ask }, label));
  reset();
  return box;
}

// A definition list of [term, value] pairs.
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

// Condition types whose True is the healthy state (for the others, e.g. DuplicateIdentity,
// True is the problem).
const POSITIVE = new Set(['Ready', 'Available', 'Progressing', 'PodScheduled', 'Initialized',
  'ContainersReady', 'AbleToScale', 'ScalingActive']);

export function conditionsTable(conds) {
  const tone = (c) => ((c.status === 'True') === POSITIVE.has(c.type) ? 'ok' : 'warn');
  return h('table', { class: 'conds' },
    h('thead', {}, h('tr', {}, ['Type', 'Status', 'Reason', 'Message', 'Since'].map((t) => h('th', {}, t)))),
    h('tbody', {}, (conds || []).map((c) => h('tr', {},
      h('td', {}, c.type), h('td', {}, badge(c.status, tone(c))),
      h('td', {}, c.reason || ''), h('td', {}, c.message || ''),
      h('td', {}, c.lastTransitionTime || '')))));
}
