// Per-parameter-group options (PyTorch's param_groups): each group's own hyperparameters, schedulers that
// scale each group from its own base rate, and state dicts that keep the groups.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { relError, requireCpu, rg, TOL } from './helpers.js';

const cpuAvailable = requireCpu();

const golden = JSON.parse(readFileSync(new URL('./golden/torch.json', import.meta.url), 'utf8')) as {
  groups: { optimizer: 'SGD' | 'AdamW'; trajectory: { a: number[]; b: number[]; lrs: number[] }[] }[];
};
const initParam = (n: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => scale * Math.sin(0.37 * i + 0.2));
const gradAt = (n: number, t: number) => Float32Array.from({ length: n }, (_, i) => (t % 2 === 0 ? 2 : 0.5) * Math.cos(0.71 * i + 1.3 * t));

for (const backend of cpuAvailable ? (['cpu', 'reference'] as const) : (['reference'] as const)) {
  describe(`parameter groups on ${backend}`, () => {
    for (const c of golden.groups) {
      it(`${c.optimizer} with two groups and StepLR matches PyTorch`, () => {
        rg.setBackend(backend);
        const a = new rg.Parameter(rg.tensor(initParam(4), [4])), b = new rg.Parameter(rg.tensor(initParam(3, 2), [3]));
        const opt = c.optimizer === 'SGD'
          ? new rg.SGD([{ params: [a], weightDecay: 0 }, { params: [b], lr: 0.01 }], { lr: 0.1, momentum: 0.9, weightDecay: 0.1 })
          : new rg.AdamW([{ params: [a] }, { params: [b], weightDecay: 0, betas: [0.8, 0.9] }], { lr: 0.05 });
        const sched = new rg.StepLR(opt, 2, { gamma: 0.5 });
        c.trajectory.forEach((want, t) => {
          a.grad.assign(gradAt(4, t));
          b.grad.assign(gradAt(3, t + 1));
          opt.step();
          sched.step();
          expect(relError(a.value.toArray(), want.a), `a after step ${t + 1}`).toBeLessThan(TOL.elementwise);
          expect(relError(b.value.toArray(), want.b), `b after step ${t + 1}`).toBeLessThan(TOL.elementwise);
          expect(opt.groups.map((g) => g.options.lr)).toEqual(want.lrs.map((v) => expect.closeTo(v, 12)));
        });
        const sd = opt.stateDict();
        expect(sd.param_groups.map((g) => g.params)).toEqual([[0], [1]]);
        expect(sd.param_groups[1].initial_lr).toBeCloseTo(c.optimizer === 'SGD' ? 0.01 : 0.05, 12);
      });
    }

    it('rejects unknown group keys, bad values and a parameter in two groups', () => {
      rg.setBackend(backend);
      const a = new rg.Parameter(rg.zeros([2])), b = new rg.Parameter(rg.zeros([2]));
      expect(() => new rg.SGD([{ params: [a], momemtum: 0.5 }], { lr: 0.1 })).toThrow("SGD (group 0): unknown option 'momemtum' (did you mean 'momentum'?)");
      expect(() => new rg.Adam([{ params: [a] }, { params: [b], lr: -1 }])).toThrow('Adam (group 1): invalid lr -1; expected >= 0');
      expect(() => new rg.Adam([{ params: [a], betas: [0.9, 1.5] }])).toThrow(/betas\[1\] 1.5/);
      expect(() => new rg.Adam([{ params: [a] }, { params: [a, b] }])).toThrow(/appears in more than one group/);
      expect(() => new rg.SGD([{ params: [] }], { lr: 0.1 })).toThrow(/empty parameter list/);
    });
  });
}
