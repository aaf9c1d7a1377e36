// rg.autocast('bfloat16'): matrix products and convolutions with bfloat16 operands and float32 sums, the rest in
// float32 (golden values from PyTorch 1.13's CPU autocast in test/golden/autocast.json, make_autocast_golden.py).
// Products under autocast are checked three ways: against the reference backend given the operands rounded to
// bfloat16 (the sums agree to float32's precision), against PyTorch's autocast output (which is also rounded to
// bfloat16), and against float32 (they must differ, or the bfloat16 path did not run).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { roundToBfloat16 } from '../lib/check/kernels.js';
import { decodeSafetensors } from '../lib/io/safetensors.js';
import { relError, requireBuiltDist, requireCpu, rg, root, safetensorsBytes } from './helpers.js';

interface Input { shape: number[]; data: number[]; int: boolean }
interface Case { name: string; product: boolean; dtype: string; inputs: Input[]; out: number[]; out32: number[]; shape: number[] }
interface Golden {
  cases: Case[];
  mlp: { x: number[]; y: number[]; state: Record<string, { shape: number[]; data: number[] }>; losses32: number[]; lossesBf16: number[] };
}
const golden = JSON.parse(readFileSync(new URL('./golden/autocast.json', import.meta.url), 'utf8')) as Golden;

/** float32 → bfloat16 → float32, rounding to nearest even (PyTorch's conversion; its words are checked below). */
const bf16 = (x: number) => roundToBfloat16(Float32Array.of(x))[0];

const ops: Record<string, (...t: rg.Tensor[]) => rg.Tensor> = {
  linear: (x, w, b) => rg.F.linear(x, w, b),
  matmul: (a, b) => rg.F.matmul(a, b),
  bmm: (a, b) => rg.F.matmul(a, b),
  conv2d: (x, w, b) => rg.F.conv2d(x, w, b, { padding: 1 }),
  conv_transpose2d: (x, w, b) => rg.F.convTranspose2d(x, w, b, { stride: 2, padding: 1 }),
  softmax: (x) => rg.F.softmax(x, -1),
  layer_norm: (x, w, b) => rg.F.layerNorm(x, 10, w, b),
  mse_loss: (a, b) => rg.F.mseLoss(a, b),
  cross_entropy: (x, t) => rg.F.crossEntropy(x, t),
};
// The operands a product rounds: every floating input but a bias (added in float32 to the float32 sum).
const rounded = (c: Case, i: number) => !c.inputs[i].int && !((c.name === 'linear' || c.name.startsWith('conv')) && i === 2);
const tensorsOf = (c: Case, round = false) =>
  c.inputs.map((t, i) => (t.int ? rg.tensor(Int32Array.from(t.data), t.shape) : rg.tensor(Float32Array.from(t.data, round && rounded(c, i) ? bf16 : (v) => v), t.shape)));
const run = (backend: 'cpu' | 'reference', c: Case, { cast = false, round = false } = {}) => {
  rg.setBackend(backend);
  const f = () => [...ops[c.name](...tensorsOf(c, round)).toArray('float32')];
  return cast ? rg.autocast('bfloat16', f) : f();
};

const cpuAvailable = requireCpu();
const cpuInfo = rg.backends().find((b) => b.name === 'cpu');
const bf16Hardware = cpuAvailable && cpuInfo?.detail.bf16Products === 'avx512bf16';
if (cpuAvailable && !bf16Hardware) console.warn('skipping the bfloat16 product checks: this CPU has no AVX512-BF16 (autocast keeps float32 here; the fallback is checked)');

afterEach(() => rg.setBackend(cpuAvailable ? 'cpu' : 'reference'));

