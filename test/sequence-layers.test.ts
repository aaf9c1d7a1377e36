// The sequence-model layers (Embedding, LayerNorm): backward against central differences (rg.gradCheck, float64
// reference), forward and backward against plain loops written here, repeated indices, state dicts and save/load,
// bad-input errors with their messages, a small model that learns, and a training step that allocates nothing.
// Everything but the gradient checks runs on each backend that has the kernels: the reference always, the native
// CPU backend once its addon carries embedding_backward and layernorm_forward / layernorm_backward.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { expectNoTensorGrowth, randomArray, relError, requireCpu, rg, rng, TOL } from './helpers.js';

const backendNames: ('reference' | 'cpu')[] = ['reference', ...(requireCpu() ? (['cpu'] as const) : [])];

const dir = mkdtempSync(join(tmpdir(), 'retrograd-seq-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function input(shape: number[], seed: number, scale = 1, offset = 0): rg.Tensor {
  return rg.tensor(randomArray(size(shape), rng(seed), scale, offset), shape);
}
/** int32 indices in [0, n) of the given shape. */
function ids(shape: number[], n: number, seed: number): rg.Tensor {
  const r = rng(seed);
  return rg.tensor(Int32Array.from({ length: size(shape) }, () => Math.floor(r() * n)), shape);
}

// ---- plain loops: what each layer must compute, in float64 ----

/** Layer normalisation of x [rows, D] per row; w, b null: 1 and 0. */
function layerNormLoop(x: ArrayLike<number>, rows: number, D: number, eps: number, w: ArrayLike<number> | null, b: ArrayLike<number> | null) {
  const y = new Float64Array(rows * D), xhat = new Float64Array(rows * D), invstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += x[r * D + d];
    const mean = s / D;
    let q = 0;
    for (let d = 0; d < D; d++) q += (x[r * D + d] - mean) ** 2;
    invstd[r] = 1 / Math.sqrt(q / D + eps);
    for (let d = 0; d < D; d++) {
      xhat[r * D + d] = (x[r * D + d] - mean) * invstd[r];
      y[r * D + d] = xhat[r * D + d] * (w ? w[d] : 1) + (b ? b[d] : 0);
    }
  }
  return { y, xhat, invstd };
}

/** Its backward: dx = invstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·w, dw = Σ_rows dy·x̂, db = Σ_rows dy. */
function layerNormBackwardLoop(dy: ArrayLike<number>, x: ArrayLike<number>, rows: number, D: number, eps: number, w: ArrayLike<number> | null) {
  const { xhat, invstd } = layerNormLoop(x, rows, D, eps, null, null);
  const dx = new Float64Array(rows * D), dw = new Float64Array(D), db = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    let sg = 0, sgx = 0;
    for (let d = 0; d < D; d++) {
      const g = dy[r * D + d] * (w ? w[d] : 1);
      sg += g;
      sgx += g * xhat[r * D + d];
    }
    for (let d = 0; d < D; d++) {
      const k = r * D + d;
      dx[k] = invstd[r] * (dy[k] * (w ? w[d] : 1) - sg / D - (xhat[k] * sgx) / D);
      dw[d] += dy[k] * xhat[k];
      db[d] += dy[k];
    }
  }
  return { dx, dw, db };
}

/** dweight [num, D] of an embedding: each dy row added to the row of its index. */
function embeddingGradLoop(index: ArrayLike<number>, dy: ArrayLike<number>, num: number, D: number) {
  const dw = new Float64Array(num * D);
  for (let i = 0; i < index.length; i++) for (let d = 0; d < D; d++) dw[index[i] * D + d] += dy[i * D + d];
  return dw;
}

// ---- gradients: gradCheck runs in float64 on the reference backend whatever the current one is ----

