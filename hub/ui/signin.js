// Sign-in: the API token is exchanged for an HttpOnly session cookie; the token is dropped at
// once (the field is cleared, nothing is stored).
import { signIn, errorText } from './api.js';
import { h, note } from './dom.js';

export function mount(main, done) {
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true,
    spellcheck: 'false', placeholder: 'drv1_…',
  });
  const msg = h('p', { class: 'note', role: 'alert' });
  const form = h('form', { class: 'signin card', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to Drover'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { class: 'muted' }, 'An admin, operator or viewer token (drover token create --role …). ' +
      'It is exchanged for a session and not kept by the page.'),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    input.value = '';
    note(msg, 'Signing in…');
    try {
      await signIn(token);
      done();
    } catch (err) {
      note(msg, err.status === 401 ? 'That token was refused (unknown, expired or revoked).' : errorText(err), 'error');
      input.focus();
    }
  });
  main.append(form);
  input.focus();
}
