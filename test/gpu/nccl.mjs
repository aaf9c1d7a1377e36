#!/usr/bin/env node
// The CUDA backend's NCCL path on one GPU: a communicator of one rank (NCCL allows it; two ranks need two GPUs),
// made and joined through the addon as rg.distributed does, then all-reduces queued with kernels: the sum and the mean
// over one rank leave the data as it was; kernels queued between the start and the wait run beside the collective;
// the wait orders what follows. It proves that libnccl.so.2 loads, that the declarations match NCCL's ABI and that the
// streams and events are right. Needs libnccl.so.2 on the library path (PyTorch's nvidia-nccl wheel has one).
//   node test/gpu/nccl.mjs
import assert from 'node:assert/strict';
import * as rg from '../../dist/index.js';
import { cudaOrExit } from './cuda.mjs';

const { be } = cudaOrExit();
let id;
try {
  id = be.deviceCollectivesId();
} catch (e) {
  console.log(`NCCL unavailable: ${e.message}`);
  process.exit(2);
}
assert.equal(id.length, 128);
be.deviceCollectivesInit(id, 0, 1);
await be.syncAsync();
console.log('PASS a communicator of one rank');

const n = 3 * 1024 * 1024 + 7;
const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
const a = rg.tensor(data, [n]), b = rg.tensor(data.slice(0, 1000), [1000]);
const q = be.allReduce('device', [a.buf, b.buf], false, [n + 1000]);
const beside = rg.randn([512, 512]).matmul(rg.randn([512, 512])); // queued between start and wait
q.wait();
const after = a.add(1); // after the wait: reads the result
assert.deepEqual(Array.from(a.toArray('float32').subarray(0, 5)), Array.from(data.subarray(0, 5)));
assert.equal(after.toArray('float32')[n - 1], data[n - 1] + 1);
assert.equal(b.toArray('float32')[999], data[999]);
assert.equal(beside.shape[0], 512);
const m = be.allReduce('device', [a.buf], true, [n]);
m.wait();
assert.equal(a.toArray('float32')[12345], data[12345]);
assert.ok(m.times(), 'times once the wait has run');
console.log('PASS sum and mean over one rank, kernels beside, the wait ordering what follows');
for (let i = 0; i < 200; i++) be.allReduce('device', [b.buf], true, [1000]).wait();
await be.syncAsync();
console.log('PASS 200 queued all-reduces');
