// The CUDA backend: the addon that CMakeLists.txt builds (cmake-js, at install when nvcc is found) into
// build-cuda/Release/, or the prebuilt one shipped under prebuilds/<platform>-<arch>-cuda/ — a folder of its own,
// so that node-gyp-build never takes it for the CPU addon. It is loaded lazily (on setBackend('cuda') or
// backends(), never at import). When it cannot run, the reason is precise: the addon was not built (and why),
// there is no NVIDIA driver, or no CUDA device. Choosing it then fails; it never falls back to the CPU.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import type { Backend, BackendInfo } from '../backend.js';
import { RetrogradError } from '../errors.js';
import { packageRoot } from './cpu.js';
import { missingKernels, NativeBackend, type NativeAddon } from './native.js';

/** Where the CUDA addon may be, in the order tried. */
export function cudaAddonPaths(): string[] {
  return [`${packageRoot}build-cuda/Release/retrograd_cuda.node`, `${packageRoot}prebuilds/${os.platform()}-${os.arch()}-cuda/retrograd_cuda.node`];
}

/** The note scripts/install-cuda.mjs leaves when it did not build the addon. */
export const cudaSkipNote = () => `${packageRoot}build-cuda/not-built.txt`;

let loaded: { addon?: NativeAddon; reason?: string } | undefined;

function load(): { addon?: NativeAddon; reason?: string } {
  if (loaded) return loaded;
  const path = cudaAddonPaths().find((p) => existsSync(p));
  if (!path) {
    const note = existsSync(cudaSkipNote()) ? readFileSync(cudaSkipNote(), 'utf8').trim() : 'no build-cuda/ folder and no CUDA prebuild';
    loaded = { reason: `addon not built: ${note}` };
    return loaded;
  }
  try {
    const a = createRequire(import.meta.url)(path) as NativeAddon;
    const missing = missingKernels(a);
    if (missing.length) throw new Error(`the addon is out of date: it lacks the kernels ${missing.join(', ')}`);
    a.setErrorClass(RetrogradError);
    const info = a.info();
    loaded = info.available ? { addon: a } : { reason: info.reason ?? 'unknown' };
  } catch (e) {
    loaded = { reason: `the addon at ${path} could not be loaded: ${e instanceof Error ? e.message : String(e)}` };
  }
  return loaded;
}

export function probeCuda(): BackendInfo {
  const { addon, reason } = load();
  if (!addon) return { name: 'cuda', available: false, reason: `CUDA unavailable: ${reason}`, detail: {} };
  return new NativeBackend('cuda', addon).info();
}

export function createCudaBackend(): Backend {
  const { addon, reason } = load();
  if (!addon) throw new RetrogradError(`setBackend('cuda'): CUDA unavailable: ${reason}`, 'CUDA_UNAVAILABLE');
  return new NativeBackend('cuda', addon);
}
