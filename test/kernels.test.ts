// Every kernel of the contract, native CPU against the reference, on fresh random data with awkward sizes.
// Outputs that a kernel overwrites start poisoned with NaN (a kernel that skips an element fails); outputs
// that accumulate start from the same random values on both backends.
import { describe, expect, it } from 'vitest';
import type { Backend, Buf, KernelName } from '../lib/backend.js';
import { cpu, cpuAvailable, cpuReason, randomArray, reference, relError, rng, TOL } from './helpers.js';

type ArgSpec =
  | { kind: 'in'; data: Float32Array | Int32Array }
  | { kind: 'out'; size: number; init?: Float32Array; int?: boolean }
  | null
  | number
  | boolean;

interface Built {
  args: ArgSpec[];
  tol: number;
}
interface KernelCase {
  sizes: number[][];
  build(s: number[], r: () => number): Built;
}

const inp = (data: Float32Array | Int32Array): ArgSpec => ({ kind: 'in', data });
const out = (size: number, init?: Float32Array): ArgSpec => ({ kind: 'out', size, init });
const ELEMENTWISE_SIZES = [[1], [3], [17], [64], [257], [40_000]];

function elementwise(forwardOf: 'input' | 'output', scale = 3): Pick<KernelCase, 'sizes'> & { fwd: KernelCase; bwd: KernelCase } {
  return {
    sizes: ELEMENTWISE_SIZES,
    fwd: { sizes: ELEMENTWISE_SIZES, build: ([n], r) => ({ args: [out(n), inp(randomArray(n, r, scale)), n], tol: TOL.elementwise }) },
    bwd: {
      sizes: ELEMENTWISE_SIZES,
      build: ([n], r) => ({
        args: [out(n), inp(randomArray(n, r)), inp(forwardOf === 'output' ? randomArray(n, r, 0.5, 0.5) : randomArray(n, r, scale)), n],
        tol: TOL.elementwise,
      }),
    },
  };
}
const relu = elementwise('input');
const sigmoid = elementwise('output', 12);
const tanh = elementwise('output');
const gelu = elementwise('input', 5);

const MATMUL_SIZES = [[1, 1, 1], [3, 17, 5], [64, 64, 64], [257, 3, 31], [7, 255, 1], [33, 300, 129], [2, 520, 300], [5, 33, 700], [97, 65, 513]];
const LINEAR_SIZES = [[1, 1, 1], [1, 784, 256], [3, 17, 5], [5, 100, 37], [64, 33, 10], [257, 64, 3], [64, 784, 256], [100, 300, 130]];

