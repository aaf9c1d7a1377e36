// Inference: predict and predictAsync, in eval mode, batch by batch over the input.
//
// Concurrent predictAsync calls on one model are queued and served in arrival order by dynamic batching, as
// inference servers do: the calls that arrive while a batch runs (or, when the model is idle, within `maxDelayMs`
// of the first) are concatenated along dim 0 up to `maxBatch` rows, run as one forward, and each caller gets its
// own rows back as its own tensor. Rows are independent in eval mode, so a caller's result does not depend on its
// batchmates — bitwise on the reference backend; on the native CPU backend up to rounding where the gemm's summation
// order changes with the row count (below 6 rows, and for products much wider than tall). Calls whose rows differ
// in shape or dtype, or that ask for another batchSize, go in separate batches.
// The queue holds the model's claim from the first call until it has drained: fit, evaluate and the synchronous
// predict are refused (BUSY) meanwhile, as predictAsync is while they run.
import type { Module } from '../nn/module.js';
import { checkNumber, checkOptions } from '../errors.js';
import { checkTensor, empty, fromHost, Tensor } from '../tensor.js';
import { Batches, claim, inferenceStep } from './fit.js';
import type { BatchingOptions, BatchingStats, PredictOptions } from './types.js';

/** The model's outputs over x, batch by batch (the caller sets eval mode). Buffer reuse is on only while a forward
 * is queued: a forward the caller runs while predictAsync awaits a read gets tensors of its own. */
function* predictBatches(model: Module, x: Tensor, batchSize: number): Generator<Tensor> {
  const batches = new Batches(model.backend, x, undefined, batchSize);
  try {
    batches.begin();
    for (let i = 0; i < batches.count; i++) yield inferenceStep(model, undefined, () => model.forward(batches.getX(i)));
  } finally {
    batches.dispose();
  }
}

function checkPredict(where: string, model: Module, x: unknown, options: PredictOptions): [Tensor, number] {
  checkOptions(where, options, ['batchSize']);
  const xt = checkTensor(where, x, 'x');
  if (xt.shape.length === 0) throw new RangeError(`${where}: x needs a batch dimension, got a scalar`);
  if (xt.backend !== model.backend) throw new TypeError(`${where}: x is on '${xt.device}' but the model is on '${model.backend.name}'`);
  return [xt, checkNumber(where, 'batchSize', options.batchSize ?? 1024, { min: 1, integer: true })];
}

type Part = [Float32Array | Int32Array, readonly number[]];

/** The outputs of the parts, one after another, and the shape of one output row. */
function join(parts: Part[]): [Float32Array, number[]] {
  const rowShape = parts.length ? parts[0][1].slice(1) : [];
  const all = new Float32Array(parts.reduce((s, [a]) => s + a.length, 0));
  let at = 0;
  for (const [a] of parts) {
    all.set(a, at);
    at += a.length;
  }
  return [all, rowShape];
}

/** Outputs for x in eval mode, as a new tensor (synchronous). */
export function predictModel(model: Module, x: Tensor, options: PredictOptions = {}): Tensor {
  const [xt, batchSize] = checkPredict('predict', model, x, options);
  const release = claim(model, 'predict');
  model.eval();
  try {
    const parts: Part[] = [];
    for (const out of predictBatches(model, xt, batchSize)) parts.push([out.toArray(), out.shape]);
    const [all, rowShape] = join(parts);
    return fromHost(model.backend, all, [xt.shape[0], ...rowShape]);
  } finally {
    release();
  }
}

interface Request {
  x: Tensor;
  rows: number;
  /** Calls with the same group may share a batch: row shape, dtype and batchSize. */
  group: string;
  batchSize: number;
  resolve(y: Tensor): void;
  reject(e: unknown): void;
}

/** The queue of one model's predictAsync calls, and the batches it forms from them. */
class Batcher {
  maxBatch = 256;
  maxDelayMs = 0;
  readonly stats: BatchingStats = { batches: 0, requests: 0, rows: 0 };
  private readonly queue: Request[] = [];
  private queuedRows = 0;
  /** The model's claim: held from the first queued call until the queue has drained. */
  private release?: () => void;
  private running = false;
  private starting = false;
  private timer?: ReturnType<typeof setTimeout>;

  constructor(private readonly model: Module) {}

  /** Queues a call (throws BUSY, changing nothing, while fit, evaluate or predict hold the model). */
  add(r: Request): void {
    if (!this.release) {
      this.release = claim(this.model, 'predictAsync');
      this.model.eval();
    }
    this.queue.push(r);
    this.queuedRows += r.rows;
    if (this.running || this.starting) return; // the running batch picks the queue up when it ends
    if (this.maxDelayMs === 0 || this.queuedRows >= this.maxBatch) {
      // After the current tick, so that calls made together (Promise.all) share the first batch.
      clearTimeout(this.timer);
      this.timer = undefined;
      this.starting = true;
      queueMicrotask(() => void this.drain());
    } else {
      this.timer ??= setTimeout(() => void this.drain(), this.maxDelayMs);
    }
  }

