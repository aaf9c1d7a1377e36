// Every kernel of the contract, native CPU (and CUDA where it is built and a GPU is present) against the
// reference, with the case table and checker that ship in lib/check/kernels.ts (`retrograd check` runs the
// same from dist/). Fixed seeds: case i of every kernel draws its data from mulberry32(1000 + i).
import { describe, expect, it } from 'vitest';
import { backendByName, type Backend, type Buf, type KernelName } from '../lib/backend.js';
import { probeCuda } from '../lib/backends/cuda.js';
import { cases, checkKernels, summarizeKernelCheck } from '../lib/check/kernels.js';
import { cpu, cpuAddonPath, ELEMENT_FACTOR, reference, requireCpu } from './helpers.js';

const SEED = 1000;

/** One test per kernel: every size, every output within its tolerance, no case throwing. */
function kernelTests(backend: () => Backend): void {
  for (const name of Object.keys(cases) as KernelName[]) {
    it(`${name}`, () => {
      const rows = checkKernels(backend(), { only: [name], seed: SEED });
      expect(rows.length).toBeGreaterThanOrEqual(cases[name].sizes.length);
      for (const row of rows) {
        const what = `${name} sizes [${row.sizes.join(', ')}]`;
        expect(row.message, `${what} threw`).toBeUndefined();
        expect(row.error, `${what}, output ${row.output}: normwise relative error ${row.error}`).toBeLessThanOrEqual(row.tol);
        expect(row.elementError, `${what}, output ${row.output}: per-element error ${row.elementError}`).toBeLessThanOrEqual(ELEMENT_FACTOR * row.tol);
        expect(row.ok, what).toBe(true);
      }
    });
  }
}

describe('the kernel checker', () => {
  it('flags a wrong kernel, an output left unwritten and a kernel that throws; passes a right one', () => {
    const ref = reference();
    const f32 = (b: unknown) => b as Float32Array; // a reference buffer is its typed array
    const broken = Object.assign(Object.create(ref) as Backend, {
      k: {
        ...ref.k,
        relu_forward: (out: Buf, inp: Buf, N: number) => {
          ref.k.relu_forward(out, inp, N);
          f32(out)[N - 1] += 1;
        },
        copy: () => {},
        fill: () => {
          throw new RangeError('fill: deliberately broken');
        },
      },
    });
    const rows = checkKernels(broken, { only: ['relu_forward', 'copy', 'fill', 'tanh_forward'], seed: 7 });
    const of = (k: KernelName) => rows.filter((r) => r.kernel === k);
    expect(of('relu_forward').every((r) => !r.ok && r.error > r.tol)).toBe(true);
    expect(of('copy').every((r) => !r.ok && r.error === Infinity)).toBe(true);
    expect(of('fill').map((r) => [r.ok, r.output, r.message])).toEqual(cases.fill.sizes.map(() => [false, null, 'fill: deliberately broken']));
    expect(of('tanh_forward').every((r) => r.ok)).toBe(true);
    const summary = summarizeKernelCheck(rows);
    expect(summary.map((s) => `${s.kernel} ${s.passed}/${s.total}`)).toEqual(['relu_forward 0/6', 'tanh_forward 6/6', 'fill 0/6', 'copy 0/6']);
  });

  it('scales tolerances per kernel, keeps exact kernels exact, and names what it rejects', () => {
    const rows = checkKernels(reference(), { only: ['axpy', 'fill'], seed: 1, tolScale: { axpy: 2, fill: 10 } });
    expect(new Set(rows.map((r) => `${r.kernel} ${r.tol}`))).toEqual(new Set(['axpy 0.000002', 'fill 0']));
    expect(() => checkKernels(reference(), { only: ['relu' as KernelName] })).toThrow("checkKernels: unknown kernel 'relu' in options.only");
    expect(() => checkKernels(reference(), { tolScale: { matmul: -1 } })).toThrow('checkKernels: options.tolScale.matmul must be a positive number, got -1');
    expect(() => checkKernels(reference(), { seed: 1.5 })).toThrow('checkKernels: options.seed must be an integer, got 1.5');
  });

  it('rejects a GELU computed with the tanh approximation, and a large product with one element 1% off', () => {
    const ref = reference();
    const f32 = (b: unknown) => b as Float32Array;
    const wrong = Object.assign(Object.create(ref) as Backend, {
      k: {
        ...ref.k,
        // PyTorch's GELU(approximate='tanh'): within 5e-4 of the erf form everywhere
        gelu_forward: (out: Buf, inp: Buf, N: number) => {
          const x = f32(inp), y = f32(out);
          for (let i = 0; i < N; i++) y[i] = 0.5 * x[i] * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x[i] + 0.044715 * x[i] ** 3)));
        },
        matmul: (...args: Parameters<Backend['k']['matmul']>) => {
          ref.k.matmul(...args);
          const [out, , , M, N] = args;
          if (M * N >= 512 * 512) f32(out)[(M * N) >> 1] *= 1.01;
        },
      },
    });
    const gelu = checkKernels(wrong, { only: ['gelu_forward'], seed: SEED });
    expect(gelu.filter((r) => r.sizes[0] >= 64).every((r) => !r.ok && r.elementError > ELEMENT_FACTOR * r.tol)).toBe(true);
    const matmul = checkKernels(wrong, { only: ['matmul'], seed: SEED }).filter((r) => r.sizes[0] * r.sizes[1] >= 512 * 512);
    expect(matmul.length).toBeGreaterThanOrEqual(4);
    for (const r of matmul) expect(r.elementError, `matmul [${r.sizes.join(', ')}], per-element error`).toBeGreaterThan(ELEMENT_FACTOR * r.tol);
    expect(matmul.every((r) => !r.ok)).toBe(true);
    // the normwise bound alone lets one element in a million through
    expect(matmul.filter((r) => r.error <= r.tol).map((r) => r.sizes)).toContainEqual([1023, 1025, 127, 0, 1]);
  });
});

