// NaN and infinity: every kernel keeps them as PyTorch does (ReLU maps NaN to NaN, not 0), and fit never applies
// a step whose loss or gradients are not finite: it stops with an error naming the epoch, the step and the tensor,
// and the weights are those from before that step.
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { cpu, requireCpu, rg } from './helpers.js';

const cpuAvailable = requireCpu();

const backends: ('reference' | 'cpu')[] = cpuAvailable ? ['reference', 'cpu'] : ['reference'];
afterEach(() => rg.setBackend(cpuAvailable ? 'cpu' : 'reference'));

const values = (t: rg.Tensor) => Array.from(t.toArray());

describe.each(backends)('NaN propagates through the kernels (%s)', (name) => {
  it('ReLU, LeakyReLU, the fused Linear + ReLU epilogue and max pooling keep NaN', () => {
    rg.setBackend(name);
    const x = rg.tensor([NaN, -1, 2, -Infinity, Infinity, 0], [1, 6]);
    expect(values(new rg.ReLU().forward(x))).toEqual([NaN, 0, 2, 0, Infinity, 0]);
    expect(values(new rg.LeakyReLU(0.1).forward(x))).toEqual([NaN, -0.1, 2, -Infinity, Infinity, 0].map((v) => Math.fround(v)));
    // Linear then ReLU runs as one product with ReLU in its epilogue; rows wide enough for the SIMD epilogue too
    for (const width of [1, 16, 40]) {
      const lin = new rg.Linear(3, width);
      const model = new rg.Sequential([lin, new rg.ReLU()]);
      const inp = rg.tensor([NaN, 1, 2, 0.5, -1, 0.25], [2, 3]);
      const y = values(model.forward(inp));
      expect(y.slice(0, width).every(Number.isNaN)).toBe(true);
      expect(y.slice(width).some(Number.isNaN)).toBe(false);
    }
    const img = rg.tensor([1, NaN, 3, 4, -5, -6, -7, -8, 0, 0, 0, 0, 1, 2, 3, 4], [1, 1, 4, 4]);
    expect(values(new rg.MaxPool2d(2).forward(img))).toEqual([NaN, 4, 2, 4]);
    expect(values(new rg.MaxPool2d(3, { stride: 1, padding: 1 }).forward(img)).filter(Number.isNaN).length).toBe(6);
  });

  it('clipGradValue keeps a NaN gradient NaN (it does not clamp it to a bound)', () => {
    rg.setBackend(name);
    const p = new rg.Parameter(rg.zeros([4]));
    p.grad.assign([NaN, 5, -5, 0.5]);
    rg.clipGradValue([p], 1);
    expect(values(p.grad)).toEqual([NaN, 1, -1, 0.5]);
  });

  it('check_finite finds the first NaN or infinity, and fails only with a tag', () => {
    rg.setBackend(name);
    const b = rg.getBackend() === 'cpu' ? rg.tensor([0], [1]).backend : rg.tensor([0], [1]).backend;
    const first = rg.tensor(Int32Array.of(-1), [1]);
    for (const n of [1, 17, 70_001]) {
      const data = new Float32Array(n).fill(1);
      b.k.check_finite(first.buf, rg.tensor(data, [n]).buf, n, 3);
      expect(first.toArray()[0]).toBe(-1);
      data[n - 1] = -Infinity;
      if (n > 2) data[Math.floor(n / 2)] = NaN;
      const x = rg.tensor(data, [n]);
      b.k.check_finite(first.buf, x.buf, n, -1);
      expect(first.toArray()[0]).toBe(n > 2 ? Math.floor(n / 2) : n - 1);
      first.assign(Int32Array.of(-1)); // with a tag, an index left in first would fail the next check at once
      expect(() => {
        b.k.check_finite(first.buf, x.buf, n, 3);
        first.toArray();
      }).toThrow(n > 2 ? `check_finite: tensor 3 holds NaN at element ${Math.floor(n / 2)}` : 'check_finite: tensor 3 holds -Infinity at element 0');
      expect(values(rg.tensor([1, 2], [2]))).toEqual([1, 2]); // and the next call works
      // the failure sticks to `first`: a clean tensor checked after it fails too, until first is reset to −1
      expect(() => {
        b.k.check_finite(first.buf, rg.tensor([1], [1]).buf, 1, 4);
        first.toArray();
      }).toThrow('check_finite: tensor 4 follows a failed check');
      first.assign(Int32Array.of(-1));
    }
  });
});

describe.skipIf(!cpuAvailable)('NaN through the fused epilogue on every CPU instruction set', () => {
  it.each(['avx2', 'portable'])('%s', (isa) => {
    const script = `import('retrograd').then((rg) => {
      const m = new rg.Sequential([new rg.Linear(3, 40), new rg.ReLU()]);
      const y = m.forward(rg.tensor([NaN, 1, 2, 0.5, -1, 0.25], [2, 3])).toArray();
      console.log(JSON.stringify({ nan: Array.from(y.subarray(0, 40)).every(Number.isNaN), clean: !Array.from(y.subarray(40)).some(Number.isNaN) }));
    });`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url).pathname, encoding: 'utf8', env: { ...process.env, RETROGRAD_CPU_ISA: isa },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ nan: true, clean: true });
  });
});

/** A 4 → 8 → 3 classifier with fixed weights, and 32 rows of data whose row `bad` (if any) holds NaN. */
function setup(bad: number | null) {
  rg.manualSeed(5);
  const model = new rg.Sequential([new rg.Linear(4, 8), new rg.ReLU(), new rg.Linear(8, 3)]);
  const x = Float32Array.from({ length: 32 * 4 }, (_, i) => Math.sin(i * 0.7));
  if (bad !== null) x[bad * 4 + 2] = NaN;
  const y = Int32Array.from({ length: 32 }, (_, i) => i % 3);
  model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 0.01 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
  return { model, x: rg.tensor(x, [32, 4]), y: rg.tensor(y, [32]) };
}
const weights = (m: rg.Module) => m.parameters().map((p) => values(p.value));

