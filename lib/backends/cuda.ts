// The CUDA backend's place in the registry. Its kernels are not part of this build, so it reports itself
// unavailable with the reason, and choosing it fails clearly instead of falling back to the CPU.
import type { Backend, BackendInfo } from '../backend.js';
import { RetrogradError } from '../errors.js';

const reason = 'the CUDA backend is not built into this version of retrograd';

export function probeCuda(): BackendInfo {
  return { name: 'cuda', available: false, reason, detail: {} };
}

export function createCudaBackend(): Backend {
  throw new RetrogradError(`setBackend('cuda'): CUDA unavailable: ${reason}`, 'CUDA_UNAVAILABLE');
}
