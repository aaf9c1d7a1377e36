#!/usr/bin/env node
// Checks of the CUDA backend's runtime that need a GPU: device facts, round trips, the caching allocator's
// bookkeeping, out-of-memory handling, failures found by kernels (reported, then cleared), TF32 opt-in, and
// garbage-collected tensors returning their memory. Plain Node (node:assert, the built dist/), so that it runs
// on a GPU machine without the test runner; test/cuda.test.ts runs it where a GPU is present.
//   node --expose-gc test/gpu/runtime.mjs
import assert from 'node:assert/strict';
import * as rg from '../../dist/index.js';
import { cudaOrExit } from './cuda.mjs';

const { info, be } = cudaOrExit();
const checks = [];
async function check(name, fn) {
  const t = performance.now();
  try {
    await fn();
    checks.push([name, 'PASS']);
    console.log(`PASS ${name} (${(performance.now() - t).toFixed(0)} ms)`);
  } catch (e) {
    checks.push([name, 'FAIL']);
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
  }
}
const MB = 1 << 20;

await check('backends() names the device, its compute capability and memory', () => {
  console.log('  ', JSON.stringify(info.detail));
  assert.equal(typeof info.detail.device, 'string');
  assert.match(String(info.detail.computeCapability), /^\d+\.\d+$/);
  assert.ok(info.detail.memoryBytes > 1e9);
});

await check('round trips: float32 and int32, sync and async, to() between backends', async () => {
  const f = Float32Array.from({ length: 1001 }, (_, i) => Math.sin(i) * 1e3);
  const i32 = Int32Array.from({ length: 77 }, (_, i) => i * 7919 - 300000);
  const t = rg.tensor(f, [7, 143]);
  assert.equal(t.device, 'cuda');
  assert.deepEqual(t.toArray(), f);
  assert.deepEqual(await t.data(), f);
  assert.deepEqual(rg.tensor(i32, [77]).toArray(), i32);
  const c = t.to('cpu');
  assert.equal(c.device, 'cpu');
  assert.deepEqual(c.toArray(), f);
  assert.deepEqual(c.to('cuda').toArray(), f);
  assert.deepEqual(rg.zeros([5, 0]).toArray(), new Float32Array(0));
  assert.deepEqual(rg.zeros([300]).toArray(), new Float32Array(300));
});

await check('caching allocator: a freed block is reused, in use and cached add up', () => {
  be.sync();
  // Tensors of earlier checks may be finalized meanwhile and add a few kilobytes to the cache: compare the
  // cache to within 1 MB, the 12 MB block exactly in use.
  const near = (a, b, what) => assert.ok(Math.abs(a - b) < MB, `${what}: ${a} is not within 1 MB of ${b}`);
  const m0 = rg.memory();
  const a = rg.zeros([3 * MB]);
  const m1 = rg.memory();
  assert.equal(m1.deviceBytesInUse - m0.deviceBytesInUse, 12 * MB);
  a.dispose();
  const m2 = rg.memory();
  assert.equal(m2.deviceBytesInUse, m0.deviceBytesInUse);
  near(m2.deviceBytesCached - m0.deviceBytesCached, 12 * MB, 'the freed block went to the cache');
  const b = rg.zeros([3 * MB]);
  const m3 = rg.memory();
  near(m2.deviceBytesCached - m3.deviceBytesCached, 12 * MB, 'the cached block was taken again');
  assert.equal(m3.deviceBytesInUse, m1.deviceBytesInUse);
  assert.deepEqual(b.toArray().subarray(0, 8), new Float32Array(8), 'a reused block is zeroed');
  b.dispose();
});

await check('a failure a kernel finds is reported with its message, and later work runs again', async () => {
  const logits = rg.randn([4, 3]);
  const bad = rg.tensor(Int32Array.of(0, 2, 7, 1), [4]);
  const loss = rg.zeros([1]), d = rg.zeros([4, 3]);
  be.k.cross_entropy_loss(loss.buf, d.buf, logits.buf, bad.buf, 4, 3, 1, -100);
  assert.throws(() => loss.toArray(), (e) => e.code === 'INVALID_ARGUMENT' && /CrossEntropyLoss: target 7 at position 2 is outside \[0, 3\)/.test(e.message));
  const good = rg.tensor(Int32Array.of(0, 2, 1, 1), [4]);
  be.k.cross_entropy_loss(loss.buf, d.buf, logits.buf, good.buf, 4, 3, 1, -100);
  assert.ok(Number.isFinite(loss.toArray()[0]));
  const src = rg.randn([5, 4]), out = rg.zeros([2, 4]);
  be.k.gather_rows(out.buf, src.buf, rg.tensor(Int32Array.of(1, 9), [2]).buf, 2, 4, 5, 0);
  await assert.rejects(out.data(), (e) => e.code === 'INVALID_ARGUMENT' && /row index 9/.test(e.message));
  be.k.gather_rows(out.buf, src.buf, rg.tensor(Int32Array.of(1, 4), [2]).buf, 2, 4, 5, 0);
  assert.deepEqual(out.toArray().subarray(4), src.toArray().subarray(16));
});

