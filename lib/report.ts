// `retrograd report`: a self-contained HTML page (inline SVG, no script, no network) with the loss and
// accuracy curves of a training History.
import type { History } from './train/types.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e'];

function escape(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** One SVG line chart of the given series over epochs. */
export function lineChart(title: string, series: [string, number[]][], width = 640, height = 320): string {
  const pad = { l: 56, r: 16, t: 32, b: 40 };
  // loops, not Math.min(...values): spreading a long History's values overflows the call stack
  let lo = Infinity, hi = -Infinity, n = 1;
  for (const [, v] of series) {
    n = Math.max(n, v.length);
    for (const val of v) {
      if (!Number.isFinite(val)) continue;
      if (val < lo) lo = val;
      if (val > hi) hi = val;
    }
  }
  if (lo > hi) [lo, hi] = [0, 1];
  if (hi === lo) [lo, hi] = [lo - 0.5, hi + 0.5];
  const x = (i: number) => pad.l + (n === 1 ? 0 : (i / (n - 1)) * (width - pad.l - pad.r));
  const y = (v: number) => pad.t + (1 - (v - lo) / (hi - lo)) * (height - pad.t - pad.b);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => lo + f * (hi - lo));
  const grid = ticks.map((v) => `<line x1="${pad.l}" x2="${width - pad.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/><text x="${pad.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${v.toPrecision(3)}</text>`).join('');
  const lines = series.map(([name, v], k) => {
    const pts = v.map((val, i) => `${x(i).toFixed(1)},${y(val).toFixed(1)}`).join(' ');
    return `<polyline class="curve" data-series="${escape(name)}" fill="none" stroke="${COLORS[k % COLORS.length]}" stroke-width="3" points="${pts}"/>` +
      `<text x="${width - pad.r - 120 * k}" y="20" text-anchor="end" font-size="12" fill="${COLORS[k % COLORS.length]}">━ ${escape(name)}</text>`;
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="${escape(title)}">` +
    `<text x="${pad.l}" y="20" font-size="14" font-weight="bold">${escape(title)}</text>${grid}` +
    `<line x1="${pad.l}" x2="${width - pad.r}" y1="${height - pad.b}" y2="${height - pad.b}" stroke="#333"/>` +
    `<text x="${(width + pad.l) / 2}" y="${height - 8}" text-anchor="middle" font-size="12">epoch (1–${n})</text>${lines}</svg>`;
}

/** The HTML report of a History: loss curves, and accuracy curves when the History has them. */
export function historyReport(history: History, title = 'retrograd training report'): string {
  const h = history.history ?? {};
  const pick = (keys: string[]) => keys.filter((k) => Array.isArray(h[k])).map((k) => [k, h[k]] as [string, number[]]);
  const charts = [lineChart('Loss', pick(['loss', 'val_loss']))];
  if (h.accuracy || h.val_accuracy) charts.push(lineChart('Accuracy', pick(['accuracy', 'val_accuracy'])));
  const last = Object.entries(h).filter(([k]) => !k.includes('/')).map(([k, v]) => `<tr><td>${escape(k)}</td><td>${v.at(-1)?.toPrecision(5) ?? ''}</td></tr>`).join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title>` +
    `<style>body{font-family:sans-serif;margin:24px;background:#fff}svg{display:block;margin:12px 0}td{padding:2px 12px}</style></head>` +
    `<body><h1>${escape(title)}</h1>${charts.join('')}<h2>Last epoch</h2><table>${last}</table></body></html>`;
}
