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

/** A permutation of 0…n−1: Fisher–Yates with mulberry32(seed) (the order trainTestSplit shuffles rows in). */
export function permutation(n: number, seed: number): Int32Array {
  checkNumber('permutation', 'n', n, { min: 0, integer: true });
  const rand = mulberry32(seed);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** Rows order[from … from + count) of `src`, a row-major array of `cols` values per row, as a new array of its type
 * (a mini-batch in a shuffled order). */
export function takeRows<T extends Float32Array | Int32Array>(src: T, cols: number, order: ArrayLike<number>, from: number, count: number): T {
  const out = new (src.constructor as new (len: number) => T)(count * cols);
  for (let r = 0; r < count; r++) out.set(src.subarray(order[from + r] * cols, (order[from + r] + 1) * cols), r * cols);
  return out;
}

/** A train/test split of row-major data. */
export interface Split<X extends Float32Array | Int32Array, Y extends Float32Array | Int32Array> {
  /** The training rows of x. */
  xTrain: X;
  /** Their targets. */
  yTrain: Y;
  /** The test rows of x. */
  xTest: X;
  /** Their targets. */
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
  const order = permutation(n, seed);
  const xCols = x.length / n, yCols = y.length / n;
  return {
    xTrain: takeRows(x, xCols, order, 0, trainSize),
    yTrain: takeRows(y, yCols, order, 0, trainSize),
    xTest: takeRows(x, xCols, order, trainSize, testSize),
    yTest: takeRows(y, yCols, order, trainSize, testSize),
  };
}
