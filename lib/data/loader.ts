// Data pipelines: Dataset (random access, in memory or computed), IterableDataset (a stream of records that
// is never loaded whole), CSV reading on csv-parse, and DataLoader, which turns either into batches of
// tensors — async-iterable, shuffled, with a transform hook — that fit consumes directly.
import { createReadStream } from 'node:fs';
import { parse } from 'csv-parse';
import { currentBackend, type Backend } from '../backend.js';
import { distributed } from '../distributed.js';
import { checkNumber, checkOptions, describe } from '../errors.js';
import { permutation, uniform } from '../random.js';
import { fromHost, type Tensor } from '../tensor.js';

/** One example: its features and its target (a class index or a vector). */
export interface Sample {
  /** The features. */
  x: ArrayLike<number>;
  /** The target: a number (a class index or a value) or a vector. */
  y: number | ArrayLike<number>;
}
/** A function applied to each sample as it is read (augmentation, normalisation). */
export type Transform = (s: Sample) => Sample;
/** Random access to samples: a length and get(i), which may be async. */
export type Source = {
  /** The number of samples. */
  length: number;
  /** Sample i, for 0 ≤ i < length. */
  get(i: number): Sample | Promise<Sample>;
};

/** A random-access data set: an array of samples, or any { length, get(i) } (get may be async). */
export class Dataset {
  private readonly source: Source;
  private readonly transform?: Transform;

  /** A data set over an array of samples or a { length, get(i) } source, each sample passed through options.transform. */
  constructor(source: Sample[] | Source, options: { transform?: Transform } = {}) {
    checkOptions('Dataset', options, ['transform']);
    if (Array.isArray(source)) this.source = { length: source.length, get: (i) => source[i] };
    else if (source && typeof source === 'object' && typeof source.length === 'number' && typeof source.get === 'function') this.source = source;
    else throw new TypeError(`Dataset: expected an array of { x, y } samples or { length, get(i) }, got ${describe(source)}`);
    if (options.transform !== undefined && typeof options.transform !== 'function') throw new TypeError('Dataset: transform must be a function');
    this.transform = options.transform;
  }

  /** Rows of x (n × x.length / n) with targets y (class indices or rows of y.length / n values). */
  static fromArrays(x: Float32Array, y: Int32Array | Float32Array, n: number, options: { transform?: Transform } = {}): Dataset {
    const xc = x.length / n, yc = y.length / n;
    return new Dataset({ length: n, get: (i) => ({ x: x.subarray(i * xc, (i + 1) * xc), y: y instanceof Int32Array && yc === 1 ? y[i] : y.subarray(i * yc, (i + 1) * yc) }) }, options);
  }

  /** A CSV file read whole into memory (see readCSV for a stream). */
  static async fromCSV(path: string, options: CsvOptions): Promise<Dataset> {
    const rows: Sample[] = [];
    for await (const s of readCSV(path, options)) rows.push(s);
    return new Dataset(rows, { transform: options.transform });
  }

  /** The number of samples. */
  get length(): number {
    return this.source.length;
  }

  /** Sample i, transformed. */
  async get(i: number): Promise<Sample> {
    const s = await this.source.get(i);
    return this.transform ? this.transform(s) : s;
  }
}

/** A data set read as a stream, once per epoch: a function returning a fresh (async) iterable of samples. */
export class IterableDataset {
  /** `open` returns a fresh (async) iterable of samples each time it is called (once per epoch); options.transform is
   * applied to each. */
  constructor(
    private readonly open: () => AsyncIterable<Sample> | Iterable<Sample>,
    private readonly options: { transform?: Transform } = {},
  ) {
    if (typeof open !== 'function') throw new TypeError(`IterableDataset: expected a function returning an iterable of samples, got ${describe(open)}`);
    checkOptions('IterableDataset', options, ['transform']);
  }
  /** Set on a rank's share of a stream (shard()): which one, of how many. */
  readonly sharding?: {
    /** The rank whose share this is. */
    rank: number;
    /** The number of shares. */
    worldSize: number;
  };

