// Shared by the application examples (gan, vae, translate, resnet, lora) and mirrored line for line by their PyTorch
// twins in examples/twins/common.py: whatever both sides must compute identically — the initial weights, the order
// of the training data, the noise — is computed here from integer arithmetic (mulberry32), so that a retrograd model
// and its twin start from the same weights and see the same batches, and their losses can be compared step by step.
// Also: the MNIST split and a PNG writer for grids of digits. (The data order is rg.permutation, a mini-batch
// rg.takeRows: re-exported here for the examples.)
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { mulberry32, permutation } from 'retrograd';
import { epochBar } from '../text.mjs';

/** FNV-1a of a string's UTF-16 code units, as an unsigned 32-bit integer: a parameter's name → its seed. */
export function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * The value every entry of a state dict starts from, by its name and shape: running means 0, running variances 1,
 * batch counters 0, 1-d weights (normalisation scales) 1, 1-d biases 0, every other tensor uniform in ±1/√fanIn with
 * fanIn the product of its dimensions after the first (PyTorch's default bound for Linear, Conv2d, ConvTranspose2d),
 * drawn from mulberry32(fnv1a(name) ^ seed) in row-major order.
 */
export function initialValue(name, shape, seed) {
  const n = shape.reduce((a, d) => a * d, 1);
  const leaf = name.slice(name.lastIndexOf('.') + 1);
  if (leaf === 'running_var') return new Float32Array(n).fill(1);
  if (leaf === 'running_mean' || leaf === 'num_batches_tracked') return new Float32Array(n);
  if (shape.length === 1 && leaf.endsWith('weight')) return new Float32Array(n).fill(1);
  if (shape.length === 1) return new Float32Array(n);
  const fanIn = n / shape[0], bound = 1 / Math.sqrt(fanIn);
  const r = mulberry32((fnv1a(name) ^ seed) >>> 0);
  return Float32Array.from({ length: n }, () => (2 * r() - 1) * bound);
}

/** Sets every parameter and buffer of `model` to initialValue(name, shape, seed): the twin does the same. */
export function initDeterministic(rg, model, seed) {
  const sd = {};
  for (const [name, t] of Object.entries(model.stateDict())) {
    const v = initialValue(name, t.shape, seed);
    sd[name] = t.dtype === 'int32' ? Int32Array.from(v) : v;
  }
  model.loadStateDict(sd);
  return model;
}

/** n standard normal numbers from mulberry32(seed), by Box–Muller (pairs; u1 kept away from 0). */
export function normals(n, seed) {
  const r = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - r(), u2 = r();
    const m = Math.sqrt(-2 * Math.log(u1));
    out[i] = m * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** The main job's split of the MNIST digits (8,000 training, 2,000 test, seed 2024). */
export function digits(rg) {
  const s = rg.mnistSplit();
  return { xTrain: s.xTrain, yTrain: s.yTrain, xTest: s.xTest, yTest: s.yTest, nTrain: s.yTrain.length, nTest: s.yTest.length };
}

const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});
function crc32(bytes) {
  let c = -1;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** Writes an 8-bit greyscale PNG of `grey` (row-major, values in [0, 1]). */
export function writePng(path, grey, width, height) {
  const raw = Buffer.alloc(height * (width + 1)); // each row: filter type 0, then its bytes
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) raw[y * (width + 1) + 1 + x] = Math.round(255 * Math.min(1, Math.max(0, grey[y * width + x])));
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4), crc = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // greyscale
  writeFileSync(path, Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0)),
  ]));
}

/** A grid of `rows` × `cols` images of h × w (row-major in `images`, one after another), 2 pixels apart. */
export function writeImageGrid(path, images, rows, cols, h = 28, w = 28) {
  const gap = 2, W = cols * (w + gap) + gap, H = rows * (h + gap) + gap;
  const grid = new Float32Array(W * H).fill(0.25);
  for (let i = 0; i < Math.min(rows * cols, images.length / (h * w)); i++) {
    const r = Math.floor(i / cols), c = i % cols;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) grid[(gap + r * (h + gap) + y) * W + gap + c * (w + gap) + x] = images[i * h * w + y * w + x];
  }
  writePng(path, grid, W, H);
}

/**
 * The examples' training loop: `epochs` epochs of `steps` steps, the `n` training rows in a fresh order each epoch
 * (permutation(n, 100 + epoch), as the twins); `step(s, order, epoch)` runs step s and returns the loss the progress bar
 * shows (a number); `after(epoch, meanLoss)` reports the epoch.
 */
export function trainEpochs({ epochs, steps, n, step, after }) {
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = permutation(n, 100 + epoch);
    const bar = epochBar(`epoch ${epoch + 1}/${epochs}`, steps);
    let sum = 0;
    for (let s = 0; s < steps; s++) {
      sum += step(s, order, epoch);
      bar.update(s + 1, sum / (s + 1));
    }
    bar.stop();
    after(epoch, sum / steps);
  }
}

/**
 * k-means on the rows of `x` (n × dim, row-major), for the self-conditioned DCGAN: the centroids start at k rows drawn
 * by mulberry32(seed); each round assigns every row to its nearest centroid (squared distances |x|² − 2x·c + |c|² from
 * one product) and moves each centroid to the mean of its rows (a cluster left empty takes a random row again), until
 * no row changes cluster or `rounds` have run. Returns each row's cluster.
 */
export function kMeans(rg, x, n, dim, k, { seed = 11, rounds = 50 } = {}) {
  const r = mulberry32(seed);
  const randomRow = () => {
    const i = Math.floor(r() * n);
    return x.subarray(i * dim, (i + 1) * dim);
  };
  const centroids = new Float32Array(k * dim);
  for (let c = 0; c < k; c++) centroids.set(randomRow(), c * dim);
  const X = rg.tensor(x, [n, dim]);
  const xx = X.square().sum(1, { keepdim: true });
  let assign = new Int32Array(n).fill(-1);
  for (let round = 0; round < rounds; round++) {
    const C = rg.tensor(centroids, [k, dim]);
    const next = Int32Array.from(xx.sub(X.matmul(C.t()).mul(2)).add(C.square().sum(1).reshape([1, k])).argmin(1).toArray());
    if (next.every((a, i) => a === assign[i])) break;
    assign = next;
    const sums = new Float64Array(k * dim), counts = new Int32Array(k);
    for (let i = 0; i < n; i++) {
      const a = assign[i];
      counts[a]++;
      for (let j = 0; j < dim; j++) sums[a * dim + j] += x[i * dim + j];
    }
    for (let c = 0; c < k; c++) {
      if (counts[c] === 0) centroids.set(randomRow(), c * dim);
      else for (let j = 0; j < dim; j++) centroids[c * dim + j] = sums[c * dim + j] / counts[c];
    }
  }
  return assign;
}

/** Seconds since `t0` (from performance.now()), to one decimal. */
export const seconds = (t0) => ((performance.now() - t0) / 1000).toFixed(1);

export { permutation, takeRows } from 'retrograd';
