// The benchmark's reporting helpers: why a peer gave no result (the error itself, not the runtime's banner), where
// results go (never inside node_modules when the bench runs from an installed package), the rounds' spread, the
// GEMM shapes it compares (the workloads' own products), and the FMA peak measurement that heads its table.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GEMM_SHAPES, peerFailure, resultsDir, shapeKey, spread, WORKLOADS } from '../bench/workloads.mjs';

describe('bench reporting', () => {
  it('names a missing peer by its missing package or its error line', () => {
    const node = "node:internal/modules/esm/resolve:873\n  throw new ERR_MODULE_NOT_FOUND(packageName);\n        ^\n\nError [ERR_MODULE_NOT_FOUND]: Cannot find package '@tensorflow/tfjs-core' imported from /x/tfjs.mjs\n    at packageResolve (node:internal)\n\nNode.js v20.20.2";
    expect(peerFailure(node, 1)).toBe('@tensorflow/tfjs-core is not installed');
    expect(peerFailure("Traceback (most recent call last):\n  File \"t.py\", line 3, in <module>\nModuleNotFoundError: No module named 'torch'", 1)).toBe('torch is not installed');
    expect(peerFailure('Traceback (most recent call last):\n  File "t.py", line 9, in step\nRuntimeError: mat1 and mat2 shapes cannot be multiplied', 1)).toBe('RuntimeError: mat1 and mat2 shapes cannot be multiplied');
    expect(peerFailure('', null)).toBe('killed (time limit)');
    expect(peerFailure('', 3)).toBe('exit 3');
  });

  it('writes results to bench/results/ in the repository, to ./retrograd-bench/ from an installed package', () => {
    expect(resultsDir('/src/retrograd/bench')).toBe('/src/retrograd/bench/results');
    expect(resultsDir('/app/node_modules/retrograd/bench')).toBe(join(process.cwd(), 'retrograd-bench'));
  });

  it('summarises the rounds as median, min and max, ignoring rounds that measured nothing', () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, samples: [3, 1, 2] });
    expect(spread([4, null, 2, undefined, NaN])).toEqual({ median: 3, min: 2, max: 4, samples: [4, 2] });
    expect(spread([])).toBeNull();
  });

  it('compares GEMMs at the shapes of the workloads\' own Linear layers', () => {
    const [w1, w2] = [WORKLOADS.W1, WORKLOADS.W2];
    const byLabel = Object.fromEntries(GEMM_SHAPES.map((s) => [s[0], s]));
    // forward x·Wᵀ: batch × out × in; input gradient dy·W: batch × in × out; weight gradient dyᵀ·x: out × in × batch
    expect(shapeKey(byLabel['W1 fc1 forward'])).toBe(`${w1.batchSize}×${w1.sizes[1]}×${w1.sizes[0]} NT`);
    expect(shapeKey(byLabel['W1 fc2 input grad'])).toBe(`${w1.batchSize}×${w1.sizes[1]}×${w1.sizes[2]} NN`);
    expect(shapeKey(byLabel['W1 fc1 weight grad'])).toBe(`${w1.sizes[1]}×${w1.sizes[0]}×${w1.batchSize} TN`);
    expect(shapeKey(byLabel['W2 fc2 weight grad'])).toBe(`${w2.sizes[2]}×${w2.sizes[1]}×${w2.batchSize} TN`);
    for (const [label, M, N, K, op] of GEMM_SHAPES) {
      expect([M, N, K].every((d) => Number.isInteger(d) && d > 0), label).toBe(true);
      expect(['NN', 'NT', 'TN'], label).toContain(op);
    }
  });

  it('measures the FMA peak with the vector instructions the CPU has', (ctx) => {
    const exe = join(mkdtempSync(join(os.tmpdir(), 'rg-peak-')), 'fma_peak');
    const build = spawnSync('g++', ['-O2', '-pthread', fileURLToPath(new URL('../bench/peers/fma_peak.cc', import.meta.url)), '-o', exe], { encoding: 'utf8' });
    if (build.error) {
      console.log(`skipped: g++ is not installed (${build.error.message}); the bench reports the peak as missing`);
      return ctx.skip();
    }
    expect(build.status, build.stderr).toBe(0);
    const r = JSON.parse(spawnSync(exe, ['2'], { encoding: 'utf8' }).stdout);
    if (process.arch !== 'x64') return expect(r.isa).toBe('none');
    expect(['avx512', 'avx2']).toContain(r.isa);
    // a 2-core machine: two threads at least as fast as one, and well under two cores' worth of 64 FLOP per cycle at 6 GHz
    expect(r.oneThread).toBeGreaterThan(1);
    expect(r.allThreads).toBeGreaterThan(r.oneThread * 0.9);
    expect(r.allThreads).toBeLessThan(os.cpus().length * 64 * 6);
  });
});
