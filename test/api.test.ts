// The public surface as API.md fixes it: backends, tensors, modules, state dicts, training conveniences,
// the execution model (reads synchronise; async reads keep the event loop free) and memory accounting.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KERNEL_NAMES } from '../lib/backend.js';
import { probeCuda } from '../lib/backends/cuda.js';
import { collectGarbage, inCI, relError, requireCpu, requirement, rg, root } from './helpers.js';

const cpuAvailable = requireCpu();

/**
 * The CPU addon as the disk has it, loaded without lib/backends/: the binaries node-gyp-build would consider
 * (prebuilds/<platform>-<arch>/, then build/Release/), the first that loads, and whether it has every kernel.
 */
function addonOnDisk(): { file?: string; loads: boolean; complete: boolean; isa?: string } {
  const prebuilds = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  const files = [
    ...(existsSync(prebuilds) ? readdirSync(prebuilds).filter((f) => f.endsWith('.node') && !f.includes('cuda')).map((f) => join(prebuilds, f)) : []),
    join(root, 'build', 'Release', 'retrograd.node'),
  ].filter((f) => existsSync(f));
  for (const file of files) {
    try {
      const a = createRequire(import.meta.url)(file) as { kernels: string[]; info(): { isa: string } };
      return { file, loads: true, complete: KERNEL_NAMES.every((k) => a.kernels.includes(k)), isa: a.info().isa };
    } catch {
      // the next candidate, as node-gyp-build does
    }
  }
  return { file: files[0], loads: false, complete: false };
}

describe('the rule for tests that need what a machine may lack', () => {
  it('runs them when it is there, skips them saying why outside CI, and fails in CI (CI=true or CI=1)', () => {
    expect(requirement('Chromium', true, 'unused', { CI: 'true' })).toEqual({ run: true });
    expect(requirement('Chromium', false, 'no /usr/bin/chromium', {})).toEqual({ run: false, skip: 'skipping the tests that need Chromium: no /usr/bin/chromium' });
    expect(requirement('Chromium', false, 'no /usr/bin/chromium', { CI: 'false' })).toMatchObject({ run: false, skip: expect.any(String) });
    for (const CI of ['true', '1', 'TRUE'])
      expect(requirement('the native CPU backend', false, 'no build/Release/retrograd.node', { CI })).toEqual({
        run: false, fail: `the native CPU backend is missing, and a CI run (CI=${CI}) must not skip its tests: no build/Release/retrograd.node`,
      });
    expect(inCI({ CI: '0' })).toBe(false);
  });
});

describe('typed reads', () => {
  it("toArray('float32') / toArray('int32') and data(...) read as the type named, and refuse the other kind", async () => {
    const f = rg.tensor([1.5, 2.5], [2]), i = rg.tensor(Int32Array.of(3, 4), [2]);
    const fa: Float32Array = f.toArray('float32'), ia: Int32Array = i.toArray('int32');
    expect([...fa]).toEqual([1.5, 2.5]);
    expect([...ia]).toEqual([3, 4]);
    const fd: Float32Array = await f.data('float32'), id: Int32Array = await i.data('int32');
    expect(fd).toBeInstanceOf(Float32Array);
    expect(id).toBeInstanceOf(Int32Array);
    expect(() => i.toArray('float32')).toThrow("Tensor.toArray('float32'): this tensor [2] holds int32 values, so it reads as an Int32Array");
    expect(() => f.toArray('int32')).toThrow("Tensor.toArray('int32'): this tensor [2] holds float32 values, so it reads as a Float32Array");
    await expect(i.data('float32')).rejects.toThrow(/holds int32 values/);
    expect(() => f.toArray('float64' as 'float32')).toThrow(`Tensor.toArray: the element type must be 'float32' or 'int32', got "float64"`);
  });
});

