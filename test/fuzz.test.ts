// The addon's own checks: every native entry point called with wrong types, lengths, dtypes, disposed and
// null handles must throw a JavaScript RetrogradError (code INVALID_ARGUMENT) — never crash the process.
import { describe, expect, it } from 'vitest';
import { KERNEL_NAMES } from '../lib/backend.js';
import { loadCpuAddon } from '../lib/backends/cpu.js';
import { cpuAddonPath, requireCpu, rg, rng } from './helpers.js';

const cpuAvailable = requireCpu();

describe.skipIf(!cpuAvailable)('native entry points never crash on bad arguments', () => {
  const a = cpuAvailable ? (loadCpuAddon() as unknown as Record<string, (...args: unknown[]) => unknown> & { kernels: string[] }) : undefined!;

  const junk = (): unknown[] => {
    const disposed = a.alloc('float32', 4) as { dispose(): void };
    disposed.dispose();
    return [undefined, null, 0, -1, 1.5, NaN, Infinity, 2 ** 40, 'float32', 'x', {}, [], [1, 2], () => 1, Symbol('s'), 10n,
      new Float64Array(3), new Uint8Array(3), new Int32Array(2), new Float32Array(2), disposed, a.alloc('int32', 3), a.alloc('float32', 0), true];
  };

  function expectClean(fn: () => unknown): void {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(Error);
      expect(typeof (e as Error).message).toBe('string');
      if (e instanceof rg.RetrogradError) expect(['INVALID_ARGUMENT', 'OUT_OF_MEMORY']).toContain(e.code);
    }
  }

  it('alloc, fromHost, write, read, readAsync, sync, setErrorClass with junk', async () => {
    for (const fn of ['alloc', 'fromHost', 'write', 'read', 'readAsync', 'sync', 'syncAsync', 'info', 'memory', 'run', 'release',
      'allReduceStart', 'allReduceWait', 'allReduceTimes', 'broadcastStart', 'deviceCollectivesId', 'deviceCollectivesInit']) {
      for (const x of junk()) {
        for (const y of [undefined, ...junk().slice(0, 12)]) {
          expectClean(() => {
            const r = a[fn](x, y);
            if (r instanceof Promise) r.catch(() => {});
          });
        }
      }
    }
    expect(() => a.alloc('float64', 3)).toThrow(/dtype must be 'float32' or 'int32' \(or 0 or 1\)/);
    expect(() => a.alloc('float32', -1)).toThrow(/size must be an integer/);
    expect(() => a.read({})).toThrow(/read: expected a native storage/);
    const s = a.alloc('float32', 3) as { dispose(): void };
    s.dispose();
    expect(() => a.read(s)).toThrow(/read: the tensor has been disposed/);
    expect(() => a.write(a.alloc('float32', 3), new Float32Array(2))).toThrow(/write: expected 3 elements/);
    // the backend's external handles: read, written, run and released like storages; a released one is refused
    const e = a.fromHost(Float32Array.of(1, 2, 3), true);
    a.run(a.kernels.indexOf('fill'), e, 2, 7);
    expect(Array.from(a.read(e) as Float32Array)).toEqual([7, 7, 3]);
    a.release(e);
    a.release(e); // twice: nothing more to free
    expect(() => a.read(e)).toThrow(/read: the tensor has been disposed/);
    expect(() => a.run(a.kernels.indexOf('fill'), e, 2, 7)).toThrow(/fill, argument 0 \(out\): the tensor has been disposed/);
    expect(() => a.release({})).toThrow(/release: expected a native storage/);
    expect(() => a.release(s)).not.toThrow(); // a disposed NativeStorage
    // the collectives' entry points (rg.distributed): only the MPI addon's tagged table, and handles they made
    expect(() => a.allReduceStart({}, [], false, [1])).toThrow(/allReduceStart: expected \(the MPI addon's collectives table or 'device', storages, mean, shape\)/);
    expect(() => a.allReduceStart('device', [{}], false, [1])).toThrow(/allReduceStart: storage 0: expected a native storage/);
    expect(() => a.allReduceStart('device', [a.alloc('int32', 2)], false, [2])).toThrow(/allReduceStart: storage 0 is not float32/);
    expect(() => a.allReduceStart('device', [a.alloc('float32', 2)], false, [3])).toThrow(/the shape's element count differs/);
    expect(() => a.broadcastStart('device', [], 0, [1])).toThrow(/broadcastStart: expected \(the MPI addon's collectives table, storages, root, shape\)/);
    expect(() => a.allReduceWait({})).toThrow(/allReduceWait: expected a handle from allReduceStart/);
    expect(() => a.allReduceTimes(a.alloc('float32', 1))).toThrow(/allReduceTimes: expected a handle from allReduceStart/);
    expect(() => a.deviceCollectivesId()).toThrow(/the CPU's collectives go through MPI/);
    await a.syncAsync();
  });

  it('every kernel: wrong counts, types, dtypes, short buffers and bad sizes', () => {
    expect(a.kernels).toEqual([...KERNEL_NAMES]);
    const f = (n: number) => a.alloc('float32', n);
    a.kernels.forEach((name, k) => {
      // too few and too many arguments
      expect(() => a.run(k)).toThrow(new RegExp(`${name}: expected \\d+ arguments, got 0`));
      expect(() => a.run(k, ...Array(25).fill(0))).toThrow(/arguments/);
      // a plausible call with every buffer too short and every size 3
      const kinds = junk();
      for (let trial = 0; trial < 60; trial++) {
        const r = rng(trial * 31 + k);
        const argc = [3, 4, 5, 7, 8, 9, 10, 11, 15][Math.floor(r() * 9)];
        const args = Array.from({ length: argc }, () => (r() < 0.5 ? kinds[Math.floor(r() * kinds.length)] : r() < 0.5 ? f(Math.floor(r() * 4)) : Math.floor(r() * 4)));
        expectClean(() => a.run(k, ...args));
      }
    });
    expect(() => a.run(999)).toThrow(/unknown kernel index/);
    expect(() => a.run('matmul')).toThrow(/kernel index/);
    // matmul with buffers one element short
    const mm = a.kernels.indexOf('matmul');
    expect(() => a.run(mm, f(6), f(5), f(4), 3, 2, 2, false, false, 1, 0)).toThrow('matmul: buffer 1 (a) holds 5 elements, needs 6');
    expect(() => a.run(mm, f(6), f(6), f(4), 3, 2, -2, false, false, 1, 0)).toThrow(/argument 5 \(K\): expected an integer size/);
    expect(() => a.run(mm, f(6), f(6), f(4), 3, 2, 2, 0, false, 1, 0)).toThrow(/argument 6 \(transA\): expected a boolean/);
    expect(() => a.run(mm, a.alloc('int32', 6), f(6), f(4), 3, 2, 2, false, false, 1, 0)).toThrow(/expected a float32 storage, got int32/);
    // an index buffer that points outside the source is reported at the next read, naming the kernel
    const g = a.kernels.indexOf('gather_rows');
    const idx = a.fromHost(Int32Array.of(0, 9));
    a.run(g, f(4), f(8), idx, 2, 2, 4, 0);
    expect(() => a.sync()).toThrow(/gather_rows: row index 9 is outside \[0, 4\)/);
    a.sync(); // the error was taken: the queue works again
  });

  it('addon errors are RetrogradErrors with a stable code', () => {
    try {
      a.read({ size: 3, dtype: 'float32' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(rg.RetrogradError);
      expect((e as rg.RetrogradError).code).toBe('INVALID_ARGUMENT');
      expect((e as Error).message).toMatch(/read: expected a native storage/);
    }
  });
});

describe.skipIf(!cpuAvailable)('the addon in worker threads', () => {
  it('loads per environment: two workers compute at once, exit, and the main thread goes on', async () => {
    const { Worker } = await import('node:worker_threads');
    const addonPath = cpuAddonPath();
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const a = require(workerData.addonPath);
      const n = 64, A = a.fromHost(Float32Array.from({ length: n * n }, (_, i) => (i % 7) - 3)), C = a.alloc('float32', n * n);
      const mm = a.kernels.indexOf('matmul');
      for (let r = 0; r < 50; r++) a.run(mm, C, A, A, n, n, n, false, false, 1, 0);
      a.readAsync(C).then((c) => parentPort.postMessage(c.reduce((s, v) => s + v, 0)));`;
    const sums = await Promise.all([0, 1].map(() => new Promise<number>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { addonPath } });
      w.once('message', (m: number) => { resolve(m); void w.terminate(); });
      w.once('error', reject);
    })));
    expect(sums[0]).toBe(sums[1]);
    expect(sums[0]).not.toBe(0);
    rg.setBackend('cpu');
    expect(rg.tensor([1, 2], [2]).toArray()[1]).toBe(2);
  });
});
