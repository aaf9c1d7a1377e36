// fit's callbacks: early stopping with the best weights restored, checkpoints of the best model, and the
// learning rate driven by schedulers and recorded in the History.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { requireCpu, rg } from './helpers.js';

const cpuAvailable = requireCpu();

const dir = mkdtempSync(join(tmpdir(), 'retrograd-cb-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function data(n: number, seed: number): [rg.Tensor, rg.Tensor] {
  const xs = new Float32Array(n * 4), ys = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    ys[i] = i % 3;
    for (let j = 0; j < 4; j++) xs[i * 4 + j] = (j === ys[i] ? 1.5 : 0) + Math.sin(seed + i * 13 + j * 7);
  }
  return [rg.tensor(xs, [n, 4]), rg.tensor(ys, [n])];
}

describe('callbacks', () => {
  rg.setBackend(cpuAvailable ? 'cpu' : 'reference');

  it('EarlyStopping stops when val_loss stops improving and restores the best weights', async () => {
    rg.manualSeed(1);
    const model = new rg.Sequential([new rg.Linear(4, 16), new rg.ReLU(), new rg.Linear(16, 3)]);
    const optimizer = new rg.SGD(model.parameters(), { lr: 0.1 });
    model.compile({ optimizer, loss: new rg.CrossEntropyLoss() });
    const [x, y] = data(90, 0), [xv, yv] = data(60, 100);
    const stop = new rg.EarlyStopping({ monitor: 'val_loss', patience: 1, restoreBestWeights: true });
    // a learning rate that turns destructive after epoch 4 makes val_loss rise
    const blowUp = new rg.LearningRateScheduler((epoch) => (epoch < 4 ? 0.1 : 20));
    const h = await model.fit(x, y, { epochs: 30, batchSize: 15, verbose: 0, validationData: [xv, yv], callbacks: [blowUp, stop] });
    expect(stop.stoppedEpoch).toBeGreaterThan(0);
    expect(h.epoch.length).toBe(stop.stoppedEpoch + 1);
    const best = Math.min(...h.history.val_loss);
    expect(h.history.val_loss[stop.bestEpoch]).toBe(best);
    const { loss } = await model.evaluate(xv, yv);
    expect(loss).toBeCloseTo(best, 5);
  });

  it('ModelCheckpoint with saveBestOnly writes only improving epochs, and the file holds the best model', async () => {
    rg.manualSeed(2);
    const model = new rg.Sequential([new rg.Linear(4, 8), new rg.Tanh(), new rg.Linear(8, 3)]);
    model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 0.05 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
    const [x, y] = data(60, 5);
    const ckpt = new rg.ModelCheckpoint(join(dir, 'best-{epoch}.safetensors'), { monitor: 'loss', saveBestOnly: true });
    const h = await model.fit(x, y, { epochs: 6, batchSize: 20, verbose: 0, shuffle: false, callbacks: [ckpt] });
    const improving = h.history.loss.map((l, i) => (h.history.loss.slice(0, i).every((p) => l < p) ? i + 1 : 0)).filter(Boolean);
    expect(ckpt.saved).toEqual(improving.map((e) => join(dir, `best-${e}.safetensors`)));
    expect(ckpt.saved.every((f) => existsSync(f))).toBe(true);
    expect(() => new rg.ModelCheckpoint(join(dir, 'x'), { mode: 'lowest' as never })).toThrow(/mode must be 'min', 'max' or 'auto'/);
  });

  it('LearningRateScheduler steps a scheduler through fit and LearningRateMonitor records the rate', async () => {
    rg.manualSeed(3);
    const model = new rg.Sequential([new rg.Linear(4, 3)]);
    const optimizer = new rg.SGD(model.parameters(), { lr: 0.2, momentum: 0.9 });
    model.compile({ optimizer, loss: new rg.CrossEntropyLoss() });
    const [x, y] = data(30, 9);
    const h = await model.fit(x, y, {
      epochs: 5, batchSize: 10, verbose: 0,
      callbacks: [new rg.LearningRateMonitor(), new rg.LearningRateScheduler(new rg.StepLR(optimizer, 2, { gamma: 0.5 }))],
    });
    expect(h.history.lr).toEqual([0.2, 0.2, 0.1, 0.1, 0.05]);
    const plateau = new rg.ReduceLROnPlateau(optimizer, { patience: 0, factor: 0.5 });
    const h2 = await model.fit(x, y, { epochs: 3, batchSize: 10, verbose: 0, callbacks: [new rg.LearningRateScheduler(plateau, { monitor: 'loss' }), new rg.LearningRateMonitor()] });
    expect(h2.history.lr.length).toBe(3);
    await expect(model.fit(x, y, { epochs: 1, verbose: 0, callbacks: [new rg.EarlyStopping()] })).rejects.toThrow(/the logs have no 'val_loss'/);
  });
});