const cases = {
  matmul: {
    sizes: MATMUL_SIZES.flatMap((s) => [[...s, 0, 0], [...s, 1, 0], [...s, 0, 1], [...s, 1, 1]]),
    build: ([M, N, K, ta, tb], r) => {
      const accumulate = (M + N + ta) % 2 === 1;
      return {
        args: [out(M * N, accumulate ? randomArray(M * N, r) : undefined), inp(randomArray(M * K, r)), inp(randomArray(K * N, r)), M, N, K, ta === 1, tb === 1, accumulate ? 0.5 : 1, accumulate ? 0.75 : 0],
        tol: TOL.reduction,
      };
    },
  },
  linear_forward: {
    // [B, C, OC, bias?, act]: every shape with and without bias, and each epilogue activation
    sizes: LINEAR_SIZES.flatMap((s) => [[...s, 1, 0], [...s, 0, 0], [...s, 1, 1], [...s, 1, 2]]),
    build: ([B, C, OC, bias, act], r) => ({
      args: [out(B * OC), inp(randomArray(B * C, r)), inp(randomArray(OC * C, r)), bias ? inp(randomArray(OC, r)) : null, B, C, OC, act, 0.1],
      tol: TOL.reduction,
    }),
  },
  linear_backward: {
    // [B, C, OC, all outputs?, accumulate?]
    sizes: LINEAR_SIZES.flatMap((s) => [[...s, 1, 1], [...s, 0, 1], [...s, 1, 0]]),
    build: ([B, C, OC, all, acc], r) => ({
      args: [
        all ? out(B * C) : null,
        acc ? out(OC * C, randomArray(OC * C, r)) : out(OC * C),
        all ? (acc ? out(OC, randomArray(OC, r)) : out(OC)) : null,
        inp(randomArray(B * OC, r)), inp(randomArray(B * C, r)), inp(randomArray(OC * C, r)), B, C, OC, acc === 1,
      ],
      tol: TOL.reduction,
    }),
  },
  act_bias_backward: {
    // [B, OC, act, accumulate?, with dz?]
    sizes: [[1, 1, 1, 1, 1], [3, 17, 2, 0, 1], [64, 256, 1, 1, 0], [257, 3, 0, 0, 1], [2, 5000, 1, 1, 1]],
    build: ([B, OC, act, acc, withDz], r) => ({
      args: [withDz ? out(B * OC) : null, acc ? out(OC, randomArray(OC, r)) : out(OC), inp(randomArray(B * OC, r)), inp(randomArray(B * OC, r)), B, OC, act, 0.2, acc === 1],
      tol: TOL.reduction,
    }),
  },
  relu_forward: relu.fwd,
  relu_backward: relu.bwd,
  leaky_relu_forward: { sizes: ELEMENTWISE_SIZES, build: ([n], r) => ({ args: [out(n), inp(randomArray(n, r)), n, 0.07], tol: TOL.elementwise }) },
  leaky_relu_backward: { sizes: ELEMENTWISE_SIZES, build: ([n], r) => ({ args: [out(n), inp(randomArray(n, r)), inp(randomArray(n, r)), n, 0.07], tol: TOL.elementwise }) },
  sigmoid_forward: sigmoid.fwd,
  sigmoid_backward: sigmoid.bwd,
  tanh_forward: tanh.fwd,
  tanh_backward: tanh.bwd,
  gelu_forward: gelu.fwd,
  gelu_backward: gelu.bwd,
  softmax_forward: {
    sizes: [[1, 1], [3, 17], [64, 10], [257, 3], [2, 5000]],
    // large logits: the row maximum must be subtracted
    build: ([B, C], r) => ({ args: [out(B * C), inp(randomArray(B * C, r, 50, B > 60 ? 500 : 0)), B, C], tol: TOL.elementwise }),
  },
  softmax_backward: {
    sizes: [[1, 1], [3, 17], [64, 10], [257, 3]],
    build: ([B, C], r) => ({ args: [out(B * C), inp(randomArray(B * C, r)), inp(randomArray(B * C, r, 0.5, 0.5)), B, C], tol: TOL.reduction }),
  },
  mse_loss: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(1), out(n), inp(randomArray(n, r)), inp(randomArray(n, r)), n], tol: TOL.reduction }),
  },
  cross_entropy_loss: {
    sizes: [[1, 1, 1], [3, 17, 1], [64, 10, 1], [257, 3, 1], [4, 5, 7], [2, 3, 257]],
    build: ([B, C, D], r) => {
      const target = Int32Array.from({ length: B * D }, (_, i) => (i % 5 === 4 ? -100 : Math.floor(r() * C)));
      return { args: [out(1), out(B * C * D), inp(randomArray(B * C * D, r, 20)), inp(target), B, C, D, -100], tol: TOL.reduction };
    },
  },
  bce_with_logits_loss: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(1), out(n), inp(randomArray(n, r, 30)), inp(randomArray(n, r, 0.5, 0.5)), n], tol: TOL.reduction }),
  },
  l1_loss: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(1), out(n), inp(randomArray(n, r)), inp(randomArray(n, r)), n], tol: TOL.reduction }),
  },
  huber_loss: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(1), out(n), inp(randomArray(n, r, 2)), inp(randomArray(n, r)), n, 0.7], tol: TOL.reduction }),
  },
  bce_loss: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(1), out(n), inp(randomArray(n, r, 0.499, 0.5)), inp(randomArray(n, r, 0.5, 0.5)), n], tol: TOL.reduction }),
  },
  sgd_step: {
    // [n, momentum?, nesterov?, firstStep?, maximize?]
    sizes: [[1, 0, 0, 1, 0], [17, 1, 0, 1, 0], [257, 1, 0, 0, 0], [257, 1, 1, 0, 1], [40_000, 1, 0, 0, 0], [64, 0, 0, 0, 1]],
    build: ([n, mom, nest, first, max], r) => ({
      args: [out(n, randomArray(n, r)), mom ? out(n, randomArray(n, r)) : null, inp(randomArray(n, r)), n, 0.05, mom ? 0.9 : 0, nest ? 0 : 0.1, 0.01, nest === 1, max === 1, first === 1],
      tol: TOL.elementwise,
    }),
  },
  adam_step: {
    // [n, step, amsgrad?, decoupled?, maximize?]
    sizes: [[1, 1, 0, 0, 0], [17, 3, 1, 0, 0], [257, 10, 0, 1, 0], [257, 2, 1, 1, 1], [40_000, 5, 0, 0, 0]],
    build: ([n, step, ams, dec, max], r) => ({
      args: [
        out(n, randomArray(n, r)), out(n, randomArray(n, r, 0.1)), out(n, randomArray(n, r, 0.05, 0.05)),
        ams ? out(n, randomArray(n, r, 0.05, 0.05)) : null, inp(randomArray(n, r)),
        n, 0.01, 0.9, 0.999, 1e-8, 0.02, step, ams === 1, dec === 1, max === 1,
      ],
      tol: TOL.elementwise,
    }),
  },
  rmsprop_step: {
    // [n, centered?, momentum?, maximize?]
    sizes: [[1, 0, 0, 0], [17, 1, 0, 0], [257, 0, 1, 1], [257, 1, 1, 0], [40_000, 1, 1, 0]],
    build: ([n, cen, mom, max], r) => ({
      args: [
        out(n, randomArray(n, r)), out(n, randomArray(n, r, 0.05, 0.1)), cen ? out(n, randomArray(n, r, 0.01)) : null,
        mom ? out(n, randomArray(n, r, 0.1)) : null, inp(randomArray(n, r)), n, 0.01, 0.9, 1e-8, 0.01, mom ? 0.9 : 0, cen === 1, max === 1,
      ],
      tol: TOL.elementwise,
    }),
  },
  adagrad_step: {
    sizes: [[1, 0], [17, 1], [257, 0], [40_000, 1]],
    build: ([n, max], r) => ({
      args: [out(n, randomArray(n, r)), out(n, randomArray(n, r, 0.1, 0.2)), inp(randomArray(n, r)), n, 0.05, 1e-10, 0.01, max === 1],
      tol: TOL.elementwise,
    }),
  },
  adamax_step: {
    sizes: [[1, 1, 0], [17, 3, 1], [257, 10, 0], [40_000, 2, 1]],
    build: ([n, step, max], r) => ({
      args: [out(n, randomArray(n, r)), out(n, randomArray(n, r, 0.1)), out(n, randomArray(n, r, 0.05, 0.1)), inp(randomArray(n, r)), n, 0.01, 0.9, 0.999, 1e-8, 0.01, step, max === 1],
      tol: TOL.elementwise,
    }),
  },
  adadelta_step: {
    sizes: [[1, 0], [17, 1], [257, 0], [40_000, 1]],
    build: ([n, max], r) => ({
      args: [out(n, randomArray(n, r)), out(n, randomArray(n, r, 0.05, 0.1)), out(n, randomArray(n, r, 0.05, 0.1)), inp(randomArray(n, r)), n, 1, 0.9, 1e-6, 0.01, max === 1],
      tol: TOL.elementwise,
    }),
  },
  nadam_radam_step: {
    // [n, radam?, rectified?]
    sizes: [[1, 0, 0], [17, 1, 0], [257, 1, 1], [40_000, 0, 0], [40_000, 1, 1]],
    build: ([n, radam, rect], r) => ({
      args: [out(n, randomArray(n, r)), out(n, randomArray(n, r, 0.1)), out(n, randomArray(n, r, 0.05, 0.1)), inp(randomArray(n, r)), n, 0.9, 0.999, 1e-8, 0.01, 0.3, 0.002, 0.01, radam === 1, rect === 1],
      tol: TOL.elementwise,
    }),
  },
  fill: { sizes: ELEMENTWISE_SIZES, build: ([n]) => ({ args: [out(n), n, 2.5], tol: 0 }) },
  copy: { sizes: ELEMENTWISE_SIZES, build: ([n], r) => ({ args: [out(n), inp(randomArray(n, r)), n], tol: 0 }) },
  axpy: { sizes: ELEMENTWISE_SIZES, build: ([n], r) => ({ args: [out(n, randomArray(n, r)), inp(randomArray(n, r)), n, -0.3], tol: TOL.elementwise }) },
  gather_rows: {
    sizes: [[1, 1, 1, 0], [3, 17, 5, 2], [64, 784, 100, 7], [257, 3, 300, 0]],
    build: ([rows, cols, srcRows, offset], r) => ({
      args: [out(rows * cols), inp(randomArray(srcRows * cols, r)), inp(Int32Array.from({ length: offset + rows }, () => Math.floor(r() * srcRows))), rows, cols, srcRows, offset],
      tol: 0,
    }),
  },
  norm_accumulate: {
    // [n, infNorm?]
    sizes: [[1, 0], [17, 1], [257, 0], [40_000, 0], [40_000, 1]],
    build: ([n, inf], r) => ({ args: [out(1, Float32Array.of(inf ? 0.5 : 3)), inp(randomArray(n, r)), n, inf === 1], tol: TOL.reduction }),
  },
  clip_by_norm: {
    // [n, infNorm?, acc]: acc small enough that nothing is clipped, or large
    sizes: [[1, 0, 0.01], [17, 1, 0.2], [257, 0, 900], [40_000, 1, 30]],
    build: ([n, inf, acc], r) => ({ args: [out(n, randomArray(n, r)), inp(Float32Array.of(acc)), n, 1.5, inf === 1], tol: TOL.elementwise }),
  },
  clamp: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(n, randomArray(n, r, 3)), n, -0.5, 1.25], tol: 0 }),
  },
  penalty: {
    sizes: [[1], [17], [257], [40_000]],
    build: ([n], r) => ({ args: [out(1, Float32Array.of(0.5)), out(n, randomArray(n, r)), inp(randomArray(n, r)), n, 0.01, 0.003], tol: TOL.reduction }),
  },
  accuracy_count: {
    sizes: [[1, 1], [3, 17], [64, 10], [257, 3]],
    build: ([B, C], r) => ({
      args: [out(1, Float32Array.of(5)), inp(randomArray(B * C, r)), inp(Int32Array.from({ length: B }, () => Math.floor(r() * C))), B, C],
      tol: 0,
    }),
  },
  dropout_forward: {
    sizes: [[1, 0.5], [17, 0], [257, 0.3], [40_000, 0.5], [64, 1]],
    build: ([n, p], r) => ({ args: [out(n), out(n), inp(randomArray(n, r)), n, p, Math.floor(r() * 2 ** 31)], tol: 0 }),
  },
  dropout_backward: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(n), inp(randomArray(n, r)), inp(Float32Array.from({ length: n }, () => (r() < 0.5 ? 0 : 2))), n], tol: 0 }),
  },
} satisfies Record<KernelName, KernelCase>;

