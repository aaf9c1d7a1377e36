// The live dashboard: a fit with `dashboard` serves a page from the training process; headless Chromium (Debian's)
// loads it while the fit runs. The page's script must fetch and redraw the panels (the shell it loads has none) and
// keep polling, and a later load must show more epochs than an earlier one: the page follows training as it goes.
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { requireBuiltDist, requireOrSkip, rg, root } from './helpers.js';

const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const haveChromium = requireOrSkip('Chromium', chromium !== undefined, 'no Chromium at /usr/bin/chromium or /usr/bin/chromium-browser (apt-get install chromium)');
const dir = mkdtempSync(join(tmpdir(), 'retrograd-dashboard-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The DOM of `url` after the page's scripts ran for `ms` of virtual time. */
async function dom(url: string, profile: string, ms = 4000): Promise<string> {
  const { stdout } = await promisify(execFile)(chromium!, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${join(dir, profile)}`, `--virtual-time-budget=${ms}`, '--dump-dom', url,
  ], { timeout: 60_000, maxBuffer: 1 << 26 });
  return stdout;
}
const attr = (html: string, name: string) => Number(new RegExp(`${name}="(\\d+)"`).exec(html)?.[1] ?? NaN);

describe.runIf(haveChromium)('the live dashboard in headless Chromium', () => {
  it('follows a fit as it runs: panels drawn by the page, more epochs on a later look, the numbers at /state', async () => {
    requireBuiltDist();
    // a fit slowed to about 150 ms per epoch, in a process of its own, with the dashboard on a free port
    const script = join(dir, 'train.mjs');
    writeFileSync(script, [
      `import * as rg from '${pathToFileURL(join(root, 'dist', 'index.js')).href}';`,
      'import { setTimeout as sleep } from "node:timers/promises";',
      'rg.manualSeed(1);',
      'const x = rg.randn([256, 8]), y = rg.randint(0, 4, [256]);',
      'const model = new rg.Sequential([new rg.Linear(8, 16), new rg.ReLU(), new rg.Linear(16, 4)]);',
      "model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 0.01 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });",
      'const slow = { onEpochEnd: () => sleep(150) };',
      "await model.fit(x, y, { epochs: 60, batchSize: 32, verbose: 0, diagnostics: true, validationData: [x, y], callbacks: [new rg.LearningRateScheduler((e, lr) => lr * 0.97), slow], dashboard: 0 });",
      "console.log('done');",
    ].join('\n'));
    const child = spawn(process.execPath, [script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += String(d); });
    child.stderr.on('data', (d) => { err += String(d); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const t = setInterval(() => {
          const m = /dashboard: (http:\/\/\S+)/.exec(out);
          if (m) { clearInterval(t); resolve(m[1]); }
        }, 20);
        setTimeout(() => { clearInterval(t); reject(new Error(`no dashboard address within 20 s; stdout: ${out}; stderr: ${err}`)); }, 20_000);
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const shell = await (await fetch(url)).text();
      expect(shell).not.toContain('class="curve"'); // the shell has no charts: the page's script draws them
      await new Promise((r) => setTimeout(r, 1500));
      const first = await dom(url, 'p1');
      await new Promise((r) => setTimeout(r, 2000));
      const second = await dom(url, 'p2');
      for (const page of [first, second]) {
        expect(attr(page, 'data-refreshes')).toBeGreaterThanOrEqual(2); // fetched, and fetched again
        expect(page).toMatch(/data-state="training"/);
        for (const panel of ['Loss per batch', 'Loss', 'Accuracy', 'Learning rate', 'Gradient norm per parameter', 'Throughput (samples/s)'])
          expect(page).toContain(`aria-label="${panel}"`);
        expect(page).toContain('<polyline class="curve" data-series="val_loss"');
      }
      expect(attr(first, 'data-epochs')).toBeGreaterThanOrEqual(1);
      expect(attr(second, 'data-epochs')).toBeGreaterThan(attr(first, 'data-epochs'));
      const state = await (await fetch(`${url}state`)).json() as { state: string; epochs: number; history: { history: Record<string, number[]> } };
      expect(state.epochs).toBeGreaterThanOrEqual(attr(second, 'data-epochs'));
      expect(state.history.history.lr.length).toBe(state.epochs);
      expect(state.history.history.lr.at(-1)).toBeLessThan(0.01);
      expect(await exited).toBe(0);
      expect(out).toContain('done');
      await expect(fetch(url)).rejects.toThrow(); // training over: the server stopped
    } finally {
      child.kill();
    }
  }, 120_000);
});

describe('Dashboard options', () => {
  it('checks what it is given', async () => {
    expect(() => new rg.Dashboard({ port: 70000 })).toThrow('Dashboard: port must be an integer in 0…65535, got number 70000');
    expect(() => new rg.Dashboard({ prot: 1 } as never)).toThrow(/unknown option 'prot' \(did you mean 'port'\?\)/);
    const a = new rg.Dashboard({ announce: false });
    const url = await a.start();
    const taken = Number(new URL(url).port);
    await expect(new rg.Dashboard({ port: taken, announce: false }).start()).rejects.toThrow(new RegExp(`Dashboard: cannot listen on 127\\.0\\.0\\.1:${taken}: .*EADDRINUSE`));
    expect((await fetch(`${url}nothing`)).status).toBe(404);
    await a.close();
  });
});
