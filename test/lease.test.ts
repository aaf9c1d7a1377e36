// Leases (lib/nn/graph.ts): outside fit, a built-in module's buffers that never leave it are reused from step to step
// once nothing can read the last step's. Every scenario here runs twice, leases on and off (fresh buffers, PyTorch's
// semantics), and must give the same bits: losses, gradients, weights, and the outputs a caller kept from earlier
// steps — including the patterns a reused buffer would corrupt (a module called twice before the backward, a graph
// kept for later, a layer shared by two Sequentials, an input that needs its gradient, the hand-written backward), and
// a node that must read its own call's input when the same tensor came twice.
import { afterEach, describe, expect, it } from 'vitest';
import { currentBackend } from '../lib/backend.js';
import { setLeasing } from '../lib/nn/graph.js';
import { isPooled } from '../lib/workspace.js';
import { collectGarbage, requireCpu, rg, rng } from './helpers.js';

const cpuAvailable = requireCpu();
const backends: ('reference' | 'cpu')[] = cpuAvailable ? ['reference', 'cpu'] : ['reference'];
afterEach(() => {
  setLeasing(true);
  rg.setBackend(cpuAvailable ? 'cpu' : 'reference');
});

const arr = (t: rg.Tensor | null | undefined) => Array.from(t!.toArray());
const randomTensor = (shape: number[], seed: number, opts?: { requiresGrad?: boolean }) => {
  const r = rng(seed);
  return rg.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * r() - 1), shape, opts);
};
const labels = (n: number, classes: number, seed: number) => {
  const r = rng(seed);
  return rg.tensor(Int32Array.from({ length: n }, () => Math.floor(r() * classes)), [n]);
};
const weights = (m: rg.Module) => m.parameters().flatMap((p) => arr(p.value));
const grads = (m: rg.Module) => m.parameters().flatMap((p) => arr(p.grad));

/** A small CNN of built-in layers (odd sizes): one autograd node, every buffer lent when leases are on. */
function cnn(): rg.Sequential {
  return new rg.Sequential([
    new rg.Conv2d(2, 5, 3, { padding: 1 }), new rg.BatchNorm2d(5), new rg.ReLU(), new rg.MaxPool2d(2),
    new rg.Flatten(), new rg.Linear(5 * 3 * 3, 7), new rg.ReLU(), new rg.Dropout(0.3), new rg.Linear(7, 4),
  ]);
}

/** Runs `scenario` with leases on and off, from the same seed; both must give the same numbers. */
function bothWays(name: 'reference' | 'cpu', scenario: () => number[][]): number[][] {
  const results = [true, false].map((on) => {
    rg.setBackend(name);
    setLeasing(on);
    rg.manualSeed(7);
    return scenario();
  });
  setLeasing(true);
  expect(results[0].length).toBe(results[1].length);
  results[0].forEach((r, i) => expect(r, `result ${i}`).toEqual(results[1][i]));
  return results[0];
}

