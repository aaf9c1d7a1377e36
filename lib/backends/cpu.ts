// The native CPU backend: loads the addon (a prebuilt binary from prebuilds/, else the one node-gyp built
// into build/Release/) through node-gyp-build, and maps the kernel contract onto the addon's kernel table.
// Kernel calls are queued on the addon's native thread; reads synchronise (DESIGN.md, "Execution model").
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { KERNEL_NAMES, nativeLoadError, type Backend, type BackendInfo, type Buf, type DType, type HostArray, type Kernels } from '../backend.js';
import { RetrogradError } from '../errors.js';

interface NativeAddon {
  kernels: string[];
  napiVersion: number;
  setErrorClass(ctor: unknown): void;
  alloc(dtype: 'float32' | 'int32', size: number): Buf;
  fromHost(data: Float32Array | Int32Array): Buf;
  write(buf: Buf, data: Float32Array | Int32Array): void;
  read(buf: Buf): Float32Array | Int32Array;
  readAsync(buf: Buf): Promise<Float32Array | Int32Array>;
  sync(): void;
  syncAsync(): Promise<void>;
  run(kernel: number, ...args: unknown[]): void;
  info(): { threads: number; isa: string; features: string[] };
  memory(): { tensors: number; bytes: number };
}

/** The package root: lib/backends/ and dist/backends/ both sit two levels below it. */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

let addon: NativeAddon | undefined;
let loadError: RetrogradError | undefined;

export function loadCpuAddon(): NativeAddon {
  if (addon) return addon;
  if (loadError) throw loadError;
  const require = createRequire(import.meta.url);
  const platform = `${os.platform()}-${os.arch()}`;
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeAddon;
    const a = nodeGypBuild(packageRoot);
    const missing = KERNEL_NAMES.filter((k) => !a.kernels.includes(k));
    if (missing.length) throw new Error(`the addon is out of date: it lacks the kernels ${missing.join(', ')}`);
    a.setErrorClass(RetrogradError);
    addon = a;
    return a;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    loadError = nativeLoadError(
      `retrograd: the native CPU addon could not be loaded.\n` +
        `  tried: ${packageRoot}prebuilds/${platform}/ (prebuilt binaries) and ${packageRoot}build/Release/ (local build)\n` +
        `  why: ${why}\n` +
        `  what to do: run \`npm rebuild retrograd\` with a C++ toolchain installed (Debian/Ubuntu: apt-get install build-essential python3), ` +
        `or use the pure TypeScript backend with rg.setBackend('reference') (slow, but complete).`,
    );
    throw loadError;
  }
}

class CpuBackend implements Backend {
  readonly name = 'cpu';
  readonly floatType = 'float32';
  readonly async = true;
  readonly k: Kernels;
  constructor(private readonly a: NativeAddon) {
    const k: Record<string, (...args: unknown[]) => void> = {};
    a.kernels.forEach((name, index) => {
      k[name] = (...args: unknown[]) => a.run(index, ...args);
    });
    this.k = k as unknown as Kernels;
  }
  alloc(dtype: DType, size: number): Buf {
    return this.a.alloc(dtype === 'int32' ? 'int32' : 'float32', size);
  }
  fromHost(data: HostArray): Buf {
    return this.a.fromHost(data instanceof Float64Array ? Float32Array.from(data) : data);
  }
  write(buf: Buf, data: HostArray): void {
    this.a.write(buf, data instanceof Float64Array ? Float32Array.from(data) : data);
  }
  read(buf: Buf): HostArray {
    return this.a.read(buf);
  }
  readAsync(buf: Buf): Promise<HostArray> {
    return this.a.readAsync(buf);
  }
  sync(): void {
    this.a.sync();
  }
  syncAsync(): Promise<void> {
    return this.a.syncAsync();
  }
  dispose(buf: Buf): void {
    (buf as unknown as { dispose(): void }).dispose();
  }
  memory() {
    return this.a.memory();
  }
  info(): BackendInfo {
    return { name: 'cpu', available: true, detail: { ...this.a.info(), napiVersion: this.a.napiVersion } };
  }
}

export function createCpuBackend(): Backend {
  return new CpuBackend(loadCpuAddon());
}

export function probeCpu(): BackendInfo {
  try {
    return createCpuBackend().info();
  } catch (e) {
    return { name: 'cpu', available: false, reason: e instanceof Error ? e.message : String(e), detail: {} };
  }
}
