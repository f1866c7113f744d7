// A small SVG line chart of a usage history; null values leave a gap.
const NS = 'http://www.w3.org/2000/svg';
const W = 600;
const H = 120;

function svg(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

// points: [{time, value}] (value may be null); fmt: value -> text for the axis.
export function lineChart(points, { label, fmt }) {
  const el = svg('svg', { viewBox: `0 0 ${W} ${H + 20}`, class: 'chart', role: 'img', 'aria-label': label });
  const vals = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
  if (points.length < 2 || !vals.length) {
    const t = svg('text', { x: 8, y: 24, class: 'axis' });
    t.textContent = `${label}: no history yet`;
    el.append(t);
    return el;
  }
  const t0 = points[0].time;
  const t1 = points[points.length - 1].time;
  const max = Math.max(...vals) * 1.1 || 1;
  const x = (t) => ((t - t0) / Math.max(1, t1 - t0)) * W;
  const y = (v) => H - (v / max) * H;
  let d = '';
  let pen = false;
  for (const p of points) {
    if (p.value === null || p.value === undefined) { pen = false; continue; }
    d += `${pen ? 'L' : 'M'}${x(p.time).toFixed(1)},${y(p.value).toFixed(1)}`;
    pen = true;
  }
  el.append(svg('line', { x1: 0, y1: H, x2: W, y2: H, class: 'base' }), svg('path', { d, class: 'line' }));
  const top = svg('text', { x: 4, y: 12, class: 'axis' });
  top.textContent = `${label} (max ${fmt(Math.max(...vals))})`;
  const from = svg('text', { x: 4, y: H + 16, class: 'axis' });
  from.textContent = new Date(t0).toLocaleTimeString();
  const to = svg('text', { x: W - 4, y: H + 16, class: 'axis end' });
  to.textContent = new Date(t1).toLocaleTimeString();
  el.append(top, from, to);
  return el;
}

// Kubernetes quantities: "1500m", "2" (cpu cores); "512Ki", "1Gi", "1000000" (bytes).
const SUFFIX = { n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };
export function quantity(q) {
  const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(String(q || ''));
  return m ? Number(m[1]) * (SUFFIX[m[2]] || 1) : NaN;
}

export const fmtCores = (c) => (c >= 1 ? `${c.toFixed(2)} cores` : `${Math.round(c * 1000)}m`);
export function fmtBytes(b) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${units[i]}`;
}
