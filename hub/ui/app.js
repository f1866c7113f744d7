// The dashboard's shell: session, navigation (hash routes), the live indicator.
import { loadSession, session, whenSignedOut, signOut, canWrite, isAdmin, errorText } from './api.js';
import { start, stop, live, subscribe } from './model.js';
import { h, replace } from './dom.js';
import * as signin from './signin.js';
import * as problems from './problems.js';
import * as nodes from './nodes.js';
import * as node from './node.js';
import * as workloads from './workloads.js';
import * as deployment from './deployment.js';
import * as daemonset from './daemonset.js';
import * as statefulset from './statefulset.js';
import * as cronjob from './cronjob.js';
import * as services from './services.js';
import * as service from './service.js';
import * as pods from './pods.js';
import * as pod from './pod.js';
import * as events from './events.js';
import * as apply from './apply.js';
import * as enrol from './enrol.js';
import * as tokens from './tokens.js';

// [route, nav title (none: not in the menu), list view, detail view, who may see it]
const ROUTES = [
  ['problems', 'Problems', problems],
  ['nodes', 'Nodes', nodes, node],
  ['workloads', 'Workloads', workloads],
  ['deployments', '', workloads, deployment],
  ['daemonsets', '', workloads, daemonset],
  ['statefulsets', '', workloads, statefulset],
  ['cronjobs', '', workloads, cronjob],
  ['services', 'Services', services, service],
  ['pods', 'Pods', pods, pod],
  ['events', 'Events', events],
  ['apply', 'Apply', apply, null, canWrite],
  ['enrol', 'Enrol devices', enrol, null, isAdmin],
  ['tokens', 'Tokens', tokens, null, isAdmin],
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const menu = document.getElementById('menu');
const liveEl = document.getElementById('live');
const who = document.getElementById('who');
let unmount = null;
let navigated = false; // the route changed by a link (not the first load or a sign-in)

function allowed(r) { return !r[4] || r[4](); }

function route() {
  if (unmount) unmount();
  unmount = null;
  if (!session.role) {
    unmount = signin.mount(main, () => { boot(); });
    return;
  }
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const r = ROUTES.find((x) => x[0] === parts[0] && allowed(x));
  if (!r) {
    location.replace('#/problems');
    return;
  }
  const view = parts.length > 1 && r[3] ? r[3] : r[2];
  for (const a of nav.querySelectorAll('a')) {
    const here = a.getAttribute('href') === `#/${parts[0]}`
      || (a.getAttribute('href') === '#/workloads' && ['deployments', 'daemonsets', 'statefulsets', 'cronjobs'].includes(parts[0]));
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  unmount = view.mount(main, parts.slice(1)) || null;
  // focus follows navigation: screen readers start at the new view's heading
  if (navigated) {
    const h1 = main.querySelector('h1');
    if (h1) { h1.tabIndex = -1; h1.focus(); } else main.focus();
  }
  navigated = false;
  nav.hidden = window.matchMedia('(max-width: 700px)').matches;
  menu.setAttribute('aria-expanded', String(!nav.hidden));
}

function drawChrome() {
  replace(nav, ROUTES.filter((r) => r[1] && allowed(r)).map((r) => h('a', { href: `#/${r[0]}` }, r[1])));
  replace(who, session.role ? [
    h('span', { class: 'role' }, session.role),
    h('button', { type: 'button', id: 'signout', onclick: doSignOut }, 'Sign out'),
  ] : []);
  nav.hidden = !session.role || window.matchMedia('(max-width: 700px)').matches;
  menu.hidden = !session.role;
}

const LIVE_TEXT = {
  connecting: 'Connecting…', live: 'Live', reconnecting: 'Stale · reconnecting', paused: 'Paused', stopped: '',
};

function drawLive() {
  liveEl.textContent = LIVE_TEXT[live.state] || '';
  liveEl.className = `live ${live.state}`;
  liveEl.title = live.error || '';
}

async function doSignOut() {
  try { await signOut(); } catch { /* signed out here anyway */ }
  signedOut();
}

function signedOut() {
  stop();
  drawChrome();
  route();
}

async function boot() {
  drawChrome();
  start(signedOut);
  route();
}

menu.addEventListener('click', () => {
  nav.hidden = !nav.hidden;
  menu.setAttribute('aria-expanded', String(!nav.hidden));
});
window.addEventListener('hashchange', () => { navigated = true; route(); });
whenSignedOut(signedOut);
subscribe((kinds) => { if (kinds.has('live')) drawLive(); });

// A reload stays signed in: the cookie is still there, the session gives back the CSRF token.
(async function first() {
  for (let wait = 500; ; wait = Math.min(wait * 2, 8000)) {
    try {
      if (await loadSession()) boot();
      else signedOut();
      return;
    } catch (e) {
      replace(main, h('p', { class: 'note error' }, `${errorText(e)}; trying again…`));
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}());
