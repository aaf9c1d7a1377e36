// Seeded train/test splits of row-major data sets.
import { checkNumber } from '../errors.js';

/** A small seeded generator (mulberry32), separate from rg.manualSeed so a split never moves with it. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Split<X extends Float32Array | Int32Array, Y extends Float32Array | Int32Array> {
  xTrain: X;
  yTrain: Y;
  xTest: X;
  yTest: Y;
}

/**
 * Shuffles the rows of (x, y) with `seed` and puts the first `trainSize` in the training set, the next
 * `testSize` in the test set. x holds rows of x.length / n values; y rows of y.length / n.
 */
export function trainTestSplit<X extends Float32Array | Int32Array, Y extends Float32Array | Int32Array>(
  x: X, y: Y, n: number, trainSize: number, testSize: number, seed: number,
): Split<X, Y> {
  checkNumber('trainTestSplit', 'n', n, { min: 1, integer: true });
  checkNumber('trainTestSplit', 'trainSize', trainSize, { min: 0, integer: true });
  checkNumber('trainTestSplit', 'testSize', testSize, { min: 0, integer: true });
  // rows of a fractional length would shift every row after the first
  for (const [name, a] of [['x', x], ['y', y]] as const)
    if (a.length % n !== 0) throw new RangeError(`trainTestSplit: ${name} holds ${a.length} values, not a whole number of rows for n = ${n}`);
  if (trainSize + testSize > n) throw new RangeError(`trainTestSplit: ${trainSize} + ${testSize} rows requested, the data has ${n}`);
  const rand = mulberry32(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const xCols = x.length / n, yCols = y.length / n;
  const take = <T extends Float32Array | Int32Array>(src: T, cols: number, from: number, count: number): T => {
    const out = new (src.constructor as new (len: number) => T)(count * cols);
    for (let r = 0; r < count; r++) out.set(src.subarray(order[from + r] * cols, (order[from + r] + 1) * cols), r * cols);
    return out;
  };
  return {
    xTrain: take(x, xCols, 0, trainSize),
    yTrain: take(y, yCols, 0, trainSize),
    xTest: take(x, xCols, trainSize, testSize),
    yTest: take(y, yCols, trainSize, testSize),
  };
}
