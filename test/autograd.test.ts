// Autograd's behaviour: leaf accumulation, retainGraph, noGrad, detach, autograd.grad (with respect to an input),
// custom Functions, in-place changes caught by the version counter, bad input; modules written with operations
// (field registration, ModuleList, sub-modules called twice), built-in layers as graph nodes (equal to the same
// model written op by op), and fit on a module that has only a forward.
import { afterEach, describe, expect, it } from 'vitest';
import { collectGarbage, requireCpu, rg } from './helpers.js';

const cpuAvailable = requireCpu();
const backends: ('reference' | 'cpu')[] = cpuAvailable ? ['reference', 'cpu'] : ['reference'];
afterEach(() => rg.setBackend(cpuAvailable ? 'cpu' : 'reference'));
const arr = (t: rg.Tensor | null | undefined) => Array.from(t!.toArray());
const close = (a: number[], b: number[], tol = 1e-5) => {
  expect(a.length).toBe(b.length);
  a.forEach((v, i) => expect(Math.abs(v - b[i])).toBeLessThanOrEqual(tol * (1 + Math.abs(b[i]))));
};

describe.each(backends)('the engine (%s)', (name) => {
  it('accumulates into leaves across backward calls, as PyTorch', () => {
    rg.setBackend(name);
    const x = rg.tensor([1, 2, 3], [3], { requiresGrad: true });
    x.mul(x).sum().backward();
    expect(arr(x.grad)).toEqual([2, 4, 6]);
    x.mul(3).sum().backward();
    expect(arr(x.grad)).toEqual([5, 7, 9]);
    x.grad = null;
    x.sum().backward();
    expect(arr(x.grad)).toEqual([1, 1, 1]);
  });

  it('releases the graph after backward unless retainGraph', () => {
    rg.setBackend(name);
    const x = rg.tensor([1, 2], [2], { requiresGrad: true });
    const y = x.exp().sum();
    y.backward(undefined, { retainGraph: true });
    y.backward();
    close(arr(x.grad), [2 * Math.E, 2 * Math.exp(2)]);
    expect(() => y.backward()).toThrow(/second time .*retainGraph/);
  });

  it('records nothing under noGrad, and detach cuts the graph', () => {
    rg.setBackend(name);
    const x = rg.tensor([1, 2], [2], { requiresGrad: true });
    const y = rg.noGrad(() => x.mul(2));
    expect(y.requiresGrad).toBe(false);
    const z = x.detach().mul(x).sum(); // d/dx of (c·x) with c = x detached is c
    z.backward();
    expect(arr(x.grad)).toEqual([1, 2]);
    expect(x.detach().isLeaf).toBe(true);
  });

  it('autograd.grad gives the gradient with respect to the input without touching .grad', () => {
    rg.setBackend(name);
    rg.manualSeed(3);
    const model = new rg.Sequential([new rg.Linear(3, 4), new rg.Tanh(), new rg.Linear(4, 1)]);
    const x = rg.tensor([0.5, -1, 2, 1, 0, -0.5], [2, 3], { requiresGrad: true });
    const y = model.forward(x).sum();
    const [gx] = rg.autograd.grad(y, x);
    expect(x.grad).toBeNull();
    // the same by finite differences through the model
    const f = (d: number[]) => rg.noGrad(() => model.forward(rg.tensor(d, [2, 3])).sum().item());
    const base = arr(x);
    const numeric = base.map((_, i) => {
      const p = [...base], m = [...base];
      p[i] += 1e-2;
      m[i] -= 1e-2;
      return (f(p) - f(m)) / 2e-2;
    });
    close(arr(gx), numeric, 2e-3);
  });

  it('autograd.grad leaves every .grad alone, built-in layers included, and runs only what leads to its inputs', () => {
    rg.setBackend(name);
    rg.manualSeed(6);
    const lin = new rg.Linear(3, 2);
    lin.zeroGrad();
    const x = rg.randn([4, 3], { requiresGrad: true });
    const h = lin.forward(x).tanh();
    const side = rg.tensor([1, 2, 3], [3], { requiresGrad: true });
    const other = side.log(); // a branch the inputs do not need
    rg.noGrad(() => side.mul_(2)); // would fail that branch's backward
    const [gh] = rg.autograd.grad(h.sum().add(other.sum()), h);
    expect(arr(gh)).toEqual(new Array(8).fill(1));
    expect(arr(lin.weight.grad).every((v) => v === 0)).toBe(true);
    expect(x.grad).toBeNull();
  });

  it("autograd.grad with respect to a built-in layer's parameters (a Sequential's too) equals backward's, leaving .grad alone", () => {
    rg.setBackend(name);
    rg.manualSeed(8);
    const net = new rg.Sequential([new rg.Linear(3, 5), new rg.ReLU(), new rg.Linear(5, 2)]);
    const head = new rg.Linear(2, 1);
    const x = rg.randn([4, 3]);
    const loss = () => head.forward(net.forward(x)).tanh().square().mean();
    const [w0] = net.parameters();
    w0.grad.assign(new Float32Array(w0.value.size).fill(7)); // an accumulated gradient that must survive
    const [gw0, ghead] = rg.autograd.grad(loss(), [w0, head.weight]);
    expect(arr(w0.grad)).toEqual(new Array(15).fill(7));
    net.zeroGrad();
    head.zeroGrad();
    loss().backward();
    close(arr(gw0), arr(w0.grad));
    close(arr(ghead), arr(head.weight.grad));
  });

  it('autograd.grad through a Sequential that holds one layer twice (its parameters listed twice)', () => {
    rg.setBackend(name);
    rg.manualSeed(9);
    const shared = new rg.Linear(4, 4);
    const net = new rg.Sequential([shared, new rg.Tanh(), shared]);
    const x = rg.randn([3, 4]);
    shared.weight.grad.assign(new Float32Array(16).fill(5));
    const [gw] = rg.autograd.grad(net.forward(x).square().sum(), [shared.weight]);
    expect(arr(shared.weight.grad)).toEqual(new Array(16).fill(5));
    shared.zeroGrad();
    net.forward(x).square().sum().backward();
    close(arr(gw), arr(shared.weight.grad));
  });

  it('a backward that fails on a changed tensor changes no gradient', () => {
    rg.setBackend(name);
    const w = rg.tensor([1, 2], [2], { requiresGrad: true });
    const x = rg.tensor([0.5, 1], [2], { requiresGrad: true });
    const e = rg.noGrad(() => x.mul(1));
    const loss = x.mul(e).sum().add(w.mul(3).sum());
    rg.noGrad(() => e.mul_(2));
    expect(() => loss.backward()).toThrow(/changed by an in-place operation/);
    expect(w.grad).toBeNull();
    expect(x.grad).toBeNull();
  });

  it('custom Functions: forward and backward written with operations', () => {
    rg.setBackend(name);
    class Cube extends rg.autograd.Function {
      static override forward(ctx: rg.FunctionContext, x: rg.Tensor) {
        ctx.saveForBackward(x);
        return x.pow(3);
      }
      static override backward(ctx: rg.FunctionContext, g: rg.Tensor) {
        const [x] = ctx.saved;
        return g.mul(x.square().mul(3));
      }
    }
    const x = rg.tensor([1, -2, 0.5], [3], { requiresGrad: true });
    const y = Cube.apply(x) as rg.Tensor;
    close(arr(y), [1, -8, 0.125]);
    y.sum().backward();
    close(arr(x.grad), [3, 12, 0.75]);
  });

  it('an in-place change to a tensor a backward needs is caught', () => {
    rg.setBackend(name);
    const x = rg.tensor([1, 2], [2], { requiresGrad: true });
    const h = rg.noGrad(() => x.mul(1)); // a tensor outside the graph
    const y = x.mul(h).sum();
    rg.noGrad(() => h.mul_(2));
    expect(() => y.backward()).toThrow(/changed by an in-place operation: version 0 when saved, 1 now/);
    expect(() => x.add_(1)).toThrow(/in-place operation on a tensor that requires grad \(a leaf\)/);
  });

  it('an in-place change to an input of add, sub or a product with a number is no error: their gradients need only shapes', () => {
    rg.setBackend(name);
    const x = rg.tensor([1, 2], [2], { requiresGrad: true });
    const h = rg.noGrad(() => x.mul(1));
    const y = x.add(h).sub(h).mul(3).add(h, { alpha: 2 }).sum();
    rg.noGrad(() => h.mul_(2));
    y.backward();
    expect(arr(x.grad)).toEqual([3, 3]);
  });

  it('refuses what it cannot do, clearly and changing nothing', () => {
    rg.setBackend(name);
    const a = rg.tensor([1, 2, 3], [3], { requiresGrad: true });
    expect(() => a.add(rg.tensor([1, 2], [2]))).toThrow('add: shapes [3] and [2] cannot be broadcast together (dimension -1: 3 vs 2)');
    expect(() => a.mul(2).backward()).toThrow(/gradient can be implied only for a one-element output, this one has shape \[3\]/);
    expect(() => rg.tensor(new Int32Array([1]), [1], { requiresGrad: true })).toThrow(/only float tensors can require grad/);
    expect(() => a.sum(2)).toThrow('sum: dim 2 is out of range for a tensor of 1 dimension (expected -1 to 0)');
    expect(() => a.indexSelect(0, rg.tensor(new Int32Array([0, 5]), [2])).toArray()).toThrow(/index 5 at position 1 is outside \[0, 3\)/);
    expect(() => rg.tensor([0], [1]).backward()).toThrow(/does not require grad/);
    expect(a.grad).toBeNull();
    expect(arr(a.add(1))).toEqual([2, 3, 4]); // still usable
  });

  it('a gradient given for two inputs reaches both (x + x on a leaf and on a Parameter)', () => {
    rg.setBackend(name);
    const x = rg.tensor([1, 2, 3], [3], { requiresGrad: true });
    x.add(x).sum().backward();
    expect(arr(x.grad)).toEqual([2, 2, 2]);
    const p = new rg.Parameter(rg.tensor([1, 2], [2]));
    p.add(p).mul(p).sum().backward();
    expect(arr(p.grad)).toEqual([4, 8]);
  });

  it('tidy keeps a returned view and its storage', () => {
    rg.setBackend(name);
    const x = rg.tensor([1, 2, 3, 4], [2, 2]);
    const s = rg.tidy(() => x.mul(2).sum());
    expect(s.item()).toBe(20);
    const m = rg.tidy(() => x.matmul(x));
    expect(arr(m)).toEqual([7, 10, 15, 22]);
  });

  it('tidy frees every intermediate but what is returned', () => {
    rg.setBackend(name);
    const x = rg.randn([16]);
    collectGarbage();
    const before = rg.memory().tensors;
    const y = rg.tidy(() => x.exp().add(1).log().mul(2));
    x.toArray();
    expect(rg.memory().tensors).toBe(before + 1);
    expect(y.disposed).toBe(false);
  });

  it('a training step inside tidy: the optimizer state, the module buffers and reused outputs outlive it', () => {
    rg.setBackend(name);
    rg.manualSeed(3);
    // built inside a scope too: the BatchNorm running statistics are the module's
    const model = rg.tidy(() => new rg.Sequential([new rg.Linear(3, 4), new rg.BatchNorm1d(4), new rg.ReLU(), new rg.Linear(4, 2)]));
    const opt = new rg.Adam(model.parameters(), { lr: 1e-2 });
    const x = rg.randn([5, 3]), y = rg.tensor(Int32Array.from([0, 1, 1, 0, 1]), [5]);
    const step = () => rg.tidy(() => {
      const loss = rg.F.crossEntropy(model.forward(x), y);
      opt.zeroGrad();
      loss.backward();
      opt.step(); // the first step makes Adam's exp_avg and exp_avg_sq inside the scope
      return loss.item();
    });
    const losses = [step(), step(), step()];
    expect(losses[2]).toBeLessThan(losses[0]);
    expect(Object.values(model.stateDict()).every((t) => !t.disposed)).toBe(true);
    const fused = model.reuseOutputs();
    step();
    expect(step()).toBeLessThan(losses[0]); // the reused output buffers survived the scopes
    fused.reuseOutputs(false);
    // rg.keep exempts a tensor of the caller's
    const kept = rg.tidy(() => {
      rg.keep(x.mul(3));
      return rg.keep(x.add(1)).add(0);
    });
    expect(kept.disposed).toBe(false);
    expect(() => rg.keep(3 as never)).toThrow(/rg\.keep/);
  });
});

