// The CUDA backend where there may be no GPU: the sources compile (npm install builds them when nvcc is
// found), the addon loads anywhere and says precisely why it cannot run, choosing it then fails clearly,
// and an install without nvcc leaves a reason the loader reports. With a GPU, test/gpu/runtime.mjs checks
// the runtime (allocator, out of memory, failures found by kernels, TF32, garbage collection); the kernels
// themselves are checked against the reference in kernels.test.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KERNEL_NAMES } from '../lib/backend.js';
import { cudaAddonPaths, probeCuda } from '../lib/backends/cuda.js';
import * as rg from '../lib/index.js';

const root = process.cwd();
const nvcc = ['/usr/local/cuda/bin', ...(process.env.PATH ?? '').split(':')].map((d) => join(d, 'nvcc')).find((p) => existsSync(p));
const gpu = probeCuda();
const tmp = mkdtempSync(join(tmpdir(), 'retrograd-cuda-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the CUDA addon without a GPU', () => {
  it.skipIf(!nvcc)('is built by the install wherever nvcc is found, and exports every kernel of the contract', () => {
    const built = cudaAddonPaths()[0];
    // why it is missing: the install writes build-cuda/not-built.txt when it cannot build (cmake missing, a failed build)
    const notBuilt = join(root, 'build-cuda', 'not-built.txt');
    const why = existsSync(notBuilt) ? readFileSync(notBuilt, 'utf8').trim() : 'no reason recorded (was npm install run?)';
    expect(existsSync(built), `${built} is missing although nvcc ${nvcc} is here: ${why}`).toBe(true);
    const addon = createRequire(import.meta.url)(built) as { kernels: string[]; info(): { available: boolean; reason?: string } };
    expect(addon.kernels).toEqual([...KERNEL_NAMES]);
    const info = addon.info();
    if (!info.available) expect(info.reason).toMatch(/^(no NVIDIA driver|no CUDA device|.+ has compute capability)/);
  });
  if (!nvcc) console.warn('skipping the CUDA build check: no nvcc on this machine');

  it('backends() reports cuda with its device, or unavailable with a precise reason', () => {
    const cuda = rg.backends().find((b) => b.name === 'cuda')!;
    expect(cuda.available).toBe(gpu.available);
    if (cuda.available) {
      expect(cuda.detail).toMatchObject({ device: expect.any(String), computeCapability: expect.stringMatching(/^\d+\.\d+$/) });
    } else {
      expect(cuda.reason).toMatch(/^CUDA unavailable: (no NVIDIA driver|no CUDA device|addon not built: |.+ has compute capability)/);
    }
  });

  it.skipIf(gpu.available)("setBackend('cuda') fails with CUDA_UNAVAILABLE and the reason, and keeps the backend in use", () => {
    const before = rg.getBackend();
    expect(() => rg.setBackend('cuda')).toThrow(expect.objectContaining({ code: 'CUDA_UNAVAILABLE', message: expect.stringContaining(gpu.reason!.replace('CUDA unavailable: ', '')) }));
    expect(rg.getBackend()).toBe(before);
    expect(rg.memory()).toMatchObject({ deviceBytesInUse: 0, deviceBytesCached: 0 });
  });

  it('an install without nvcc says why in one line, and the loader reports it', () => {
    const pkg = join(tmp, 'pkg');
    mkdirSync(pkg);
    cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true });
    cpSync(join(root, 'scripts'), join(pkg, 'scripts'), { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'retrograd', type: 'module' }));
    symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
    const r = spawnSync(process.execPath, [join(pkg, 'scripts', 'install-cuda.mjs')], { encoding: 'utf8', env: { ...process.env, RETROGRAD_NVCC: '/nonexistent/nvcc' } });
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['retrograd: CUDA backend not built: nvcc not found at install (RETROGRAD_NVCC=/nonexistent/nvcc) (the CPU backend is unaffected)']);
    const reason = execFileSync(process.execPath, ['--input-type=module', '-e', `
      import * as rg from ${JSON.stringify(join(pkg, 'dist', 'index.js'))};
      console.log(rg.backends().find((b) => b.name === 'cuda').reason);`], { encoding: 'utf8' }).trim();
    expect(reason).toBe('CUDA unavailable: addon not built: nvcc not found at install (RETROGRAD_NVCC=/nonexistent/nvcc)');
  });

  it('importing retrograd does not load the CUDA addon', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
      import { createRequire } from 'node:module';
      await import(${JSON.stringify(join(root, 'dist', 'index.js'))});
      const cache = createRequire(import.meta.url).cache;
      console.log(Object.keys(cache).some((k) => k.endsWith('retrograd_cuda.node')));`], { encoding: 'utf8' }).trim();
    expect(out).toBe('false');
  });
});

describe.skipIf(!gpu.available)('the CUDA runtime on a GPU', () => {
  if (!gpu.available) console.warn(`skipping the CUDA runtime checks: ${gpu.reason}`);
  it('passes test/gpu/runtime.mjs (allocator, out of memory, kernel failures, TF32, garbage collection)', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', join(root, 'test', 'gpu', 'runtime.mjs')], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  }, 300_000);
});
