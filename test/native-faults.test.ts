// Faults from outside the library that must not take the process down: worker threads terminated at any moment
// while they use the addon, and a system that refuses the thread pool its threads. Each runs in a child process, so
// that an abort shows as its exit status instead of killing the test runner.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { requireCpu, rg } from './helpers.js';

const cpuAvailable = requireCpu();

const cwd = new URL('..', import.meta.url).pathname;

describe.skipIf(!cpuAvailable)('native faults', () => {
  it('24 worker threads terminated at random moments (fit, predictAsync, forward loop, junk addon calls) leave the process alive and no tensor behind', () => {
    const r = spawnSync(process.execPath, ['test/worker-teardown-child.mjs', '24'], { cwd, encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).not.toMatch(/terminate called|FATAL ERROR/);
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(result.terminated).toBe(24);
    expect(result.tensorsAfter).toBe(result.tensorsBefore);
  }, 150_000);

  it('a thread pool that cannot create its threads runs with those it got and says so', () => {
    // 1,024 threads of 8 MB stacks do not fit in 8 GB of address space.
    const script = `import('retrograd').then((rg) => {
      const x = rg.tensor(Float32Array.from({ length: 64 * 96 }, (_, i) => Math.sin(i)), [64, 96]);
      const w = rg.tensor(Float32Array.from({ length: 48 * 96 }, (_, i) => Math.cos(i)), [48, 96]);
      const layer = new rg.Linear(96, 48, { bias: false });
      layer.weight.value.assign(w);
      console.log(JSON.stringify({ threads: rg.backends()[0].detail.threads, y: Array.from(layer.forward(x).toArray()) }));
    });`;
    const r = spawnSync('bash', ['-c', 'ulimit -s 8192 && ulimit -v 8000000 && exec "$0" --input-type=module -e "$1"', process.execPath, script],
      { cwd, encoding: 'utf8', timeout: 60_000, env: { ...process.env, RETROGRAD_NUM_THREADS: '1024' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/RETROGRAD_THREADS.*could create only \d+ of 1024 threads/);
    const { threads, y } = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(threads).toBeGreaterThan(0);
    expect(threads).toBeLessThan(1024);
    // the same product on the reference backend
    rg.setBackend('reference');
    try {
      const x = rg.tensor(Float32Array.from({ length: 64 * 96 }, (_, i) => Math.sin(i)), [64, 96]);
      const layer = new rg.Linear(96, 48, { bias: false });
      layer.weight.value.assign(Float32Array.from({ length: 48 * 96 }, (_, i) => Math.cos(i)));
      const want = layer.forward(x).toArray();
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(y[i] - want[i]) / (1 + Math.abs(want[i])));
      expect(worst).toBeLessThan(1e-5);
    } finally {
      rg.setBackend('cpu');
    }
  }, 90_000);
});
