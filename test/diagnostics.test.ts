// fit's diagnostics: per-parameter gradient norms and update/weight ratios in the History, and warnings that
// name the layer whose gradients vanish or explode.
import { describe, expect, it } from 'vitest';
import { relError, requireCpu, rg } from './helpers.js';

const cpuAvailable = requireCpu();

function warnings(run: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const on = (w: Error) => { if (w.name === 'RetrogradGradientWarning') seen.push(w.message); };
  process.on('warning', on);
  return run().then(async () => {
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    process.off('warning', on);
    return seen;
  });
}

describe('training diagnostics', () => {
  rg.setBackend(cpuAvailable ? 'cpu' : 'reference');
  const x = rg.tensor(Float32Array.from({ length: 32 * 4 }, (_, i) => Math.sin(i)), [32, 4]);
  const y = rg.tensor(Int32Array.from({ length: 32 }, (_, i) => i % 3), [32]);

  it('records the gradient norm and the update/weight ratio of every parameter', async () => {
    rg.manualSeed(4);
    const m = new rg.Sequential([new rg.Linear(4, 8), new rg.ReLU(), new rg.Linear(8, 3)]);
    m.compile({ optimizer: new rg.SGD(m.parameters(), { lr: 0.1 }), loss: new rg.CrossEntropyLoss() });
    rg.manualSeed(4);
    const twin = new rg.Sequential([new rg.Linear(4, 8), new rg.ReLU(), new rg.Linear(8, 3)]);
    const before = twin.parameters().map((p) => p.value.toArray() as Float32Array);
    const h = await m.fit(x, y, { epochs: 1, batchSize: 32, shuffle: false, verbose: 0, diagnostics: true });
    // the same single step by hand
    const loss = new rg.CrossEntropyLoss();
    loss.forward(twin.forward(x), y);
    twin.backward(loss.backward());
    twin.namedParameters().forEach(([name, p], i) => {
      const g = p.grad.toArray() as Float32Array;
      const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
      expect(relError([h.history[`grad_norm/${name}`][0]], [norm]), name).toBeLessThan(1e-4);
      const w = before[i];
      const ratio = (0.1 * norm) / Math.sqrt(w.reduce((s, v) => s + v * v, 0));
      expect(relError([h.history[`update_ratio/${name}`][0]], [ratio]), name).toBeLessThan(1e-3);
    });
  });

  it('warns, naming the layer, when a gradient vanishes or explodes', async () => {
    rg.manualSeed(5);
    const m = new rg.Sequential([new rg.Linear(4, 4), new rg.ReLU(), new rg.Linear(4, 3)]);
    (m.layers[2] as rg.Linear).weight.value.assign(new Float32Array(12)); // nothing flows back past it
    m.compile({ optimizer: new rg.SGD(m.parameters(), { lr: 1e-9 }), loss: new rg.CrossEntropyLoss() });
    const vanish = await warnings(() => m.fit(x, y, { epochs: 2, batchSize: 8, verbose: 0, diagnostics: { patience: 3 } }));
    expect(vanish.some((w) => /^Linear\(4→4\) \(0\): the gradient of '0.weight' is vanishing/.test(w))).toBe(true);
    expect(vanish.some((w) => w.includes("'2.weight'"))).toBe(false);
    const explode = await warnings(() => m.fit(x, y, { epochs: 1, batchSize: 8, verbose: 0, diagnostics: { exploding: 1e-12, patience: 2 } }));
    expect(explode.some((w) => /Linear\(4→3\) \(2\): the gradient of '2.weight' is exploding/.test(w))).toBe(true);
    await expect(m.fit(x, y, { verbose: 0, diagnostics: { patiense: 2 } as never })).rejects.toThrow(/did you mean 'patience'/);
  });
});
