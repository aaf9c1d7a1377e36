// Training as a whole: a 20-step trajectory native vs reference from the same seed, and real runs that must
// converge (XOR, two spirals, an MNIST slice).
import { describe, expect, it } from 'vitest';
import { relError, requireCpu, rg, TOL } from './helpers.js';

const native = requireCpu();

function mlp(): rg.Sequential {
  return new rg.Sequential([new rg.Linear(20, 33), new rg.GELU(), new rg.Linear(33, 17), new rg.Tanh(), new rg.Linear(17, 5)]);
}

function trajectory(backend: 'cpu' | 'reference', makeOpt: (m: rg.Module) => rg.Optimizer<{ lr: number }>) {
  rg.setBackend(backend);
  rg.manualSeed(42);
  const model = mlp();
  const opt = makeOpt(model);
  const lossFn = new rg.CrossEntropyLoss();
  const x = rg.randn([31, 20]);
  const y = rg.tensor(Int32Array.from({ length: 31 }, (_, i) => (i * 7) % 5), [31]);
  const losses: number[] = [];
  for (let step = 0; step < 20; step++) {
    model.zeroGrad();
    losses.push(lossFn.forward(model.forward(x), y).item());
    model.backward(lossFn.backward());
    opt.step();
  }
  const params = model.parameters().map((p) => p.value.toArray());
  const state = opt.stateDict();
  return { losses, params, state };
}

describe.skipIf(!native)('20-step trajectories, native CPU against the reference', () => {
  const optimizers: [string, (m: rg.Module) => rg.Optimizer<{ lr: number }>][] = [
    ['SGD nesterov + weight decay', (m) => new rg.SGD(m.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 })],
    ['Adam amsgrad', (m) => new rg.Adam(m.parameters(), { lr: 1e-2, amsgrad: true })],
    ['AdamW', (m) => new rg.AdamW(m.parameters(), { lr: 1e-2 })],
    ['RMSprop centered with momentum', (m) => new rg.RMSprop(m.parameters(), { lr: 1e-3, centered: true, momentum: 0.5 })],
    ['Adagrad with lr decay', (m) => new rg.Adagrad(m.parameters(), { lr: 0.05, lrDecay: 0.01, initialAccumulatorValue: 0.1 })],
  ];
  for (const [name, make] of optimizers) {
    it(name, () => {
      const ref = trajectory('reference', make);
      const nat = trajectory('cpu', make);
      expect(relError(nat.losses, ref.losses)).toBeLessThan(TOL.trajectory);
      expect(ref.losses[19]).toBeLessThan(ref.losses[0]);
      nat.params.forEach((p, i) => expect(relError(p, ref.params[i]), `parameter ${i}`).toBeLessThan(TOL.trajectory));
      for (const [i, s] of Object.entries(ref.state.state)) {
        for (const [k, v] of Object.entries(s)) {
          const got = nat.state.state[Number(i)][k];
          if (typeof v === 'number') expect(got).toBe(v);
          else expect(relError(got as Float32Array, v), `state ${i}.${k}`).toBeLessThan(TOL.trajectory);
        }
      }
    });
  }
});

const backendsToTrain = native ? (['cpu', 'reference'] as const) : (['reference'] as const);

describe('real training runs converge', () => {
  for (const backend of backendsToTrain) {
    it(`XOR on ${backend} (MSE, SGD with momentum)`, async () => {
      rg.setBackend(backend);
      rg.manualSeed(3);
      const model = new rg.Sequential([new rg.Linear(2, 8), new rg.Tanh(), new rg.Linear(8, 1), new rg.Sigmoid()]);
      model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.5, momentum: 0.9 }), loss: new rg.MSELoss() });
      const x = rg.tensor([0, 0, 0, 1, 1, 0, 1, 1], [4, 2]);
      const y = rg.tensor([0, 1, 1, 0], [4, 1]);
      const h = await model.fit(x, y, { epochs: 300, batchSize: 4, verbose: 0 });
      expect(h.history.loss.at(-1)!).toBeLessThan(0.01);
      const p = model.predict(x).toArray();
      expect([...p].map((v) => Math.round(v))).toEqual([0, 1, 1, 0]);
    });

    it(`two spirals on ${backend} (cross-entropy, Adam)`, async () => {
      rg.setBackend(backend);
      rg.manualSeed(5);
      const n = 200;
      const xs = new Float32Array(2 * n * 2);
      const ys = new Int32Array(2 * n);
      for (let i = 0; i < n; i++) {
        const r = (i / n) * 5, t = (1.75 * i / n) * 2 * Math.PI;
        for (const c of [0, 1]) {
          const j = 2 * i + c, s = c === 0 ? 1 : -1;
          xs[2 * j] = s * r * Math.cos(t) / 5;
          xs[2 * j + 1] = s * r * Math.sin(t) / 5;
          ys[j] = c;
        }
      }
      const model = new rg.Sequential([new rg.Linear(2, 64), new rg.Tanh(), new rg.Linear(64, 64), new rg.Tanh(), new rg.Linear(64, 2)]);
      model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 0.01 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
      const x = rg.tensor(xs, [2 * n, 2]), y = rg.tensor(ys, [2 * n]);
      await model.fit(x, y, { epochs: backend === 'cpu' ? 300 : 150, batchSize: 40, verbose: 0 });
      const { accuracy } = await model.evaluate(x, y);
      expect(accuracy).toBeGreaterThan(0.97);
    });
  }

  it.skipIf(!native)('an MNIST MLP reaches 90% on 500 held-back digits after training on 3,000', async () => {
    rg.setBackend('cpu');
    rg.manualSeed(1);
    const { xTrain, yTrain, xTest, yTest } = rg.mnistSplit(3000, 500);
    const model = new rg.Sequential([new rg.Linear(784, 128), new rg.ReLU(), new rg.Dropout(0.1), new rg.Linear(128, 10)]);
    model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 2e-3 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
    const h = await model.fit(rg.tensor(xTrain, [3000, 784]), rg.tensor(yTrain, [3000]), {
      epochs: 8, batchSize: 64, verbose: 0, validationData: [rg.tensor(xTest, [500, 784]), rg.tensor(yTest, [500])],
    });
    expect(h.history.val_accuracy.at(-1)!).toBeGreaterThan(0.9);
    expect(h.history.loss[7]).toBeLessThan(h.history.loss[0]);
    const { accuracy } = await model.evaluate(rg.tensor(xTest, [500, 784]), rg.tensor(yTest, [500]));
    expect(accuracy).toBeCloseTo(h.history.val_accuracy.at(-1)!, 6);
  });
});
