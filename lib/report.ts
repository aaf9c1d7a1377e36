// `retrograd report` and the live dashboard's panels: self-contained SVG line charts (no script, no network) of a
// training History — loss, accuracy, the learning rate, gradient norms and update ratios per parameter (fit's
// `diagnostics`), throughput — with axes whose ticks fall on round numbers, labelled once each.
import type { History } from './train/types.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** Text made safe for HTML (element content and attribute values). */
export function escape(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/**
 * Round tick values covering [lo, hi]: a step of 1, 2 or 5 × 10^k giving about `count` ticks, and the decimals that
 * step needs, so that no two ticks print alike (a narrow range gets finer steps, never repeated labels).
 */
export function niceTicks(lo: number, hi: number, count = 5): { values: number[]; lo: number; hi: number; decimals: number } {
  if (!(hi > lo)) [lo, hi] = [lo - 0.5, lo + 0.5];
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const first = Math.floor(lo / step + 1e-9) * step, last = Math.ceil(hi / step - 1e-9) * step;
  const values: number[] = [];
  for (let v = first; v <= last + step * 1e-6; v += step) values.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return { values, lo: first, hi: last, decimals };
}

function label(v: number, decimals: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-4)) return v.toExponential(1);
  return v.toFixed(Math.min(decimals, 10));
}

export interface ChartOptions {
  width?: number;
  height?: number;
  /** The x axis's name (default 'epoch'); its ticks label positions from 1. */
  xLabel?: string;
  /** A log₁₀ y axis (for gradient norms that span decades); non-positive values are left out. */
  log?: boolean;
}

