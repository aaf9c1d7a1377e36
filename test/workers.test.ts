// The addon in worker threads: each worker has its own queue and pool; two workers training at once get
// exactly the weights the main thread gets alone, and workers that load and end leave no native tensor behind.
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireBuiltDist, requireCpu, rg } from './helpers.js';

const cpuAvailable = requireCpu();
beforeAll(requireBuiltDist); // the workers import the package: dist/

const TRAIN = `
  const { parentPort } = require('node:worker_threads');
  import('retrograd').then(async (rg) => {
    rg.setBackend('cpu');
    rg.manualSeed(21);
    const m = new rg.Sequential([new rg.Linear(16, 64), new rg.ReLU(), new rg.Linear(64, 4)]);
    m.compile({ optimizer: new rg.Adam(m.parameters(), { lr: 0.01 }), loss: new rg.CrossEntropyLoss() });
    const x = rg.tensor(Float32Array.from({ length: 256 * 16 }, (_, i) => Math.sin(i * 0.1)), [256, 16]);
    const y = rg.tensor(Int32Array.from({ length: 256 }, (_, i) => i % 4), [256]);
    await m.fit(x, y, { epochs: 3, batchSize: 32, verbose: 0 });
    parentPort.postMessage(m.parameters().map((p) => Array.from(p.value.toArray())));
  });`;

function runWorker(code: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    // resolves once the worker has exited, so its addon instance has freed what it held
    const w = new Worker(code, { eval: true });
    let message: unknown;
    w.once('message', (m) => { message = m; void w.terminate(); });
    w.once('error', reject);
    w.once('exit', () => resolve(message));
  });
}

describe.skipIf(!cpuAvailable)('retrograd in worker threads', () => {
  it('two workers training at the same time get the weights of a run alone', async () => {
    const [a, b] = await Promise.all([runWorker(TRAIN), runWorker(TRAIN)]);
    const alone = await runWorker(TRAIN);
    expect(a).toEqual(alone);
    expect(b).toEqual(alone);
  }, 60_000);

  it('workers that load the addon and end leave no native tensor behind', async () => {
    rg.setBackend('cpu');
    const before = rg.memory().tensors;
    for (let round = 0; round < 4; round++) {
      await Promise.all([0, 1, 2].map(() => runWorker(`
        const { parentPort } = require('node:worker_threads');
        import('retrograd').then((rg) => { rg.setBackend('cpu'); const t = rg.randn([1000]); rg.zeros([50]); parentPort.postMessage(t.size); });`)));
    }
    expect(rg.memory().tensors).toBeLessThanOrEqual(before);
  }, 60_000);
});