await check('after a failed kernel: earlier reads resolve, later kernels skip, uploads land, then work runs again', async () => {
  const logits = be.fromHost(Float32Array.of(1, 2, 3, 4, 5, 6));
  const loss = be.fromHost(new Float32Array(1)), d = be.fromHost(new Float32Array(6));
  const before = be.fromHost(Float32Array.of(7, 8));
  const early = be.readAsync(before);
  be.k.cross_entropy_loss(loss, d, logits, be.fromHost(Int32Array.of(0, 9)), 2, 3, 1, -100);
  const x = be.fromHost(new Float32Array(3));
  be.k.fill(x, 3, 5);
  be.write(before, Float32Array.of(1, 2));
  const fresh = be.fromHost(Float32Array.of(3, 4, 5));
  const late = be.readAsync(loss);
  assert.deepEqual([...(await early)], [7, 8]);
  await assert.rejects(late, (e) => e.code === 'INVALID_ARGUMENT' && /target 9 at position 1 is outside \[0, 3\)/.test(e.message));
  assert.deepEqual([...be.read(x)], [0, 0, 0]);
  assert.deepEqual([...be.read(before)], [1, 2]);
  assert.deepEqual([...be.read(fresh)], [3, 4, 5]);
  be.k.fill(x, 3, 5);
  assert.deepEqual([...be.read(x)], [5, 5, 5]);
  const dw = be.fromHost(new Float32Array(8));
  be.k.embedding_backward(dw, be.fromHost(Int32Array.of(1, 4)), be.fromHost(new Float32Array(4).fill(1)), 2, 2, 4, false);
  assert.throws(() => be.read(dw), (e) => e.code === 'INVALID_ARGUMENT' && /embedding_backward: index 4 at position 1 is outside \[0, 4\)/.test(e.message));
});

await check('out of memory: OUT_OF_MEMORY with the sizes, after emptying the cache; nothing leaks', () => {
  be.sync();
  const m0 = rg.memory();
  const held = [];
  let err;
  try {
    for (let i = 0; i < 64; i++) held.push(rg.zeros([4e9]));  // 16 GB each
  } catch (e) {
    err = e;
  }
  const n = held.length;
  for (const t of held) t.dispose();
  assert.ok(err, `no error after ${n} allocations of 16 GB`);
  assert.equal(err.code, 'OUT_OF_MEMORY');
  assert.match(err.message, /could not allocate 16000000000 bytes/);
  console.log(`   after ${n} × 16 GB: ${err.message}`);
  be.sync();
  assert.equal(rg.memory().deviceBytesInUse, m0.deviceBytesInUse);
  assert.deepEqual(rg.tensor([1, 2, 3], [3]).toArray(), Float32Array.of(1, 2, 3));
});

await check("TF32 only when opted in: 'highest' is exact float32, 'tf32' within 1e-3 (also split along K)", () => {
  // 512 × 384 × 700 runs as one tiled product; 40 × 50 × 5000 has too few output tiles and is split along K.
  for (const [M, N, K] of [[512, 384, 700], [40, 50, 5000]]) {
    const r = (n, seed) => Float32Array.from({ length: n }, (_, i) => Math.sin((i + seed) * 12.9898) * 43758.5453 % 1);
    const A = r(M * K, 1), B = r(K * N, 2);
    const ref = new Float64Array(M * N);
    for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) { const a = A[i * K + k]; for (let j = 0; j < N; j++) ref[i * N + j] += a * B[k * N + j]; }
    const err = () => {
      const out = rg.zeros([M, N]);
      be.k.matmul(out.buf, rg.tensor(A, [M, K]).buf, rg.tensor(B, [K, N]).buf, M, N, K, false, false, 1, 0);
      const got = out.toArray();
      let d = 0, s = 0;
      for (let i = 0; i < got.length; i++) { d += (got[i] - ref[i]) ** 2; s += ref[i] ** 2; }
      return Math.sqrt(d / s);
    };
    const exact = err();
    rg.setMatmulPrecision('tf32');
    const tf32 = err();
    rg.setMatmulPrecision('highest');
    const back = err();
    console.log(`   ${M}×${N}×${K} normwise error: highest ${exact.toExponential(2)}, tf32 ${tf32.toExponential(2)}`);
    assert.ok(exact < 1e-5 && back < 1e-5 && tf32 < 1e-3, `${M}×${N}×${K}`);
    assert.ok(tf32 > 4 * exact, 'the tf32 path rounds its inputs (it was taken)');
  }
});

await check('tensors dropped without dispose() return their device memory after garbage collection', async () => {
  if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 50));
  be.sync();
  const m0 = rg.memory();
  for (let i = 0; i < 50; i++) rg.zeros([MB]);
  assert.ok(rg.memory().deviceBytesInUse >= m0.deviceBytesInUse + 50 * 4 * MB);
  for (let i = 0; i < 5 && rg.memory().deviceBytesInUse > m0.deviceBytesInUse; i++) {
    globalThis.gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(rg.memory().deviceBytesInUse <= m0.deviceBytesInUse, `${rg.memory().deviceBytesInUse} B in use, ${m0.deviceBytesInUse} before`);
});

await check('a training step allocates nothing in the steady state (fit, 3 epochs)', async () => {
  const model = new rg.Sequential([new rg.Linear(64, 128), new rg.ReLU(), new rg.Linear(128, 10)]);
  const x = rg.randn([1024, 64]);
  const y = rg.tensor(Int32Array.from({ length: 1024 }, (_, i) => i % 10), [1024]);
  model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 1e-3 }), loss: new rg.CrossEntropyLoss() });
  const seen = [];
  await model.fit(x, y, { epochs: 3, batchSize: 100, verbose: 0, callbacks: [{ onEpochEnd: () => { seen.push(rg.memory()); } }] });
  console.log(`   after each epoch: ${seen.map((m) => `${m.tensors} tensors, ${m.deviceBytesInUse} B in use`).join('; ')}`);
  assert.equal(seen[2].deviceBytesInUse, seen[1].deviceBytesInUse);
  assert.equal(seen[2].tensors, seen[1].tensors);
});

const failed = checks.filter(([, r]) => r !== 'PASS');
console.log(`cuda runtime: ${checks.length - failed.length}/${checks.length} passed`);
process.exit(failed.length ? 1 : 0);