describe.each(backends)('leases (%s)', (name) => {
  it('a hand-written loop trains bit for bit as on fresh buffers, and every kept output and loss keeps its values', () => {
    bothWays(name, () => {
      const model = cnn();
      const opt = new rg.Adam(model.parameters(), { lr: 1e-2 });
      const lossFn = new rg.CrossEntropyLoss();
      const kept: rg.Tensor[] = [];
      for (let s = 0; s < 5; s++) {
        opt.zeroGrad();
        const y = model.forward(randomTensor([3, 2, 7, 6], 10 + s));
        const loss = lossFn.forward(y, labels(3, 4, 20 + s));
        loss.backward();
        opt.step();
        kept.push(y, loss);
      }
      return [...kept.map(arr), weights(model)];
    });
  });

  it('a module called twice before its backward (a GAN discriminator on real and fake)', () => {
    bothWays(name, () => {
      const D = cnn(), G = new rg.Sequential([new rg.Linear(5, 2 * 7 * 6), new rg.Tanh()]);
      const optD = new rg.SGD(D.parameters(), { lr: 0.05, momentum: 0.9 }), optG = new rg.SGD(G.parameters(), { lr: 0.05 });
      const out: number[][] = [];
      for (let s = 0; s < 3; s++) {
        const fake = G.forward(randomTensor([3, 5], 30 + s)).reshape([3, 2, 7, 6]);
        const lossD = D.forward(randomTensor([3, 2, 7, 6], 40 + s)).square().mean().add(D.forward(fake.detach()).mean());
        optD.zeroGrad();
        lossD.backward();
        optD.step();
        const lossG = D.forward(fake).mean().neg();
        optG.zeroGrad();
        lossG.backward();
        optG.step();
        out.push(arr(lossD), arr(lossG), arr(fake));
      }
      return [...out, weights(D), weights(G)];
    });
  });

  it('a graph kept for later (no backward yet, and retainGraph) while other steps run', () => {
    bothWays(name, () => {
      const model = cnn();
      const x1 = randomTensor([2, 2, 7, 6], 50);
      const kept = model.forward(x1).sum(); // backpropagated only at the end
      const retained = model.forward(randomTensor([2, 2, 7, 6], 51)).square().sum();
      retained.backward(undefined, { retainGraph: true });
      const first = grads(model);
      for (let s = 0; s < 2; s++) {
        model.zeroGrad();
        model.forward(randomTensor([4, 2, 7, 6], 52 + s)).mean().backward();
      }
      model.zeroGrad();
      retained.backward(); // again, through the retained graph
      const second = grads(model);
      model.zeroGrad();
      kept.backward();
      return [first, second, grads(model)];
    });
  });

  it('a layer shared by two Sequentials, and an input that needs its gradient', () => {
    bothWays(name, () => {
      const shared = new rg.Linear(6, 6);
      const a = new rg.Sequential([shared, new rg.ReLU(), new rg.Linear(6, 3)]);
      const b = new rg.Sequential([new rg.Linear(6, 6), new rg.Sigmoid(), shared, new rg.Tanh()]);
      const out: number[][] = [];
      const x = randomTensor([5, 6], 60, { requiresGrad: true });
      for (let s = 0; s < 3; s++) {
        const loss = a.forward(x).square().sum().add(b.forward(x).mul(a.forward(randomTensor([5, 6], 61 + s)).sum()).sum());
        loss.backward();
        out.push(arr(loss), arr(x.grad), grads(a), grads(b));
      }
      return out;
    });
  });

  it('the hand-written backward (model.backward(dy)) and inference outputs kept across calls', () => {
    bothWays(name, () => {
      const model = cnn();
      const opt = new rg.SGD(model.parameters(), { lr: 0.1 });
      const lossFn = new rg.CrossEntropyLoss();
      const out: number[][] = [];
      const dxs: rg.Tensor[] = [];
      for (let s = 0; s < 3; s++) {
        opt.zeroGrad();
        lossFn.forward(model.forward(randomTensor([3, 2, 7, 6], 70 + s)), labels(3, 4, 80 + s));
        dxs.push(model.backward(lossFn.backward()));
        opt.step();
      }
      model.eval();
      const predictions = [0, 1, 2].map((s) => rg.noGrad(() => model.forward(randomTensor([2, 2, 7, 6], 90 + s))));
      out.push(...dxs.map(arr), ...predictions.map(arr), weights(model));
      return out;
    });
  });

  it('a recurrent layer inside a Sequential: its lastState stays valid across steps (truncated BPTT)', () => {
    bothWays(name, () => {
      const rnn = new rg.LSTM(3, 4, { batchFirst: true });
      const model = new rg.Sequential([new rg.Linear(3, 3), new rg.Tanh(), rnn]);
      const opt = new rg.SGD(model.parameters(), { lr: 0.1 });
      const out: number[][] = [];
      for (let s = 0; s < 3; s++) {
        opt.zeroGrad();
        model.forward(randomTensor([2, 5, 3], 100 + s)).square().mean().backward();
        opt.step();
        const [h, c] = rnn.lastState as [rg.Tensor, rg.Tensor];
        rnn.initialState = [h.detach(), c.detach()];
        out.push(arr(h), arr(c)); // (the layer frees a state once it is neither the last nor the initial one)
      }
      return [...out, weights(model)];
    });
  });

  it('a kept graph while calls of other batch sizes run (fresh buffers, inference, a move to the same backend)', () => {
    bothWays(name, () => {
      const model = cnn();
      model.forward(randomTensor([4, 2, 7, 6], 130)).mean().backward(); // leased, released
      const kept = model.forward(randomTensor([4, 2, 7, 6], 131)).sum(); // leased again, same sizes: held
      model.forward(randomTensor([2, 2, 7, 6], 132)).mean().backward(); // lease held: fresh buffers, other sizes
      const predicted = rg.noGrad(() => model.forward(randomTensor([3, 2, 7, 6], 133)));
      model.to(name); // already there: nothing moves, nothing is freed
      model.zeroGrad();
      kept.backward();
      return [grads(model), arr(predicted)];
    });
  });

  it('a kept graph while evaluate runs on the same model (its buffers are not the lent ones)', async () => {
    const results: number[][] = [];
    for (const on of [true, false]) {
      rg.setBackend(name);
      setLeasing(on);
      rg.manualSeed(7);
      const model = cnn();
      model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.1 }), loss: new rg.CrossEntropyLoss() });
      const lossFn = new rg.CrossEntropyLoss();
      const x = randomTensor([4, 2, 7, 6], 140), y = labels(4, 4, 141);
      lossFn.forward(model.forward(x), y).backward(); // leased, released
      const kept = lossFn.forward(model.forward(x), y); // held
      const evaluated = await model.evaluate(randomTensor([4, 2, 7, 6], 142), labels(4, 4, 143), { batchSize: 4 });
      model.zeroGrad();
      kept.backward();
      results.push([...grads(model), evaluated.loss]);
    }
    setLeasing(true);
    expect(results[0]).toEqual(results[1]);
  });

  it('the same input tensor given twice in a row, then another, before the backward: each call reads its own input', () => {
    rg.setBackend(name);
    rg.manualSeed(3);
    const model = cnn().eval(); // (no dropout: the three calls must be comparable)
    const x = randomTensor([2, 2, 7, 6], 120), x2 = randomTensor([2, 2, 7, 6], 121);
    const gradsOf = (second: rg.Tensor) => {
      model.zeroGrad();
      model.forward(x).sum().add(model.forward(second).square().sum()).add(model.forward(x2).mean()).backward();
      return grads(model);
    };
    // the second call's input is x itself, or a copy of it (another tensor, the same values): the same gradients
    expect(gradsOf(x)).toEqual(gradsOf(x.clone()));
  });

  it('transformer blocks and BatchNorm1d in a model written with operations, and autograd.grad through a Sequential', () => {
    bothWays(name, () => {
      const embed = new rg.Linear(6, 8);
      const blocks = [new rg.TransformerBlock(8, 2, { causal: true }), new rg.TransformerBlock(8, 2)];
      const head = new rg.Sequential([new rg.Linear(8, 5), new rg.BatchNorm1d(5), new rg.Tanh(), new rg.Linear(5, 3)]);
      const params = [embed, ...blocks, head].flatMap((m) => m.parameters());
      const opt = new rg.Adam(params, { lr: 1e-2 });
      const out: number[][] = [];
      for (let s = 0; s < 3; s++) {
        opt.zeroGrad();
        let h = embed.forward(randomTensor([2, 5, 6], 160 + s));
        for (const b of blocks) h = b.forward(h).add(b.forward(h).mul(0.5)); // each block twice before the backward
        const y = head.forward(h.reshape([10, 8]));
        const loss = y.square().mean();
        loss.backward();
        opt.step();
        out.push(arr(loss), arr(y));
      }
      // autograd.grad with respect to an input, through a leased Sequential: nothing accumulates, the lease is let go
      const x = randomTensor([4, 8], 170, { requiresGrad: true });
      const [gx] = rg.autograd.grad(head.forward(x).sum(), x);
      out.push(arr(gx), arr(head.forward(x).sum()));
      return [...out, ...params.map((p) => arr(p.value))];
    });
  });

  it('a forward that throws leaves no lease behind: the next calls train as on fresh buffers', () => {
    bothWays(name, () => {
      const model = cnn();
      const opt = new rg.SGD(model.parameters(), { lr: 0.1 });
      expect(() => model.forward(randomTensor([2, 3, 7, 6], 180))).toThrow(/Conv2d/); // 3 channels, the layer takes 2
      expect(() => rg.noGrad(() => model.forward(randomTensor([2, 2, 5, 5], 181)))).toThrow(); // too small for Linear
      const out: number[][] = [];
      for (let s = 0; s < 2; s++) {
        opt.zeroGrad();
        const loss = model.forward(randomTensor([3, 2, 7, 6], 182 + s)).square().mean();
        loss.backward();
        opt.step();
        out.push(arr(loss));
      }
      return [...out, weights(model)];
    });
  });

  it('inference lends small buffers only: a large batch\'s activations are not kept with the module', () => {
    rg.setBackend(name);
    const model = new rg.Sequential([new rg.Linear(8, 300), new rg.ReLU(), new rg.Linear(300, 3)]).eval();
    const hidden = () => (model.layers[0] as unknown as { y: rg.Tensor }).y; // the first layer's last output
    const small = rg.noGrad(() => model.forward(randomTensor([2, 8], 150)));
    expect(isPooled(hidden())).toBe(true); // 600 elements: lent, reused by the next request
    const large = rg.noGrad(() => model.forward(randomTensor([300, 8], 151)));
    expect(isPooled(hidden())).toBe(false); // 90,000 elements: fresh, left to the garbage collector
    expect(isPooled(small) || isPooled(large)).toBe(false); // what leaves is never lent
  });

  it('a steady-state step of a Sequential allocates only its output, its loss and their gradients', () => {
    rg.setBackend(name);
    const model = cnn();
    const opt = new rg.SGD(model.parameters(), { lr: 0.01 });
    const lossFn = new rg.CrossEntropyLoss();
    const x = randomTensor([4, 2, 7, 6], 110), y = labels(4, 4, 111);
    const step = () => {
      opt.zeroGrad();
      const loss = lossFn.forward(model.forward(x), y);
      loss.backward();
      opt.step();
      return loss;
    };
    for (let s = 0; s < 3; s++) step();
    // counted at the backend's two allocation calls, not as live tensors (a collection during the steps would free
    // earlier garbage and lower a live count)
    const backend = currentBackend();
    const grown = (on: boolean) => {
      setLeasing(on);
      step(); // the first step after a switch fills the buffers it takes
      let n = 0;
      const { alloc, fromHost } = backend;
      backend.alloc = (...a) => (n++, alloc.apply(backend, a));
      backend.fromHost = (...a) => (n++, fromHost.apply(backend, a));
      try {
        step();
        step();
      } finally {
        backend.alloc = alloc;
        backend.fromHost = fromHost;
      }
      return n;
    };
    const leased = grown(true), fresh = grown(false);
    // per step: the output and its gradient, the loss, its fused gradient and the seed of ones, and the first layer's
    // empty input gradient (its input needs none)
    expect(leased).toBeLessThanOrEqual(2 * 6);
    expect(fresh).toBeGreaterThan(leased);
  });

  // (cpu only: its storages are released inside the collection that finds their tensors dead; the reference's wait
  // for the event loop)
  it.skipIf(name !== 'cpu')('a loop that never yields keeps no step\'s graph alive: live tensors stay flat (a GAN\'s two models)', () => {
    rg.setBackend(name);
    const G = new rg.Sequential([new rg.Linear(6, 20), new rg.BatchNorm1d(20), new rg.ReLU(), new rg.Linear(20, 12), new rg.Tanh()]);
    const D = new rg.Sequential([new rg.Linear(12, 16), new rg.LeakyReLU(0.2), new rg.Linear(16, 1)]);
    const optG = new rg.Adam(G.parameters()), optD = new rg.Adam(D.parameters());
    const bce = (logits: rg.Tensor, target: number) => rg.F.binaryCrossEntropyWithLogits(logits.reshape([-1]), rg.full([logits.shape[0]], target));
    const counts: number[] = [];
    for (let s = 0; s < 300; s++) {
      // fresh inputs every step, as a loader's batches: a step's graph kept alive keeps them too
      const real = randomTensor([8, 12], 1000 + s), z = randomTensor([8, 6], 2000 + s);
      const fake = G.forward(z);
      const lossD = bce(D.forward(real), 1).add(bce(D.forward(fake.detach()), 0));
      optD.zeroGrad();
      lossD.backward();
      optD.step();
      const lossG = bce(D.forward(fake), 1);
      optG.zeroGrad();
      lossG.backward();
      optG.step();
      if (s % 50 === 49) {
        collectGarbage();
        lossG.item();
        counts.push(rg.memory().tensors);
      }
    }
    // some 30 tensors a step: kept to the loop's end, the last count would be thousands above the first
    expect(Math.max(...counts) - counts[0]).toBeLessThan(100);
  });
});
