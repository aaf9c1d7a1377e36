// Optimizer state as a whole: it follows its parameters to another backend, loadStateDict checks everything and
// loads all or nothing, a step that throws changes nothing, and a parameter without a gradient since zeroGrad()
// is left alone (PyTorch 2's zero_grad(set_to_none=True)). Module and scheduler loadStateDict's all-or-nothing
// checks too.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../lib/backend.js';
import { fromHost } from '../lib/tensor.js';
import { collectGarbage, cpu, cpuReason, reference, reference64Backend, relError, requireCpu, rg, TOL } from './helpers.js';

const cpuAvailable = requireCpu();

type Opt = rg.Optimizer<{ lr: number }>;
type Make = (params: rg.Parameter[]) => Opt;

// Every optimizer, with options that use every kind of state it keeps.
const optimizers: Record<string, Make> = {
  SGD: (ps) => new rg.SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01 }),
  Adam: (ps) => new rg.Adam(ps, { lr: 0.01, amsgrad: true, weightDecay: 0.01 }),
  AdamW: (ps) => new rg.AdamW(ps, { lr: 0.01, amsgrad: true }),
  RMSprop: (ps) => new rg.RMSprop(ps, { lr: 0.01, centered: true, momentum: 0.5, weightDecay: 0.01 }),
  Adagrad: (ps) => new rg.Adagrad(ps, { lr: 0.05, lrDecay: 0.01, initialAccumulatorValue: 0.1, weightDecay: 0.01 }),
  Adamax: (ps) => new rg.Adamax(ps, { weightDecay: 0.01 }),
  Adadelta: (ps) => new rg.Adadelta(ps, { weightDecay: 0.01 }),
  NAdam: (ps) => new rg.NAdam(ps, { weightDecay: 0.01 }),
  RAdam: (ps) => new rg.RAdam(ps, { weightDecay: 0.01 }),
};

const gradAt = (n: number, t: number, k = 1) => Float32Array.from({ length: n }, (_, i) => Math.cos(0.7 * i + 1.3 * t + k));

/** Two parameters ([2, 3] and [3]) on the reference backend, and an optimizer that has taken `steps` steps. */
function setup(make: Make, steps = 2) {
  rg.setBackend('reference');
  const a = new rg.Parameter(rg.tensor(Float32Array.from({ length: 6 }, (_, i) => Math.sin(i + 0.5)), [2, 3]));
  const b = new rg.Parameter(rg.tensor(Float32Array.from({ length: 3 }, (_, i) => 0.5 - i), [3]));
  const opt = make([a, b]);
  for (let t = 0; t < steps; t++) {
    a.grad.assign(gradAt(6, t));
    b.grad.assign(gradAt(3, t, 2));
    opt.step();
  }
  return { a, b, opt };
}

/** A deep copy of a state dict (its Float32Arrays copied) for comparisons and edits. */
function copyState(sd: rg.OptimizerStateDict): rg.OptimizerStateDict {
  const state: rg.OptimizerStateDict['state'] = {};
  for (const [i, s] of Object.entries(sd.state))
    state[Number(i)] = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, typeof v === 'number' ? v : Float32Array.from(v)]));
  return { state, param_groups: sd.param_groups.map((g) => structuredClone(g)) };
}

describe('every optimizer is covered', () => {
  it('the cases name every Optimizer that retrograd exports', () => {
    const exported = Object.entries(rg)
      .filter(([, v]) => typeof v === 'function' && v.prototype instanceof rg.Optimizer)
      .map(([k]) => k)
      .sort();
    expect(Object.keys(optimizers).sort()).toEqual(exported);
  });
});

// ---- state follows its parameters to another backend ----

const host = (t: rg.Tensor) => Array.from(t.backend.read(t.buf)); // full precision, float64 included

/** A small model trained with `make` for n steps on `first`, then m steps on `second`. `via`: 'move' moves the
 * model and keeps the optimizer; 'reload' moves the model and hands the state to a new optimizer through
 * stateDict / loadStateDict. */
