// Enrol devices (admin): a bootstrap token (how many devices, how long, the labels their nodes
// get), shown once with the `drover flash` command line that writes it into disk images; the
// bootstrap tokens so far, and the device identities the hub has issued.
import { request, errorText } from './api.js';
import { h, replace, note } from './dom.js';
import { tokenTable, secretBox, TOKENS } from './tokens.js';

// "site=north, role=cam" -> {site: 'north', role: 'cam'}; throws naming the bad pair.
export function parseLabels(text) {
  const out = {};
  for (const part of text.split(/[,\n]/).map((s) => s.trim()).filter(Boolean)) {
    const m = /^([A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?)=([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)?$/.exec(part);
    if (!m) throw new Error(`labels: "${part}" is not key=value`);
    out[m[1]] = m[3] || '';
  }
  return out;
}

const shellQuote = (s) => (/^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);

export function flashCommand({ agentDir, broker, labels, tokenFile }) {
  const args = ['drover flash', `--agent-dir ${shellQuote(agentDir)}`, `--hub-url ${shellQuote(location.origin)}`,
    `--broker ${shellQuote(broker)}`, `--token-file ${shellQuote(tokenFile)}`, '--node-name pi-{serial}'];
  for (const [k, v] of Object.entries(labels)) args.push(`--label ${shellQuote(`${k}=${v}`)}`);
  args.push('IMAGE.img');
  return args.join(' \\\n    ');
}

function identities() {
  const el = h('div');
  request('GET', '/api/v1/identities').then((list) => {
    const items = list.items || [];
    replace(el, items.length ? h('table', {},
      h('thead', {}, h('tr', {}, ['Node', 'Serial', 'Fingerprint', 'Valid until', 'Revoked'].map((t) => h('th', {}, t)))),
      h('tbody', {}, items.map((i) => h('tr', {}, h('td', {}, h('a', { href: `#/nodes/${encodeURIComponent(i.node)}` }, i.node)),
        h('td', {}, i.serial), h('td', {}, h('code', {}, i.fingerprint)), h('td', {}, i.notAfter), h('td', {}, i.revoked ? 'yes' : 'no')))))
      : h('p', { class: 'muted' }, 'No device has enrolled yet.'));
  }, (e) => replace(el, h('p', { class: 'note error' }, errorText(e))));
  return el;
}

export function mount(main) {
  const msg = h('p', { class: 'note', role: 'status' });
  const secret = h('div');
  const table = tokenTable('bootstrap', msg);
  const uses = h('input', { id: 'boot-uses', type: 'number', min: '1', max: '10000', value: '1', required: true, inputmode: 'numeric' });
  const ttl = h('input', { id: 'boot-ttl', value: '24h', pattern: '[0-9]+[smhd]', required: true, spellcheck: 'false' });
  const labels = h('input', { id: 'boot-labels', placeholder: 'site=north, role=camera', spellcheck: 'false' });
  const desc = h('input', { id: 'boot-desc', maxlength: '200', placeholder: 'e.g. batch of 20 cameras' });
  const broker = h('input', { id: 'boot-broker', value: `ssl://${location.hostname}:8883`, spellcheck: 'false', required: true });
  const agentDir = h('input', { id: 'boot-agents', value: './agents', spellcheck: 'false', required: true });
  const form = h('form', { class: 'form card', 'aria-labelledby': 'boot-new' },
    h('h2', { id: 'boot-new' }, 'New bootstrap token'),
    h('label', { for: 'boot-uses' }, 'Devices it may enrol'), uses,
    h('label', { for: 'boot-ttl' }, 'Valid for (e.g. 24h, 7d)'), ttl,
    h('label', { for: 'boot-labels' }, 'Labels of their nodes (key=value, comma separated)'), labels,
    h('label', { for: 'boot-desc' }, 'Description'), desc,
    h('label', { for: 'boot-broker' }, 'Broker the devices reach (for the command line)'), broker,
    h('label', { for: 'boot-agents' }, 'Folder of the drover-agent-<arch> binaries (for the command line)'), agentDir,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create bootstrap token')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    let lab;
    try { lab = parseLabels(labels.value); } catch (err) { note(msg, err.message, 'error'); labels.focus(); return; }
    note(msg, 'Creating…');
    try {
      const body = { kind: 'bootstrap', uses: Number(uses.value), ttl: ttl.value.trim(), labels: lab };
      if (desc.value.trim()) body.description = desc.value.trim();
      const t = await request('POST', TOKENS, { body });
      const file = `bootstrap-${t.id}.token`;
      note(msg, `Bootstrap token ${t.id} created: ${t.usesLeft ?? uses.value} device${Number(uses.value) === 1 ? '' : 's'}, until ${t.expires}.`, 'ok');
      replace(secret, secretBox(`Bootstrap token ${t.id}`, [
        ['1. Save the token in a file (mode 600):', `umask 077; printf '%s\\n' '${t.token}' > ${file}`, 'secret-token'],
        ['2. Write it, the agent and the hub\'s address into each disk image:', flashCommand({ agentDir: agentDir.value.trim(), broker: broker.value.trim(), labels: lab, tokenFile: file }), 'secret-cmd'],
      ]), h('p', {}, '3. Boot the devices: each enrols once and shows up under Nodes.'));
      table.reload();
    } catch (err) {
      note(msg, errorText(err), 'error');
    }
  });
  main.append(h('h1', {}, 'Enrol devices'), msg, secret, form,
    h('h2', {}, 'Bootstrap tokens'), table.el, h('h2', {}, 'Device identities'), identities());
}
