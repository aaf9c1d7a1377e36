// The fast CPU core's promises: fused Linear+activation equals the layers apart (and passes gradient
// checks), lazily zeroed gradients read and behave as zeros, training is deterministic for a thread count,
// every instruction-set path passes the whole kernel table, and the thread count follows the environment.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cases } from '../lib/check/kernels.js';
import { randomArray, relError, requireBuiltDist, requireCpu, rg, rng, TOL } from './helpers.js';

const cpuAvailable = requireCpu();

const backendNames = cpuAvailable ? (['cpu', 'reference'] as const) : (['reference'] as const);

function layers(): rg.Module[] {
  return [new rg.Linear(7, 9), new rg.ReLU(), new rg.Linear(9, 6), new rg.LeakyReLU(0.2), new rg.Linear(6, 5), new rg.LeakyReLU(-0.5), new rg.Linear(5, 3)];
}

for (const backend of backendNames) {
  describe(`fused Linear + activation on ${backend}`, () => {
    it('Sequential (fused) gives the outputs and gradients of the layers run one by one', () => {
      rg.setBackend(backend);
      rg.manualSeed(4);
      const fusedLayers = layers();
      const seq = new rg.Sequential(fusedLayers);
      rg.manualSeed(4);
      const apart = layers();
      const x = rg.tensor(randomArray(11 * 7, rng(1), 2), [11, 7]);
      const dy = rg.tensor(randomArray(11 * 3, rng(2)), [11, 3]);
      const y1 = seq.forward(x);
      const dx1 = seq.backward(dy);
      let h = x;
      for (const l of apart) h = l.forward(h);
      let g = dy;
      for (let i = apart.length - 1; i >= 0; i--) g = apart[i].backward(g);
      expect(relError(y1.toArray(), h.toArray())).toBeLessThan(TOL.reduction);
      expect(relError(dx1.toArray(), g.toArray())).toBeLessThan(TOL.reduction);
      seq.parameters().forEach((p, i) => expect(relError(p.grad.toArray(), apart.flatMap((l) => l.parameters())[i].grad.toArray()), `grad ${i}`).toBeLessThan(TOL.reduction));
      // the fused activation layer can still run its own backward
      const relu = fusedLayers[1];
      expect(relu.backward(rg.tensor(new Float32Array(11 * 9).fill(1), [11, 9])).shape).toEqual([11, 9]);
    });
  });
}

describe('fused layers pass gradient checks', () => {
  it('Linear + ReLU / LeakyReLU inside Sequential', () => {
    rg.setBackend('reference');
    rg.manualSeed(8);
    const r = rg.gradCheck(new rg.Sequential(layers()), rg.tensor(randomArray(6 * 7, rng(3), 2), [6, 7]));
    expect(r.maxRelError, JSON.stringify(r.errors)).toBeLessThan(TOL.gradcheck);
  });
});

for (const backend of backendNames) {
  describe(`lazily zeroed gradients on ${backend}`, () => {
    it('read as zeros, are overwritten by the next backward, and mix with accumulating ones', () => {
      rg.setBackend(backend);
      const lin = new rg.Linear(3, 2);
      const x = rg.tensor([1, 2, 3, -1, 0.5, 2], [2, 3]);
      const dy = rg.tensor([1, -1, 0.5, 2], [2, 2]);
      lin.forward(x);
      lin.backward(dy);
      const once = { w: [...lin.weight.grad.toArray()], b: [...lin.bias!.grad.toArray()] };
      lin.zeroGrad();
      expect([...lin.weight.grad.toArray()].every((v) => v === 0)).toBe(true);
      lin.zeroGrad();
      lin.forward(x);
      lin.backward(dy);
      expect(relError(lin.weight.grad.toArray(), once.w)).toBeLessThan(1e-6);
      expect(relError(lin.bias!.grad.toArray(), once.b)).toBeLessThan(1e-6);
      // only the weight zeroed: the weight restarts, the bias accumulates
      lin.weight.zeroGrad();
      lin.forward(x);
      lin.backward(dy);
      expect(relError(lin.weight.grad.toArray(), once.w)).toBeLessThan(1e-6);
      expect(relError(lin.bias!.grad.toArray(), once.b.map((v) => 2 * v))).toBeLessThan(1e-6);
      // an optimizer step after zeroGrad without backward sees zero gradients
      const before = [...lin.weight.value.toArray()];
      lin.zeroGrad();
      new rg.SGD(lin.parameters(), { lr: 1 }).step();
      expect([...lin.weight.value.toArray()]).toEqual(before);
    });
  });
}

if (process.env.RETROGRAD_CPU_ISA !== undefined)
  console.warn(`skipping the per-ISA kernel-table run: RETROGRAD_CPU_ISA=${process.env.RETROGRAD_CPU_ISA} already forces one path`);

