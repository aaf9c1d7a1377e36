// Every layer and loss: the reference backward against central finite differences in float64.
import { describe, expect, it } from 'vitest';
import { fromHost } from '../lib/tensor.js';
import { randomArray, reference64Backend, rg, rng, TOL } from './helpers.js';

rg.setBackend('reference');

function input(shape: number[], seed: number, scale = 1): rg.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return rg.tensor(randomArray(n, rng(seed), scale), shape);
}

describe('layers: backward against central differences (rg.gradCheck, float64)', () => {
  const layers: [string, () => rg.Module, number[]][] = [
    ['Linear', () => new rg.Linear(5, 3), [4, 5]],
    ['Linear without bias, 3-D input', () => new rg.Linear(3, 7, { bias: false }), [2, 3, 3]],
    ['Linear 1→1', () => new rg.Linear(1, 1), [1, 1]],
    ['ReLU', () => new rg.ReLU(), [3, 17]],
    ['LeakyReLU', () => new rg.LeakyReLU(0.2), [3, 17]],
    ['Sigmoid', () => new rg.Sigmoid(), [3, 17]],
    ['Tanh', () => new rg.Tanh(), [3, 17]],
    ['GELU', () => new rg.GELU(), [3, 17]],
    ['Softmax', () => new rg.Softmax(), [4, 7]],
    ['Flatten', () => new rg.Flatten(), [2, 3, 4]],
    ['Dropout (training)', () => new rg.Dropout(0.4), [5, 9]],
    ['Sequential MLP', () => new rg.Sequential([new rg.Linear(6, 8), new rg.Tanh(), new rg.Linear(8, 8), new rg.GELU(), new rg.Linear(8, 3), new rg.Softmax()]), [5, 6]],
  ];
  layers.forEach(([name, make, shape], i) => {
    it(name, () => {
      rg.manualSeed(i);
      const r = rg.gradCheck(make(), input(shape, 10 + i, 2));
      expect(r.maxRelError, JSON.stringify(r.errors)).toBeLessThan(TOL.gradcheck);
      expect(r.ok).toBe(true);
    });
  });

  it('a frozen parameter is left out, and a wrong backward is caught', () => {
    const lin = new rg.Linear(4, 2);
    lin.weight.requiresGrad = false;
    const r = rg.gradCheck(lin, input([3, 4], 3));
    expect(Object.keys(r.errors).sort()).toEqual(['bias', 'input']);
    // A module whose backward is off by a factor must fail the check.
    class Wrong extends rg.ReLU {
      override backward(dy: rg.Tensor): rg.Tensor {
        const dx = super.backward(dy);
        dx.backend.k.axpy(dx.buf, dx.buf, dx.size, 0.01);
        return dx;
      }
    }
    const bad = rg.gradCheck(new Wrong(), input([3, 4], 4));
    expect(bad.ok).toBe(false);
    expect(bad.maxRelError).toBeGreaterThan(1e-3);
  });

  it('leaves the module as it was: parameters, grads and backend', () => {
    const lin = new rg.Linear(3, 2);
    const before = lin.weight.value.toArray();
    const valueTensor = lin.weight.value;
    rg.gradCheck(lin, input([2, 3], 5));
    expect(lin.weight.value).toBe(valueTensor);
    expect([...lin.weight.value.toArray()]).toEqual([...before]);
    expect([...lin.weight.grad.toArray()].every((g) => g === 0)).toBe(true);
  });
});

describe('losses: gradient against central differences (float64)', () => {
  const b = reference64Backend;
  type LossCase = [string, () => rg.Loss, number[], (r: () => number, shape: number[]) => rg.Tensor];
  const floatTarget = (lo: number, hi: number) => (r: () => number, shape: number[]) =>
    fromHost(b, Float64Array.from({ length: shape.reduce((a, c) => a * c, 1) }, () => lo + (hi - lo) * r()), shape);
  const classTarget = (r: () => number, shape: number[]) => {
    const [N, C, ...rest] = shape;
    const n = N * rest.reduce((a, c) => a * c, 1);
    return fromHost(b, Int32Array.from({ length: n }, (_, i) => (i === 1 ? -100 : Math.floor(r() * C))), [N, ...rest]);
  };
  const cases: LossCase[] = [
    ['MSELoss', () => new rg.MSELoss(), [3, 5], floatTarget(-1, 1)],
    ['CrossEntropyLoss [N, C]', () => new rg.CrossEntropyLoss(), [4, 6], classTarget],
    ['CrossEntropyLoss [N, C, d]', () => new rg.CrossEntropyLoss(), [2, 3, 5], classTarget],
    ['BCEWithLogitsLoss', () => new rg.BCEWithLogitsLoss(), [3, 5], floatTarget(0, 1)],
    ['BCELoss', () => new rg.BCELoss(), [3, 5], floatTarget(0, 1)],
    ['L1Loss', () => new rg.L1Loss(), [3, 5], floatTarget(-1, 1)],
    ['HuberLoss', () => new rg.HuberLoss({ delta: 0.6 }), [4, 5], floatTarget(-1, 1)],
  ];
  cases.forEach(([name, make, shape, target], i) => {
    it(name, () => {
      const r = rng(50 + i);
      const n = shape.reduce((a, c) => a * c, 1);
      const raw = Float64Array.from({ length: n }, () => 2 * r() - 1);
      if (name === 'BCELoss') raw.forEach((v, j) => (raw[j] = 0.1 + 0.8 * (v + 1) / 2));
      const pred = fromHost(b, raw, shape);
      const t = target(r, shape);
      const loss = make();
      loss.forward(pred, t);
      const analytic = Float64Array.from(loss.backward().toArray());
      const p = pred.buf as unknown as Float64Array;
      const eps = 1e-6;
      const numeric = new Float64Array(n);
      for (let j = 0; j < n; j++) {
        const v = p[j];
        p[j] = v + eps;
        const up = loss.forward(pred, t).item();
        p[j] = v - eps;
        const down = loss.forward(pred, t).item();
        p[j] = v;
        numeric[j] = (up - down) / (2 * eps);
      }
      let diff = 0, norm = 0;
      for (let j = 0; j < n; j++) {
        diff += (analytic[j] - numeric[j]) ** 2;
        norm += numeric[j] ** 2;
      }
      expect(Math.sqrt(diff / norm)).toBeLessThan(TOL.gradcheck);
    });
  });
});