class Residual extends rg.Module {
  fc1 = new rg.Linear(4, 4);
  fc2 = new rg.Linear(4, 4);
  forward(x: rg.Tensor) {
    return x.add(this.fc2.forward(this.fc1.forward(x).relu())).relu();
  }
}

describe.each(backends)('modules on the graph (%s)', (name) => {
  it('fields register as PyTorch attributes; ModuleList under indices', () => {
    rg.setBackend(name);
    class Net extends rg.Module {
      block = new Residual();
      heads = new rg.ModuleList([new rg.Linear(4, 2), new rg.Linear(4, 3)]);
      scale = new rg.Parameter(rg.ones([1]));
      forward(x: rg.Tensor) {
        const h = this.block.forward(x).mul(this.scale);
        return rg.cat([...this.heads].map((m) => m.forward(h)), 1);
      }
    }
    const net = new Net();
    expect(Object.keys(net.stateDict())).toEqual([
      'scale', 'block.fc1.weight', 'block.fc1.bias', 'block.fc2.weight', 'block.fc2.bias',
      'heads.0.weight', 'heads.0.bias', 'heads.1.weight', 'heads.1.bias',
    ]);
    const out = net.forward(rg.randn([3, 4]));
    expect(out.shape).toEqual([3, 5]);
    out.sum().backward();
    for (const [n, p] of net.namedParameters()) expect(arr(p.grad).some((v) => v !== 0), n).toBe(true);
  });

  it('a built-in Sequential as one node equals the same model written op by op, and a layer called twice is correct', () => {
    rg.setBackend(name);
    rg.manualSeed(7);
    const lin = new rg.Linear(5, 5);
    const seq = new rg.Sequential([lin, new rg.ReLU()]);
    const x = rg.randn([4, 5]);
    // shared: the same Sequential twice, then a loss
    seq.zeroGrad();
    seq.forward(seq.forward(x)).square().mean().backward();
    const viaLayers = seq.parameters().map((p) => arr(p.grad));
    // the same by operations on the same parameters
    seq.zeroGrad();
    const step = (h: rg.Tensor) => rg.linear(h, lin.weight, lin.bias).relu();
    step(step(x)).square().mean().backward();
    const viaOps = seq.parameters().map((p) => arr(p.grad));
    viaLayers.forEach((g, i) => close(g, viaOps[i], 1e-5));
  });

  it('a Sequential holding a module written with operations records every layer (no fusion that the graph cannot see)', () => {
    rg.setBackend(name);
    rg.manualSeed(4);
    const block = new Residual();
    const lin = new rg.Linear(4, 2);
    const seq = new rg.Sequential([new rg.Linear(3, 4), new rg.ReLU(), block, lin, new rg.ReLU()]);
    const x = rg.randn([5, 3]);
    seq.zeroGrad();
    seq.forward(x).sum().backward();
    const viaSeq = seq.parameters().map((p) => arr(p.grad));
    seq.zeroGrad();
    const [l0] = seq.layers as [rg.Linear];
    rg.linear(block.forward(rg.linear(x, l0.weight, l0.bias).relu()), lin.weight, lin.bias).relu().sum().backward();
    const viaOps = seq.parameters().map((p) => arr(p.grad));
    viaSeq.forEach((g, i) => close(g, viaOps[i], 1e-5));
    expect(viaSeq[0].some((v) => v !== 0)).toBe(true);
  });

  it.each([
    ['BatchNorm1d', () => new rg.BatchNorm1d(3), [4, 3]],
    ['LayerNorm', () => new rg.LayerNorm(3), [4, 3]],
    ['LSTM', () => new rg.LSTM(3, 2, { batchFirst: true }), [2, 4, 3]],
    ['MaxPool2d after Conv2d', () => new rg.Sequential([new rg.Conv2d(1, 2, 3, { padding: 1 }), new rg.MaxPool2d(2)]), [2, 1, 4, 4]],
  ] as const)('%s called twice in one forward gives twice the gradient of one call', (_, make, shape) => {
    rg.setBackend(name);
    rg.manualSeed(9);
    const m = make();
    const x = rg.randn([...shape]);
    m.zeroGrad();
    m.forward(x).sum().backward();
    const once = m.parameters().map((p) => arr(p.grad));
    m.zeroGrad();
    m.forward(x).sum().add(m.forward(x).sum()).backward();
    m.parameters().forEach((p, i) => close(arr(p.grad), once[i].map((v) => 2 * v), 1e-4));
  });

  it('a field replaced by another module is registered in its place', () => {
    rg.setBackend(name);
    class Net extends rg.Module {
      head: rg.Module | null = new rg.Linear(3, 2);
      forward(x: rg.Tensor) {
        return this.head!.forward(x);
      }
    }
    const net = new Net();
    expect(net.stateDict()['head.weight'].shape).toEqual([2, 3]);
    net.head = new rg.Linear(3, 5);
    expect(net.stateDict()['head.weight'].shape).toEqual([5, 3]);
    net.head = null;
    expect(Object.keys(net.stateDict())).toEqual([]);
  });

  it('Module.backward still works for built-in layers (the original API)', () => {
    rg.setBackend(name);
    rg.manualSeed(2);
    const m = new rg.Sequential([new rg.Linear(3, 2), new rg.Sigmoid()]);
    const loss = new rg.MSELoss();
    m.zeroGrad();
    loss.forward(m.forward(rg.randn([4, 3])), rg.zeros([4, 2]));
    const dx = m.backward(loss.backward());
    expect(dx.shape).toEqual([4, 3]);
    expect(arr(m.parameters()[0].grad).some((v) => v !== 0)).toBe(true);
  });

  it('fit trains a module that has only a forward (graph path) and loss falls', async () => {
    rg.setBackend(name);
    rg.manualSeed(11);
    class Net extends rg.Module {
      block = new Residual();
      out = new rg.Linear(4, 3);
      forward(x: rg.Tensor) {
        return this.out.forward(this.block.forward(x));
      }
    }
    const net = new Net();
    const x = rg.randn([96, 4]);
    const y = rg.tensor(Int32Array.from({ length: 96 }, (_, i) => i % 3), [96]);
    net.compile({ optimizer: new rg.Adam(net.parameters(), { lr: 0.02 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
    const h = await net.fit(x, y, { epochs: 6, batchSize: 16, verbose: 0 });
    const losses = h.history.loss;
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    const { loss } = await net.evaluate(x, y);
    expect(Number.isFinite(loss)).toBe(true);
  });
});

describe.skipIf(!cpuAvailable)('memory in a synchronous loop (cpu)', () => {
  it('a loop that neither yields nor disposes gets back what the collector takes, as it goes', () => {
    rg.setBackend('cpu');
    // a storage's release runs inside the garbage collection that finds its tensor dead (a release deferred to the event
    // loop, as Node-API's default, never comes in a loop that does not yield: 200,000 small tensors stayed allocated)
    const w = new rg.Parameter(rg.randn([32, 32]));
    const x = rg.randn([8, 32]);
    const counts: number[] = [];
    for (let i = 0; i < 600; i++) {
      x.matmul(w).tanh().square().mean().backward();
      if (i % 100 === 99) {
        collectGarbage();
        x.toArray();
        counts.push(rg.memory().tensors);
      }
    }
    // about six tensors a step: kept until the loop ends, 500 steps would leave some 3,000 behind
    expect(Math.max(...counts) - counts[0]).toBeLessThan(50);
  });
});
