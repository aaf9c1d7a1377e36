// What the CPU and CUDA backends share: both are the same Node-API layer (native/addon/) over different
// kernels, so one class maps the kernel contract onto either addon's kernel table.
import { KERNEL_NAMES, type Backend, type BackendInfo, type Buf, type DType, type HostArray, type Kernels } from '../backend.js';

export interface NativeAddon {
  kernels: string[];
  napiVersion: number;
  setErrorClass(ctor: unknown): void;
  alloc(dtype: 'float32' | 'int32', size: number, zero?: boolean): Buf;
  fromHost(data: Float32Array | Int32Array): Buf;
  write(buf: Buf, data: Float32Array | Int32Array): void;
  read(buf: Buf): Float32Array | Int32Array;
  readAsync(buf: Buf): Promise<Float32Array | Int32Array>;
  sync(): void;
  syncAsync(): Promise<void>;
  run(kernel: number, ...args: unknown[]): void;
  info(): { available: boolean; reason?: string } & Record<string, unknown>;
  memory(): { tensors: number; bytes: number; deviceBytesInUse: number; deviceBytesCached: number };
  setMatmulPrecision(precision: 'highest' | 'tf32'): void;
}

/** Kernels the addon lacks (an addon built from older sources). */
export function missingKernels(a: NativeAddon): string[] {
  return KERNEL_NAMES.filter((k) => !a.kernels.includes(k));
}

export class NativeBackend implements Backend {
  readonly floatType = 'float32';
  readonly async = true;
  readonly k: Kernels;
  constructor(
    readonly name: string,
    private readonly a: NativeAddon,
  ) {
    const k: Record<string, (...args: unknown[]) => void> = {};
    a.kernels.forEach((kernel, index) => {
      k[kernel] = (...args: unknown[]) => a.run(index, ...args);
    });
    this.k = k as unknown as Kernels;
  }
  alloc(dtype: DType, size: number, zero = true): Buf {
    return this.a.alloc(dtype === 'int32' ? 'int32' : 'float32', size, zero);
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
  setMatmulPrecision(precision: 'highest' | 'tf32'): void {
    this.a.setMatmulPrecision(precision);
  }
  info(): BackendInfo {
    const { available: _available, reason: _reason, ...detail } = this.a.info();
    return { name: this.name, available: true, detail: { ...detail, napiVersion: this.a.napiVersion } };
  }
}