describe.each(backends)('fit never applies a non-finite step (%s)', (name) => {
  it('a NaN in the data stops fit at that step, with the weights of the step before', async () => {
    rg.setBackend(name);
    const { model, x, y } = setup(20); // row 20 is in the third batch of 8
    await expect(model.fit(x, y, { epochs: 1, batchSize: 8, shuffle: false, verbose: 0 }))
      .rejects.toThrow(/fit: the loss became NaN at epoch 1, step 3; the step was not applied/);
    // the same model trained on the two clean batches only
    const clean = setup(null);
    await clean.model.fit(rg.tensor(x.toArray().subarray(0, 64), [16, 4]), rg.tensor(y.toArray().subarray(0, 16) as Int32Array, [16]), { epochs: 1, batchSize: 8, shuffle: false, verbose: 0 });
    expect(weights(model)).toEqual(weights(clean.model));
    // the optimizer's state too: the skipped steps did not count
    expect(model.compiled!.optimizer.stateDict()).toEqual(clean.model.compiled!.optimizer.stateDict());
    // and the model trains on afterwards
    const ok = setup(null);
    await model.fit(ok.x, ok.y, { epochs: 1, batchSize: 8, verbose: 0 });
    expect(weights(model).flat().every(Number.isFinite)).toBe(true);
  });

  it('an infinite gradient under a finite loss stops fit, naming the parameter', async () => {
    rg.setBackend(name);
    // y = w·x with x = 3e38 and w = 1/3e38: the loss (y − 0)² = 1 is finite, dL/dw = 2·y·x = 6e38 is not
    const lin = new rg.Linear(1, 1, { bias: false });
    lin.weight.value.assign([1 / 3e38]);
    const before = values(lin.weight.value);
    const model = new rg.Sequential([lin]);
    model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.1 }), loss: new rg.MSELoss() });
    await expect(model.fit(rg.tensor([3e38], [1, 1]), rg.tensor([0], [1, 1]), { epochs: 1, batchSize: 1, verbose: 0 }))
      .rejects.toThrow("fit: the gradient of '0.weight' became infinite (+Infinity at element 0) at epoch 1, step 1; the step was not applied");
    expect(values(lin.weight.value)).toEqual(before);
  });

  it("metrics: ['accuracy'] with float targets is refused before any step", async () => {
    rg.setBackend(name);
    rg.manualSeed(1);
    const model = new rg.Sequential([new rg.Linear(2, 1)]);
    const before = weights(model);
    model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.1 }), loss: new rg.MSELoss(), metrics: ['accuracy'] });
    await expect(model.fit(rg.tensor([1, 2, 3, 4], [2, 2]), rg.tensor([1, 0], [2, 1]), { epochs: 1, verbose: 0 }))
      .rejects.toThrow(/metric 'accuracy' needs int32 class targets \[N\], got float32 targets \[2, 1\]/);
    expect(weights(model)).toEqual(before);
  });

  it('model.forward while fit runs returns its own tensor, which fit does not overwrite', async () => {
    rg.setBackend(name);
    const { model, x, y } = setup(null);
    const probe = rg.tensor(x.toArray().subarray(0, 32), [8, 4]);
    let seen: rg.Tensor | undefined, first: number[] = [];
    const training = model.fit(x, y, {
      epochs: 3, batchSize: 8, verbose: 0,
      callbacks: [{ onBatchEnd: (step) => { if (step === 0 && !seen) { seen = model.forward(probe); first = values(seen); } } }],
    });
    await training;
    expect(seen).toBeDefined();
    expect(values(seen!)).toEqual(first);
  });
});

describe.each(backends)('views (%s)', (name) => {
  it('disposing a reshape() view leaves the base tensor usable', () => {
    rg.setBackend(name);
    const base = rg.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const view = base.reshape([3, 2]);
    view.dispose();
    expect(view.disposed).toBe(true);
    expect(base.disposed).toBe(false);
    expect(values(base)).toEqual([1, 2, 3, 4, 5, 6]);
    const lin = new rg.Linear(3, 2);
    lin.forward(base.reshape([-1, 3])).dispose();
    expect(values(lin.forward(base)).length).toBe(4); // still usable by a layer
    const other = base.reshape([6]);
    base.dispose();
    expect(other.disposed).toBe(true);
    expect(() => other.toArray()).toThrow(/is a view of a tensor \[2, 3\] that has been disposed/);
  });
});

describe.skipIf(!cpuAvailable)('storages kept for reuse (cpu)', () => {
  it('zeros made while a failure is pending are zeros, not a disposed tensor kept for reuse', () => {
    const b = cpu();
    const kept = b.alloc('float32', 8, false);
    b.k.fill(kept, 8, 3);
    b.dispose(kept, 8); // kept by the backend for the next alloc of 8
    // a kernel that fails when it runs (an index out of range), so that the queue skips kernels until the error is read
    const idx = b.fromHost(Int32Array.of(99));
    b.k.gather_rows(b.alloc('float32', 1, false), b.alloc('float32', 1), idx, 1, 1, 1, 0);
    const zeros = b.alloc('float32', 8, true);
    expect(() => b.sync()).toThrow(/gather_rows/);
    expect(Array.from(b.read(zeros))).toEqual(new Array(8).fill(0));
  });
});