describe.runIf(bf16Hardware)('rg.autocast on the cpu backend (AVX512-BF16)', () => {
  for (const c of golden.cases.filter((k) => k.product)) {
    it(`${c.name}: bfloat16 operands, float32 sums (PyTorch's autocast gives ${c.dtype})`, () => {
      const ours = run('cpu', c, { cast: true });
      // the same product of the rounded operands, summed in float64 by the reference
      expect(relError(ours, run('reference', c, { round: true }))).toBeLessThan(2e-6);
      // PyTorch rounds the output to bfloat16 as well (relative steps of 2^-8); 1.13 keeps conv_transpose2d float32
      expect(relError(ours, c.out)).toBeLessThan(1e-2);
      // and the bfloat16 path did run: float32 operands give a product ~1e-3 away
      expect(relError(ours, run('cpu', c))).toBeGreaterThan(1e-4);
      expect(relError(run('cpu', c), c.out32)).toBeLessThan(1e-5);
    });
  }

  it('rg.checkBf16Products: every case of matmul, bmm, linear_forward and conv2d_forward (awkward sizes, epilogues)', () => {
    const rows = rg.checkBf16Products('cpu', { seed: 7 });
    expect(new Set(rows.map((r) => r.kernel))).toEqual(new Set(['matmul', 'bmm', 'linear_forward', 'conv2d_forward']));
    expect(rows.filter((r) => !r.ok)).toEqual([]);
    // the rows compare against bfloat16 operands: float32 products would be ~1e-3 off and fail
    expect(Math.max(...rows.map((r) => r.error))).toBeLessThan(1e-5);
  });

  it('the backward of a product under autocast takes bfloat16 operands too', () => {
    const [x, w, b] = golden.cases.find((k) => k.name === 'linear')!.inputs.map((t) => Float32Array.from(t.data));
    const grads = (backend: 'cpu' | 'reference', cast: boolean, round: boolean) => {
      rg.setBackend(backend);
      const r = (a: Float32Array) => (round ? a.map(bf16) : a);
      const xt = rg.tensor(r(x), [9, 37]).requiresGrad_(), wt = rg.tensor(r(w), [13, 37]).requiresGrad_();
      const dy = rg.tensor(Float32Array.from({ length: 9 * 13 }, (_, i) => Math.sin(i)), [9, 13]);
      const go = () => rg.F.linear(xt, wt, rg.tensor(b, [13])).backward(round ? rg.tensor(dy.toArray('float32').map(bf16), [9, 13]) : dy);
      if (cast) rg.autocast('bfloat16', go);
      else go();
      return [xt.grad!.toArray('float32'), wt.grad!.toArray('float32')];
    };
    const ours = grads('cpu', true, false), expected = grads('reference', false, true), exact = grads('cpu', false, false);
    for (let i = 0; i < 2; i++) {
      expect(relError(ours[i], expected[i])).toBeLessThan(2e-6);
      expect(relError(ours[i], exact[i])).toBeGreaterThan(1e-4);
    }
  });

  for (const c of golden.cases.filter((k) => !k.product)) {
    it(`${c.name} stays float32 under autocast, as in PyTorch (${c.dtype})`, () => {
      expect(c.dtype).toBe('float32');
      expect(run('cpu', c, { cast: true })).toEqual(run('cpu', c));
      expect(relError(run('cpu', c, { cast: true }), c.out)).toBeLessThan(1e-5);
    });
  }

  it('an MLP trained 200 steps under autocast follows float32 within 2% (PyTorch: its own bfloat16 run within 1%)', () => {
    const { mlp } = golden;
    const curve = (cast: boolean) => {
      rg.setBackend('cpu');
      const m = new rg.Sequential([new rg.Linear(32, 64), new rg.ReLU(), new rg.Linear(64, 64), new rg.ReLU(), new rg.Linear(64, 10)]);
      m.loadStateDict(Object.fromEntries(Object.entries(mlp.state).map(([k, v]) => [k, rg.tensor(Float32Array.from(v.data), v.shape)])));
      const opt = new rg.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
      const x = rg.tensor(Float32Array.from(mlp.x), [512, 32]), y = rg.tensor(Int32Array.from(mlp.y), [512]);
      const losses: number[] = [];
      for (let step = 0; step < 200; step++) {
        const i = (step * 64) % 512;
        const loss = (cast ? rg.autocast('bfloat16', () => rg.F.crossEntropy(m.forward(x.slice(0, i, i + 64)), y.slice(0, i, i + 64))) : rg.F.crossEntropy(m.forward(x.slice(0, i, i + 64)), y.slice(0, i, i + 64)));
        opt.zeroGrad();
        loss.backward();
        opt.step();
        losses.push(loss.item());
      }
      return losses;
    };
    const windows = (l: number[]) => Array.from({ length: 10 }, (_, w) => l.slice(20 * w, 20 * w + 20).reduce((a, b) => a + b) / 20);
    const f32 = curve(false), b16 = curve(true);
    expect(relError(f32, golden.mlp.losses32)).toBeLessThan(1e-3);  // the same training as PyTorch's
    expect(b16).not.toEqual(f32);
    const [w32, w16, wTorch] = [windows(f32), windows(b16), windows(golden.mlp.lossesBf16)];
    for (let w = 0; w < 10; w++) {
      expect(Math.abs(w16[w] - w32[w]) / w32[w], `window ${w}: ${w16[w]} against ${w32[w]}`).toBeLessThan(0.02);
      expect(Math.abs(w16[w] - wTorch[w]) / wTorch[w], `window ${w}: ${w16[w]} against PyTorch's ${wTorch[w]}`).toBeLessThan(0.02);
    }
  });
});