  /** One pass over the stream, each sample transformed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Sample> {
    for await (const s of this.open()) yield this.options.transform ? this.options.transform(s) : s;
  }

  /**
   * One rank's share of the stream, for data-parallel training (tf.data's shard, made even): of every `worldSize`
   * consecutive samples, the one at position `rank`. A last group of fewer than `worldSize` samples is dropped, so
   * that every rank reads the same number of samples (the ranks step in lockstep) without knowing the stream's length.
   * Every rank reads the whole stream and transforms only its own samples. Defaults: rg.distributed's rank and size.
   */
  shard(options: { rank?: number; worldSize?: number } = {}): IterableDataset {
    checkOptions('IterableDataset.shard', options, ['rank', 'worldSize']);
    const worldSize = checkNumber('IterableDataset.shard', 'worldSize', options.worldSize ?? distributed.worldSize, { min: 1, integer: true });
    const rank = checkNumber('IterableDataset.shard', 'rank', options.rank ?? distributed.rank, { min: 0, max: worldSize - 1, integer: true });
    const open = this.open;
    const shard = new IterableDataset(async function* () {
      let mine: Sample | undefined, i = 0;
      for await (const s of open()) {
        if (i % worldSize === rank) mine = s;
        if (++i % worldSize === 0) yield mine!; // the group is whole: this rank's sample is in
      }
    }, this.options);
    (shard as { sharding?: { rank: number; worldSize: number } }).sharding = { rank, worldSize };
    return shard;
  }
}

/** Options of {@link readCSV} and Dataset.fromCSV. */
export interface CsvOptions {
  /** The target column: its name (with a header row) or its index. */
  label: string | number;
  /** Whether the first row names the columns (default true). */
  header?: boolean;
  /** The field delimiter (default ','). */
  delimiter?: string;
  /** Applied to each sample as it is read. */
  transform?: Transform;
}

/** A plain decimal number: digits, an optional fraction and exponent. Number() also takes '' (as 0),
 * 'Infinity', '0x10' and '0b1', none of which is a measurement in a data file. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Streams a numeric CSV file as samples, one record at a time (csv-parse); nothing is held beyond a record.
 * Every cell must be a finite decimal number; every row has the first row's number of columns. */
export function readCSV(path: string, options: CsvOptions): IterableDataset {
  checkOptions('readCSV', options, ['label', 'header', 'delimiter', 'transform']);
  if (typeof path !== 'string') throw new TypeError(`readCSV: path must be a string, got ${describe(path)}`);
  if (typeof options.label === 'number') checkNumber('readCSV', 'label', options.label, { min: 0, integer: true });
  else if (typeof options.label !== 'string') throw new TypeError(`readCSV: label must be a column name or index, got ${describe(options.label)}`);
  const header = options.header ?? true;
  return new IterableDataset(async function* () {
    const file = createReadStream(path);
    // the column count is checked here, to name the file in the message
    const parser = parse({ delimiter: options.delimiter ?? ',', trim: true, skip_empty_lines: true, relax_column_count: true, info: true });
    // pipe() does not forward errors: without this, a missing file would be an unhandled 'error' event that
    // no caller can catch, and the parser would wait forever
    file.once('error', (e: NodeJS.ErrnoException) => {
      e.message = e.message.includes(path) ? `readCSV: ${e.message}` : `readCSV: ${path}: ${e.message}`;
      parser.destroy(e);
    });
    file.pipe(parser);
    let labelAt = typeof options.label === 'number' ? options.label : -1;
    let columns = -1;
    try {
      for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number; records: number } }>) {
        const line = info.lines;
        if (columns < 0) columns = record.length;
        else if (record.length !== columns) throw new RangeError(`readCSV: ${path} line ${line}: ${record.length} columns, the first row has ${columns}`);
        if (header && info.records === 1) {
          if (typeof options.label === 'string') {
            labelAt = record.indexOf(options.label);
            if (labelAt < 0) throw new RangeError(`readCSV: ${path} has no column '${options.label}'; columns: ${record.join(', ')}`);
          }
          continue;
        }
        if (labelAt < 0 || labelAt >= record.length) throw new RangeError(`readCSV: ${path} line ${line}: no label column ${String(options.label)}`);
        const values = record.map((cell, i) => {
          if (cell === '') throw new RangeError(`readCSV: ${path} line ${line}, column ${i + 1}: the cell is empty`);
          const v = Number(cell);
          if (!DECIMAL.test(cell) || !Number.isFinite(v)) throw new RangeError(`readCSV: ${path} line ${line}, column ${i + 1}: '${cell}' is not a number: cells hold finite decimal numbers`);
          return v;
        });
        yield { x: values.filter((_, i) => i !== labelAt), y: values[labelAt] };
      }
    } catch (e) {
      // csv-parse's own errors (an unclosed quote…) name the line, not the file
      const err = e as Error & { code?: string };
      if (typeof err.code === 'string' && err.code.startsWith('CSV_')) err.message = `readCSV: ${path}: ${err.message}`;
      throw e;
    } finally {
      file.destroy(); // a consumer that stops early leaves no open file
    }
  }, { transform: options.transform });
}

