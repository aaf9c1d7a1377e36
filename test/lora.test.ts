// LoRA adapters (lib/nn/lora.ts): attached to Linear layers and to MultiheadAttention's in-projection, they change a
// layer exactly as the merged weight W + (α/r)·B·A would, in every path a layer has (Linear alone and fused with its
// activation in a Sequential, attention's fused self-attention, its general form and its key/value cache, a transformer
// block on the graph); gradients reach A and B only (float64 finite differences); merging gives back a plain model with
// the same function and the base model's keys.
import { afterEach, describe, expect, it } from 'vitest';
import { reference64Backend } from '../lib/backends/reference/index.js';
import { fromHost } from '../lib/tensor.js';
import { requireCpu, rg, rng } from './helpers.js';

const cpuAvailable = requireCpu();
const backends: ('reference' | 'cpu')[] = cpuAvailable ? ['reference', 'cpu'] : ['reference'];
afterEach(() => rg.setBackend(cpuAvailable ? 'cpu' : 'reference'));

const randn = (shape: number[], seed: number) => {
  const r = rng(seed);
  return rg.tensor(Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => 2 * r() - 1), shape);
};
/** Gives every adapter's B random values (it starts at zero, where an adapter changes nothing). */
function perturb(report: rg.LoRAReport, seed = 5) {
  let s = seed;
  for (const a of report.adapters.values()) a.B.value.assign(randn(a.B.value.shape as number[], s++).mul(0.3).toArray());
}
const maxDiff = (a: rg.Tensor, b: rg.Tensor) => {
  const x = a.toArray(), y = b.toArray();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
};
/** A copy of `model` (built by `make`) with `model`'s adapters merged into its weights, computed independently. */
function mergedCopy<M extends rg.Module>(model: M, make: () => M, report: rg.LoRAReport): M {
  const copy = make();
  const sd: Record<string, Float32Array | Int32Array> = {};
  for (const [k, t] of Object.entries(model.stateDict())) if (!/(^|\.)(lora|in_proj_lora)\./.test(k)) sd[k] = t.toArray() as Float32Array;
  for (const [name, a] of report.adapters) {
    const key = a.outFeatures === 3 * a.inFeatures && sd[`${name ? name + '.' : ''}in_proj_weight`] ? `${name ? name + '.' : ''}in_proj_weight` : `${name ? name + '.' : ''}weight`;
    const A = a.A.value.toArray(), B = a.B.value.toArray(), W = sd[key] as Float32Array;
    for (let o = 0; o < a.outFeatures; o++)
      for (let i = 0; i < a.inFeatures; i++) {
        let d = 0;
        for (let r = 0; r < a.rank; r++) d += B[o * a.rank + r] * A[r * a.inFeatures + i];
        W[o * a.inFeatures + i] += a.scaling * d;
      }
  }
  copy.loadStateDict(sd);
  return copy;
}