function runOn(b: Backend, name: KernelName, args: ArgSpec[]): (Float32Array | Int32Array | Float64Array)[] {
  const bufs = args.map((a) => {
    if (a === null || typeof a !== 'object') return a;
    if (a.kind === 'in') return b.fromHost(a.data);
    return b.fromHost(a.init ? Float32Array.from(a.init) : new Float32Array(a.size).fill(NaN));
  });
  (b.k[name] as (...x: unknown[]) => void)(...bufs);
  const outs: (Float32Array | Int32Array | Float64Array)[] = [];
  args.forEach((a, i) => {
    if (a !== null && typeof a === 'object' && a.kind === 'out') outs.push(b.read(bufs[i] as Buf));
  });
  return outs;
}

describe.skipIf(!cpuAvailable)('native CPU kernels against the reference', () => {
  if (!cpuAvailable) console.warn(`skipping native kernel tests: ${cpuReason}`);
  for (const [name, c] of Object.entries(cases) as [KernelName, KernelCase][]) {
    it(`${name}`, () => {
      c.sizes.forEach((s, si) => {
        const { args, tol } = c.build(s, rng(1000 + si));
        const want = runOn(reference(), name, args);
        const got = runOn(cpu(), name, args);
        want.forEach((w, oi) => {
          const e = relError(got[oi], w);
          expect(e, `${name} sizes [${s.join(', ')}], output ${oi}: normwise relative error ${e}`).toBeLessThanOrEqual(tol);
        });
      });
    });
  }

  it('matmul with beta = 0 ignores NaN already in the output', () => {
    const b = cpu();
    const o = b.fromHost(new Float32Array(6).fill(NaN));
    b.k.matmul(o, b.fromHost(Float32Array.of(1, 2, 3, 4, 5, 6)), b.fromHost(Float32Array.of(1, 0, 0, 1)), 3, 2, 2, false, false, 1, 0);
    expect([...b.read(o)]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('each instruction-set path of the gemm agrees with the reference (forced by RETROGRAD_CPU_ISA)', async () => {
    const { execFileSync } = await import('node:child_process');
    const script = `
      const a = require(${JSON.stringify(process.cwd() + '/build/Release/retrograd.node')});
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