describe.skipIf(!cpuAvailable)('native CPU determinism and configuration', () => {
  it.runIf(process.platform === 'linux' && process.arch === 'x64')('reads the CPU features the kernel reports (cpuid and the saved register state)', () => {
    const flags = new Set((/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/));
    const want = [['sse4_2', 'sse4.2'], ['avx2', 'avx2'], ['fma', 'fma'], ['avx512f', 'avx512f'], ['avx512_bf16', 'avx512bf16']].filter(([linux]) => flags.has(linux)).map(([, ours]) => ours);
    const cpu = rg.backends().find((b) => b.name === 'cpu')!;
    expect(cpu.detail.features).toEqual(want);
    const avx512 = ['avx512f', 'avx512vl', 'avx512bw', 'avx512dq'].every((f) => flags.has(f));
    expect(cpu.detail.isa).toBe(avx512 ? 'avx512' : flags.has('avx2') && flags.has('fma') ? 'avx2' : 'portable');
  });
  it('the same training gives bit-identical weights on every run (same thread count)', async () => {
    rg.setBackend('cpu');
    const train = async () => {
      rg.manualSeed(12);
      const m = new rg.Sequential([new rg.Linear(64, 300), new rg.ReLU(), new rg.Dropout(0.2), new rg.Linear(300, 10)]);
      m.compile({ optimizer: new rg.Adam(m.parameters()), loss: new rg.CrossEntropyLoss() });
      const x = rg.randn([500, 64]), y = rg.tensor(Int32Array.from({ length: 500 }, (_, i) => i % 10), [500]);
      await m.fit(x, y, { epochs: 2, batchSize: 50, verbose: 0 });
      return m.parameters().map((p) => [...p.value.toArray()]);
    };
    expect(await train()).toEqual(await train());
  });

  it('a convolution in image groups gives the same output and gradients, bit for bit, on 1 and 3 threads', () => {
    requireBuiltDist(); // the child imports the package: dist/
    // 40 images of 16 × 16 (14 groups of 3) and 37 of 14 × 14 with 5 × 5 kernels (19 groups of 2 in the 16 slots of the
    // weight gradient: three slots sum two groups)
    const script = `import('retrograd').then((rg) => {
      rg.setBackend('cpu');
      const out = [];
      for (const [B, H, K] of [[40, 16, 3], [37, 14, 5]]) {
        rg.manualSeed(5);
        const conv = new rg.Conv2d(16, 8, K, { padding: 1 });
        const x = rg.randn([B, 16, H, H], { requiresGrad: true });
        const y = conv.forward(x);
        y.mul(rg.randn(y.shape)).sum().backward();
        for (const t of [y, x.grad, conv.weight.grad, conv.bias.grad]) out.push(Buffer.from(t.toArray().buffer).toString('base64'));
      }
      console.log(JSON.stringify(out));
    })`;
    const run = (threads: string) => JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, RETROGRAD_NUM_THREADS: threads }, encoding: 'utf8', maxBuffer: 64 << 20 })) as string[];
    const one = run('1'), three = run('3');
    expect(one.length).toBe(8);
    one.forEach((v, i) => expect(v === three[i], `tensor ${i}: 1 and 3 threads differ`).toBe(true));
  });

  it('RETROGRAD_NUM_THREADS sets the pool size', () => {
    requireBuiltDist(); // the child imports the package: dist/
    const script = "import('retrograd').then((rg) => console.log(JSON.stringify(rg.backends().find((b) => b.name === 'cpu').detail)))";
    const one = JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, RETROGRAD_NUM_THREADS: '1' }, encoding: 'utf8' }));
    expect(one.threads).toBe(1);
    const dflt = JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, RETROGRAD_NUM_THREADS: '' }, encoding: 'utf8' }));
    expect(dflt.threads).toBe(dflt.physicalCores);
  });

  it.skipIf(process.env.RETROGRAD_CPU_ISA !== undefined)('the whole kernel table passes on the AVX2 and portable paths', () => {
    for (const isa of ['avx2', 'portable']) {
      // CI=true: in the child, a native backend that fails to load on this path fails instead of skipping
      const out = execFileSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', 'test/kernels.test.ts', '--reporter=json'], {
        env: { ...process.env, RETROGRAD_CPU_ISA: isa, CI: 'true', NO_COLOR: '1', FORCE_COLOR: '0' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20,
      });
      const report = JSON.parse(out.slice(out.indexOf('{'))) as { numFailedTests: number; testResults: { assertionResults: { ancestorTitles: string[]; title: string; status: string }[] }[] };
      const native = report.testResults.flatMap((f) => f.assertionResults).filter((t) => t.ancestorTitles[0] === 'native CPU kernels against the reference');
      // every kernel of the table ran and passed on this path: none skipped, none missing
      expect(native.filter((t) => t.status !== 'passed').map((t) => `${t.title}: ${t.status}`), `RETROGRAD_CPU_ISA=${isa}`).toEqual([]);
      expect(native.map((t) => t.title), `RETROGRAD_CPU_ISA=${isa}`).toEqual(expect.arrayContaining(Object.keys(cases)));
      expect(report.numFailedTests, `RETROGRAD_CPU_ISA=${isa}`).toBe(0);
    }
  });
});