describe.each(backends)('LoRA (%s)', (name) => {
  it('an adapter starts as the identity of the update (B = 0) and registers A and B under the layer', () => {
    rg.setBackend(name);
    rg.manualSeed(1);
    const model = new rg.Sequential([new rg.Linear(6, 8), new rg.ReLU(), new rg.Linear(8, 3)]);
    const x = randn([5, 6], 1);
    const before = rg.noGrad(() => model.forward(x));
    const report = rg.addLoRA(model, { rank: 2, alpha: 4 });
    expect([...report.adapters.keys()]).toEqual(['0', '2']);
    expect(Object.keys(model.stateDict())).toEqual(['0.weight', '0.bias', '0.lora.A', '0.lora.B', '2.weight', '2.bias', '2.lora.A', '2.lora.B']);
    expect(report.trainable).toBe(2 * 6 + 8 * 2 + 2 * 8 + 3 * 2);
    expect(report.total).toBe(6 * 8 + 8 + 8 * 3 + 3 + report.trainable);
    expect(model.parameters().filter((p) => p.requiresGrad)).toHaveLength(4);
    expect(maxDiff(rg.noGrad(() => model.forward(x)), before)).toBe(0);
    const a = report.adapters.get('0')!;
    expect(a.scaling).toBe(2);
    expect(a.label).toBe('LoRA(6→8, rank 2, α 4)');
  });

  it('Linear (alone and fused with ReLU in a Sequential) equals the merged weight; only the adapters get gradients', () => {
    rg.setBackend(name);
    rg.manualSeed(2);
    const make = () => new rg.Sequential([new rg.Linear(7, 9), new rg.ReLU(), new rg.Linear(9, 4)]);
    const model = make();
    const report = rg.addLoRA(model, { rank: 3 });
    perturb(report);
    const merged = mergedCopy(model, make, report);
    const x = randn([6, 7], 3), y = rg.tensor(Int32Array.from([0, 1, 2, 3, 1, 2]), [6]);
    const out = model.forward(x);
    expect(maxDiff(out, rg.noGrad(() => merged.forward(x)))).toBeLessThan(1e-5);
    rg.F.crossEntropy(out, y).backward();
    for (const [k, p] of model.namedParameters()) {
      const g = p.grad.toArray();
      if (k.includes('lora')) expect(g.some((v) => v !== 0)).toBe(true);
      else expect(g.every((v) => v === 0)).toBe(true);
    }
  });

  it('MultiheadAttention: the fused self-attention, the general form and the cache equal the merged weights', () => {
    rg.setBackend(name);
    rg.manualSeed(3);
    const make = () => new rg.MultiheadAttention(8, 2, { causal: true });
    const model = make();
    const report = rg.addLoRA(model, { rank: 2 });
    expect([...report.adapters.keys()]).toEqual(['', 'out_proj']);
    expect(Object.keys(model.stateDict())).toContain('in_proj_lora.A');
    perturb(report);
    const merged = mergedCopy(model, make, report);
    const x = randn([2, 5, 8], 4), kv = randn([2, 3, 8], 5);
    expect(maxDiff(model.forward(x), rg.noGrad(() => merged.forward(x)))).toBeLessThan(1e-5);
    expect(maxDiff(rg.noGrad(() => model.forward(x)), rg.noGrad(() => merged.forward(x)))).toBeLessThan(1e-5);
    const [cross] = model.forward(x, kv, kv, { needWeights: false, isCausal: false });
    const [crossMerged] = rg.noGrad(() => merged.forward(x, kv, kv, { needWeights: false, isCausal: false }));
    expect(maxDiff(cross, crossMerged)).toBeLessThan(1e-5);
    // the cache: one position at a time
    const full = rg.noGrad(() => merged.forward(x));
    const cache = new rg.KVCache();
    const steps = rg.noGrad(() => Array.from({ length: 5 }, (_, t) => {
      const xt = x.narrow(1, t, 1).contiguous();
      return model.forward(xt, xt, xt, { cache, needWeights: false })[0];
    }));
    const stepped = rg.cat(steps, 1);
    expect(maxDiff(stepped, full)).toBeLessThan(1e-5);
    cache.reset();
  });

  it('a transformer block with adapters trains on the graph and equals the merged block', () => {
    rg.setBackend(name);
    rg.manualSeed(4);
    const make = () => new rg.TransformerBlock(8, 2, { causal: true, mlpRatio: 2 });
    const model = make();
    const report = rg.addLoRA(model, { rank: 2, targets: ['attn', 'mlp'] });
    expect([...report.adapters.keys()]).toEqual(['attn', 'attn.out_proj', 'mlp.0', 'mlp.2']);
    perturb(report);
    const merged = mergedCopy(model, make, report);
    const x = randn([2, 4, 8], 6);
    const y = model.forward(x);
    expect(maxDiff(y, rg.noGrad(() => merged.forward(x)))).toBeLessThan(1e-5);
    y.square().sum().backward();
    const grads = [...report.adapters.values()].flatMap((a) => [a.A.grad, a.B.grad]);
    expect(grads.every((g) => g.toArray().some((v) => v !== 0))).toBe(true);
    // Adam on the adapters lowers a loss; the frozen weights stay as they were
    const w = model.ln1.weight!.value.toArray().slice(), wIn = model.attn.inProjWeight.value.toArray().slice();
    const opt = new rg.Adam([...report.adapters.values()].flatMap((a) => a.parameters()), { lr: 1e-2 });
    const target = randn([2, 4, 8], 7);
    const losses: number[] = [];
    for (let i = 0; i < 15; i++) {
      opt.zeroGrad();
      const l = model.forward(x).sub(target).square().mean();
      l.backward();
      opt.step();
      losses.push(l.item());
    }
    expect(losses.at(-1)!).toBeLessThan(losses[0] * 0.8);
    expect(model.ln1.weight!.value.toArray()).toEqual(w);
    expect(model.attn.inProjWeight.value.toArray()).toEqual(wIn);
  });

  it('mergeLoRA folds the adapters in: the same function, the base keys, every parameter trainable again', () => {
    rg.setBackend(name);
    rg.manualSeed(5);
    const model = new rg.Sequential([new rg.Embedding(11, 8), new rg.PositionalEmbedding(6, 8), new rg.TransformerBlock(8, 2, { causal: true }), new rg.Linear(8, 11)]);
    const keys = Object.keys(model.stateDict());
    const report = rg.addLoRA(model, { rank: 4, targets: (n) => n.startsWith('2.') });
    expect([...report.adapters.keys()]).toEqual(['2.attn', '2.attn.out_proj', '2.mlp.0', '2.mlp.2']);
    perturb(report);
    const ids = rg.tensor(Int32Array.from([1, 4, 2, 9, 0, 3, 7, 5]), [2, 4]);
    const adapted = rg.noGrad(() => model.forward(ids));
    expect(rg.mergeLoRA(model)).toBe(4);
    expect(Object.keys(model.stateDict())).toEqual(keys);
    expect(model.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(maxDiff(rg.noGrad(() => model.forward(ids)), adapted)).toBeLessThan(1e-5);
    expect(rg.mergeLoRA(model)).toBe(0);
  });
});

describe('LoRA gradients against float64 finite differences', () => {
  it('dL/dA and dL/dB of an adapted Linear and an adapted attention', () => {
    for (const make of [() => new rg.Linear(4, 3), () => new rg.MultiheadAttention(4, 2)]) {
      rg.manualSeed(6);
      const layer = make();
      const report = rg.addLoRA(layer, { rank: 2, alpha: 3 });
      perturb(report);
      (layer as unknown as { withStateOn<T>(b: unknown, f: () => T): T }).withStateOn(reference64Backend, () => {
        const x = fromHost(reference64Backend, Float64Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i + 1)), [2, 3, 4]);
        const loss = () => {
          const y = layer instanceof rg.Linear ? layer.forward(x) : (layer as rg.MultiheadAttention).forward(x, x, x, { needWeights: false })[0];
          return y.mul(y.add(0.3)).sum();
        };
        loss().backward();
        for (const a of report.adapters.values())
          for (const p of [a.A, a.B]) {
            // the float64 reference backend's buffer itself (assign would round through float32)
            const v = p.value.buf as unknown as Float64Array, g = p.grad.toArray();
            expect(g.some((e) => e !== 0)).toBe(true);
            for (let i = 0; i < v.length; i++) {
              const keep = v[i], h = 1e-6;
              v[i] = keep + h;
              const up = rg.noGrad(loss).item();
              v[i] = keep - h;
              const down = rg.noGrad(loss).item();
              v[i] = keep;
              expect(Math.abs(g[i] - (up - down) / (2 * h))).toBeLessThan(1e-6 * Math.max(1, Math.abs(g[i])));
            }
          }
      });
    }
  });
});

describe('LoRA: bad input', () => {
  it('names what was expected and what came', () => {
    expect(() => rg.addLoRA({} as never)).toThrow(/^addLoRA: expected a Module, got /);
    const m = new rg.Sequential([new rg.Linear(2, 2)]);
    expect(() => rg.addLoRA(m, { targets: ['nothing'] })).toThrow('addLoRA: no Linear or MultiheadAttention layer of the model matches the targets');
    expect(() => rg.addLoRA(m, { rank: 0 })).toThrow('LoRA: invalid rank 0; expected an integer >= 1');
    expect(() => rg.addLoRA(m, { targets: 3 as never })).toThrow(/^addLoRA: option targets must be a function of \(name, layer\) or an array of name fragments, got /);
    expect(() => rg.addLoRA(m, { ranks: 2 } as never)).toThrow(/addLoRA/);
    rg.addLoRA(m, { rank: 1 });
    expect(() => rg.addLoRA(m)).toThrow("addLoRA: the model has adapters already (at '0.lora'): merge or remove them first");
    expect(() => rg.mergeLoRA(null as never)).toThrow(/^mergeLoRA: expected a Module, got /);
  });
});