describe('fit(…, { autocast })', () => {
  const train = async (how: 'option' | 'region' | 'none') => {
    rg.setBackend(cpuAvailable ? 'cpu' : 'reference');
    rg.manualSeed(5);
    const m = new rg.Sequential([new rg.Linear(32, 64), new rg.ReLU(), new rg.Linear(64, 10)]);
    m.compile({ optimizer: new rg.SGD(m.parameters(), { lr: 0.05 }), loss: new rg.CrossEntropyLoss() });
    const x = rg.tensor(Float32Array.from(golden.mlp.x), [512, 32]), y = rg.tensor(Int32Array.from(golden.mlp.y), [512]);
    const fit = (autocast?: 'bfloat16') => m.fit(x, y, { epochs: 2, batchSize: 64, verbose: 0, shuffle: false, ...(autocast ? { autocast } : {}) });
    if (how === 'option') await fit('bfloat16');
    else if (how === 'region') await rg.autocast('bfloat16', () => fit());
    else await fit();
    expect(rg.isAutocastEnabled()).toBe(false);
    return m.parameters().flatMap((p) => [...p.value.toArray('float32')]);
  };

  it('trains as inside rg.autocast, and leaves the region when it ends', async () => {
    const [option, region, plain] = [await train('option'), await train('region'), await train('none')];
    expect(option).toEqual(region);
    if (bf16Hardware) expect(relError(option, plain)).toBeGreaterThan(1e-5);
    else expect(option).toEqual(plain);
  });

  it('refuses anything but bfloat16 or false', async () => {
    const m = new rg.Sequential([new rg.Linear(2, 2)]);
    m.compile({ optimizer: new rg.SGD(m.parameters(), { lr: 0.1 }), loss: new rg.MSELoss() });
    await expect(m.fit(rg.zeros([4, 2]), rg.zeros([4, 2]), { autocast: 'float16' as 'bfloat16' })).rejects.toThrow(`fit: autocast must be 'bfloat16' or false, got the string 'float16'`);
  });
});

