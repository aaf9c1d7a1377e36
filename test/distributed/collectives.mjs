// Run by test/distributed.test.ts under `mpirun -np N`: every collective on this rank, its results as one JSON line.
import * as rg from '../../dist/index.js';
import { report } from './report.mjs';

const before = await rg.distributed.allReduce(rg.tensor([1], [1])).then(() => 'no error', (e) => e.message);
const { rank, worldSize } = await rg.distributed.init();
const out = { rank, worldSize, before };
// rank r holds [r + 1, 2(r + 1), 3(r + 1)]: the sum is [S, 2S, 3S] with S = N(N + 1)/2
const t = rg.tensor([rank + 1, 2 * (rank + 1), 3 * (rank + 1)], [3]);
out.sum = [...(await rg.distributed.allReduce(t)).toArray('float32')];
out.mean = [...(await rg.distributed.allReduce(rg.tensor([rank + 1, -(rank + 1)], [1, 2]), 'mean')).toArray('float32')];
out.broadcast = [...(await rg.distributed.broadcast(rg.tensor([rank * 10, rank * 10 + 1], [2]), worldSize - 1)).toArray('float32')];
const g = await rg.distributed.allGather(rg.tensor([rank, rank + 0.5], [2]));
out.gather = { shape: g.shape, values: [...g.toArray('float32')] };
await rg.distributed.barrier();
// errors, the same on every rank
const err = (p) => p.then(() => 'no error', (e) => `${e.constructor.name}: ${e.message}`);
out.mismatch = await err(rg.distributed.allReduce(rg.zeros(rank === 0 ? [2, 3] : [3, 2])));
// after the refused collective, the queue goes on: a queued all-reduce between kernels, read after them
{
  const a = rg.tensor([rank + 1], [1]).mul(2);
  const p = rg.distributed.allReduce(a);
  const b = a.add(1); // queued behind the collective: reads its result
  await p;
  out.afterMismatch = [...b.toArray('float32')];
}
// the reference backend: read, reduced from JavaScript, written back
{
  const r = rg.tensor([rank + 1, 1], [2]).to('reference');
  out.reference = [...(await rg.distributed.allReduce(r, 'mean')).toArray('float32')];
  out.referenceMismatch = await err(rg.distributed.allReduce(rg.zeros(rank === 0 ? [4] : [2, 2]).to('reference')));
}
out.int = await err(rg.distributed.allReduce(rg.tensor(Int32Array.of(1), [1])));
out.op = await err(rg.distributed.allReduce(rg.zeros([1]), 'max'));
out.root = await err(rg.distributed.broadcast(rg.zeros([1]), worldSize));
// the event loop stays free during a large collective
let ticks = 0;
const timer = setInterval(() => ticks++, 1);
await rg.distributed.allReduce(rg.ones([1 << 20]));
clearInterval(timer);
out.large = ticks >= 0;
report(rank, out);