describe('backends', () => {
  it('lists cpu, cuda and reference with availability and detail', () => {
    const list = rg.backends();
    expect(list.map((b) => b.name).sort()).toEqual(['cpu', 'cuda', 'reference']);
    // cuda: available exactly where the probe finds a usable GPU (npm test runs on GPU machines too)
    const cuda = list.find((b) => b.name === 'cuda')!;
    const gpu = probeCuda();
    expect(cuda.available).toBe(gpu.available);
    if (cuda.available) expect(cuda.detail).toMatchObject({ device: expect.any(String) });
    else expect(cuda.reason).toMatch(/CUDA|NVIDIA|compute capability/);
    const c = list.find((b) => b.name === 'cpu')!;
    // judged against the disk, not against the loader itself: an addon that is there, loads and is complete
    const disk = addonOnDisk();
    expect(c.available, `${disk.file ?? 'no addon file'}: loads ${disk.loads}, every kernel ${disk.complete}; reason given: ${c.reason}`).toBe(disk.loads && disk.complete);
    if (c.available) {
      expect(c.detail.threads).toBeGreaterThanOrEqual(1);
      expect(['avx512', 'avx2', 'portable']).toContain(c.detail.isa);
      expect(c.detail.isa).toBe(disk.isa);
    } else expect(c.reason).toMatch(/the native CPU addon could not be loaded/);
  });

  it('defaults to cpu when the addon loads', () => {
    expect(['cpu', 'reference']).toContain(rg.getBackend());
    if (cpuAvailable && !process.env.RETROGRAD_BACKEND) expect(rg.getBackend()).toBe('cpu');
  });

  it('setMatmulPrecision accepts highest and tf32 only', () => {
    rg.setMatmulPrecision('tf32');
    rg.setMatmulPrecision('highest');
    expect(() => rg.setMatmulPrecision('fast' as never)).toThrow(RangeError);
  });
});