describe('sequence layers: backward against central differences (rg.gradCheck, float64)', () => {
  beforeEach(() => rg.setBackend('reference'));
  const cases: [string, () => rg.Module, () => rg.Tensor][] = [
    ['LayerNorm(6) on [3, 4, 6]', () => new rg.LayerNorm(6), () => input([3, 4, 6], 1, 2, 0.5)],
    ['LayerNorm([3, 4]) on [2, 3, 4]', () => new rg.LayerNorm([3, 4]), () => input([2, 3, 4], 2, 2)],
    ['LayerNorm([2, 3]) on [2, 3] (one row)', () => new rg.LayerNorm([2, 3], { eps: 1e-3 }), () => input([2, 3], 3, 1, 3)],
    ['LayerNorm(5) without affine', () => new rg.LayerNorm(5, { elementwiseAffine: false }), () => input([4, 5], 4, 2)],
    ['LayerNorm([2, 5]) without affine on [3, 2, 5]', () => new rg.LayerNorm([2, 5], { elementwiseAffine: false }), () => input([3, 2, 5], 5, 2)],
    ['LayerNorm(17) on [2, 17]', () => new rg.LayerNorm(17), () => input([2, 17], 6, 2)],
    ['Embedding(7, 4) on [2, 5] with repeated ids', () => new rg.Embedding(7, 4), () => rg.tensor(Int32Array.of(3, 0, 3, 6, 1, 3, 3, 0, 5, 2), [2, 5])],
    ['Embedding(1, 3) on [4]', () => new rg.Embedding(1, 3), () => rg.tensor(new Int32Array(4), [4])],
    ['Sequential Embedding-LayerNorm-Flatten-Linear', () => new rg.Sequential([new rg.Embedding(6, 4), new rg.LayerNorm(4), new rg.Flatten(), new rg.Linear(12, 3)]), () => ids([2, 3], 6, 7)],
  ];
  cases.forEach(([name, make, x], i) => {
    it(name, () => {
      rg.manualSeed(200 + i);
      const m = make();
      // non-trivial affine parameters (not LayerNorm's 1 and 0), so their gradients and uses are checked too
      const draw = rng(30 + i);
      for (const p of m.parameters()) p.value.assign(Array.from({ length: p.value.size }, () => 2 * draw() - 1));
      const xt = x();
      const r = rg.gradCheck(m, xt);
      expect(r.maxRelError, JSON.stringify(r.errors)).toBeLessThan(TOL.gradcheck);
      expect(r.ok).toBe(true);
      const params = m.namedParameters().map(([n]) => n);
      expect(Object.keys(r.errors).sort()).toEqual([...(xt.dtype === 'int32' ? [] : ['input']), ...params].sort());
    });
  });
});

// ---- everything else, on each backend that has the kernels ----

