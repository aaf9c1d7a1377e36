#!/usr/bin/env node
// Times the CUDA backend's matrix kernels one tiling against another: builds bench/cuda/gemm_variants.cu (the
// kernels of native/cuda/gemm_kernels.cuh in a program of its own, so the addon carries no switch between them) for
// this machine's GPU with nvcc, then runs it: each variant checked against float64, then timed at n³.
//   node bench/gpu-gemm-variants.mjs [n]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const nvcc = process.env.RETROGRAD_NVCC ?? 'nvcc';
const dir = mkdtempSync(join(tmpdir(), 'retrograd-gemm-variants-'));
try {
  const exe = join(dir, 'gemm_variants');
  execFileSync(nvcc, ['-O3', '-std=c++17', '--expt-relaxed-constexpr', '-arch=native', '-diag-suppress', '20058',
    join(root, 'bench', 'cuda', 'gemm_variants.cu'), join(root, 'native', 'cuda', 'runtime.cu'), '-o', exe], { stdio: 'inherit' });
  execFileSync(exe, [process.argv[2] ?? '4096'], { stdio: 'inherit', timeout: 300_000 });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