/** One SVG line chart of the given series over epochs (or steps), with round ticks on both axes. */
export function lineChart(title: string, series: [string, number[]][], options: ChartOptions = {}): string {
  const { width = 640, height = 320, xLabel = 'epoch', log = false } = options;
  const pad = { l: 64, r: 16, t: 40, b: 44 };
  const f = (v: number) => (log ? (v > 0 ? Math.log10(v) : NaN) : v);
  // loops, not Math.min(...values): spreading a long History's values overflows the call stack
  let lo = Infinity, hi = -Infinity, n = 1;
  for (const [, v] of series) {
    n = Math.max(n, v.length);
    for (const raw of v) {
      const val = f(raw);
      if (!Number.isFinite(val)) continue;
      if (val < lo) lo = val;
      if (val > hi) hi = val;
    }
  }
  if (lo > hi) [lo, hi] = [0, 1];
  const yt = log ? niceTicks(Math.floor(lo), Math.max(Math.ceil(hi), Math.floor(lo) + 1), Math.min(6, Math.ceil(hi) - Math.floor(lo) + 1)) : niceTicks(lo, hi);
  const x = (i: number) => pad.l + (n === 1 ? (width - pad.l - pad.r) / 2 : (i / (n - 1)) * (width - pad.l - pad.r));
  const y = (v: number) => pad.t + (1 - (v - yt.lo) / (yt.hi - yt.lo)) * (height - pad.t - pad.b);
  const yGrid = yt.values.map((v) => {
    const text = log ? (Number.isInteger(v) ? `1e${v}` : '') : label(v, yt.decimals);
    return `<line x1="${pad.l}" x2="${width - pad.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e3e3e3"/>` +
      `<text class="ytick" x="${pad.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${text}</text>`;
  }).join('');
  // x ticks at round positions 1 … n (positions are 1-based for people: epoch 1 is the first)
  const xt = niceTicks(1, Math.max(n, 2), Math.min(8, Math.max(n, 2)));
  const xTicks = xt.values.filter((v) => Number.isInteger(v) && v >= 1 && v <= n).map((v) =>
    `<line x1="${x(v - 1).toFixed(1)}" x2="${x(v - 1).toFixed(1)}" y1="${height - pad.b}" y2="${height - pad.b + 5}" stroke="#333"/>` +
    `<text class="xtick" x="${x(v - 1).toFixed(1)}" y="${height - pad.b + 17}" text-anchor="middle" font-size="11">${v}</text>`).join('');
  const legendWidth = Math.max(90, Math.floor((width - pad.l - pad.r) / Math.max(1, series.length)));
  const lines = series.map(([name, v], k) => {
    const pts = v.map((raw, i) => [i, f(raw)] as const).filter(([, val]) => Number.isFinite(val)).map(([i, val]) => `${x(i).toFixed(1)},${y(val).toFixed(1)}`).join(' ');
    const color = COLORS[k % COLORS.length];
    return `<polyline class="curve" data-series="${escape(name)}" fill="none" stroke="${color}" stroke-width="${series.length > 4 ? 2 : 3}" points="${pts}"/>` +
      (k < 8 ? `<text x="${pad.l + legendWidth * k}" y="34" font-size="11" fill="${color}">━ ${escape(name.length > 24 ? `…${name.slice(-23)}` : name)}</text>` : '');
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="${escape(title)}">` +
    `<text x="${pad.l}" y="16" font-size="14" font-weight="bold">${escape(title)}${log ? ' (log scale)' : ''}</text>${yGrid}` +
    `<line x1="${pad.l}" x2="${pad.l}" y1="${pad.t}" y2="${height - pad.b}" stroke="#333"/>` +
    `<line x1="${pad.l}" x2="${width - pad.r}" y1="${height - pad.b}" y2="${height - pad.b}" stroke="#333"/>${xTicks}` +
    `<text x="${(width + pad.l) / 2}" y="${height - 6}" text-anchor="middle" font-size="12">${escape(xLabel)}</text>${lines}</svg>`;
}

/** The panels of a History: loss, accuracy, learning rate, gradient norms, update ratios, throughput (those it has). */
export function historyPanels(history: History, extra: { batchLoss?: number[] } = {}): string[] {
  const h = history.history ?? {};
  const pick = (keys: string[]) => keys.filter((k) => Array.isArray(h[k])).map((k) => [k, h[k]] as [string, number[]]);
  const prefixed = (p: string) => Object.keys(h).filter((k) => k.startsWith(p)).map((k) => [k.slice(p.length), h[k]] as [string, number[]]);
  const charts: string[] = [];
  if (extra.batchLoss?.length) charts.push(lineChart('Loss per batch', [['loss', extra.batchLoss]], { xLabel: 'step' }));
  charts.push(lineChart('Loss', pick(['loss', 'val_loss'])));
  const metrics = Object.keys(h).filter((k) => !k.includes('/') && !['loss', 'val_loss', 'lr', 'samples_per_second'].includes(k) && !k.startsWith('val_'));
  for (const m of metrics) charts.push(lineChart(m[0].toUpperCase() + m.slice(1), pick([m, `val_${m}`])));
  if (h.lr) charts.push(lineChart('Learning rate', pick(['lr'])));
  const grads = prefixed('grad_norm/');
  if (grads.length) charts.push(lineChart('Gradient norm per parameter', grads, { log: true }));
  const updates = prefixed('update_ratio/');
  if (updates.length) charts.push(lineChart('Update / weight ratio per parameter', updates, { log: true }));
  if (h.samples_per_second) charts.push(lineChart('Throughput (samples/s)', pick(['samples_per_second'])));
  return charts;
}

/** The last epoch's values of the History's plain metrics, as table rows. */
export function lastEpochRows(history: History): string {
  return Object.entries(history.history ?? {}).filter(([k]) => !k.includes('/')).map(([k, v]) => `<tr><td>${escape(k)}</td><td>${v.at(-1)?.toPrecision(5) ?? ''}</td></tr>`).join('');
}

export const REPORT_STYLE = 'body{font-family:sans-serif;margin:24px;background:#fff}svg{display:block;margin:12px 0}td{padding:2px 12px}';

/** The HTML report of a History: every panel it has data for, and the last epoch's values. */
export function historyReport(history: History, title = 'retrograd training report'): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title>` +
    `<style>${REPORT_STYLE}</style></head>` +
    `<body><h1>${escape(title)}</h1>${historyPanels(history).join('')}<h2>Last epoch</h2><table>${lastEpochRows(history)}</table></body></html>`;
}