function trajectory(make: Make, first: Backend, second: Backend, n: number, m: number, via: 'move' | 'reload') {
  rg.setBackend('reference');
  rg.manualSeed(11);
  const model = new rg.Sequential([new rg.Linear(5, 4), new rg.Tanh(), new rg.Linear(4, 3)]);
  model.moveTo(first);
  let opt = make(model.parameters());
  const lossFn = new rg.MSELoss();
  const xs = Float32Array.from({ length: 7 * 5 }, (_, i) => Math.sin(0.3 * i));
  const ys = Float32Array.from({ length: 7 * 3 }, (_, i) => Math.cos(0.5 * i));
  let tensorsAfterMove = 0;
  const run = (steps: number, measure: boolean) => {
    const b = model.backend;
    const x = fromHost(b, xs, [7, 5]), y = fromHost(b, ys, [7, 3]);
    for (let t = 0; t < steps; t++) {
      model.zeroGrad();
      lossFn.forward(model.forward(x), y);
      model.backward(lossFn.backward());
      // the first step after a move copies the state over and frees the old tensors: no tensor more than before
      if (measure && t === 0) collectGarbage();
      const before = rg.memory().tensors;
      opt.step();
      if (measure && t === 0) tensorsAfterMove = rg.memory().tensors - before;
    }
  };
  run(n, false);
  model.moveTo(second);
  if (via === 'reload') {
    const sd = opt.stateDict();
    opt = make(model.parameters());
    opt.loadStateDict(sd);
  }
  run(m, via === 'move');
  return { params: model.parameters().map((p) => host(p.value)), state: opt.stateDict(), tensorsAfterMove };
}

describe('optimizer state follows its parameters to another backend', () => {
  // float32 ⇄ float64 reference backends: the state must be converted exactly as a stateDict round trip does.
  for (const [name, make] of Object.entries(optimizers)) {
    for (const [from, to] of [[reference(), reference64Backend], [reference64Backend, reference()]] as const) {
      it(`${name}: 3 steps on ${from.name}, model moved to ${to.name}, 3 more steps`, () => {
        const moved = trajectory(make, from, to, 3, 3, 'move');
        const reloaded = trajectory(make, from, to, 3, 3, 'reload');
        expect(moved.tensorsAfterMove).toBe(0);
        moved.params.forEach((p, i) => expect(p, `parameter ${i}`).toEqual(reloaded.params[i]));
        expect(moved.state).toEqual(reloaded.state);
      });
    }
  }

  describe.skipIf(!cpuAvailable)('native CPU ⇄ reference', () => {
    for (const [name, make] of Object.entries(optimizers)) {
      for (const dir of ['cpu → reference', 'reference → cpu'] as const) {
        it(`${name}: ${dir} after 3 steps matches 6 steps all on the destination`, () => {
          const [from, to] = dir === 'cpu → reference' ? [cpu(), reference()] : [reference(), cpu()];
          const moved = trajectory(make, from, to, 3, 3, 'move');
          const straight = trajectory(make, to, to, 3, 3, 'move');
          moved.params.forEach((p, i) => {
            expect(p.every(Number.isFinite), `parameter ${i} is finite`).toBe(true);
            expect(relError(p, straight.params[i]), `parameter ${i}`).toBeLessThan(TOL.trajectory);
          });
          for (const [i, s] of Object.entries(straight.state.state))
            for (const [k, v] of Object.entries(s)) {
              const got = moved.state.state[Number(i)][k];
              if (typeof v === 'number') expect(got, `state ${i}.${k}`).toBeCloseTo(v, 6);
              else expect(relError(got as Float32Array, v), `state ${i}.${k}`).toBeLessThan(TOL.trajectory);
            }
        });
      }
    }
  });
  if (!cpuAvailable) it.skip(`native CPU ⇄ reference moves (skipped: ${cpuReason.split('\n')[0]})`, () => {});
});

// ---- loadStateDict: everything checked, all or nothing ----