/** What orders a DataLoader's epochs: rg.DistributedSampler, or any object with indices(epoch). */
export interface Sampler {
  /** The sample indices of epoch `epoch` (from 0), in the order they are read. */
  indices(epoch: number): Int32Array;
}

/** Options of {@link DataLoader}. */
export interface DataLoaderOptions {
  /** Samples per batch (default 32). */
  batchSize?: number;
  /**
   * Reshuffle every epoch: a Dataset's whole order; an IterableDataset (a stream, never held whole) through a
   * bounded shuffle buffer of `shuffleBuffer` samples, as tf.data shuffles.
   */
  shuffle?: boolean;
  /**
   * With shuffle on an IterableDataset (required there): how many samples are held to draw from. The buffer
   * fills with the first samples; each next one takes the place of a sample drawn at random, which goes to the
   * batch; at the end the rest leave in random order. A buffer as large as the data set is a full shuffle; a
   * smaller one mixes samples within about that distance of each other (class-sorted data needs a buffer
   * spanning several classes). Draws use the library's generator (rg.manualSeed repeats them).
   */
  shuffleBuffer?: number;
  /**
   * The order of a Dataset's samples, epoch by epoch, from an object with `indices(epoch)` (rg.DistributedSampler: this
   * rank's shard), in place of shuffle (PyTorch's sampler); the epochs are counted from 0 by the loader.
   */
  sampler?: Sampler;
  /** Drop a last batch smaller than batchSize. */
  dropLast?: boolean;
  /**
   * The dtype of number targets: 'int32' (class indices, for CrossEntropyLoss) or 'float32' (values, for
   * MSELoss and the others). Unset, the first batch decides (int32 when its targets are all integers) and
   * the choice holds for every later batch and epoch. Vector targets are always float32.
   */
  targetDtype?: 'int32' | 'float32';
}

/** A stream's samples with their positions in it. */
async function* numbered(stream: AsyncIterable<Sample>): AsyncGenerator<[Sample, number]> {
  let i = 0;
  for await (const s of stream) yield [s, i++];
}

/** A stream's samples (with their positions) through a shuffle buffer of `size`: tf.data's Dataset.shuffle. */
async function* shuffled(stream: AsyncIterable<Sample>, size: number): AsyncGenerator<[Sample, number]> {
  const buffer: [Sample, number][] = [];
  const draw = () => Math.min(buffer.length - 1, Math.floor(uniform() * buffer.length));
  let i = 0;
  for await (const s of stream) {
    if (buffer.length < size) {
      buffer.push([s, i++]);
      continue;
    }
    const k = draw();
    const out = buffer[k];
    buffer[k] = [s, i++];
    yield out;
  }
  while (buffer.length) {
    const k = draw();
    const out = buffer[k];
    buffer[k] = buffer[buffer.length - 1];
    buffer.pop();
    yield out;
  }
}

