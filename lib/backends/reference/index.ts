// The reference backend: the kernel contract in plain TypeScript, on the main thread, synchronous. It is
// the oracle the native backends are tested against; a float64 instance serves the gradient checks.
import type { Backend, BackendInfo, Buf, DType, HostArray, Kernels } from '../../backend.js';
import * as activations from './activations.js';
import * as attention from './attention.js';
import * as conv from './conv.js';
import * as linear from './linear.js';
import * as losses from './losses.js';
import * as optim from './optim.js';
import * as ops from './ops.js';
import * as recurrent from './recurrent.js';
import * as sequence from './sequence.js';
import * as tensorOps from './tensor_ops.js';

const { erf: _erf, ...activationKernels } = activations;
const { fmix32: _fmix32, ...tensorKernels } = tensorOps;
const { ewValue: _ewValue, ewReadsB: _ewReadsB, ewReadsC: _ewReadsC, ...opKernels } = ops;

/** A buffer as a reference kernel receives it: a typed array (an intersection, so that a kernel declared on
 * Float32Array | Float64Array or on Int32Array accepts it). */
type HostBuf = Float32Array & Float64Array & Int32Array;
/** A kernel of the contract with its buffers on the host: an optional buffer may be null, sizes and flags as they are. */
type OnHost<T> = T extends (...args: infer A) => void
  ? (...args: { [I in keyof A]: A[I] extends Buf ? HostBuf : A[I] extends Buf | null ? HostBuf | null : A[I] }) => void
  : never;

/** The reference kernels: every one of the contract, each with the contract's arguments (checked by `satisfies`:
 * a kernel missing, taking an argument more or fewer, a number where the contract has a buffer, or refusing the null an
 * optional buffer may be, does not compile). */
export const referenceKernels = {
  ...linear,
  ...activationKernels,
  ...losses,
  ...optim,
  ...tensorKernels,
  ...conv,
  ...sequence,
  ...recurrent,
  ...attention,
  ...opKernels,
} satisfies { [K in keyof Kernels]: OnHost<Kernels[K]> };

type FloatArray = Float32Array | Float64Array;

let liveTensors = 0;
let liveBytes = 0;
const finalizer = new FinalizationRegistry<number>((bytes) => {
  liveTensors--;
  liveBytes -= bytes;
});

class ReferenceBackend implements Backend {
  readonly k = referenceKernels as unknown as Kernels;
  readonly async = false;
  private readonly disposed = new WeakSet<object>();
  constructor(
    readonly name: string,
    readonly floatType: 'float32' | 'float64',
  ) {}

  private track<T extends HostArray>(a: T): T {
    liveTensors++;
    liveBytes += a.byteLength;
    finalizer.register(a, a.byteLength, a);
    return a;
  }
  private floatArray(size: number): FloatArray {
    return this.floatType === 'float64' ? new Float64Array(size) : new Float32Array(size);
  }
  alloc(dtype: DType, size: number): Buf {
    return this.track(dtype === 'int32' ? new Int32Array(size) : this.floatArray(size)) as unknown as Buf;
  }
  fromHost(data: HostArray): Buf {
    const copy = data instanceof Int32Array ? Int32Array.from(data) : this.floatArray(data.length);
    if (!(data instanceof Int32Array)) copy.set(data);
    return this.track(copy) as unknown as Buf;
  }
  write(buf: Buf, data: HostArray): void {
    (buf as unknown as HostArray).set(data);
  }
  read(buf: Buf): HostArray {
    const a = buf as unknown as HostArray;
    return a.slice();
  }
  async readAsync(buf: Buf): Promise<HostArray> {
    return this.read(buf);
  }
  sync(): void {}
  async syncAsync(): Promise<void> {}
  dispose(buf: Buf): void {
    const a = buf as unknown as HostArray;
    if (this.disposed.has(a)) return;
    this.disposed.add(a);
    finalizer.unregister(a);
    liveTensors--;
    liveBytes -= a.byteLength;
  }
  memory() {
    return { tensors: liveTensors, bytes: liveBytes };
  }
  info(): BackendInfo {
    return { name: this.name, available: true, detail: { language: 'TypeScript', threads: 1, float: this.floatType } };
  }
}

export const referenceBackend: Backend = new ReferenceBackend('reference', 'float32');
/** float64 twin of the reference backend, for gradient checks by central differences. */
export const reference64Backend: Backend = new ReferenceBackend('reference64', 'float64');
