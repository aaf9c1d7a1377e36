// What the CPU and CUDA backends share: both are the same Node-API layer (native/addon/) over different
// kernels, so one class maps the kernel contract onto either addon's kernel table.
import { KERNEL_NAMES, type Backend, type BackendInfo, type Buf, type DType, type HostArray, type Kernels, type ProductPrecision, type QueuedCollective } from '../backend.js';

export interface NativeAddon {
  kernels: string[];
  napiVersion: number;
  setErrorClass(ctor: unknown): void;
  /** external: a handle only the addon reads (cheaper to make than the storage object the addon's own API returns). */
  alloc(dtype: 'float32' | 'int32' | 0 | 1, size: number, zero?: boolean, external?: boolean): Buf;
  fromHost(data: Float32Array | Int32Array, external?: boolean): Buf;
  /** Frees a storage (either kind of handle) now; kernels queued before still complete. */
  release(buf: Buf): void;
  write(buf: Buf, data: Float32Array | Int32Array): void;
  read(buf: Buf): Float32Array | Int32Array;
  readAsync(buf: Buf): Promise<Float32Array | Int32Array>;
  sync(): void;
  syncAsync(): Promise<void>;
  run(kernel: number, ...args: unknown[]): void;
  info(): { available: boolean; reason?: string } & Record<string, unknown>;
  memory(): { tensors: number; bytes: number; deviceBytesInUse: number; deviceBytesCached: number };
  setMatmulPrecision(precision: ProductPrecision): void;
  allReduceStart(table: unknown, bufs: Buf[], mean: boolean, shape: readonly number[], after?: unknown): unknown;
  allReduceWait(handle: unknown): void;
  broadcastStart(table: unknown, bufs: Buf[], root: number, shape: readonly number[]): unknown;
  allReduceTimes(handle: unknown): { communicationMs: number; waitedMs: number } | undefined;
  deviceCollectivesId(): Uint8Array;
  deviceCollectivesInit(id: Uint8Array, rank: number, size: number): void;
}

/** Kernels the addon lacks (an addon built from older sources). */
export function missingKernels(a: NativeAddon): string[] {
  return KERNEL_NAMES.filter((k) => !a.kernels.includes(k));
}

/**
 * Storages given back by dispose(), kept by size for the next alloc of that size: a model written op by op makes and
 * frees a tensor per operation, and a native allocation (a storage and its wrapper object) cost 2 µs where the
 * operation's kernel call cost 1. A kept storage is handed out again at once: a kernel queued before the dispose still
 * reads it before any kernel queued after the alloc writes it, as the queue runs in order. Float storages for outputs
 * that a kernel overwrites only (an alloc that asks for zeros gets a new storage: zeroing a kept one would be a kernel,
 * which a pending failure skips); up to MAX_KEPT storages and MAX_KEPT_BYTES in all, each at most
 * MAX_KEPT_SIZE elements (larger ones are rarer, and their kernels outweigh the allocation).
 */
class StoragePool {
  static readonly MAX_KEPT = 4096;
  static readonly MAX_KEPT_BYTES = 256 << 20;
  static readonly MAX_KEPT_SIZE = 1 << 20;
  private readonly bySize = new Map<number, Buf[]>();
  count = 0;
  bytes = 0;

  take(size: number): Buf | undefined {
    const list = this.bySize.get(size);
    if (!list || list.length === 0) return undefined;
    this.count--;
    this.bytes -= size * 4;
    return list.pop();
  }
  /** Keeps buf (a float32 storage of `size` elements) unless the pool is full. */
  keep(buf: Buf, size: number): boolean {
    if (size > StoragePool.MAX_KEPT_SIZE || this.count >= StoragePool.MAX_KEPT || this.bytes + size * 4 > StoragePool.MAX_KEPT_BYTES) return false;
    let list = this.bySize.get(size);
    if (!list) this.bySize.set(size, (list = []));
    list.push(buf);
    this.count++;
    this.bytes += size * 4;
    return true;
  }
  /** Releases every kept storage. */
  drain(release: (buf: Buf) => void): void {
    for (const list of this.bySize.values()) for (const b of list) release(b);
    this.bySize.clear();
    this.count = 0;
    this.bytes = 0;
  }
}

export class NativeBackend implements Backend {
  readonly floatType = 'float32';
  readonly async = true;
  readonly k: Kernels;
  private readonly pool = new StoragePool();
  constructor(
    readonly name: string,
    private readonly a: NativeAddon,
  ) {
    const k: Record<string, (...args: unknown[]) => void> = {};
    a.kernels.forEach((kernel, index) => {
      k[kernel] = a.run.bind(a, index) as (...args: unknown[]) => void;
    });
    this.k = k as unknown as Kernels;
  }
  alloc(dtype: DType, size: number, zero = true): Buf {
    // not for zeros: a fill is a kernel, skipped while a failure is pending, and the zeros would be another tensor's data
    if (dtype !== 'int32' && !zero) {
      const kept = this.pool.take(size);
      if (kept) return kept;
    }
    return this.a.alloc(dtype === 'int32' ? 1 : 0, size, zero, true);
  }
  fromHost(data: HostArray): Buf {
    return this.a.fromHost(data instanceof Float64Array ? Float32Array.from(data) : data, true);
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
  dispose(buf: Buf, floatElements?: number): void {
    if (floatElements !== undefined && this.pool.keep(buf, floatElements)) return;
    this.a.release(buf);
  }
  /** Frees the storages the pool keeps (memory() counts them as cached, not as live tensors). */
  releaseCached(): void {
    this.pool.drain((b) => this.a.release(b));
  }
  memory() {
    const m = this.a.memory();
    // a kept storage is cached, not in use (a device allocator counts it in use: moved across; the CPU reports none)
    const inUse = m.deviceBytesInUse >= this.pool.bytes ? m.deviceBytesInUse - this.pool.bytes : m.deviceBytesInUse;
    return { ...m, tensors: m.tensors - this.pool.count, bytes: m.bytes - this.pool.bytes, deviceBytesInUse: inUse, deviceBytesCached: m.deviceBytesCached + this.pool.bytes };
  }
  setMatmulPrecision(precision: ProductPrecision): void {
    this.a.setMatmulPrecision(precision);
  }
  broadcast(table: unknown, bufs: Buf[], root: number, shape: readonly number[]): QueuedCollective {
    const handle = this.a.broadcastStart(table, bufs, root, shape);
    return { handle, wait: () => this.a.allReduceWait(handle), times: () => this.a.allReduceTimes(handle) };
  }
  deviceCollectivesId(): Uint8Array {
    return this.a.deviceCollectivesId();
  }
  deviceCollectivesInit(id: Uint8Array, rank: number, size: number): void {
    this.a.deviceCollectivesInit(id, rank, size);
  }
  allReduce(table: unknown, bufs: Buf[], mean: boolean, shape: readonly number[], after?: QueuedCollective): QueuedCollective {
    const handle = this.a.allReduceStart(table, bufs, mean, shape, after?.handle);
    return { handle, wait: () => this.a.allReduceWait(handle), times: () => this.a.allReduceTimes(handle) };
  }
  info(): BackendInfo {
    const { available: _available, reason: _reason, ...detail } = this.a.info();
    return { name: this.name, available: true, detail: { ...detail, napiVersion: this.a.napiVersion } };
  }
}
