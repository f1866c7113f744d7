// The hub's public API as the dashboard uses it: same-origin fetch carrying the session cookie,
// the CSRF token on every write, Kubernetes-style paging. The session's CSRF token and role
// live only in this module's memory; the API token itself is never kept.

export const session = { role: '', tokenId: '', expires: '', csrf: '' };

// The hub's clock, estimated from the HTTP Date header until the stream's HEARTBEAT sets it.
export const clock = {
  offset: 0,
  precise: false,
  now() { return Date.now() + this.offset; },
  set(hubMs, precise) {
    if (!Number.isFinite(hubMs) || (this.precise && !precise)) return;
    this.offset = hubMs - Date.now();
    this.precise = this.precise || precise;
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || (typeof body === 'string' && body) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

let onSignedOut = () => {};
export function whenSignedOut(fn) { onSignedOut = fn; }

function remember(s) {
  session.role = s ? s.role : '';
  session.tokenId = s ? s.tokenId : '';
  session.expires = s ? s.expires : '';
  session.csrf = s ? s.csrfToken : '';
}

// A change of the machine's network (a link or address coming or going: Wi-Fi, VPN, ...)
// aborts the requests in flight without an answer. Those that may be sent twice (all but the
// POSTs that create something new each time) are tried again, twice, before giving up.
const RETRY_POST = ['/apis/drover.io/v1/apply', '/apis/drover.io/v1/session'];
async function fetchRetrying(path, init, again) {
  for (let i = 0; ; i++) {
    try {
      return await fetch(path, init);
    } catch (e) {
      if (!again || i >= 2 || (init.signal && init.signal.aborted) || e.name === 'AbortError') throw e;
      await new Promise((r) => setTimeout(r, 300 * (i + 1)));
    }
  }
}

export async function request(method, path, { body, type = 'application/json', signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = session.csrf;
  if (body !== undefined) headers['Content-Type'] = type;
  const init = {
    method, headers, signal, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined || typeof body === 'string' ? body : JSON.stringify(body),
  };
  const res = await fetchRetrying(path, init, method !== 'POST' || RETRY_POST.some((p) => path.startsWith(p)));
  clock.set(Date.parse(res.headers.get('Date')), false);
  const text = await res.text();
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch { /* plain text */ }
  if (!res.ok) {
    if (res.status === 401 && session.role && !path.endsWith('/session')) {
      remember(null);
      onSignedOut();
    }
    throw new ApiError(res.status, data);
  }
  return data;
}

const SESSION = '/apis/drover.io/v1/session';

// The current session, or null when signed out (throws when the hub cannot be reached).
export async function loadSession() {
  try {
    remember(await request('GET', SESSION));
    return session;
  } catch (e) {
    if (e.status === 401) { remember(null); return null; }
    throw e;
  }
}

export async function signIn(token) {
  remember(await request('POST', SESSION, { body: { token } }));
  return session;
}

export async function signOut() {
  try { await request('DELETE', SESSION); } finally { remember(null); }
}

export const patch = (path, obj) =>
  request('PATCH', path, { body: obj, type: 'application/merge-patch+json' });

// Every page of a collection: onPage(items, metadata) per page of 1000 (returning false stops).
export async function listPages(path, params, onPage, signal) {
  let cont = '';
  do {
    const q = new URLSearchParams(params);
    q.set('limit', '1000');
    if (cont) q.set('continue', cont);
    const page = await request('GET', `${path}?${q}`, { signal });
    if (onPage(page.items || [], page.metadata || {}) === false) return;
    cont = page.metadata && page.metadata.continue;
  } while (cont);
}

// API paths of the kinds the dashboard shows.
export const paths = {
  nodes: '/api/v1/nodes',
  pods: '/api/v1/pods',
  deployments: '/apis/apps/v1/deployments',
  daemonsets: '/apis/apps/v1/daemonsets',
  horizontalpodautoscalers: '/apis/autoscaling/v2/horizontalpodautoscalers',
  events: '/api/v1/events',
  services: '/api/v1/services',
  endpointslices: '/apis/discovery.k8s.io/v1/endpointslices',
  networkpolicies: '/apis/networking.k8s.io/v1/networkpolicies',
  statefulsets: '/apis/apps/v1/statefulsets',
  jobs: '/apis/batch/v1/jobs',
  cronjobs: '/apis/batch/v1/cronjobs',
  persistentvolumeclaims: '/api/v1/persistentvolumeclaims',
};

const NS_PREFIX = {
  pods: '/api/v1', events: '/api/v1', deployments: '/apis/apps/v1', daemonsets: '/apis/apps/v1',
  horizontalpodautoscalers: '/apis/autoscaling/v2', services: '/api/v1',
  endpointslices: '/apis/discovery.k8s.io/v1', networkpolicies: '/apis/networking.k8s.io/v1',
  statefulsets: '/apis/apps/v1', jobs: '/apis/batch/v1', cronjobs: '/apis/batch/v1',
  persistentvolumeclaims: '/api/v1',
};

export function objectPath(kind, ns, name) {
  const e = encodeURIComponent;
  if (kind === 'nodes') return `/api/v1/nodes/${e(name)}`;
  return `${NS_PREFIX[kind]}/namespaces/${e(ns)}/${kind}/${e(name)}`;
}

// The message of an error for the page (a Status' message, else the HTTP status).
export function errorText(e) {
  if (e instanceof ApiError) return `${e.status}: ${e.message}`;
  return `the hub cannot be reached (${e.message})`;
}

// What the signed-in role may do (the API checks again on every write).
export const canWrite = () => session.role === 'operator' || session.role === 'admin';
export const isAdmin = () => session.role === 'admin';