describe('Optimizer.loadStateDict checks everything and loads all or nothing', () => {
  type Edit = [string, (sd: rg.OptimizerStateDict, bufferName: string) => void, ErrorConstructor, RegExp];
  const set = (o: object, k: string, v: unknown) => ((o as Record<string, unknown>)[k] = v);
  const edits = (label: string): Edit[] => [
    ['lr -5', (sd) => set(sd.param_groups[0], 'lr', -5), RangeError, new RegExp(`^${label}\\.loadStateDict \\(group 0\\): invalid learning rate \\(lr\\) -5; expected >= 0$`)],
    ["lr '0.1'", (sd) => set(sd.param_groups[0], 'lr', '0.1'), TypeError, /learning rate \(lr\) must be a number, got the string '0.1'/],
    ['a misspelled hyperparameter', (sd) => set(sd.param_groups[0], 'weightDecya', 0), TypeError, /unknown option 'weightDecya' \(did you mean 'weightDecay'\?\)/],
    ['weightDecay NaN', (sd) => set(sd.param_groups[0], 'weightDecay', NaN), TypeError, /weightDecay must be a number/],
    ['initial_lr -1', (sd) => set(sd.param_groups[0], 'initial_lr', -1), RangeError, /invalid initial_lr -1/],
    ['params of the wrong length', (sd) => set(sd.param_groups[0], 'params', [0]), RangeError, /params must list the group's 2 parameters/],
    ['step -1', (sd) => set(sd.state[1], 'step', -1), RangeError, /state 'step' of parameter 1 must be an integer >= 0, got -1/],
    ['step 1.5', (sd) => set(sd.state[0], 'step', 1.5), RangeError, /state 'step' of parameter 0 must be an integer >= 0, got 1.5/],
    ["step '2'", (sd) => set(sd.state[0], 'step', '2'), TypeError, /state 'step' of parameter 0 must be a number, got the string '2'/],
    ['an unknown state key', (sd) => set(sd.state[1], 'exp_avgg', new Float32Array(3)), RangeError, /unknown state 'exp_avgg' for parameter 1/],
    ['a state key that Object.prototype has', (sd) => set(sd.state[1], 'constructor', 1), RangeError, /unknown state 'constructor' for parameter 1/],
    ['a buffer of the wrong size', (sd, buf) => set(sd.state[1], buf, new Float32Array(2)), RangeError, /parameter 1 has 2 values, expected 3/],
    ['a Float64Array buffer', (sd, buf) => set(sd.state[0], buf, new Float64Array(6)), TypeError, /parameter 0 must be a Float32Array of 6 values, got a Float64Array/],
    ['a number for a buffer', (sd, buf) => set(sd.state[0], buf, 1), TypeError, /parameter 0 must be a Float32Array of 6 values, got number 1/],
    ['state for parameter 2', (sd) => set(sd.state, '2', { step: 1 }), RangeError, /state for parameter 2, but the optimizer has 2/],
    ['state for parameter -1', (sd) => set(sd.state, '-1', { step: 1 }), RangeError, /state for parameter -1, but the optimizer has 2/],
    ['a state entry that is not an object', (sd) => set(sd.state, '0', 3), TypeError, /the state of parameter 0 must be an object, got number 3/],
  ];

  for (const [name, make] of Object.entries(optimizers)) {
    it(`${name}: rejects bad hyperparameters and bad state, naming them, and changes nothing`, () => {
      const { opt } = setup(make);
      const good = copyState(opt.stateDict());
      const bufferName = Object.entries(good.state[1]).find(([, v]) => typeof v !== 'number')![0];
      for (const [what, edit, cls, message] of edits(name)) {
        const bad = copyState(good);
        edit(bad, bufferName);
        expect(() => opt.loadStateDict(bad), what).toThrow(cls);
        expect(() => opt.loadStateDict(bad), what).toThrow(message);
        expect(copyState(opt.stateDict()), `${what} changed nothing`).toEqual(good);
      }
      opt.loadStateDict(copyState(good)); // the untouched state still loads
      expect(copyState(opt.stateDict())).toEqual(good);
    });
  }

  for (const name of ['Adam', 'AdamW', 'Adamax', 'NAdam', 'RAdam']) {
    it(`${name}: betas [1, 1] are refused as the constructor refuses them`, () => {
      const { opt } = setup(optimizers[name]);
      const good = copyState(opt.stateDict());
      const bad = copyState(good);
      bad.param_groups[0].betas = [1, 1];
      expect(() => opt.loadStateDict(bad)).toThrow(RangeError);
      expect(() => opt.loadStateDict(bad)).toThrow(`${name}.loadStateDict (group 0): invalid beta parameter at index 0 1; expected >= 0 < 1`);
      expect(copyState(opt.stateDict())).toEqual(good);
    });
  }

  it('SGD: nesterov without momentum is refused as the constructor refuses it', () => {
    const { opt } = setup(optimizers.SGD);
    const bad = copyState(opt.stateDict());
    bad.param_groups[0].momentum = 0;
    expect(() => opt.loadStateDict(bad)).toThrow(/SGD\.loadStateDict \(group 0\): nesterov requires a momentum > 0/);
    expect(opt.options).toMatchObject({ momentum: 0.9, nesterov: true });
  });

  it('NAdam: mu_product outside [0, 1] is refused', () => {
    const { opt } = setup(optimizers.NAdam);
    const bad = copyState(opt.stateDict());
    bad.state[0].mu_product = 2;
    expect(() => opt.loadStateDict(bad)).toThrow(/state 'mu_product' of parameter 0 must be a number in \[0, 1\], got 2/);
  });

  it('a loaded state steps exactly as the state it came from', () => {
    for (const make of Object.values(optimizers)) {
      const one = setup(make), two = setup(make, 0);
      two.a.value.assign(one.a.value);
      two.b.value.assign(one.b.value);
      two.opt.loadStateDict(copyState(one.opt.stateDict()));
      for (const { a, b, opt } of [one, two]) {
        a.grad.assign(gradAt(6, 9));
        b.grad.assign(gradAt(3, 9));
        opt.step();
      }
      expect(host(two.a.value)).toEqual(host(one.a.value));
      expect(copyState(two.opt.stateDict())).toEqual(copyState(one.opt.stateDict()));
    }
  });

  const dir = mkdtempSync(join(tmpdir(), 'retrograd-optim-state-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('rg.loadCheckpoint refuses an optimizer state with betas [1, 1] and leaves the optimizer as it was', async () => {
    rg.setBackend('reference');
    const model = new rg.Sequential([new rg.Linear(3, 2)]);
    const opt = new rg.Adam(model.parameters(), { lr: 0.01 });
    opt.step();
    (opt.options as { betas: number[] }).betas = [1, 1];
    const path = join(dir, 'bad.ckpt');
    await rg.saveCheckpoint(path, { model, optimizer: opt });
    const into = new rg.Adam(model.parameters(), { lr: 0.02 });
    await expect(rg.loadCheckpoint(path, { model, optimizer: into })).rejects.toThrow(/Adam\.loadStateDict \(group 0\): invalid beta parameter at index 0 1/);
    expect(into.stateDict()).toEqual({ state: {}, param_groups: [expect.objectContaining({ lr: 0.02, betas: [0.9, 0.999] })] });
  });
});

// ---- a step that throws changes nothing ----

describe('a step that throws changes nothing', () => {
  const breakages: [string, (b: rg.Parameter) => void, ErrorConstructor | typeof rg.RetrogradError, RegExp][] = [
    ['a disposed gradient', (b) => b.grad.dispose(), rg.RetrogradError, /step: the gradient of parameter 1 \(shape \[3\]\) has been disposed/],
    ['a gradient of another shape', (b) => (b.grad = rg.zeros([1, 3])), RangeError, /step: the gradient of parameter 1 has shape \[1, 3\], expected \[3\]/],
    ['a gradient of another size', (b) => (b.grad = rg.zeros([4])), RangeError, /step: the gradient of parameter 1 has shape \[4\], expected \[3\]/],
    ['a gradient on another backend', (b) => (b.grad = fromHost(reference64Backend, new Float64Array(3), [3])), TypeError, /step: the gradient of parameter 1 is on 'reference64' but the parameter is on 'reference'/],
    ['a gradient that is not a tensor', (b) => (b.grad = [0, 0, 0] as never), TypeError, /step: the gradient of parameter 1 must be a Tensor, got an array of length 3/],
    ['a disposed parameter value', (b) => b.value.dispose(), rg.RetrogradError, /step: parameter 1 \(shape \[3\]\) has been disposed/],
  ];
  for (const [name, make] of Object.entries(optimizers)) {
    it(`${name}: parameters, step counts and state are untouched`, () => {
      for (const [what, breakIt, cls, message] of breakages) {
        const { a, b, opt } = setup(make);
        a.grad.assign(gradAt(6, 5));
        const keep = b.value.toArray();
        breakIt(b);
        const before = { a: host(a.value), state: copyState(opt.stateDict()) };
        expect(() => opt.step(), what).toThrow(cls);
        expect(() => opt.step(), what).toThrow(message);
        expect(host(a.value), `${what}: parameter 0`).toEqual(before.a);
        expect(copyState(opt.stateDict()), `${what}: state`).toEqual(before.state);
        // repaired, the next step works
        if (b.value.disposed) b.value = rg.tensor(keep, [3]);
        b.grad = rg.tensor(gradAt(3, 5), [3]);
        opt.step();
        expect(opt.stateDict().state[0].step, what).toBe(3);
      }
    });
  }

  it('a parameter whose value was replaced by one of another size is refused, its state untouched', () => {
    for (const [name, make] of Object.entries(optimizers)) {
      const { b, opt } = setup(make);
      const before = copyState(opt.stateDict());
      b.value = rg.zeros([4]);
      b.grad = rg.zeros([4]);
      expect(() => opt.step(), name).toThrow(RangeError);
      expect(() => opt.step(), name).toThrow(/step: parameter 1 has 4 values but its state '\w+' has 3/);
      expect(copyState(opt.stateDict()), name).toEqual(before);
    }
  });

  it('a hyperparameter made invalid after construction is refused at step, naming it', () => {
    const { a, opt } = setup(optimizers.Adam);
    const before = host(a.value);
    opt.lr = -1;
    expect(() => opt.step()).toThrow('Adam.step (group 0): invalid learning rate (lr) -1; expected >= 0');
    expect(host(a.value)).toEqual(before);
    expect(opt.stateDict().state[0].step).toBe(2);
  });
});

// ---- a gradient not written since zeroGrad() is skipped ----

describe('a parameter without a gradient since zeroGrad() is skipped, as PyTorch 2 skips grad None', () => {
  for (const [name, make] of Object.entries(optimizers)) {
    it(`${name}: no weight decay, no momentum, no step count for it`, () => {
      const { a, b, opt } = setup(make);
      opt.zeroGrad();
      b.grad.assign(gradAt(3, 7));
      const before = { a: host(a.value), b: host(b.value), state: copyState(opt.stateDict()).state[0] };
      opt.step();
      expect(host(a.value)).toEqual(before.a);
      expect(copyState(opt.stateDict()).state[0]).toEqual(before.state);
      expect(host(b.value)).not.toEqual(before.b);
      expect(opt.stateDict().state[1].step).toBe(3);
    });
  }

  it('a fresh parameter that was never zeroed is stepped (its gradient is zeros from the start)', () => {
    rg.setBackend('reference');
    const p = new rg.Parameter(rg.tensor([1, 2], [2]));
    const opt = new rg.SGD([p], { lr: 0.1, weightDecay: 0.5 });
    opt.step();
    expect(host(p.value)).toEqual([0.949999988079071, 1.899999976158142]);
  });

  it('the first step of a fresh model after backward updates every parameter', () => {
    rg.setBackend('reference');
    rg.manualSeed(3);
    const model = new rg.Sequential([new rg.Linear(3, 4), new rg.ReLU(), new rg.Linear(4, 2)]);
    const opt = new rg.Adam(model.parameters(), { lr: 0.01 });
    const before = model.parameters().map((p) => host(p.value));
    const lossFn = new rg.MSELoss();
    lossFn.forward(model.forward(rg.randn([5, 3])), rg.randn([5, 2]));
    model.backward(lossFn.backward());
    opt.step();
    model.parameters().forEach((p, i) => expect(host(p.value), `parameter ${i}`).not.toEqual(before[i]));
    expect(Object.keys(opt.stateDict().state)).toEqual(['0', '1', '2', '3']);
  });

  it('moving the model keeps a zeroed gradient pending', () => {
    const { a, b, opt } = setup(optimizers.SGD);
    opt.zeroGrad();
    a.moveTo(reference64Backend);
    b.moveTo(reference64Backend);
    const before = host(a.value);
    opt.step();
    expect(host(a.value)).toEqual(before);
    expect(opt.stateDict().state[0].step).toBe(2);
  });

  it('clipGradNorm and clipGradValue leave a pending gradient pending', () => {
    const { a, b, opt } = setup(optimizers.SGD);
    opt.zeroGrad();
    b.grad.assign([3, 4, 0]);
    expect(rg.clipGradNorm([a, b], 1)).toBeCloseTo(5, 5);
    rg.clipGradValue([a, b], 0.5);
    const before = host(a.value);
    opt.step();
    expect(host(a.value)).toEqual(before);
    expect(opt.stateDict().state[0].step).toBe(2);
  });

  for (const backend of cpuAvailable ? (['cpu', 'reference'] as const) : (['reference'] as const)) {
    it(`fit trains exactly as the hand-written loop (zeroGrad, forward, backward, step) on ${backend}`, async () => {
      rg.setBackend(backend);
      const xs = Float32Array.from({ length: 8 * 3 }, (_, i) => Math.sin(i)), ys = Float32Array.from({ length: 8 * 2 }, (_, i) => Math.cos(i));
      const build = () => {
        rg.manualSeed(5);
        const model = new rg.Sequential([new rg.Linear(3, 6), new rg.Tanh(), new rg.Linear(6, 2)]);
        return { model, opt: new rg.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 0.01 }) };
      };
      const fitted = build();
      fitted.model.compile({ optimizer: fitted.opt, loss: new rg.MSELoss() });
      await fitted.model.fit(rg.tensor(xs, [8, 3]), rg.tensor(ys, [8, 2]), { epochs: 4, batchSize: 8, shuffle: false, verbose: 0 });
      const manual = build();
      const lossFn = new rg.MSELoss();
      for (let t = 0; t < 4; t++) {
        manual.model.zeroGrad();
        lossFn.forward(manual.model.forward(rg.tensor(xs, [8, 3])), rg.tensor(ys, [8, 2]));
        manual.model.backward(lossFn.backward());
        manual.opt.step();
      }
      manual.model.parameters().forEach((p, i) => expect(host(p.value), `parameter ${i}`).toEqual(host(fitted.model.parameters()[i].value)));
    });
  }
});