/** Batches of { x: [B, …features], y: [B] int32 class indices, or [B, k] float32 } tensors. */
export class DataLoader {
  /** Samples per batch. */
  readonly batchSize: number;
  /** Whether each epoch is shuffled. */
  readonly shuffle: boolean;
  /** Samples held to draw from when shuffling an IterableDataset. */
  readonly shuffleBuffer: number | undefined;
  /** The sampler that orders each epoch, if one was given. */
  readonly sampler: Sampler | undefined;
  /** Epochs read so far (the sampler's epoch number). */
  private epochs = 0;
  /** Whether a last batch smaller than batchSize is dropped. */
  readonly dropLast: boolean;
  /** The dtype of number targets as given (undefined: the first batch decides). */
  readonly targetDtype: 'int32' | 'float32' | undefined;
  /** The dtype of number targets, once targetDtype or the first batch has decided it. */
  private decided?: 'int32' | 'float32';

  /** Batches of `dataset`; options are checked here (an IterableDataset needs shuffleBuffer to shuffle). */
  constructor(
    /** The data set the batches come from. */
    readonly dataset: Dataset | IterableDataset,
    options: DataLoaderOptions = {},
  ) {
    if (!(dataset instanceof Dataset) && !(dataset instanceof IterableDataset))
      throw new TypeError(`DataLoader: expected a Dataset or an IterableDataset, got ${describe(dataset)}`);
    checkOptions('DataLoader', options, ['batchSize', 'shuffle', 'shuffleBuffer', 'sampler', 'dropLast', 'targetDtype']);
    const targetDtype = options.targetDtype;
    if (targetDtype !== undefined && targetDtype !== 'int32' && targetDtype !== 'float32')
      throw new TypeError(`DataLoader: targetDtype must be 'int32' or 'float32', got ${describe(targetDtype)}`);
    this.batchSize = checkNumber('DataLoader', 'batchSize', options.batchSize ?? 32, { min: 1, integer: true });
    if (options.shuffle !== undefined && typeof options.shuffle !== 'boolean') throw new TypeError(`DataLoader: shuffle must be a boolean, got ${describe(options.shuffle)}`);
    this.shuffle = options.shuffle ?? false;
    this.shuffleBuffer = options.shuffleBuffer === undefined ? undefined : checkNumber('DataLoader', 'shuffleBuffer', options.shuffleBuffer, { min: 1, integer: true });
    if (this.shuffle && dataset instanceof IterableDataset && this.shuffleBuffer === undefined)
      throw new TypeError(
        'DataLoader: shuffle on an IterableDataset (a stream, never held whole) needs shuffleBuffer, the number of samples held to draw from ' +
          '(e.g. shuffleBuffer: 10000; as large as the data set for a full shuffle), or shuffle: false to keep the stream\'s order',
      );
    if (this.shuffleBuffer !== undefined && !this.shuffle) throw new TypeError('DataLoader: shuffleBuffer is for shuffle: true');
    const sampler = options.sampler;
    if (sampler !== undefined) {
      if (sampler === null || typeof (sampler as { indices?: unknown }).indices !== 'function')
        throw new TypeError(`DataLoader: sampler must have indices(epoch) (e.g. a DistributedSampler), got ${describe(sampler)}`);
      if (!(dataset instanceof Dataset)) throw new TypeError('DataLoader: a sampler orders a Dataset (random access); an IterableDataset is read in its own order');
      if (this.shuffle) throw new TypeError('DataLoader: sampler and shuffle are exclusive (the sampler decides the order; shuffle it there)');
    }
    this.sampler = sampler;
    this.dropLast = options.dropLast ?? false;
    this.targetDtype = targetDtype;
    this.decided = targetDtype;
  }

