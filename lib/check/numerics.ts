// The tolerance policy and the random data the kernel checks use, shared by lib/check/ and the tests.

/**
 * Tolerance policy (DESIGN.md, "Numerics"), in float32, each bound a few times what the native CPU backend achieves
 * against the reference (the kernel table of lib/check/kernels.ts over several seeds, and the PyTorch golden values;
 * measured maxima in brackets):
 * - elementwise kernels (activations and their gradients, axpy, clipping): 1e-6 [3.0e-7, gelu_backward];
 * - optimizer updates (one pass, but a sqrt, a division and bias corrections per element): 1e-5 [3.8e-6, Adamax];
 * - reductions and matrix products: 2e-5. The CPU reaches 2.1e-6 at worst (matmul with K = 8191; every other
 *   reduction ≤ 9e-7), and the bound stays about 10× above that on purpose: the CUDA backend's exact float32 GEMM
 *   sums K in another order (tiles, split-K), which moves the rounding by as much again in either direction (its
 *   other reductions accumulate in double). TF32 is opt-in and not held to these bounds.
 * - trajectories (N training steps, native against the reference): 1e-4 [1.3e-5]; step to step the rounding
 *   differences of every kernel compound.
 * - gradient checks in float64: 1e-6.
 * Each array is judged twice (`compare`): normwise, ‖a − b‖ / max(‖a‖, ‖b‖) ≤ tol, and per element as numpy's
 * allclose, |aᵢ − bᵢ| ≤ atol + rtol·|bᵢ| with rtol = ELEMENT_FACTOR·tol and atol = rtol·RMS(b) (outputs come in any
 * scale). The normwise bound alone lets one element of n drift by about tol·√n of its size (1% of one element of a
 * 512×512 product at 2e-5); the per-element bound does not.
 */
export const TOL = { elementwise: 1e-6, update: 1e-5, reduction: 2e-5, trajectory: 1e-4, gradcheck: 1e-6 } as const;

/**
 * The per-element bound over the normwise one. Measured worst elements (elementError): 3.4e-7 elementwise
 * (gelu_backward), 1.9e-6 updates (Adamax), 4.9e-6 reductions (layernorm_forward, a row of 3 that cancels).
 */
export const ELEMENT_FACTOR = 2;

/** ‖a − b‖ / max(‖a‖, ‖b‖); Infinity when the lengths differ or only one side has a NaN at some index. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 0): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    if (Number.isNaN(d) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return Infinity;
    if (!Number.isNaN(d)) diff += d * d;
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const scale = Math.max(Math.sqrt(na), Math.sqrt(nb), floor);
  return scale === 0 ? Math.sqrt(diff) : Math.sqrt(diff) / scale;
}

/**
 * The worst element's error against the reference b: max over i of |aᵢ − bᵢ| / (|bᵢ| + s), with s the RMS of b (or
 * floor / √n when that is larger, as relError's floor). Equal values (NaN with NaN, an infinity with itself) count
 * as exact; Infinity when the lengths differ or only one side is NaN or infinite somewhere. `index`: that element.
 */
export function elementError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 0): { error: number; index: number } {
  if (a.length !== b.length) return { error: Infinity, index: -1 };
  const n = b.length;
  let sum = 0;
  for (let i = 0; i < n; i++) if (Number.isFinite(b[i])) sum += b[i] * b[i];
  const s = Math.max(Math.sqrt(sum / Math.max(n, 1)), floor / Math.sqrt(Math.max(n, 1)));
  let error = 0, index = -1;
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i] || (Number.isNaN(a[i]) && Number.isNaN(b[i]))) continue;
    const d = Math.abs(a[i] - b[i]);
    const e = Number.isFinite(d) ? (d === 0 ? 0 : s + Math.abs(b[i]) === 0 ? Infinity : d / (s + Math.abs(b[i]))) : Infinity;
    if (e > error) {
      error = e;
      index = i;
    }
  }
  return { error, index };
}

/** Both bounds of the policy for one array a against its reference b; `ok` when both hold. */
export interface Comparison {
  ok: boolean;
  /** relError(a, b, floor), bounded by tol. */
  error: number;
  /** elementError(a, b, floor).error, bounded by ELEMENT_FACTOR · tol; `index` the worst element. */
  elementError: number;
  index: number;
  tol: number;
}

export function compare(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, floor = 0): Comparison {
  const error = relError(a, b, floor);
  const el = elementError(a, b, floor);
  return { ok: error <= tol && el.error <= ELEMENT_FACTOR * tol, error, elementError: el.error, index: el.index, tol };
}

/** A failed comparison in one line: both errors against their bounds, and the worst element's two values. */
export function describeComparison(c: Comparison, a: ArrayLike<number>, b: ArrayLike<number>): string {
  const num = (x: number) => (x === 0 ? '0' : x.toExponential(2));
  const at = c.index >= 0 ? `; worst element [${c.index}]: ${a[c.index]} against ${b[c.index]}` : '';
  return `normwise relative error ${num(c.error)} (bound ${num(c.tol)}), per-element ${num(c.elementError)} (bound ${num(ELEMENT_FACTOR * c.tol)})${at}`;
}

/** n values uniform in [offset − scale, offset + scale), drawn from `r`. */
export function randomArray(n: number, r: () => number, scale = 1, offset = 0): Float32Array {
  return Float32Array.from({ length: n }, () => (2 * r() - 1) * scale + offset);
}