// ---- Module.loadStateDict: every value checked before any is assigned ----

describe('Module.loadStateDict checks every value before assigning any', () => {
  it('a disposed tensor among the values loads nothing', () => {
    rg.setBackend('reference');
    const model = new rg.Sequential([new rg.Linear(3, 2), new rg.ReLU(), new rg.Linear(2, 2)]);
    const before = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, host(t)]));
    const sd: Record<string, rg.Tensor> = {};
    for (const [k, t] of Object.entries(model.stateDict())) sd[k] = rg.tensor(new Float32Array(t.size).fill(7), t.shape as number[]);
    sd['2.bias'].dispose();
    expect(() => model.loadStateDict(sd)).toThrow(rg.RetrogradError);
    expect(() => model.loadStateDict(sd)).toThrow("Sequential.loadStateDict: '2.bias' has been disposed");
    for (const [k, t] of Object.entries(model.stateDict())) expect(host(t), k).toEqual(before[k]);
    expect(() => model.loadStateDict({ ...sd, ['2.bias']: rg.zeros([2]), ['constructor']: rg.zeros([2]) })).toThrow(/unknown key 'constructor'/);
    for (const [k, t] of Object.entries(model.stateDict())) expect(host(t), k).toEqual(before[k]);
    sd['2.bias'] = rg.zeros([2]);
    model.loadStateDict(sd);
    expect(host(model.stateDict()['0.weight'])).toEqual(new Array(6).fill(7));
  });

  it('a disposed tensor of the module itself loads nothing', () => {
    rg.setBackend('reference');
    const model = new rg.Sequential([new rg.Linear(3, 2), new rg.Linear(2, 2)]);
    const sd = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, new Float32Array(t.size).fill(1)]));
    const w0 = host(model.stateDict()['0.weight']);
    model.stateDict()['1.bias'].dispose();
    expect(() => model.loadStateDict(sd)).toThrow("Sequential.loadStateDict: the module's own '1.bias' has been disposed");
    expect(host(model.stateDict()['0.weight'])).toEqual(w0);
  });

  it('values on another backend are read (at full precision) before anything is assigned', () => {
    rg.setBackend('reference');
    const lin = new rg.Linear(2, 1);
    lin.moveTo(reference64Backend);
    const w = fromHost(reference(), Float32Array.of(0.25, -0.5), [1, 2]);
    const b = fromHost(reference64Backend, Float64Array.of(0.1), [1]);
    lin.loadStateDict({ weight: w, bias: b });
    expect(host(lin.stateDict().weight)).toEqual([0.25, -0.5]);
    expect(host(lin.stateDict().bias)).toEqual([0.1]);
  });
});

