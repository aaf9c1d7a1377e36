// Elementwise operations with their gradients: arithmetic with NumPy broadcasting (a plain number is a scalar),
// the unary functions, comparisons (float 0/1 masks, no gradient), where and maskedFill. Each forward is one call
// of the elementwise kernel; each backward a few more, and a sum over the broadcast dimensions.
import { describe } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { broadcastShapes, checkFloat, EW, ewKernel, ewOp, ewOpByShape, fmt, sameShape, scalarLike, sumTo, toTensor, type TensorLike } from './core.js';

const k = ewKernel;

/** g · v, broadcast, reduced to `shape`. */
function mulTo(where: string, g: Tensor, v: Tensor, shape: readonly number[]): Tensor {
  const t = k(where, EW.mul, [g, v]);
  const r = sumTo(t, shape);
  if (r !== t) t.dispose();
  return r;
}
function reduceTo(g: Tensor, shape: readonly number[]): Tensor {
  return sumTo(g, shape);
}

/** The two operands of a binary op: at least one tensor; a number becomes a scalar beside it. */
function operands(where: string, a: TensorLike, b: TensorLike): [Tensor, Tensor] {
  if (typeof a === 'number' && typeof b === 'number') throw new TypeError(`${where}: at least one operand must be a Tensor, got two numbers`);
  const ta = typeof a === 'number' ? undefined : toTensor(where, a, undefined, 'input');
  const tb = typeof b === 'number' ? undefined : toTensor(where, b, undefined, 'other');
  return [ta ?? scalarLike(tb!, a as number), tb ?? scalarLike(ta!, b as number)];
}

/** a + alpha·b elementwise with broadcasting (either may be a number), as torch.add. */
export function add(a: TensorLike, b: TensorLike, alpha = 1): Tensor {
  const where = 'add';
  if (typeof b === 'number' && typeof a !== 'number') {
    const x = toTensor(where, a);
    return ewOpByShape(where, EW.affine, [x], 1, b * alpha, (g) => [g]);
  }
  const [x, y] = operands(where, a, b);
  const xs = x.shape, ys = y.shape;
  if (alpha !== 1) return ewOpByShape(where, EW.axpby, [x, y], 1, alpha, (g) => [reduceTo(g, xs), scaleTo(g, alpha, ys)]);
  return ewOpByShape(where, EW.add, [x, y], 0, 0, (g) => [reduceTo(g, xs), reduceTo(g, ys)]);
}

function scaleTo(g: Tensor, alpha: number, shape: readonly number[]): Tensor {
  const t = k('grad', EW.affine, [g], alpha, 0);
  const r = sumTo(t, shape);
  if (r !== t) t.dispose();
  return r;
}

/** a − alpha·b elementwise with broadcasting (either may be a number), as torch.sub. */
export function sub(a: TensorLike, b: TensorLike, alpha = 1): Tensor {
  const where = 'sub';
  if (typeof b === 'number' && typeof a !== 'number') {
    const x = toTensor(where, a);
    return ewOpByShape(where, EW.affine, [x], 1, -b * alpha, (g) => [g]);
  }
  if (typeof a === 'number' && typeof b !== 'number') {
    const y = toTensor(where, b);
    const ys = y.shape;
    return ewOpByShape(where, EW.affine, [y], -alpha, a, (g) => [scaleTo(g, -alpha, ys)]);
  }
  const [x, y] = operands(where, a, b);
  const xs = x.shape, ys = y.shape;
  return ewOpByShape(where, EW.axpby, [x, y], 1, -alpha, (g) => [reduceTo(g, xs), scaleTo(g, -alpha, ys)]);
}

/** Elementwise product with broadcasting (either may be a number), as torch.mul. */
export function mul(a: TensorLike, b: TensorLike): Tensor {
  const where = 'mul';
  if (typeof b === 'number' || typeof a === 'number') {
    const s = (typeof b === 'number' ? b : a) as number;
    const x = toTensor(where, typeof b === 'number' ? a : b);
    const xs = x.shape;
    return ewOpByShape(where, EW.affine, [x], s, 0, (g) => [scaleTo(g, s, xs)]);
  }
  const [x, y] = operands(where, a, b);
  return ewOp(where, EW.mul, [x, y], 0, 0, (g, [p, q]) => [mulTo(where, g, q, p.shape), mulTo(where, g, p, q.shape)]);
}

