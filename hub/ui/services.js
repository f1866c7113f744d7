// Services: every Service of the fleet, live, with its address, ports as kubectl prints them and
// how many of its endpoints (from its EndpointSlices) are ready; and the NetworkPolicies.
import { store, subscribe, endpointsByService } from './model.js';
import { h, replace, badge } from './dom.js';

export const serviceHref = (s) => `#/services/${encodeURIComponent(s.ns)}/${encodeURIComponent(s.name)}`;
const byKey = (a, b) => (a.key < b.key ? -1 : 1);

// kubectl's PORT(S): "80/TCP", "80:30080/TCP" when the port has a NodePort.
export const portsText = (s) =>
  s.ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol}`).join(', ') || '<none>';

// "None" for a headless Service, as kubectl prints it.
export const clusterIPText = (s) => (s.clusterIP === 'None' ? 'None (headless)' : s.clusterIP || '<pending>');

// "ready/total" of a Service's endpoints (eps: its endpoints, from endpointsByService).
export function endpointsBadge(s, eps) {
  const ready = eps.filter((e) => e.ready).length;
  const text = `${ready}/${eps.length}`;
  if (!s.selector && !eps.length) return h('span', { class: 'muted', title: 'no selector: endpoints are set by hand' }, '—');
  return badge(text, ready ? (ready === eps.length ? 'ok' : 'warn') : 'bad');
}

function serviceTable(rows) {
  const eps = endpointsByService();
  if (!rows.length) return h('p', { class: 'muted' }, 'None.');
  return h('table', { class: 'services' },
    h('thead', {}, h('tr', {}, ['Service', 'Type', 'Cluster IP', 'External', 'Ports', 'Endpoints'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((s) => h('tr', { 'data-service': s.key },
      h('td', {}, h('a', { href: serviceHref(s) }, `${s.ns}/${s.name}`)),
      h('td', {}, s.type),
      h('td', {}, h('code', {}, clusterIPText(s))),
      h('td', {}, s.external.join(', ') || (s.type === 'LoadBalancer' ? '<pending>' : '')),
      h('td', {}, h('code', {}, portsText(s))),
      h('td', { class: 'num' }, endpointsBadge(s, eps.get(s.key) || []))))));
}

function policyTable(rows) {
  if (!rows.length) return h('p', { class: 'muted' }, 'None: every pod accepts and sends all traffic.');
  return h('table', { class: 'policies' },
    h('thead', {}, h('tr', {}, ['Policy', 'Pod selector', 'Types', 'Ingress rules', 'Egress rules'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((p) => h('tr', { 'data-policy': p.key },
      h('td', {}, `${p.ns}/${p.name}`),
      h('td', {}, h('code', {}, p.selector)),
      h('td', {}, p.types.join(', ')),
      h('td', { class: 'num' }, p.types.includes('Ingress') ? String(p.ingress) : '—'),
      h('td', { class: 'num' }, p.types.includes('Egress') ? String(p.egress) : '—')))));
}

export function mount(main) {
  const svcs = h('section', { 'aria-labelledby': 'svc-title' });
  const pols = h('section', { 'aria-labelledby': 'pol-title' });
  main.append(h('h1', {}, 'Services'), svcs, pols);
  function draw() {
    replace(svcs, h('h2', { id: 'svc-title' }, `Services (${store.services.size})`),
      serviceTable([...store.services.values()].sort(byKey)));
    replace(pols, h('h2', { id: 'pol-title' }, `Network policies (${store.networkpolicies.size})`),
      policyTable([...store.networkpolicies.values()].sort(byKey)));
  }
  draw();
  return subscribe((k) => { if (['services', 'endpointslices', 'networkpolicies'].some((x) => k.has(x))) draw(); });
}