describe.skipIf(!requireCpu())('native CPU kernels against the reference', () => {
  kernelTests(cpu);

  it('matmul with beta = 0 ignores NaN already in the output', () => {
    const b = cpu();
    const o = b.fromHost(new Float32Array(6).fill(NaN));
    b.k.matmul(o, b.fromHost(Float32Array.of(1, 2, 3, 4, 5, 6)), b.fromHost(Float32Array.of(1, 0, 0, 1)), 3, 2, 2, false, false, 1, 0);
    expect([...b.read(o)]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('each instruction-set path of the gemm agrees with the reference (forced by RETROGRAD_CPU_ISA)', async () => {
    const { execFileSync } = await import('node:child_process');
    const script = `
      const a = require(${JSON.stringify(cpuAddonPath())});
      const M = 37, N = 45, K = 70;
      const A = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));
      const B = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.7));
      const C = a.alloc('float32', M * N);
      a.run(a.kernels.indexOf('matmul'), C, a.fromHost(A), a.fromHost(B), M, N, K, false, false, 1, 0);
      const got = a.read(C);
      let err = 0, norm = 0;
      for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
        let s = 0; for (let k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j];
        err += (s - got[i * N + j]) ** 2; norm += s * s;
      }
      console.log(JSON.stringify({ isa: a.info().isa, err: Math.sqrt(err / norm) }));`;
    for (const isa of ['portable', 'avx2', 'native']) {
      const res = JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, RETROGRAD_CPU_ISA: isa } }).toString());
      if (isa !== 'native') expect(res.isa === isa || (isa === 'avx2' && res.isa === 'portable')).toBe(true);
      expect(res.err).toBeLessThan(1e-5);
    }
  });
});

const cuda = probeCuda();
describe.skipIf(!cuda.available)('CUDA kernels against the reference', () => {
  if (!cuda.available) console.warn('skipping CUDA kernel tests: ' + cuda.reason);
  kernelTests(() => backendByName('cuda'));
});