/** Elementwise quotient a / b with broadcasting (either may be a number), as torch.div. */
export function div(a: TensorLike, b: TensorLike): Tensor {
  const where = 'div';
  const [x, y] = operands(where, a, b);
  return ewOp(where, EW.div, [x, y], 0, 0, (g, [p, q], out) => {
    const gq = k(where, EW.div, [g, q]);
    const ga = sumTo(gq, p.shape);
    // d(a/b)/db = −(a/b)/b
    const t = k(where, EW.mul, [gq, out]);
    const gb = scaleTo(t, -1, q.shape);
    if (ga !== gq) gq.dispose();
    t.dispose();
    return [ga, gb];
  }, true);
}

/** a raised to b elementwise with broadcasting, as torch.pow; JavaScript's Math.pow at NaN and ±1 to ±∞ (NaN where PyTorch gives 1). */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  const where = 'pow';
  if (typeof b === 'number' && typeof a !== 'number') {
    const x = toTensor(where, a);
    return ewOp(where, EW.powScalar, [x], b, 0, (g, [p]) => {
      // b · a^(b−1); b = 0 gives 0 (PyTorch's)
      if (b === 0) return [k(where, EW.affine, [g], 0, 0)];
      const d = k(where, EW.powScalar, [p], b - 1, 0);
      const gd = k(where, EW.mul, [g, d]);
      const r = k(where, EW.affine, [gd], b, 0);
      d.dispose();
      gd.dispose();
      return [r];
    });
  }
  const [x, y] = operands(where, a, b);
  return ewOp(where, EW.pow, [x, y], 0, 0, (g, [p, q], out) => {
    // da = g · b · a^(b−1); db = g · a^b · log a, 0 where a = 0 and b ≥ 0 (PyTorch's)
    const bm1 = k(where, EW.affine, [q], 1, -1);
    const pw = k(where, EW.pow, [p, bm1]);
    const da = k(where, EW.mul, [pw, q]);
    const ga = mulTo(where, g, da, p.shape);
    const lg = k(where, EW.log, [p]);
    const term = k(where, EW.mul, [out, lg]);
    const zero = k(where, EW.eq, [p, scalarLike(p, 0)]);
    const nonneg = k(where, EW.ge, [q, scalarLike(q, 0)]);
    const mask = k(where, EW.mul, [zero, nonneg]);
    const safe = k(where, EW.maskedFill, [term, mask], 0);
    const gb = mulTo(where, g, safe, q.shape);
    for (const t of [bm1, pw, da, lg, term, zero, nonneg, mask, safe]) t.dispose();
    return [ga, gb];
  }, true);
}

/** A unary op whose gradient is g · d(x) for d computed from the input (or, with fromOutput, the output). */
function unary(where: string, op: number, x: TensorLike, derivative: ((x: Tensor, out: Tensor) => Tensor) | null, alpha = 0, beta = 0, fromOutput = false): Tensor {
  const t = toTensor(where, x);
  if (!derivative) return ewOp(where, op, [t], alpha, beta, null);
  return ewOp(where, op, [t], alpha, beta, (g, [p], out) => {
    const d = derivative(p, out);
    const r = k(where, EW.mul, [g, d]);
    d.dispose();
    return [r];
  }, fromOutput);
}

