// The tolerance policy and the random data the kernel checks use, shared by lib/check/ and the tests.

/**
 * Tolerance policy (DESIGN.md, "Numerics"): normwise relative error ‖a − b‖ / max(‖a‖, ‖b‖) in float32,
 * 1e-5 for elementwise kernels, 1e-4 for reductions and matrix products; gradient checks in float64 to 1e-6.
 */
export const TOL = { elementwise: 1e-5, reduction: 1e-4, gradcheck: 1e-6 } as const;

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

/** n values uniform in [offset − scale, offset + scale), drawn from `r`. */
export function randomArray(n: number, r: () => number, scale = 1, offset = 0): Float32Array {
  return Float32Array.from({ length: n }, () => (2 * r() - 1) * scale + offset);
}
