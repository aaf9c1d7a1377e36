// L1/L2 penalties on chosen parameters: the gradient added is the derivative of the value returned, and fit
// reports the loss with the penalty and leaves unpenalised parameters alone.
import { describe, expect, it } from 'vitest';
import { relError, requireCpu, rg } from './helpers.js';

const cpuAvailable = requireCpu();

describe('weight penalties', () => {
  rg.setBackend(cpuAvailable ? 'cpu' : 'reference');

  it('applyPenalty adds l1·sign(w) + 2·l2·w to the gradient and returns l1·Σ|w| + l2·Σw²', () => {
    const w = [0.5, -2, 0, 1.5];
    const p = new rg.Parameter(rg.tensor(w, [4]));
    p.grad.assign([1, 1, 1, 1]);
    const value = rg.applyPenalty([p], { l1: 0.1, l2: 0.01 }).item();
    expect(value).toBeCloseTo(0.1 * 4 + 0.01 * (0.25 + 4 + 2.25), 6);
    expect(relError(p.grad.toArray(), w.map((v) => 1 + 0.1 * Math.sign(v) + 0.02 * v))).toBeLessThan(1e-6);
    expect(() => rg.applyPenalty([p], { l3: 1 } as never)).toThrow(/unknown option 'l3'/);
    expect(() => rg.applyPenalty([p], { l2: -1 })).toThrow(/invalid l2 -1/);
  });

  it('fit adds the penalty to the reported loss and to the penalised parameters only', async () => {
    const x = rg.tensor(Float32Array.from({ length: 16 * 3 }, (_, i) => Math.cos(i)), [16, 3]);
    const y = rg.tensor(Float32Array.from({ length: 16 * 2 }, (_, i) => Math.sin(i)), [16, 2]);
    const run = async (l2: number) => {
      rg.manualSeed(6);
      const lin = new rg.Linear(3, 2);
      const model = new rg.Sequential([lin]);
      model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.1 }), loss: new rg.MSELoss(), penalties: l2 ? [{ params: [lin.weight], l2 }] : [] });
      const w0 = [...lin.weight.value.toArray()];
      const h = await model.fit(x, y, { epochs: 1, batchSize: 16, verbose: 0, shuffle: false });
      return { lin, w0, loss: h.history.loss[0] };
    };
    const plain = await run(0), penalised = await run(0.5);
    const penalty = 0.5 * penalised.w0.reduce((s, v) => s + v * v, 0);
    expect(penalised.loss).toBeCloseTo(plain.loss + penalty, 5);
    // one SGD step: the weight moves by an extra −lr·2·l2·w0, the bias not at all
    const extra = [...penalised.lin.weight.value.toArray()].map((v, i) => v - plain.lin.weight.value.toArray()[i]);
    expect(relError(extra, penalised.w0.map((v) => -0.1 * 2 * 0.5 * v))).toBeLessThan(1e-4);
    expect([...penalised.lin.bias!.value.toArray()]).toEqual([...plain.lin.bias!.value.toArray()]);
    const m = new rg.Sequential([new rg.Linear(2, 2)]);
    expect(() => m.compile({ optimizer: new rg.SGD(m.parameters(), { lr: 0.1 }), loss: new rg.MSELoss(), penalties: [{ params: m.parameters(), l2: -1 }] })).toThrow(/invalid l2 -1/);
  });
});