const backendNames = cpuAvailable ? (['cpu', 'reference'] as const) : (['reference'] as const);
for (const backend of backendNames) {
  describe(`tensors and modules on ${backend}`, () => {
    it('creates, reshapes, reads, assigns and moves tensors', async () => {
      rg.setBackend(backend);
      const t = rg.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
      expect(t.shape).toEqual([2, 3]);
      expect(t.size).toBe(6);
      expect(t.dtype).toBe('float32');
      expect(t.device).toBe(backend);
      expect([...t.reshape([3, -1]).toArray()]).toEqual([1, 2, 3, 4, 5, 6]);
      expect(t.reshape([-1]).shape).toEqual([6]);
      expect([...(await t.data())]).toEqual([1, 2, 3, 4, 5, 6]);
      const labels = rg.tensor(Int32Array.of(3, 1), [2]);
      expect(labels.dtype).toBe('int32');
      expect(labels.toArray()).toBeInstanceOf(Int32Array);
      t.assign([6, 5, 4, 3, 2, 1]);
      expect([...t.toArray()]).toEqual([6, 5, 4, 3, 2, 1]);
      const other = rg.zeros([6]);
      other.assign(t);
      expect([...other.toArray()]).toEqual([6, 5, 4, 3, 2, 1]);
      expect(rg.tensor([7], [1]).item()).toBe(7);
      expect(rg.tensor([7], []).item()).toBe(7);
      const moved = t.to('reference');
      expect(moved.device).toBe('reference');
      expect([...moved.toArray()]).toEqual([6, 5, 4, 3, 2, 1]);
      expect(rg.zeros([0, 3]).size).toBe(0);
      rg.manualSeed(9);
      const a = rg.randn([1000]).toArray() as Float32Array;
      rg.manualSeed(9);
      expect([...rg.randn([1000]).toArray()]).toEqual([...a]);
      const mean = a.reduce((s, v) => s + v, 0) / 1000;
      expect(Math.abs(mean)).toBeLessThan(0.15);
      t.dispose();
      expect(() => t.toArray()).toThrow(/disposed/);
    });

    it('Linear follows PyTorch: weight [out, in], U(−1/√in, 1/√in) initialisation, y = x·Wᵀ + b', () => {
      rg.setBackend(backend);
      rg.manualSeed(1);
      const lin = new rg.Linear(400, 300);
      expect(lin.weight.value.shape).toEqual([300, 400]);
      const w = lin.weight.value.toArray() as Float32Array;
      const bound = 1 / Math.sqrt(400);
      expect(Math.max(...w)).toBeLessThanOrEqual(bound);
      expect(Math.min(...w)).toBeGreaterThanOrEqual(-bound);
      const variance = w.reduce((s, v) => s + v * v, 0) / w.length;
      expect(variance).toBeCloseTo((bound * bound) / 3, 4);
      const small = new rg.Linear(2, 1);
      small.loadStateDict({ weight: Float32Array.of(2, -1), bias: Float32Array.of(0.5) });
      expect([...small.forward(rg.tensor([1, 1, 3, 2], [2, 2])).toArray()]).toEqual([1.5, 4.5]);
      expect(new rg.Linear(2, 2, { bias: false }).namedParameters().map(([n]) => n)).toEqual(['weight']);
    });

    it('backward accumulates into .grad; zeroGrad clears; frozen parameters keep their grad', () => {
      rg.setBackend(backend);
      const lin = new rg.Linear(3, 2);
      const x = rg.tensor([1, 2, 3], [1, 3]);
      const dy = rg.tensor([1, 1], [1, 2]);
      lin.forward(x);
      lin.backward(dy);
      const once = lin.weight.grad.toArray();
      lin.forward(x);
      lin.backward(dy);
      expect(relError(lin.weight.grad.toArray(), once.map((v) => 2 * v))).toBeLessThan(1e-6);
      lin.zeroGrad();
      expect([...lin.weight.grad.toArray()].every((v) => v === 0)).toBe(true);
      lin.bias!.requiresGrad = false;
      lin.forward(x);
      lin.backward(dy);
      expect([...lin.bias!.grad.toArray()]).toEqual([0, 0]);
      const opt = new rg.SGD(lin.parameters(), { lr: 1 });
      const biasBefore = [...lin.bias!.value.toArray()];
      opt.step();
      expect([...lin.bias!.value.toArray()]).toEqual(biasBefore);
    });

    it('forward returns fresh tensors outside the training loop', () => {
      rg.setBackend(backend);
      const relu = new rg.ReLU();
      const a = relu.forward(rg.tensor([1, -1], [2]));
      const b = relu.forward(rg.tensor([2, 3], [2]));
      expect([...a.toArray()]).toEqual([1, 0]);
      expect([...b.toArray()]).toEqual([2, 3]);
    });

    it('Dropout: train scales kept values by 1/(1−p), eval is the identity; the same seed gives the same mask', () => {
      rg.setBackend(backend);
      const d = new rg.Dropout(0.25);
      const x = rg.tensor(new Float32Array(4000).fill(1), [4000]);
      rg.manualSeed(11);
      const y = d.forward(x).toArray();
      const kept = y.filter((v) => v !== 0);
      expect(kept.every((v) => Math.abs(v - 1 / 0.75) < 1e-6)).toBe(true);
      expect(kept.length / 4000).toBeGreaterThan(0.72);
      expect(kept.length / 4000).toBeLessThan(0.78);
      rg.manualSeed(11);
      expect([...d.forward(x).toArray()]).toEqual([...y]);
      d.eval();
      expect([...d.forward(x).toArray()].every((v) => v === 1)).toBe(true);
      expect(() => new rg.Dropout(1.5)).toThrow(/Dropout: invalid p 1.5/);
    });

    it('compile, fit with validation and callbacks, History, evaluate, predict, predictAsync', async () => {
      rg.setBackend(backend);
      rg.manualSeed(2);
      const model = new rg.Sequential([new rg.Linear(4, 16), new rg.ReLU(), new rg.Linear(16, 3)]);
      model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 0.01 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
      const n = 90;
      const xs = new Float32Array(n * 4), ys = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        ys[i] = i % 3;
        for (let j = 0; j < 4; j++) xs[i * 4 + j] = (j === ys[i] ? 2 : 0) + Math.sin(i * 7 + j);
      }
      const x = rg.tensor(xs, [n, 4]), y = rg.tensor(ys, [n]);
      const seen: string[] = [];
      const h = await model.fit(x, y, {
        epochs: 30, batchSize: 16, verbose: 0, validationData: [x, y],
        callbacks: [{
          onTrainBegin: () => { seen.push('begin'); },
          onEpochEnd: (e, logs) => { if (e === 4) seen.push(`epoch ${e} ${Object.keys(logs).join(',')}`); if (logs.accuracy === 1 && e > 10) model.stopTraining = true; },
          onTrainEnd: () => { seen.push('end'); },
        }],
      });
      expect(seen).toEqual(['begin', 'epoch 4 loss,accuracy,val_loss,val_accuracy', 'end']);
      expect(Object.keys(h.history).sort()).toEqual(['accuracy', 'loss', 'val_accuracy', 'val_loss']);
      expect(h.epoch.length).toBe(h.history.loss.length);
      expect(h.history.loss.at(-1)!).toBeLessThan(h.history.loss[0]);
      const r = await model.evaluate(x, y);
      expect(r.accuracy).toBeGreaterThan(0.95);
      expect(r.loss).toBeCloseTo(h.history.val_loss.at(-1)!, 4);
      const p = model.predict(x, { batchSize: 7 });
      expect(p.shape).toEqual([n, 3]);
      const pa = await model.predictAsync(x);
      expect(relError(pa.toArray(), p.toArray())).toBeLessThan(1e-6);
      expect(model.training).toBe(true);
    });

    it('the event loop keeps turning while fit trains', async () => {
      rg.setBackend(backend);
      const model = new rg.Sequential([new rg.Linear(64, 256), new rg.ReLU(), new rg.Linear(256, 10)]);
      model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.01 }), loss: new rg.CrossEntropyLoss() });
      const x = rg.randn([512, 64]), y = rg.tensor(Int32Array.from({ length: 512 }, (_, i) => i % 10), [512]);
      // The loop turns if a timer set before fit fires before fit ends: counted in turns, not milliseconds, so a
      // loaded machine changes nothing. The reference backend trains on the main thread, between awaits.
      let turns = 0;
      let fitDone = false;
      const spin = () => {
        if (fitDone) return;
        turns++;
        setImmediate(spin);
      };
      setImmediate(spin);
      await model.fit(x, y, { epochs: backend === 'cpu' ? 6 : 1, batchSize: 32, verbose: 0 });
      fitDone = true;
      expect(turns).toBeGreaterThan(5);
    });
  });
}