/** −x elementwise. */
export const neg = (x: TensorLike) => unary('neg', EW.neg, x, (p) => k('neg', EW.affine, [p], 0, -1));
/** e^x elementwise. */
export const exp = (x: TensorLike) => unaryGrad('exp', EW.exp, x, EW.mul, true);
/** The natural logarithm elementwise. */
export const log = (x: TensorLike) => unary('log', EW.log, x, (p) => k('log', EW.reciprocal, [p]));
/** log(1 + x) elementwise, exact for small x. */
export const log1p = (x: TensorLike) => unary('log1p', EW.log1p, x, (p) => {
  const t = k('log1p', EW.affine, [p], 1, 1);
  const r = k('log1p', EW.reciprocal, [t]);
  t.dispose();
  return r;
});
/** The square root elementwise. */
export const sqrt = (x: TensorLike) => unary('sqrt', EW.sqrt, x, (_, out) => {
  // ½ / out
  const r = k('sqrt', EW.reciprocal, [out]);
  const h = k('sqrt', EW.affine, [r], 0.5, 0);
  r.dispose();
  return h;
}, 0, 0, true);
/** 1 / √x elementwise. */
export const rsqrt = (x: TensorLike) => unary('rsqrt', EW.rsqrt, x, (_, out) => {
  // −½ · out³
  const c = k('rsqrt', EW.powScalar, [out], 3, 0);
  const r = k('rsqrt', EW.affine, [c], -0.5, 0);
  c.dispose();
  return r;
}, 0, 0, true);
/** |x| elementwise; the gradient is sign(x) (0 at 0, as PyTorch). */
export const abs = (x: TensorLike) => unary('abs', EW.abs, x, (p) => k('abs', EW.sign, [p]));
/** −1, 0 or 1 by the sign of x, elementwise; its gradient is 0. */
export const sign = (x: TensorLike) => unary('sign', EW.sign, x, (p) => k('sign', EW.affine, [p], 0, 0));
/** The sine elementwise. */
export const sin = (x: TensorLike) => unary('sin', EW.sin, x, (p) => k('sin', EW.cos, [p]));
/** The cosine elementwise. */
export const cos = (x: TensorLike) => unary('cos', EW.cos, x, (p) => {
  const s = k('cos', EW.sin, [p]);
  const r = k('cos', EW.neg, [s]);
  s.dispose();
  return r;
});
/** A unary op whose gradient is one kernel of (g, saved) — the saved tensor its input or, with fromOutput, its output. */
function unaryGrad(where: string, op: number, x: TensorLike, gradOp: number, fromOutput: boolean, alpha = 0): Tensor {
  const t = toTensor(where, x);
  return ewOp(where, op, [t], alpha, 0, (g, [p], out) => [k(where, gradOp, [g, fromOutput ? out : p], alpha)], fromOutput);
}
/** The hyperbolic tangent elementwise. */
export const tanh = (x: TensorLike) => unaryGrad('tanh', EW.tanh, x, EW.tanhGrad, true);
/** 1 / (1 + e^−x) elementwise. */
export const sigmoid = (x: TensorLike) => unaryGrad('sigmoid', EW.sigmoid, x, EW.sigmoidGrad, true);
/** max(x, 0) elementwise (NaN stays NaN). */
export const relu = (x: TensorLike) => unaryGrad('relu', EW.relu, x, EW.reluGrad, false);
/** GELU elementwise, exact erf form x·Φ(x) (PyTorch's approximate='none'). */
export const gelu = (x: TensorLike) => unary('gelu', EW.gelu, x, (p) => k('gelu', EW.geluGrad, [p]));
/** x where x > 0, else negativeSlope·x (default 0.01), elementwise. */
export function leakyRelu(x: TensorLike, negativeSlope = 0.01): Tensor {
  if (typeof negativeSlope !== 'number') throw new TypeError(`leakyRelu: negativeSlope must be a number, got ${describe(negativeSlope)}`);
  return unaryGrad('leakyRelu', EW.leakyRelu, x, EW.leakyReluGrad, false, negativeSlope);
}
/** log(1 + e^(beta·x)) / beta, x itself where beta·x > threshold (PyTorch's softplus). */
export function softplus(x: TensorLike, beta = 1, threshold = 20): Tensor {
  return unary('softplus', EW.softplus, x, (p) => {
    // sigmoid(beta·x), 1 past the threshold
    const bx = k('softplus', EW.affine, [p], beta, 0);
    const s = k('softplus', EW.sigmoid, [bx]);
    const over = k('softplus', EW.gt, [bx, scalarLike(p, threshold)]);
    const r = k('softplus', EW.maskedFill, [s, over], 1);
    for (const t of [bx, s, over]) t.dispose();
    return r;
  }, beta, threshold);
}
/** min(max(x, min), max); either bound may be omitted (null or undefined). NaN stays NaN. */
export function clamp(x: TensorLike, min?: number | null, max?: number | null): Tensor {
  const where = 'clamp';
  if (min != null && typeof min !== 'number') throw new TypeError(`${where}: min must be a number, got ${describe(min)}`);
  if (max != null && typeof max !== 'number') throw new TypeError(`${where}: max must be a number, got ${describe(max)}`);
  if (min == null && max == null) throw new TypeError(`${where}: at least one of min and max must be given`);
  const lo = min ?? -Infinity, hi = max ?? Infinity;
  return unary(where, EW.clamp, x, (p) => {
    // the gradient passes where lo ≤ x ≤ hi (PyTorch's)
    const a = k(where, EW.ge, [p, scalarLike(p, lo)]);
    const b = k(where, EW.le, [p, scalarLike(p, hi)]);
    const r = k(where, EW.mul, [a, b]);
    a.dispose();
    b.dispose();
    return r;
  }, lo, hi);
}
/** x² elementwise. */
export const square = (x: TensorLike) => unary('square', EW.square, x, (p) => k('square', EW.affine, [p], 2, 0));
/** 1 / x elementwise. */
export const reciprocal = (x: TensorLike) => unary('reciprocal', EW.reciprocal, x, (_, out) => {
  const sq = k('reciprocal', EW.square, [out]);
  const r = k('reciprocal', EW.neg, [sq]);
  sq.dispose();
  return r;
}, 0, 0, true);

