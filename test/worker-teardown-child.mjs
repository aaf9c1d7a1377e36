// Terminates worker threads that are using retrograd at random moments: during fit, in a predictAsync loop, in a
// loop of layer forwards, and while throwing junk at the addon's entry points. Run as a child process so that an
// abort shows as its exit status; prints one JSON line: { terminated, tensorsBefore, tensorsAfter }.
import { Worker } from 'node:worker_threads';
import * as rg from 'retrograd';

const rounds = Number(process.argv[2] ?? 24);
const WORKER = (mode) => `
  const { parentPort } = require('node:worker_threads');
  import('retrograd').then(async (rg) => {
    rg.setBackend('cpu');
    const x = rg.randn([256, 64]);
    const m = new rg.Sequential([new rg.Linear(64, 128), new rg.ReLU(), new rg.Linear(128, 10)]);
    parentPort.postMessage('ready');
    if (${JSON.stringify(mode)} === 'fit') {
      m.compile({ optimizer: new rg.Adam(m.parameters()), loss: new rg.CrossEntropyLoss() });
      const y = rg.tensor(Int32Array.from({ length: 256 }, (_, i) => i % 10), [256]);
      await m.fit(x, y, { epochs: 1e6, batchSize: 32, verbose: 0 });
    } else if (${JSON.stringify(mode)} === 'predict') {
      for (;;) await m.predictAsync(x);
    } else if (${JSON.stringify(mode)} === 'forward') {
      for (;;) new rg.ReLU().forward(x);
    } else {
      const { createRequire } = require('node:module');
      const a = require('node-gyp-build')(process.cwd());
      const junk = [undefined, null, -1, 1.5, NaN, 'x', {}, new Float64Array(3), a.alloc('float32', 4), true];
      for (let i = 0; ; i++) {
        try {
          const r = a[['alloc', 'fromHost', 'write', 'read', 'readAsync', 'run'][i % 6]](junk[i % junk.length], junk[(i * 7) % junk.length]);
          if (r instanceof Promise) r.catch(() => {});
        } catch {}
        if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
      }
    }
  });`;

rg.setBackend('cpu');
const tensorsBefore = rg.memory().tensors;
const modes = ['fit', 'predict', 'forward', 'fuzz'];
let seed = 7;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
let terminated = 0;
for (let i = 0; i < rounds; i++) {
  const w = new Worker(WORKER(modes[i % modes.length]), { eval: true });
  await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  await new Promise((r) => setTimeout(r, random() * 60));
  await w.terminate();
  terminated++;
}
console.log(JSON.stringify({ terminated, tensorsBefore, tensorsAfter: rg.memory().tensors }));