describe.skipIf(!cpuAvailable)('native memory', () => {
  it('rg.memory counts native tensors and bytes; dispose frees them', () => {
    rg.setBackend('cpu');
    collectGarbage();
    const before = rg.memory();
    const t = rg.zeros([1000]);
    const during = rg.memory();
    expect(during.tensors).toBe(before.tensors + 1);
    expect(during.bytes).toBe(before.bytes + 4000);
    t.dispose();
    expect(rg.memory().tensors).toBe(before.tensors);
    expect(during).toHaveProperty('deviceBytesInUse', 0);
  });

  it('the steady-state training step allocates no native tensor: count and bytes flat over 1,000 steps', async () => {
    rg.setBackend('cpu');
    const model = new rg.Sequential([new rg.Linear(20, 32), new rg.ReLU(), new rg.Dropout(0.2), new rg.Linear(32, 4)]);
    model.compile({ optimizer: new rg.Adam(model.parameters()), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
    const x = rg.randn([256, 20]), y = rg.tensor(Int32Array.from({ length: 256 }, (_, i) => i % 4), [256]);
    const counts: number[] = [], bytes: number[] = [];
    let steps = 0;
    await model.fit(x, y, {
      epochs: 32, batchSize: 8, verbose: 0,
      callbacks: [{ onBatchEnd: (b) => { steps++; if (b >= 2) { const m = rg.memory(); counts.push(m.tensors); bytes.push(m.bytes); } } }],
    });
    expect(steps).toBe(1024);
    // Nothing grows: the one tensor that comes and goes is the epoch's shuffled index (256 int32). (Counts
    // may fall, when the garbage collector frees tensors that earlier tests left behind.)
    expect(Math.max(...counts) - counts[0]).toBeLessThanOrEqual(1);
    expect(Math.max(...bytes) - bytes[0]).toBeLessThanOrEqual(256 * 4);
  });
});
