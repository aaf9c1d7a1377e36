// The HTML report as a person sees it: headless Chromium (Debian's) renders it to a PNG, and the plotted
// curves must be there — pixels of each series' colour across the chart areas. Without Chromium it skips, saying
// why, and fails in CI (.ci/run installs it).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { expect, it } from 'vitest';
import { historyReport } from '../lib/report.js';
import { requireOrSkip } from './helpers.js';

const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const haveChromium = requireOrSkip('Chromium', chromium !== undefined, 'no Chromium at /usr/bin/chromium or /usr/bin/chromium-browser (apt-get install chromium)');

it.skipIf(!haveChromium)('headless Chromium draws the loss and accuracy curves of the report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'retrograd-report-'));
  try {
    drawAndCheck(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true }); // the report, the screenshot and Chromium's profile
  }
}, 90_000);

function drawAndCheck(dir: string): void {
  const epochs = 12;
  const history = {
    epoch: Array.from({ length: epochs }, (_, i) => i),
    history: {
      loss: Array.from({ length: epochs }, (_, i) => 2 * Math.exp(-i / 3)),
      val_loss: Array.from({ length: epochs }, (_, i) => 2.2 * Math.exp(-i / 4)),
      accuracy: Array.from({ length: epochs }, (_, i) => 1 - 0.8 * Math.exp(-i / 3)),
      val_accuracy: Array.from({ length: epochs }, (_, i) => 0.95 - 0.8 * Math.exp(-i / 4)),
    },
  };
  writeFileSync(join(dir, 'report.html'), historyReport(history));
  const png = join(dir, 'shot.png');
  execFileSync(chromium!, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${join(dir, 'profile')}`,
    '--window-size=800,1000', `--screenshot=${png}`, `file://${join(dir, 'report.html')}`,
  ], { stdio: 'ignore', timeout: 60_000 });
  const image = PNG.sync.read(readFileSync(png));
  const count = (hex: string) => {
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    const rows = new Set<number>();
    let n = 0;
    for (let y = 0; y < image.height; y++)
      for (let x = 0; x < image.width; x++) {
        const i = (y * image.width + x) * 4;
        if (Math.abs(image.data[i] - r) < 24 && Math.abs(image.data[i + 1] - g) < 24 && Math.abs(image.data[i + 2] - b) < 24) {
          n++;
          rows.add(y);
        }
      }
    return { n, rows: rows.size };
  };
  const blue = count('#1f77b4'), red = count('#d62728');
  // each series is drawn in both charts: many pixels, spread over many rows (a falling and a rising curve)
  expect(blue.n).toBeGreaterThan(500);
  expect(red.n).toBeGreaterThan(500);
  expect(blue.rows).toBeGreaterThan(100);
  expect(red.rows).toBeGreaterThan(100);
}