// ---- scheduler states: checked whole before any part is loaded ----

describe('scheduler loadStateDict checks everything and loads all or nothing', () => {
  const sgd = () => new rg.SGD([new rg.Parameter(rg.zeros([3]))], { lr: 0.1, momentum: 0.9 });

  it('StepLR refuses counts and learning rates out of range, naming them', () => {
    rg.setBackend('reference');
    const s = new rg.StepLR(sgd(), 2);
    s.step();
    const good = s.stateDict();
    const bad: [Record<string, unknown>, ErrorConstructor, RegExp][] = [
      [{ ...good, lastEpoch: 1.5 }, RangeError, /StepLR\.loadStateDict: 'lastEpoch' must be an integer >= -1, got 1.5/],
      [{ ...good, lastEpoch: -2 }, RangeError, /'lastEpoch' must be an integer >= -1, got -2/],
      [{ ...good, stepCount: -1 }, RangeError, /'stepCount' must be an integer >= 0, got -1/],
      [{ ...good, baseLrs: [0.1, 0.2] }, RangeError, /'baseLrs' must hold 1 learning rate \(one per parameter group\), got 2/],
      [{ ...good, lastLrs: [NaN] }, RangeError, /'lastLrs\[0\]' must be a finite number >= 0, got NaN/],
      [{ ...good, baseLrs: [-0.1] }, RangeError, /'baseLrs\[0\]' must be a finite number >= 0, got -0.1/],
      [{ ...good, baseLrs: ['0.1'] }, TypeError, /'baseLrs' must be an array of numbers/],
    ];
    for (const [sd, cls, message] of bad) {
      expect(() => s.loadStateDict(sd)).toThrow(cls);
      expect(() => s.loadStateDict(sd)).toThrow(message);
      expect(s.stateDict()).toEqual(good);
    }
  });

  it('SequentialLR loads neither itself nor any child when one child state is bad', () => {
    rg.setBackend('reference');
    const o = sgd();
    const s = new rg.SequentialLR(o, [new rg.LinearLR(o, { totalIters: 2 }), new rg.ExponentialLR(o, 0.9)], [2]);
    const before = s.stateDict();
    const other = (() => {
      const o2 = sgd();
      const s2 = new rg.SequentialLR(o2, [new rg.LinearLR(o2, { totalIters: 2 }), new rg.ExponentialLR(o2, 0.9)], [2]);
      for (let t = 0; t < 4; t++) s2.step();
      return s2.stateDict() as { schedulers: Record<string, unknown>[] };
    })();
    other.schedulers[1] = { ...other.schedulers[1], stepCount: 'many' };
    expect(() => s.loadStateDict(other)).toThrow(/ExponentialLR\.loadStateDict: 'stepCount' must be a number/);
    expect(s.stateDict()).toEqual(before);
  });

  it('ReduceLROnPlateau refuses negative counters', () => {
    rg.setBackend('reference');
    const s = new rg.ReduceLROnPlateau(sgd());
    const good = s.stateDict();
    expect(() => s.loadStateDict({ ...good, numBadEpochs: -1 })).toThrow(RangeError);
    expect(() => s.loadStateDict({ ...good, numBadEpochs: -1 })).toThrow(/ReduceLROnPlateau\.loadStateDict: 'numBadEpochs' must be an integer >= 0, got -1/);
    expect(() => s.loadStateDict({ ...good, cooldownCounter: 0.5 })).toThrow(/'cooldownCounter' must be an integer >= 0, got 0.5/);
    expect(() => s.loadStateDict({ ...good, best: NaN })).toThrow(/'best' must be a number or null, got number NaN/);
    expect(s.stateDict()).toEqual(good);
  });
});
