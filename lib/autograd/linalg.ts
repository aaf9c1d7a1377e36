// Matrix products with their gradients: matmul with torch.matmul's rules (1-d vectors, 2-d matrices, batches with
// broadcast batch dimensions) on the GEMM and the batched GEMM, and linear (x·Wᵀ + b) on the fused kernels the
// Linear layer uses.
import { Tensor } from '../tensor.js';
import { alloc, broadcastShapes, checkFloat, fmt, sameShape, sumTo, toTensor, type TensorLike } from './core.js';
import { record } from './engine.js';
import { expand } from './shape.js';

/** out [M,N] = op(a)·op(b) (fresh), for 2-d a, b. */
function mm(a: Tensor, b: Tensor, M: number, N: number, K: number, ta: boolean, tb: boolean): Tensor {
  const out = alloc(a.backend, [M, N]);
  if (out.size === 0) return out;
  if (K === 0) a.backend.k.fill(out.buf, out.size, 0);
  else a.backend.k.matmul(out.buf, a.buf, b.buf, M, N, K, ta, tb, 1, 0);
  return out;
}
/** out [P,M,N] = op(a_p)·op(b_p); a stride 0 shares one a across the batch. */
function bmm(a: Tensor, b: Tensor, P: number, M: number, N: number, K: number, ta: boolean, tb: boolean, sa: number, sb: number): Tensor {
  const out = alloc(a.backend, [P, M, N]);
  if (out.size === 0) return out;
  if (K === 0) a.backend.k.fill(out.buf, out.size, 0);
  else a.backend.k.bmm(out.buf, a.buf, b.buf, P, M, N, K, ta, tb, sa, sb, 1, 0);
  return out;
}

/**
 * The matrix product with torch.matmul's rules: 1-d operands are a row (first) or a column (second) and lose that
 * dimension again; [..., M, K] · [K, N] is one product over every row; otherwise the leading (batch) dimensions
 * broadcast, [..., M, K] · [..., K, N] → [..., M, N]. A RangeError names both shapes when K differs.
 */
export function matmul(a: TensorLike, b: TensorLike): Tensor {
  const where = 'matmul';
  const x = toTensor(where, a, undefined, 'input'), y = toTensor(where, b, undefined, 'other');
  checkFloat(where, x, y);
  if (x.shape.length === 0 || y.shape.length === 0) throw new RangeError(`${where}: both arguments need at least 1 dimension, got ${fmt(x.shape)} and ${fmt(y.shape)}`);
  // vectors become matrices (a row for the first, a column for the second) and lose that dimension again
  const xv = x.shape.length === 1, yv = y.shape.length === 1;
  const X = xv ? x.reshape([1, x.shape[0]]) : x;
  const Y = yv ? y.reshape([y.shape[0], 1]) : y;
  const [M, K] = X.shape.slice(-2), [K2, N] = Y.shape.slice(-2);
  if (K !== K2) throw new RangeError(`${where}: shapes ${fmt(x.shape)} and ${fmt(y.shape)} cannot be multiplied (${K} vs ${K2} in the inner dimension)`);
  let out: Tensor;
  if (Y.shape.length === 2) {
    // [..., M, K] · [K, N]: one product over every row of X
    const rows = X.size / Math.max(K, 1) || X.shape.slice(0, -1).reduce((p, d) => p * d, 1);
    const X2 = X.reshape([rows, K]);
    const o = mm(X2, Y, rows, N, K, false, false);
    record(where, [X2, Y], [o], [X2, Y], ([g], [p, q]) => (g ? [mm(g, q, rows, K, N, false, true), mm(p, g, K, N, rows, true, false)] : [null, null]));
    out = o.reshape([...X.shape.slice(0, -1), N]);
  } else {
    const batch = broadcastShapes(where, X.shape.slice(0, -2), Y.shape.slice(0, -2));
    const P = batch.reduce((p, d) => p * d, 1);
    // an operand with a single matrix is shared across the batch (stride 0); others are expanded to the batch
    const one = (s: readonly number[]) => s.slice(0, -2).every((d) => d === 1);
    const sx = one(X.shape), sy = one(Y.shape);
    const X3 = (sx ? X : sameShape(X.shape.slice(0, -2), batch) ? X : expand(X, [...batch, M, K])).reshape([sx ? 1 : P, M, K]);
    const Y3 = (sy ? Y : sameShape(Y.shape.slice(0, -2), batch) ? Y : expand(Y, [...batch, K, N])).reshape([sy ? 1 : P, K, N]);
    const o = bmm(X3, Y3, P, M, N, K, false, false, sx ? 0 : M * K, sy ? 0 : K * N);
    record(where, [X3, Y3], [o], [X3, Y3], ([g], [p, q]) => {
      if (!g) return [null, null];
      const gx = bmm(g, q, P, M, K, N, false, true, M * N, sy ? 0 : K * N);
      const gy = bmm(p, g, P, K, N, M, true, false, sx ? 0 : M * K, M * N);
      const fold = (t: Tensor, shared: boolean, shape: number[]) => {
        if (!shared) return t;
        const s = sumTo(t, shape);
        if (s !== t) t.dispose();
        return s;
      };
      return [fold(gx, sx, [1, M, K]), fold(gy, sy, [1, K, N])];
    });
    out = o.reshape([...batch, M, N]);
  }
  if (xv && yv) return out.reshape([]);
  if (xv) return out.reshape([...out.shape.slice(0, -2), N]);
  if (yv) return out.reshape(out.shape.slice(0, -1));
  return out;
}

