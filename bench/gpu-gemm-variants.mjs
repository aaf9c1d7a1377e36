#!/usr/bin/env node
// Times the CUDA backend's large-tile matrix kernels one against another (RETROGRAD_CUDA_GEMM selects one
// per process): each variant is checked against float64 on awkward shapes with both transposes, then timed at
// n³ (median of 20 samples of 5 products between synchronisations, random data). A table last.
//   node bench/gpu-gemm-variants.mjs [n]
import { execFileSync } from 'node:child_process';

const n = Number(process.argv[2] ?? 4096);
const child = `
  import * as rg from './dist/index.js';
  import { backendByName } from './dist/backend.js';
  const precision = process.argv[1];
  rg.setBackend('cuda');
  rg.setMatmulPrecision(precision);
  const be = backendByName('cuda');
  const rand = (k, seed) => { let s = seed; return Float32Array.from({ length: k }, () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1); };
  let worst = 0;
  for (const [M, N, K] of [[257, 129, 300], [300, 260, 513]]) for (const ta of [false, true]) for (const tb of [false, true]) {
    const A = rand(M * K, 1), B = rand(K * N, 2), ref = new Float64Array(M * N);
    for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) { const a = ta ? A[k * M + i] : A[i * K + k]; for (let j = 0; j < N; j++) ref[i * N + j] += a * (tb ? B[j * K + k] : B[k * N + j]); }
    const out = be.fromHost(new Float32Array(M * N).fill(NaN));
    be.k.matmul(out, be.fromHost(A), be.fromHost(B), M, N, K, ta, tb, 1, 0);
    const got = be.read(out);
    let d = 0, s = 0;
    for (let i = 0; i < got.length; i++) { d += (got[i] - ref[i]) ** 2; s += ref[i] ** 2; }
    worst = Math.max(worst, Number.isNaN(d) ? Infinity : Math.sqrt(d / s));
  }
  const n = ${n};
  const a = be.fromHost(rand(n * n, 3)), b = be.fromHost(rand(n * n, 4)), c = be.alloc('float32', n * n);
  for (let i = 0; i < 3; i++) be.k.matmul(c, a, b, n, n, n, false, false, 1, 0);
  be.sync();
  const times = [];
  for (let r = 0; r < 20; r++) {
    const t = performance.now();
    for (let i = 0; i < 5; i++) be.k.matmul(c, a, b, n, n, n, false, false, 1, 0);
    be.sync();
    times.push((performance.now() - t) / 5);
  }
  times.sort((x, y) => x - y);
  console.log(JSON.stringify({ error: worst, tflops: (2 * n ** 3) / (times[10] / 1000) / 1e12 }));`;

const rows = [];
for (const [precision, variants] of [['highest', [0, 1]], ['tf32', [0, 1, 2]]]) {
  for (const v of variants) {
    try {
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', child, precision], { env: { ...process.env, RETROGRAD_CUDA_GEMM: String(v) }, encoding: 'utf8', timeout: 60_000 });
      const r = JSON.parse(out.trim().split('\n').pop());
      rows.push([precision, v, r.error.toExponential(2), r.tflops.toFixed(2)]);
    } catch (e) {
      rows.push([precision, v, 'failed', String(e.message).split('\n')[0]]);
    }
    console.log(rows.at(-1).join('  '));
  }
}
console.log(`== matrix kernel variants at ${n}³ (RETROGRAD_CUDA_GEMM)`);
console.log('precision  variant  error       TFLOP/s');
for (const r of rows) console.log(`${r[0].padEnd(10)} ${String(r[1]).padEnd(8)} ${r[2].padEnd(11)} ${r[3]}`);
