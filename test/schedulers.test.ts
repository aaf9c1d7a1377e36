// Learning-rate schedulers against PyTorch 1.13 (test/golden/torch.json): the lr (and the cycled momentum)
// after each of 25 steps, the initial step at construction included.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rg } from './helpers.js';

const golden = JSON.parse(readFileSync(new URL('./golden/torch.json', import.meta.url), 'utf8')) as {
  schedulers: { name: string; lrs: number[]; momenta: (number | null)[] }[];
  plateauMetrics: number[];
};

rg.setBackend('reference');
const sgd = () => new rg.SGD([new rg.Parameter(rg.zeros([3]))], { lr: 0.1, momentum: 0.9 });
const adam = () => new rg.Adam([new rg.Parameter(rg.zeros([3]))], { lr: 0.1 });
type Made = [rg.Optimizer<{ lr: number }>, { step(metric?: number): void }];
const cases: Record<string, () => Made> = {
  StepLR: () => { const o = sgd(); return [o, new rg.StepLR(o, 3, { gamma: 0.5 })]; },
  MultiStepLR: () => { const o = sgd(); return [o, new rg.MultiStepLR(o, [2, 5, 5, 9], { gamma: 0.3 })]; },
  ExponentialLR: () => { const o = sgd(); return [o, new rg.ExponentialLR(o, 0.9)]; },
  CosineAnnealingLR: () => { const o = sgd(); return [o, new rg.CosineAnnealingLR(o, 7, { etaMin: 0.01 })]; },
  LinearLR: () => { const o = sgd(); return [o, new rg.LinearLR(o, { startFactor: 0.25, endFactor: 1, totalIters: 4 })]; },
  'SequentialLR warm-up + exponential': () => {
    const o = sgd();
    return [o, new rg.SequentialLR(o, [new rg.LinearLR(o, { startFactor: 0.1, totalIters: 3 }), new rg.ExponentialLR(o, 0.8)], [3])];
  },
  'SequentialLR warm-up + cosine': () => {
    const o = sgd();
    return [o, new rg.SequentialLR(o, [new rg.LinearLR(o, { startFactor: 0.5, totalIters: 4 }), new rg.CosineAnnealingLR(o, 10)], [4])];
  },
  'OneCycleLR SGD': () => { const o = sgd(); return [o, new rg.OneCycleLR(o, 1.0, { totalSteps: 26 })]; },
  'OneCycleLR Adam three-phase linear': () => {
    const o = adam();
    return [o, new rg.OneCycleLR(o, 0.5, { totalSteps: 26, annealStrategy: 'linear', threePhase: true })];
  },
  'ReduceLROnPlateau min': () => { const o = sgd(); return [o, new rg.ReduceLROnPlateau(o, { mode: 'min', factor: 0.5, patience: 2, cooldown: 1 })]; },
  'ReduceLROnPlateau max abs': () => {
    const o = sgd();
    return [o, new rg.ReduceLROnPlateau(o, { mode: 'max', thresholdMode: 'abs', threshold: 0.1, patience: 1, minLr: 0.02 })];
  },
};

const momentumOf = (o: rg.Optimizer<{ lr: number }>) => {
  const opts = o.options as { momentum?: number; betas?: [number, number] };
  return opts.momentum ?? opts.betas?.[0] ?? null;
};

describe('schedulers against PyTorch', () => {
  it('covers every golden case', () => {
    expect(Object.keys(cases).sort()).toEqual(golden.schedulers.map((c) => c.name).sort());
  });
  for (const c of golden.schedulers) {
    it(c.name, () => {
      const [opt, sched] = cases[c.name]();
      const lrs = [opt.lr], momenta = [momentumOf(opt)];
      for (let t = 0; t < c.lrs.length - 1; t++) {
        opt.step();
        if (sched instanceof rg.ReduceLROnPlateau) sched.step(golden.plateauMetrics[t]);
        else sched.step();
        lrs.push(opt.lr);
        momenta.push(momentumOf(opt));
      }
      lrs.forEach((lr, t) => expect(lr, `lr after step ${t}`).toBeCloseTo(c.lrs[t], 12));
      momenta.forEach((m, t) => expect(m, `momentum after step ${t}`).toBeCloseTo(c.momenta[t]!, 12));
    });
  }

  it('rejects bad arguments, naming them', () => {
    const o = sgd();
    expect(() => new rg.StepLR(o, 0)).toThrow('StepLR: invalid stepSize 0; expected an integer >= 1');
    expect(() => new rg.StepLR(o, 2, { gama: 0.5 } as never)).toThrow("StepLR: unknown option 'gama' (did you mean 'gamma'?)");
    expect(() => new rg.StepLR({} as never, 2)).toThrow(/expected an optimizer/);
    expect(() => new rg.SequentialLR(o, [new rg.ExponentialLR(o, 0.9)], [3])).toThrow(/expected 0 milestones for 1 schedulers/);
    expect(() => new rg.OneCycleLR(o, 1)).toThrow(/give totalSteps, or epochs and stepsPerEpoch/);
    expect(() => new rg.ReduceLROnPlateau(o, { mode: 'lowest' as never })).toThrow(/mode must be 'min' or 'max'/);
    const one = new rg.OneCycleLR(o, 1, { totalSteps: 2 });
    one.step();
    one.step();
    expect(() => one.step()).toThrow(/tried to step 4 times; totalSteps is 2/);
  });
});