/** x·Wᵀ + b for x [..., in], weight [out, in], bias [out] (optional): the Linear layer's fused kernels. */
export function linear(x: TensorLike, weight: TensorLike, bias?: TensorLike | null): Tensor {
  const where = 'linear';
  const t = toTensor(where, x, undefined, 'input'), w = toTensor(where, weight, undefined, 'weight');
  const b = bias == null ? null : toTensor(where, bias, undefined, 'bias');
  checkFloat(where, t, w, ...(b ? [b] : []));
  if (w.shape.length !== 2) throw new RangeError(`${where}: weight must be [out, in], got ${fmt(w.shape)}`);
  const [OC, C] = w.shape;
  if (t.shape.length === 0 || t.shape[t.shape.length - 1] !== C)
    throw new RangeError(`${where}: input has ${t.shape.length ? t.shape[t.shape.length - 1] : 'no'} features (shape ${fmt(t.shape)}), expected ${C}`);
  if (b && (b.shape.length !== 1 || b.shape[0] !== OC)) throw new RangeError(`${where}: bias must be [${OC}], got ${fmt(b.shape)}`);
  const B = t.size / Math.max(C, 1) || t.shape.slice(0, -1).reduce((p, d) => p * d, 1);
  const out = alloc(t.backend, [...t.shape.slice(0, -1), OC]);
  if (out.size) t.backend.k.linear_forward(out.buf, t.buf, w.buf, b?.buf ?? null, B, C, OC, 0, 0);
  const inputs = b ? [t, w, b] : [t, w];
  record(where, inputs, [out], [t, w], ([g], [xx, ww]) => {
    if (!g) return inputs.map(() => null);
    const dx = alloc(g.backend, xx.shape), dw = alloc(g.backend, ww.shape), db = b ? alloc(g.backend, [OC]) : null;
    if (B * C * OC > 0) g.backend.k.linear_backward(dx.buf, dw.buf, db?.buf ?? null, g.buf, xx.buf, ww.buf, B, C, OC, false);
    else for (const z of [dx, dw, db]) if (z && z.size) g.backend.k.fill(z.buf, z.size, 0);
    return b ? [dx, dw, db] : [dx, dw];
  });
  return out;
}