/** max(a, b) elementwise; at ties the gradient is split evenly (PyTorch's); NaN if either is NaN. */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  return extremum('maximum', EW.maximum, EW.ge, a, b);
}
/** min(a, b) elementwise with broadcasting; at ties the gradient is split evenly; NaN if either is NaN. */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  return extremum('minimum', EW.minimum, EW.le, a, b);
}
function extremum(where: string, op: number, wins: number, a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(where, a, b);
  return ewOp(where, op, [x, y], 0, 0, (g, [p, q]) => {
    const eq = k(where, EW.eq, [p, q]);
    const half = k(where, EW.affine, [eq], 1, 1); // 2 at ties, 1 elsewhere
    const wa = k(where, wins, [p, q]);
    const wb = k(where, wins, [q, p]);
    const fa = k(where, EW.div, [wa, half]);
    const fb = k(where, EW.div, [wb, half]);
    const r = [mulTo(where, g, fa, p.shape), mulTo(where, g, fb, q.shape)];
    for (const t of [eq, half, wa, wb, fa, fb]) t.dispose();
    return r;
  });
}

function comparison(where: string, op: number, a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(where, a, b);
  checkFloat(where, x, y);
  return ewKernel(where, op, [x, y]);
}
/** a = b elementwise with broadcasting, as a float 0/1 mask (no gradient). */
export const eq = (a: TensorLike, b: TensorLike) => comparison('eq', EW.eq, a, b);
/** a ≠ b elementwise with broadcasting, as a float 0/1 mask (no gradient). */
export const ne = (a: TensorLike, b: TensorLike) => comparison('ne', EW.ne, a, b);
/** a < b elementwise with broadcasting, as a float 0/1 mask (no gradient). */
export const lt = (a: TensorLike, b: TensorLike) => comparison('lt', EW.lt, a, b);
/** a ≤ b elementwise with broadcasting, as a float 0/1 mask (no gradient). */
export const le = (a: TensorLike, b: TensorLike) => comparison('le', EW.le, a, b);
/** a > b elementwise with broadcasting, as a float 0/1 mask (no gradient). */
export const gt = (a: TensorLike, b: TensorLike) => comparison('gt', EW.gt, a, b);
/** a ≥ b elementwise with broadcasting, as a float 0/1 mask (no gradient). */
export const ge = (a: TensorLike, b: TensorLike) => comparison('ge', EW.ge, a, b);

/** condition ≠ 0 ? a : b, all three broadcast together (the condition a float 0/1 mask, as comparisons give). */
export function where(condition: TensorLike, a: TensorLike, b: TensorLike): Tensor {
  const w = 'where';
  const c = toTensor(w, condition, undefined, 'condition');
  const x = toTensor(w, a, c, 'input'), y = toTensor(w, b, c, 'other');
  checkFloat(w, c, x, y);
  return ewOp(w, EW.where, [c, x, y], 0, 0, (g, [cc, p, q]) => {
    const zero = scalarLike(g, 0);
    const ga = k(w, EW.where, [cc, g, zero]);
    const gb = k(w, EW.where, [cc, zero, g]);
    const ra = sumTo(ga, p.shape), rb = sumTo(gb, q.shape);
    if (ra !== ga) ga.dispose();
    if (rb !== gb) gb.dispose();
    zero.dispose();
    return [null, ra, rb];
  });
}

/** x with `value` where mask ≠ 0 (mask broadcast to x's shape). */
export function maskedFill(x: TensorLike, mask: TensorLike, value: number): Tensor {
  const w = 'maskedFill';
  const t = toTensor(w, x), m = toTensor(w, mask, t, 'mask');
  if (typeof value !== 'number') throw new TypeError(`${w}: value must be a number, got ${describe(value)}`);
  checkFloat(w, t, m);
  if (!sameShape(broadcastShapes(w, t.shape, m.shape), t.shape))
    throw new RangeError(`${w}: mask of shape ${fmt(m.shape)} does not broadcast to the input's shape ${fmt(t.shape)}`);
  return ewOp(w, EW.maskedFill, [t, m], value, 0, (g, [, mm]) => [k(w, EW.maskedFill, [g, mm], 0), null]);
}