describe.each(backendNames)('sequence layers on %s', (backend) => {
  beforeEach(() => rg.setBackend(backend));
  // float32 sums in a different order than the float64 loops; backward's dx cancels, so it gets a wider bound
  const tol = backend === 'reference' ? 1e-6 : TOL.reduction;
  const tolGrad = backend === 'reference' ? 1e-5 : TOL.reduction;

  describe('forward and backward against plain loops', () => {
    const lnCases: [number | number[], number[], number, boolean, number][] = [
      [6, [3, 4, 6], 1e-5, true, 0],
      [[4, 5], [2, 4, 5], 1e-5, true, 2],
      [[2, 3, 2], [2, 3, 2], 1e-3, true, 0],
      [17, [5, 17], 1e-5, false, 0],
      [768, [3, 768], 1e-5, true, 1],
      [1, [4, 1], 1e-5, true, 0],
      [3, [1, 1, 3], 1e-2, false, 10],
    ];
    lnCases.forEach(([ns, shape, eps, affine, offset], i) => {
      it(`LayerNorm(${JSON.stringify(ns)}, eps ${eps}${affine ? '' : ', elementwiseAffine false'}) on [${shape.join(', ')}]`, () => {
        const ln = new rg.LayerNorm(ns, { eps, elementwiseAffine: affine });
        const nsArr = typeof ns === 'number' ? [ns] : ns;
        const D = size(nsArr), rows = size(shape) / D;
        let w: Float32Array | null = null, b: Float32Array | null = null;
        if (affine) {
          expect(ln.weight!.shape).toEqual(nsArr);
          w = randomArray(D, rng(40 + i), 1, 1);
          b = randomArray(D, rng(50 + i));
          ln.weight!.value.assign(w);
          ln.bias!.value.assign(b);
        }
        const x = input(shape, 60 + i, 2, offset);
        const y = ln.forward(x);
        expect(y.shape).toEqual(shape);
        const xs = x.toArray();
        expect(relError(y.toArray(), layerNormLoop(xs, rows, D, eps, w, b).y)).toBeLessThan(tol);
        const dy = input(shape, 70 + i);
        const dx = ln.backward(dy);
        const want = layerNormBackwardLoop(dy.toArray(), xs, rows, D, eps, w);
        expect(dx.shape).toEqual(shape);
        // with D = 1 every row normalises to 0 and dx is 0: judged against the size of invstd·dy
        expect(relError(dx.toArray(), want.dx, D === 1 ? 1 : 0), 'dx').toBeLessThan(tolGrad);
        if (affine) {
          expect(ln.weight!.grad.shape).toEqual(nsArr);
          expect(relError(ln.weight!.grad.toArray(), want.dw), 'dweight').toBeLessThan(tolGrad);
          expect(relError(ln.bias!.grad.toArray(), want.db), 'dbias').toBeLessThan(tolGrad);
        }
      });
    });

    it('LayerNorm normalises each row to mean 0 and variance 1 (before the affine parameters), in eval too', () => {
      const ln = new rg.LayerNorm(32).eval();
      const y = ln.forward(input([6, 32], 80, 5, 7)).toArray();
      for (let r = 0; r < 6; r++) {
        const row = [...y.slice(r * 32, r * 32 + 32)];
        const mean = row.reduce((a, v) => a + v, 0) / 32;
        const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / 32;
        expect(Math.abs(mean)).toBeLessThan(1e-5);
        expect(Math.abs(variance - 1)).toBeLessThan(1e-4);
      }
    });

    it('Embedding looks up rows for indices of any shape: [5] → [5, D], [2, 3] → [2, 3, D], [2, 1, 2] → [2, 1, 2, D]', () => {
      rg.manualSeed(4);
      const emb = new rg.Embedding(9, 5);
      const w = emb.weight.value.toArray();
      for (const shape of [[5], [2, 3], [2, 1, 2]]) {
        const x = ids(shape, 9, shape.length);
        const y = emb.forward(x);
        expect(y.shape).toEqual([...shape, 5]);
        const xs = x.toArray();
        const want = Float32Array.from({ length: xs.length * 5 }, (_, k) => w[xs[Math.floor(k / 5)] * 5 + (k % 5)]);
        expect([...y.toArray()]).toEqual([...want]);
      }
    });

    it('Embedding: repeated ids accumulate their gradients, unused rows stay 0; two backwards add, zeroGrad overwrites', () => {
      const emb = new rg.Embedding(5, 3);
      const x = rg.tensor(Int32Array.of(1, 4, 1, 1, 0, 4), [2, 3]);
      const dy = input([2, 3, 3], 90);
      const want = embeddingGradLoop(x.toArray(), dy.toArray(), 5, 3);
      // stale values in the gradient: zeroGrad must make the first backward overwrite them
      emb.weight.grad.assign(new Float32Array(15).fill(7));
      emb.zeroGrad();
      emb.forward(x);
      const dx = emb.backward(dy);
      expect(dx.size).toBe(0);
      const g1 = emb.weight.grad.toArray();
      expect(relError(g1, want)).toBeLessThan(tol);
      expect([...g1.slice(6, 12)]).toEqual([0, 0, 0, 0, 0, 0]); // rows 2 and 3 are never looked up
      const dys = dy.toArray();
      for (let d = 0; d < 3; d++) expect(g1[3 + d]).toBeCloseTo(dys[d] + dys[6 + d] + dys[9 + d], 5);
      emb.forward(x);
      emb.backward(dy);
      expect(relError(emb.weight.grad.toArray(), want.map((v) => 2 * v))).toBeLessThan(tol);
      emb.zeroGrad();
      emb.forward(x);
      emb.backward(dy);
      expect(relError(emb.weight.grad.toArray(), want)).toBeLessThan(tol);
      // a frozen table keeps its gradient
      emb.weight.requiresGrad = false;
      emb.forward(x);
      emb.backward(dy);
      expect(relError(emb.weight.grad.toArray(), want)).toBeLessThan(tol);
    });

    it('LayerNorm backward accumulates over two calls and overwrites after zeroGrad; an empty batch gives zero grads', () => {
      const ln = new rg.LayerNorm([2, 3]);
      ln.weight!.value.assign([0.5, 1, 1.5, 2, -1, 0.3]);
      const x = input([4, 2, 3], 95, 2), dy = input([4, 2, 3], 96);
      const grads = () => [ln.weight!, ln.bias!].map((p) => [...p.grad.toArray()]);
      ln.zeroGrad();
      ln.forward(x);
      ln.backward(dy);
      const g1 = grads();
      ln.forward(x);
      ln.backward(dy);
      grads().forEach((g, i) => expect(relError(g, g1[i].map((v) => 2 * v))).toBeLessThan(1e-6));
      ln.zeroGrad();
      ln.forward(x);
      ln.backward(dy);
      grads().forEach((g, i) => expect(relError(g, g1[i])).toBeLessThan(1e-6));
      ln.weight!.grad.assign(new Float32Array(6).fill(3));
      ln.zeroGrad();
      expect(ln.forward(rg.zeros([0, 2, 3])).shape).toEqual([0, 2, 3]);
      expect(ln.backward(rg.zeros([0, 2, 3])).shape).toEqual([0, 2, 3]);
      expect(grads()).toEqual([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]]);
    });

    it('Embedding initialises N(0, 1) from the seeded generator', () => {
      rg.manualSeed(3);
      const w = [...new rg.Embedding(1000, 16).weight.value.toArray()];
      const mean = w.reduce((a, v) => a + v, 0) / w.length;
      const std = Math.sqrt(w.reduce((a, v) => a + (v - mean) ** 2, 0) / w.length);
      expect(Math.abs(mean)).toBeLessThan(0.02);
      expect(Math.abs(std - 1)).toBeLessThan(0.02);
      rg.manualSeed(3);
      expect([...new rg.Embedding(1000, 16).weight.value.toArray()]).toEqual(w);
    });
  });

  describe('state dicts and save / load', () => {
    it("PyTorch names and shapes: Embedding's weight [num, D], LayerNorm's weight and bias [...normalizedShape] as 1 and 0", () => {
      const model = new rg.Sequential([new rg.Embedding(10, 4), new rg.LayerNorm(4), new rg.Flatten(), new rg.Linear(12, 3), new rg.LayerNorm(3, { elementwiseAffine: false })]);
      const sd = model.stateDict();
      expect(Object.keys(sd)).toEqual(['0.weight', '1.weight', '1.bias', '3.weight', '3.bias']);
      expect(sd['0.weight'].shape).toEqual([10, 4]);
      expect([...sd['1.weight'].toArray()]).toEqual([1, 1, 1, 1]);
      expect([...sd['1.bias'].toArray()]).toEqual([0, 0, 0, 0]);
      const ln = new rg.LayerNorm([2, 3]);
      expect(Object.fromEntries(Object.entries(ln.stateDict()).map(([k, t]) => [k, t.shape]))).toEqual({ weight: [2, 3], bias: [2, 3] });
      expect(ln.normalizedShape).toEqual([2, 3]);
      expect([ln.eps, ln.elementwiseAffine]).toEqual([1e-5, true]);
      expect(Object.keys(new rg.LayerNorm(5, { elementwiseAffine: false }).stateDict())).toEqual([]);
    });

    it('rg.save / rg.load round-trip the architecture (normalizedShape, eps, elementwiseAffine) and the weights', async () => {
      rg.manualSeed(5);
      const model = new rg.Sequential([
        new rg.Embedding(10, 6), new rg.LayerNorm(6, { eps: 1e-3 }), new rg.Flatten(), new rg.Linear(18, 6), new rg.LayerNorm(6, { elementwiseAffine: false }),
      ]);
      const sd0 = model.stateDict();
      sd0['1.weight'].assign(randomArray(6, rng(100), 1, 1));
      sd0['1.bias'].assign(randomArray(6, rng(101)));
      const path = join(dir, `seq-${backend}.safetensors`);
      await rg.save(model, path);
      const loaded = (await rg.load(path)) as rg.Sequential;
      expect(loaded.layers.map((l) => l.constructor.name)).toEqual(['Embedding', 'LayerNorm', 'Flatten', 'Linear', 'LayerNorm']);
      const emb = loaded.layers[0] as rg.Embedding;
      expect([emb.numEmbeddings, emb.embeddingDim]).toEqual([10, 6]);
      const ln1 = loaded.layers[1] as rg.LayerNorm, ln2 = loaded.layers[4] as rg.LayerNorm;
      expect([ln1.normalizedShape, ln1.eps, ln1.elementwiseAffine, ln1.label]).toEqual([[6], 1e-3, true, 'LayerNorm(6)']);
      expect([ln2.normalizedShape, ln2.eps, ln2.elementwiseAffine]).toEqual([[6], 1e-5, false]);
      const a = model.stateDict(), b = loaded.stateDict();
      expect(Object.keys(b)).toEqual(Object.keys(a));
      for (const k of Object.keys(a)) {
        expect(b[k].shape, k).toEqual(a[k].shape);
        expect([...b[k].toArray()], k).toEqual([...a[k].toArray()]);
      }
      const x = ids([4, 3], 10, 102);
      expect([...loaded.forward(x).toArray()]).toEqual([...model.forward(x).toArray()]);

      // a LayerNorm over two dimensions, saved on its own
      const ln = new rg.LayerNorm([2, 3], { eps: 1e-4 });
      ln.weight!.value.assign(randomArray(6, rng(103), 1, 1));
      const path2 = join(dir, `ln-${backend}.safetensors`);
      await rg.save(ln, path2);
      const ln3 = (await rg.load(path2)) as rg.LayerNorm;
      expect([ln3.normalizedShape, ln3.eps, ln3.elementwiseAffine, ln3.label, ln3.weight!.shape]).toEqual([[2, 3], 1e-4, true, 'LayerNorm([2, 3])', [2, 3]]);
      const x2 = input([4, 2, 3], 104);
      expect([...ln3.forward(x2).toArray()]).toEqual([...ln.forward(x2).toArray()]);
    });
  });

  describe('bad input', () => {
    it('Embedding: sizes, float ids, ids out of range (known on the host, or found by the kernel), gradient shapes', () => {
      expect(() => new rg.Embedding(0, 4)).toThrow(new RangeError('Embedding: invalid numEmbeddings 0; expected an integer >= 1'));
      expect(() => new rg.Embedding(10, 2.5)).toThrow('Embedding: invalid embeddingDim 2.5; expected an integer >= 1');
      expect(() => new rg.Embedding('10' as never, 4)).toThrow(new TypeError("Embedding: numEmbeddings must be a number, got the string '10'"));
      const emb = new rg.Embedding(10, 4);
      expect(() => emb.forward(rg.tensor([1, 2, 3], [3]))).toThrow(
        new TypeError('Embedding(10, 4): input must be an int32 tensor of indices (rg.tensor(Int32Array.from(...), shape)), got float32'),
      );
      expect(() => emb.forward([1, 2] as never)).toThrow(new TypeError('Embedding(10, 4): input must be a Tensor, got an array of length 2'));
      expect(() => emb.forward(rg.tensor(Int32Array.of(1, 12, 3), [3]))).toThrow(new RangeError('Embedding(10, 4): index 12 is out of range: indices must be in [0, 10)'));
      expect(() => emb.forward(rg.tensor(Int32Array.of(1, -1, 3), [3]))).toThrow(new RangeError('Embedding(10, 4): index -1 is out of range: indices must be in [0, 10)'));
      expect(() => emb.forward(rg.tensor(Int32Array.of(10), [1]))).toThrow(/index 10 is out of range/);
      expect(emb.forward(rg.tensor(Int32Array.of(0, 9), [2])).shape).toEqual([2, 4]);
      // an index the host has no range for (the data changed on the device): the kernel reports it, at the next read
      const x = rg.tensor(Int32Array.of(1, 2, 3), [3]);
      x.backend.k.copy(x.buf, rg.tensor(Int32Array.of(1, 12, 3), [3]).buf, 3);
      x.intRange = undefined;
      expect(() => emb.forward(x).toArray()).toThrow(/gather_rows: row index 12 is outside \[0, 10\)/);
      expect(() => new rg.Embedding(3, 2).backward(rg.zeros([1, 2]))).toThrow('Embedding(3, 2): backward called before forward');
      emb.forward(rg.tensor(Int32Array.of(0, 9), [2]));
      expect(() => emb.backward(rg.zeros([2, 5]))).toThrow(new RangeError('Embedding(10, 4): gradient has shape [2, 5], expected the output shape [2, 4]'));
      expect(() => emb.backward(rg.tensor(new Int32Array(8), [2, 4]))).toThrow(new TypeError('Embedding(10, 4): gradient must be a float32 tensor, got int32'));
    });

    it('embedding_backward names a bad index and its position (a RetrogradError), and leaves dweight as it was', () => {
      const b = rg.zeros([1]).backend;
      const dw = rg.tensor([1, 2, 3, 4, 5, 6], [3, 2]);
      const index = rg.tensor(Int32Array.of(0, 2, 5, 1), [4]);
      let err: unknown;
      try {
        b.k.embedding_backward(dw.buf, index.buf, rg.zeros([4, 2]).buf, 4, 2, 3, false);
        dw.toArray();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(rg.RetrogradError);
      expect((err as rg.RetrogradError).code).toBe('INVALID_ARGUMENT');
      expect((err as Error).message).toBe('embedding_backward: index 5 at position 2 is outside [0, 3)');
      expect([...dw.toArray()]).toEqual([1, 2, 3, 4, 5, 6]);
      // the reference throws at the call, a native backend at the next read
      const bad = rg.tensor(Int32Array.of(-1), [1]);
      expect(() => {
        b.k.embedding_backward(dw.buf, bad.buf, rg.zeros([1, 2]).buf, 1, 2, 3, true);
        dw.toArray();
      }).toThrow('embedding_backward: index -1 at position 0 is outside [0, 3)');
      expect([...dw.toArray()]).toEqual([1, 2, 3, 4, 5, 6]);
    });

    it('LayerNorm: normalizedShape, options, input shapes and dtypes, each named with what was expected and what came', () => {
      expect(() => new rg.LayerNorm(0)).toThrow(new RangeError('LayerNorm: invalid normalizedShape 0; expected an integer >= 1'));
      expect(() => new rg.LayerNorm([3, 0])).toThrow('LayerNorm: invalid normalizedShape[1] 0; expected an integer >= 1');
      expect(() => new rg.LayerNorm([])).toThrow(new TypeError('LayerNorm: normalizedShape must be a number or a non-empty array of numbers, got an array of length 0'));
      expect(() => new rg.LayerNorm('8' as never)).toThrow(TypeError);
      expect(() => new rg.LayerNorm(8, { eps: 0 })).toThrow('LayerNorm: invalid eps 0; expected > 0');
      expect(() => new rg.LayerNorm(8, { elementwise_affine: false } as never)).toThrow("LayerNorm: unknown option 'elementwise_affine' (did you mean 'elementwiseAffine'?)");
      expect(() => new rg.LayerNorm(8, { elementwiseAffine: 0 } as never)).toThrow(new TypeError('LayerNorm: option elementwiseAffine must be a boolean, got number'));
      const ln = new rg.LayerNorm([3, 4]);
      expect(() => ln.forward(rg.zeros([2, 4, 3]))).toThrow(new RangeError('LayerNorm([3, 4]): input must be [..., 3, 4], got [2, 4, 3]'));
      expect(() => ln.forward(rg.zeros([4]))).toThrow('LayerNorm([3, 4]): input must be [..., 3, 4], got [4]');
      expect(() => new rg.LayerNorm(8).forward(rg.zeros([2, 7]))).toThrow('LayerNorm(8): input must be [..., 8], got [2, 7]');
      expect(() => new rg.LayerNorm(8).forward(rg.tensor(new Int32Array(16), [2, 8]))).toThrow(new TypeError('LayerNorm(8): input must be a float32 tensor, got int32'));
      expect(() => new rg.LayerNorm(8).backward(rg.zeros([2, 8]))).toThrow('LayerNorm(8): backward called before forward');
      expect(ln.forward(rg.zeros([3, 4])).shape).toEqual([3, 4]);
      expect(() => ln.backward(rg.zeros([4, 3]))).toThrow('LayerNorm([3, 4]): gradient has shape [4, 3], expected the output shape [3, 4]');
    });
  });

  describe('training', () => {
    const T = 5, D = 8, V = 10;
    const make = () => new rg.Sequential([new rg.Embedding(V, D), new rg.LayerNorm(D), new rg.Flatten(), new rg.Linear(T * D, 3)]);
    // the class is the first token's id mod 3: the model must learn to read the embeddings
    const data = (n: number, seed: number) => {
      const x = ids([n, T], V, seed);
      const xs = x.toArray();
      return [x, rg.tensor(Int32Array.from({ length: n }, (_, i) => xs[i * T] % 3), [n])] as const;
    };

    it('Embedding-LayerNorm-Flatten-Linear lowers its cross-entropy on token ids', () => {
      rg.manualSeed(11);
      const model = make();
      const opt = new rg.Adam(model.parameters(), { lr: 0.02 });
      const lossFn = new rg.CrossEntropyLoss();
      const [x, t] = data(32, 120);
      const losses: number[] = [];
      for (let step = 0; step < 20; step++) {
        model.zeroGrad();
        losses.push(lossFn.forward(model.forward(x), t).item());
        model.backward(lossFn.backward());
        opt.step();
      }
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[losses.length - 1]).toBeLessThan(0.5 * losses[0]);
    });

    it('used directly, a layer leaves no tensor behind: its own buffers are freed or reused', () => {
      const cases: [rg.Module, () => rg.Tensor][] = [
        [new rg.Embedding(V, D), () => ids([3, T], V, 140)],
        [new rg.LayerNorm(D), () => input([3, T, D], 141)],
        [new rg.LayerNorm([T, D], { elementwiseAffine: false }), () => input([3, T, D], 142)],
      ];
      for (const [layer, makeX] of cases) {
        const x = makeX();
        expectNoTensorGrowth(layer, x, layer.constructor.name);
      }
    });

    it('fit: the steady-state step allocates nothing (tensor count and bytes flat)', async () => {
      rg.manualSeed(12);
      const model = make();
      model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }), loss: new rg.CrossEntropyLoss() });
      const [x, y] = data(40, 150);
      const counts: number[] = [], bytes: number[] = [];
      const history = await model.fit(x, y, {
        epochs: 6, batchSize: 8, verbose: 0,
        callbacks: [{ onBatchEnd: (b) => { if (b >= 2) { const m = rg.memory(); counts.push(m.tensors); bytes.push(m.bytes); } } }],
      });
      expect(counts.length).toBe(6 * 3);
      // the one tensor that comes and goes is the epoch's shuffled index (40 int32)
      expect(Math.max(...counts) - counts[0]).toBeLessThanOrEqual(1);
      expect(Math.max(...bytes) - bytes[0]).toBeLessThanOrEqual(40 * 4);
      const loss = history.history.loss;
      expect(loss.every(Number.isFinite)).toBe(true);
      expect(loss[loss.length - 1]).toBeLessThan(loss[0]);
    });
  });
});