describe('rg.autocast, any backend', () => {
  it('a region: inside only, nested, left on a throw and when a promise settles', async () => {
    expect(rg.isAutocastEnabled()).toBe(false);
    expect(rg.autocast('bfloat16', () => rg.autocast('bfloat16', () => rg.isAutocastEnabled()))).toBe(true);
    expect(rg.isAutocastEnabled()).toBe(false);
    expect(() => rg.autocast('bfloat16', () => { throw new Error('inside'); })).toThrow('inside');
    expect(rg.isAutocastEnabled()).toBe(false);
    const p = rg.autocast('bfloat16', async () => {
      await new Promise((r) => setTimeout(r, 5));
      return rg.isAutocastEnabled();
    });
    expect(rg.isAutocastEnabled()).toBe(true);
    expect(await p).toBe(true);
    expect(rg.isAutocastEnabled()).toBe(false);
    await expect(rg.autocast('bfloat16', async () => { throw new Error('later'); })).rejects.toThrow('later');
    expect(rg.isAutocastEnabled()).toBe(false);
    expect(() => rg.autocast('float16' as 'bfloat16', () => 1)).toThrow(`autocast: expected 'bfloat16', got "float16"`);
    expect(() => rg.autocast('bfloat16', 3 as unknown as () => void)).toThrow('autocast: expected a function to run, got number');
  });

  it('after the region, products are exact float32 again; the reference backend stays float32 inside', () => {
    const c = golden.cases.find((k) => k.name === 'matmul')!;
    for (const backend of cpuAvailable ? (['cpu', 'reference'] as const) : (['reference'] as const)) {
      const before = run(backend, c);
      const inside = run(backend, c, { cast: true });
      expect(run(backend, c)).toEqual(before);
      if (backend === 'reference' || !bf16Hardware) expect(inside).toEqual(before);
      expect(relError(before, c.out32)).toBeLessThan(1e-5);
    }
  });

  it.runIf(cpuAvailable && process.arch === 'x64')('where the CPU lacks AVX512-BF16 (here: capped at AVX2), products stay float32', () => {
    requireBuiltDist();
    const c = golden.cases.find((k) => k.name === 'linear')!;
    const script = `import * as rg from './dist/index.js';
      const c = ${JSON.stringify(c)};
      const t = c.inputs.map((i) => rg.tensor(Float32Array.from(i.data), i.shape));
      const f = () => [...rg.F.linear(t[0], t[1], t[2]).toArray('float32')];
      console.log(JSON.stringify({ how: rg.backends().find((b) => b.name === 'cpu').detail.bf16Products, exact: f(), cast: rg.autocast('bfloat16', f) }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', env: { ...process.env, RETROGRAD_CPU_ISA: 'avx2' } });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { how: string; exact: number[]; cast: number[] };
    expect(out.how).toBe('float32');
    expect(out.cast).toEqual(out.exact);
    expect(relError(out.exact, c.out32)).toBeLessThan(1e-5);
  });
});

describe('bfloat16 in safetensors files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'retrograd-bf16-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("rg.save(model, path, { dtype: 'bfloat16' }) writes BF16 at half the size; rg.load widens it back exactly", async () => {
    rg.manualSeed(3);
    const model = new rg.Sequential([new rg.Linear(64, 128), new rg.BatchNorm1d(128), new rg.ReLU(), new rg.Linear(128, 10)]);
    await rg.save(model, join(dir, 'f32.safetensors'));
    await rg.save(model, join(dir, 'bf16.safetensors'), { dtype: 'bfloat16' });
    const [f32, b16] = ['f32', 'bf16'].map((f) => statSync(join(dir, `${f}.safetensors`)).size);
    expect(b16 / f32).toBeGreaterThan(0.45);
    expect(b16 / f32).toBeLessThan(0.6);
    const file = decodeSafetensors(readFileSync(join(dir, 'bf16.safetensors')));
    expect(Object.keys(file.tensors)).toEqual(Object.keys(model.stateDict()));
    const header = JSON.parse(readFileSync(join(dir, 'bf16.safetensors')).subarray(8, 8 + Number(readFileSync(join(dir, 'bf16.safetensors')).readBigUInt64LE(0))).toString()) as Record<string, { dtype: string }>;
    expect(header['0.weight'].dtype).toBe('BF16');
    expect(header['1.num_batches_tracked'].dtype).toBe('I32');  // integer buffers stay as they are
    const loaded = await rg.load(join(dir, 'bf16.safetensors'), rg.Sequential);
    for (const [k, t] of Object.entries(model.stateDict())) {
      const want = t.dtype === 'int32' ? [...t.toArray()] : [...t.toArray('float32')].map(bf16);
      expect([...loaded.stateDict()[k].toArray()], k).toEqual(want);
    }
    await expect(rg.save(model, join(dir, 'x.safetensors'), { dtype: 'float16' as 'bfloat16' })).rejects.toThrow(`save: dtype must be 'float32' or 'bfloat16', got the string 'float16'`);
  });

  it('BF16 and F16 entries (as PyTorch writes them) load as float32, exactly, edge values included', () => {
    const values = [1, -2.5, 3.140625, 0, -0, Infinity, -Infinity, NaN, 1e-40, 65504, 2 ** -24];
    const bfWords = Uint16Array.from(values, (v) => new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16);
    // IEEE half: 1, -2.5, 3.140625, 0, -0, inf, -inf, NaN, 0 (1e-40 underflows), 65504 (the largest), 2^-24 (the smallest subnormal)
    const f16Words = Uint16Array.of(0x3c00, 0xc100, 0x4248, 0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x0000, 0x7bff, 0x0001);
    const json = JSON.stringify({ b: { dtype: 'BF16', shape: [11], data_offsets: [0, 22] }, h: { dtype: 'F16', shape: [11], data_offsets: [22, 44] } });
    const buf = safetensorsBytes(json, Buffer.concat([Buffer.from(bfWords.buffer), Buffer.from(f16Words.buffer)]));
    const { tensors } = decodeSafetensors(buf);
    expect([...tensors.b.data]).toEqual(values.map((v) => (Number.isNaN(v) ? NaN : new Float32Array(new Uint32Array([(new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16) << 16]).buffer)[0])));
    expect(Object.is(tensors.b.data[4], -0)).toBe(true);
    expect([...tensors.h.data]).toEqual([1, -2.5, 3.140625, 0, -0, Infinity, -Infinity, NaN, 0, 65504, 2 ** -24]);
    writeFileSync(join(dir, 'halves.safetensors'), buf);
  });

  it.runIf(spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0)('the BF16 words are the ones PyTorch rounds to', async () => {
    const values = Float32Array.from({ length: 4096 }, (_, i) => Math.sinh((i - 2048) / 97) * (1 + ((i * 7919) % 13) / 1e4));
    const model = new rg.Sequential([new rg.Linear(64, 64)]);
    model.loadStateDict({ '0.weight': rg.tensor(values, [64, 64]), '0.bias': rg.zeros([64]) });
    await rg.save(model, join(dir, 'words.safetensors'), { dtype: 'bfloat16' });
    writeFileSync(join(dir, 'values.f32'), values);
    const py = `import torch, numpy, json, struct
raw = open('${join(dir, 'words.safetensors')}', 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]; head = json.loads(raw[8:8 + n]); b, e = head['0.weight']['data_offsets']
ours = numpy.frombuffer(raw[8 + n + b:8 + n + e], dtype=numpy.int16)
v = torch.from_numpy(numpy.fromfile('${join(dir, 'values.f32')}', dtype=numpy.float32))
torchs = v.to(torch.bfloat16).view(torch.int16).numpy()
print(int((ours != torchs).sum()))`;
    const r = spawnSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('0');
  });
});
