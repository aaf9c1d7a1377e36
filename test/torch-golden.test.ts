// PyTorch golden values (test/golden/torch.json, written by test/golden/make_golden.py with PyTorch 1.13):
// optimizer trajectories for every option, loss values and gradients, layer outputs and gradients, and
// state-dict names — on every backend.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cpuAvailable, relError, rg, TOL } from './helpers.js';

interface Golden {
  nParam: number;
  steps: number;
  optim: { optimizer: 'SGD' | 'Adam' | 'AdamW' | 'RMSprop' | 'Adagrad' | 'Adamax' | 'Adadelta' | 'NAdam' | 'RAdam'; options: Record<string, unknown>; trajectory: number[][] }[];
  losses: { loss: string; pred: number[]; target: number[]; shape: number[]; value: number; grad: number[] }[];
  clip: { maxNorm?: number; normType?: number | 'inf'; total?: number; clipValue?: number; grads: number[][] }[];
  layers: { layer: string; args?: number[]; x?: number[]; xShape?: number[]; weight?: number[]; bias?: number[]; y?: number[]; dy?: number[]; dx?: number[]; dweight?: number[]; dbias?: number[]; stateDictKeys?: string[] }[];
}
const seqAt = (a: number, b: number) => (i: number) => Math.sin(a * i + b) * 3;
const golden = JSON.parse(readFileSync(new URL('./golden/torch.json', import.meta.url), 'utf8')) as Golden;

// The same deterministic inputs as make_golden.py.
const initParam = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + 0.2));
const gradAt = (n: number, t: number) => Float32Array.from({ length: n }, (_, i) => (t % 2 === 0 ? 2 : 0.5) * Math.cos(0.71 * i + 1.3 * t));

function camel(options: Record<string, unknown>): Record<string, unknown> {
  const map: Record<string, string> = { weight_decay: 'weightDecay', lr_decay: 'lrDecay', initial_accumulator_value: 'initialAccumulatorValue', momentum_decay: 'momentumDecay' };
  return Object.fromEntries(Object.entries(options).map(([k, v]) => [map[k] ?? k, v]));
}

const backendNames = cpuAvailable ? (['reference', 'cpu'] as const) : (['reference'] as const);

for (const backend of backendNames) {
  describe(`PyTorch golden values on ${backend}`, () => {
    for (const c of golden.optim) {
      it(`${c.optimizer} ${JSON.stringify(c.options)}: ${c.trajectory.length} steps`, () => {
        rg.setBackend(backend);
        const p = new rg.Parameter(rg.tensor(initParam(golden.nParam), [golden.nParam]));
        const Ctor = { SGD: rg.SGD, Adam: rg.Adam, AdamW: rg.AdamW, RMSprop: rg.RMSprop, Adagrad: rg.Adagrad, Adamax: rg.Adamax, Adadelta: rg.Adadelta, NAdam: rg.NAdam, RAdam: rg.RAdam }[c.optimizer];
        const opt = new Ctor([p], camel(c.options) as never);
        for (let t = 0; t < c.trajectory.length; t++) {
          p.grad.assign(gradAt(golden.nParam, t));
          opt.step();
          const e = relError(p.value.toArray(), c.trajectory[t]);
          expect(e, `step ${t + 1}`).toBeLessThan(TOL.elementwise);
        }
      });
    }

    for (const c of golden.losses) {
      it(`${c.loss} on [${c.shape.join(', ')}]: value and gradient`, () => {
        rg.setBackend(backend);
        const makers: Record<string, () => rg.Loss> = {
          MSELoss: () => new rg.MSELoss(), CrossEntropyLoss: () => new rg.CrossEntropyLoss(), BCEWithLogitsLoss: () => new rg.BCEWithLogitsLoss(),
          BCELoss: () => new rg.BCELoss(), L1Loss: () => new rg.L1Loss(), HuberLoss: () => new rg.HuberLoss(),
          'HuberLoss delta 2.5': () => new rg.HuberLoss({ delta: 2.5 }),
        };
        const loss = makers[c.loss]();
        const pred = rg.tensor(c.pred, c.shape);
        const target = c.loss === 'CrossEntropyLoss'
          ? rg.tensor(Int32Array.from(c.target), [c.shape[0], ...c.shape.slice(2)])
          : rg.tensor(c.target, c.shape);
        const value = loss.forward(pred, target).item();
        expect(Math.abs(value - c.value) / Math.max(1, Math.abs(c.value))).toBeLessThan(TOL.reduction);
        expect(relError(loss.backward().toArray(), c.grad)).toBeLessThan(TOL.reduction);
      });
    }

    for (const c of golden.layers.filter((l) => l.x)) {
      it(`${c.layer}: forward and backward`, () => {
        rg.setBackend(backend);
        let layer: rg.Module;
        if (c.layer === 'Linear') {
          const lin = new rg.Linear(c.args![0], c.args![1]);
          lin.loadStateDict({ weight: Float32Array.from(c.weight!), bias: Float32Array.from(c.bias!) });
          layer = lin;
        } else {
          const Ctor = { ReLU: rg.ReLU, LeakyReLU: rg.LeakyReLU, Sigmoid: rg.Sigmoid, Tanh: rg.Tanh, GELU: rg.GELU, Softmax: rg.Softmax }[c.layer]!;
          layer = new Ctor(...((c.args ?? []) as []));
        }
        const y = layer.forward(rg.tensor(c.x!, c.xShape!));
        expect(relError(y.toArray(), c.y!)).toBeLessThan(TOL.reduction);
        const dx = layer.backward(rg.tensor(c.dy!, y.shape as number[]));
        expect(relError(dx.toArray(), c.dx!)).toBeLessThan(TOL.reduction);
        if (layer instanceof rg.Linear) {
          expect(relError(layer.weight.grad.toArray(), c.dweight!)).toBeLessThan(TOL.reduction);
          expect(relError(layer.bias!.grad.toArray(), c.dbias!)).toBeLessThan(TOL.reduction);
          expect(Object.keys(layer.stateDict())).toEqual(c.stateDictKeys);
        }
      });
    }

    for (const c of golden.clip) {
      it(`clip ${c.clipValue !== undefined ? `value ${c.clipValue}` : `norm ${c.maxNorm} (${c.normType})`}`, () => {
        rg.setBackend(backend);
        const shapes = [[5], [2, 3]].slice(0, c.grads.length);
        const ps = shapes.map((s, i) => {
          const p = new rg.Parameter(rg.zeros(s));
          p.grad.assign(c.grads[i].map((_, j) => [seqAt(0.3, 0.2), seqAt(0.8, 1.1)][i](j)));
          return p;
        });
        if (c.clipValue !== undefined) rg.clipGradValue(ps, c.clipValue);
        else expect(rg.clipGradNorm(ps, c.maxNorm!, { normType: c.normType === 'inf' ? Infinity : 2 })).toBeCloseTo(c.total!, 4);
        ps.forEach((p, i) => expect(relError(p.grad.toArray(), c.grads[i])).toBeLessThan(TOL.elementwise));
      });
    }

    it('Sequential state-dict names match PyTorch (modules without parameters count)', () => {
      rg.setBackend(backend);
      const m = new rg.Sequential([new rg.Linear(4, 3), new rg.ReLU(), new rg.Linear(3, 2)]);
      expect(Object.keys(m.stateDict())).toEqual(golden.layers.find((l) => l.layer === 'SequentialKeys')!.stateDictKeys);
      expect(m.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    });
  });
}