  /** Runs batches until the queue is empty, then gives the model back. Never rejects: errors go to the callers. */
  private async drain(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.starting = false;
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) await this.run(this.take());
    } finally {
      this.running = false;
      const release = this.release;
      this.release = undefined;
      release?.();
    }
  }

  /** The next batch: the first queued call and those after it, in order, of its group and within maxBatch rows. */
  private take(): Request[] {
    const first = this.queue.shift()!;
    const batch = [first];
    let rows = first.rows;
    while (this.queue.length && this.queue[0].group === first.group && rows + this.queue[0].rows <= this.maxBatch) {
      rows += this.queue[0].rows;
      batch.push(this.queue.shift()!);
    }
    this.queuedRows -= rows;
    return batch;
  }

  private async run(batch: Request[]): Promise<void> {
    const model = this.model;
    const rows = batch.reduce((s, r) => s + r.rows, 0);
    this.stats.batches++;
    this.stats.requests += batch.length;
    this.stats.rows += rows;
    let x: Tensor | undefined;
    try {
      x = batch.length === 1 ? batch[0].x : await concatRows(batch.map((r) => r.x), rows);
      const parts: Part[] = [];
      for (const out of predictBatches(model, x, batch[0].batchSize)) parts.push([await out.data(), out.shape]);
      const [all, rowShape] = join(parts);
      const rowSize = rowShape.reduce((a, b) => a * b, 1);
      let at = 0;
      const ys = batch.map((r) => {
        const y = fromHost(model.backend, all.subarray(at, at + r.rows * rowSize), [r.rows, ...rowShape]);
        at += r.rows * rowSize;
        return y;
      });
      batch.forEach((r, i) => r.resolve(ys[i]));
    } catch (e) {
      for (const r of batch) r.reject(e);
    } finally {
      if (x && batch.length > 1) x.dispose();
    }
  }
}

/** The rows of xs (one group: same row shape and dtype) one after another in a new tensor. */
async function concatRows(xs: Tensor[], rows: number): Promise<Tensor> {
  const first = xs[0];
  const backend = first.backend;
  if (first.dtype === 'int32') {
    // copy_range moves floats only; token ids are small, and reading them here keeps their range known.
    const all = new Int32Array(xs.reduce((s, x) => s + x.size, 0));
    let at = 0;
    for (const x of xs) {
      all.set(await x.data(), at);
      at += x.size;
    }
    return fromHost(backend, all, [rows, ...first.shape.slice(1)]);
  }
  const out = empty(backend, [rows, ...first.shape.slice(1)]);
  let at = 0;
  for (const x of xs) {
    if (x.size) backend.k.copy_range(out.buf, x.buf, x.size, at, 0);
    at += x.size;
  }
  return out;
}

const batchers = new WeakMap<Module, Batcher>();

function batcherOf(model: Module): Batcher {
  let b = batchers.get(model);
  if (!b) batchers.set(model, (b = new Batcher(model)));
  return b;
}

/**
 * predict without blocking the event loop while the native backend computes. Calls made while others are queued or
 * running are coalesced into shared batches (see the top of this file); x must stay alive until the result comes.
 */
export async function predictModelAsync(model: Module, x: Tensor, options: PredictOptions = {}): Promise<Tensor> {
  const [xt, batchSize] = checkPredict('predictAsync', model, x, options);
  const group = `${xt.shape.slice(1).join('x')}:${xt.dtype}:${batchSize}`;
  return new Promise<Tensor>((resolve, reject) => {
    batcherOf(model).add({ x: xt, rows: xt.shape[0], group, batchSize, resolve, reject });
  });
}

/** Sets how predictAsync coalesces concurrent calls on this model (applies to the batches formed from now on). */
export function setBatching(model: Module, options: BatchingOptions): void {
  checkOptions('setBatching', options, ['maxBatch', 'maxDelayMs']);
  if (options === undefined) throw new TypeError('setBatching: expected { maxBatch, maxDelayMs }');
  const b = batcherOf(model);
  const maxBatch = checkNumber('setBatching', 'maxBatch', options.maxBatch ?? b.maxBatch, { min: 1, integer: true });
  const maxDelayMs = checkNumber('setBatching', 'maxDelayMs', options.maxDelayMs ?? b.maxDelayMs, { min: 0, max: 60_000 });
  b.maxBatch = maxBatch;
  b.maxDelayMs = maxDelayMs;
}

/** How predictAsync calls on this model have been batched so far (a snapshot). */
export function batchingStats(model: Module): BatchingStats {
  return { ...(batchers.get(model)?.stats ?? { batches: 0, requests: 0, rows: 0 }) };
}