  /** Batches per epoch, when the data set's length is known. */
  get batchCount(): number | undefined {
    if (!(this.dataset instanceof Dataset)) return undefined;
    const n = this.sampler ? ((this.sampler as { perRank?: number }).perRank ?? this.sampler.indices(0).length) : this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** One epoch's batches as tensors on the current backend: x [B, features], y [B] or [B, k]. */
  [Symbol.asyncIterator](): AsyncGenerator<{
    /** The features, [B, features] float32. */
    x: Tensor;
    /** The targets: [B] int32 class indices or float32 values, or [B, k] float32. */
    y: Tensor;
  }> {
    return this.batches(currentBackend());
  }

  /** @internal The batches of one epoch as tensors on `backend`. */
  async *batches(backend: Backend): AsyncGenerator<{ x: Tensor; y: Tensor }> {
    let pending: Sample[] = [];
    let ids: number[] = []; // each sample's index in the data set (a stream: its position), for error messages
    const emit = () => {
      const batch = this.assemble(backend, pending, ids);
      pending = [];
      ids = [];
      return batch;
    };
    if (this.dataset instanceof Dataset) {
      const order = this.sampler ? this.sampler.indices(this.epochs++) : this.shuffle ? permutation(this.dataset.length) : Int32Array.from({ length: this.dataset.length }, (_, i) => i);
      const n = order.length;
      for (let i = 0; i < n; i++) {
        pending.push(await this.dataset.get(order[i]));
        ids.push(order[i]);
        if (pending.length === this.batchSize) yield emit();
      }
    } else {
      const stream = this.shuffle ? shuffled(this.dataset, this.shuffleBuffer!) : numbered(this.dataset);
      for await (const [s, i] of stream) {
        pending.push(s);
        ids.push(i);
        if (pending.length === this.batchSize) yield emit();
      }
    }
    if (pending.length && !this.dropLast) yield emit();
  }

  private assemble(backend: Backend, samples: Sample[], ids: number[]): { x: Tensor; y: Tensor } {
    const B = samples.length;
    const F = samples[0].x.length;
    const x = new Float32Array(B * F);
    samples.forEach((s, i) => {
      if (s.x.length !== F) throw new RangeError(`DataLoader: sample ${i} of the batch has ${s.x.length} features, the first has ${F}`);
      x.set(s.x, i * F);
    });
    const first = samples[0].y;
    let y: Tensor;
    if (typeof first === 'number') {
      const ys = samples.map((s, i) => {
        if (typeof s.y !== 'number') throw new TypeError(`DataLoader: sample ${i}'s target is an array, the first one's a number`);
        return s.y;
      });
      // decided once: a loader whose batches switched between int32 and float32 would fail whichever loss it feeds
      const dtype = this.decided ?? (ys.every(Number.isInteger) ? 'int32' : 'float32');
      if (dtype === 'int32') {
        const bad = ys.findIndex((v) => !Number.isInteger(v));
        if (bad >= 0) {
          const why = this.targetDtype ? '(targetDtype)' : "(decided by the first batch); pass targetDtype: 'float32' for targets that are values";
          throw new RangeError(`DataLoader: sample ${ids[bad]}'s target ${ys[bad]} is not an integer, and the targets are int32 ${why}`);
        }
      }
      this.decided = dtype;
      y = dtype === 'int32' ? fromHost(backend, Int32Array.from(ys), [B]) : fromHost(backend, Float32Array.from(ys), [B]);
    } else {
      if (this.targetDtype === 'int32') throw new TypeError(`DataLoader: sample ${ids[0]}'s target is a vector; targetDtype 'int32' is for class indices (numbers)`);
      const K = first.length;
      const ys = new Float32Array(B * K);
      samples.forEach((s, i) => {
        if (typeof s.y === 'number' || s.y.length !== K) throw new RangeError(`DataLoader: sample ${i}'s target does not have ${K} values like the first`);
        ys.set(s.y, i * K);
      });
      y = fromHost(backend, ys, [B, K]);
    }
    return { x: fromHost(backend, x, [B, F]), y };
  }
}
