// Tokens (admin): the hub's API and bootstrap tokens, with their state; create an API token
// (shown once), revoke any. The secret part of a token is never listed by the hub, and the page
// keeps a new one only on screen until it is left.
import { request, errorText, isAdmin } from './api.js';
import { h, replace, badge, note, confirmButton, labelChips } from './dom.js';

const STATE_TONE = { active: 'ok', used: '', expired: 'warn', revoked: 'bad' };
export const TOKENS = '/api/v1/tokens';

// A live table of the tokens of the given kind ('' = all): {el, reload()}.
export function tokenTable(kind, msg) {
  const el = h('div', { class: 'tokens' });
  async function reload() {
    try {
      const list = await request('GET', TOKENS);
      const items = (list.items || []).filter((t) => !kind || t.kind === kind)
        .sort((a, b) => (b.created || '').localeCompare(a.created || ''));
      if (!items.length) { replace(el, h('p', { class: 'muted' }, 'No tokens.')); return; }
      replace(el, h('table', {},
        h('thead', {}, h('tr', {}, ['ID', 'Kind', 'Role / uses left', 'Description', 'Created', 'Expires', 'State', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, items.map((t) => h('tr', { 'data-token-id': t.id },
          h('td', {}, h('code', {}, t.id)),
          h('td', {}, t.kind),
          h('td', {}, t.kind === 'bootstrap' ? [`${t.usesLeft ?? '∞'} left `, labelChips(t.labels)] : t.role || ''),
          h('td', {}, t.description || ''),
          h('td', {}, t.created || ''),
          h('td', {}, t.expires || 'never'),
          h('td', {}, badge(t.state, STATE_TONE[t.state])),
          h('td', {}, isAdmin() && !t.revoked ? confirmButton('Revoke', `Revoke ${t.id}? Sessions and devices using it stop working.`, async () => {
            try {
              await request('DELETE', `${TOKENS}/${encodeURIComponent(t.id)}`);
              note(msg, `Token ${t.id} revoked.`, 'ok');
            } catch (e) { note(msg, errorText(e), 'error'); }
            reload();
          }) : null))))));
    } catch (e) {
      replace(el, h('p', { class: 'note error' }, errorText(e)));
    }
  }
  reload();
  return { el, reload };
}

// The one-time display of a new token's secret.
export function secretBox(title, lines) {
  return h('section', { class: 'card', 'aria-labelledby': 'secret-title', id: 'new-secret' },
    h('h2', { id: 'secret-title' }, title),
    h('p', {}, 'Copy it now: it is shown only this once and the hub keeps only its hash.'),
    lines.map(([label, text, id]) => [h('p', { class: 'muted' }, label), h('code', { class: 'secret', id }, text)]));
}

export function mount(main) {
  const msg = h('p', { class: 'note', role: 'status' });
  const secret = h('div');
  const table = tokenTable('', msg);
  const role = h('select', { id: 'tok-role' }, ['viewer', 'operator', 'admin'].map((r) => h('option', { value: r }, r)));
  const ttl = h('input', { id: 'tok-ttl', value: '720h', pattern: '[0-9]+[smhd]', required: true, spellcheck: 'false' });
  const desc = h('input', { id: 'tok-desc', maxlength: '200', placeholder: 'who or what uses it' });
  const form = h('form', { class: 'form card', 'aria-labelledby': 'tok-new' },
    h('h2', { id: 'tok-new' }, 'New API token'),
    h('label', { for: 'tok-role' }, 'Role'), role,
    h('label', { for: 'tok-ttl' }, 'Valid for (e.g. 24h, 30d)'), ttl,
    h('label', { for: 'tok-desc' }, 'Description'), desc,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create token')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    note(msg, 'Creating…');
    try {
      const t = await request('POST', TOKENS, { body: { kind: 'api', role: role.value, ttl: ttl.value.trim(), description: desc.value.trim() } });
      note(msg, `Token ${t.id} (${t.role}) created.`, 'ok');
      replace(secret, secretBox(`Token ${t.id}`, [['The token:', t.token, 'secret-token'],
        ['Sign in with it here, or use it from the command line:', `drover login --hub ${location.origin} --token ${t.token}`, 'secret-cmd']]));
      desc.value = '';
      table.reload();
    } catch (err) {
      note(msg, errorText(err), 'error');
    }
  });
  main.append(h('h1', {}, 'Tokens'), msg, secret, form, h('h2', {}, 'All tokens'), table.el);
}
