// Data pipelines: Dataset (random access, in memory or computed), IterableDataset (a stream of records that
// is never loaded whole), CSV reading on csv-parse, and DataLoader, which turns either into batches of
// tensors — async-iterable, shuffled, with a transform hook — that fit consumes directly.
import { createReadStream } from 'node:fs';
import { parse } from 'csv-parse';
import { currentBackend, type Backend } from '../backend.js';
import { checkNumber, checkOptions, describe } from '../errors.js';
import { permutation } from '../random.js';
import { fromHost, type Tensor } from '../tensor.js';

/** One example: its features and its target (a class index or a vector). */
export interface Sample {
  x: ArrayLike<number>;
  y: number | ArrayLike<number>;
}
export type Transform = (s: Sample) => Sample;
type Source = { length: number; get(i: number): Sample | Promise<Sample> };

/** A random-access data set: an array of samples, or any { length, get(i) } (get may be async). */
export class Dataset {
  private readonly source: Source;
  private readonly transform?: Transform;

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

  get length(): number {
    return this.source.length;
  }

  async get(i: number): Promise<Sample> {
    const s = await this.source.get(i);
    return this.transform ? this.transform(s) : s;
  }
}

/** A data set read as a stream, once per epoch: a function returning a fresh (async) iterable of samples. */
export class IterableDataset {
  constructor(
    private readonly open: () => AsyncIterable<Sample> | Iterable<Sample>,
    private readonly options: { transform?: Transform } = {},
  ) {
    if (typeof open !== 'function') throw new TypeError(`IterableDataset: expected a function returning an iterable of samples, got ${describe(open)}`);
    checkOptions('IterableDataset', options, ['transform']);
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<Sample> {
    for await (const s of this.open()) yield this.options.transform ? this.options.transform(s) : s;
  }
}

export interface CsvOptions {
  /** The target column: its name (with a header row) or its index. */
  label: string | number;
  /** Whether the first row names the columns (default true). */
  header?: boolean;
  delimiter?: string;
  transform?: Transform;
}

/** Streams a numeric CSV file as samples, one record at a time (csv-parse); nothing is held beyond a record. */
export function readCSV(path: string, options: CsvOptions): IterableDataset {
  checkOptions('readCSV', options, ['label', 'header', 'delimiter', 'transform']);
  if (typeof path !== 'string') throw new TypeError(`readCSV: path must be a string, got ${describe(path)}`);
  const header = options.header ?? true;
  return new IterableDataset(async function* () {
    const parser = createReadStream(path).pipe(parse({ delimiter: options.delimiter ?? ',', trim: true, skip_empty_lines: true }));
    let labelAt = typeof options.label === 'number' ? options.label : -1;
    let line = 0;
    for await (const record of parser as AsyncIterable<string[]>) {
      line++;
      if (header && line === 1) {
        if (typeof options.label === 'string') {
          labelAt = record.indexOf(options.label);
          if (labelAt < 0) throw new RangeError(`readCSV: ${path} has no column '${options.label}'; columns: ${record.join(', ')}`);
        }
        continue;
      }
      if (labelAt < 0 || labelAt >= record.length) throw new RangeError(`readCSV: ${path} line ${line}: no label column ${String(options.label)}`);
      const values = record.map(Number);
      const bad = values.findIndex((v) => Number.isNaN(v));
      if (bad >= 0) throw new RangeError(`readCSV: ${path} line ${line}, column ${bad + 1}: '${record[bad]}' is not a number`);
      yield { x: values.filter((_, i) => i !== labelAt), y: values[labelAt] };
    }
  }, { transform: options.transform });
}

export interface DataLoaderOptions {
  batchSize?: number;
  /** Reshuffle a Dataset's order every epoch (IterableDatasets keep their order). */
  shuffle?: boolean;
  /** Drop a last batch smaller than batchSize. */
  dropLast?: boolean;
}

/** Batches of { x: [B, …features], y: [B] int32 class indices, or [B, k] float32 } tensors. */
export class DataLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;

  constructor(
    readonly dataset: Dataset | IterableDataset,
    options: DataLoaderOptions = {},
  ) {
    if (!(dataset instanceof Dataset) && !(dataset instanceof IterableDataset))
      throw new TypeError(`DataLoader: expected a Dataset or an IterableDataset, got ${describe(dataset)}`);
    checkOptions('DataLoader', options, ['batchSize', 'shuffle', 'dropLast']);
    this.batchSize = checkNumber('DataLoader', 'batchSize', options.batchSize ?? 32, { min: 1, integer: true });
    this.shuffle = options.shuffle ?? false;
    this.dropLast = options.dropLast ?? false;
  }

  /** Batches per epoch, when the data set's length is known. */
  get batchCount(): number | undefined {
    if (!(this.dataset instanceof Dataset)) return undefined;
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  [Symbol.asyncIterator](): AsyncGenerator<{ x: Tensor; y: Tensor }> {
    return this.batches(currentBackend());
  }

  /** @internal The batches of one epoch as tensors on `backend`. */
  async *batches(backend: Backend): AsyncGenerator<{ x: Tensor; y: Tensor }> {
    let pending: Sample[] = [];
    const emit = () => {
      const batch = assemble(backend, pending);
      pending = [];
      return batch;
    };
    if (this.dataset instanceof Dataset) {
      const n = this.dataset.length;
      const order = this.shuffle ? permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
      for (let i = 0; i < n; i++) {
        pending.push(await this.dataset.get(order[i]));
        if (pending.length === this.batchSize) yield emit();
      }
    } else {
      for await (const s of this.dataset) {
        pending.push(s);
        if (pending.length === this.batchSize) yield emit();
      }
    }
    if (pending.length && !this.dropLast) yield emit();
  }
}

function assemble(backend: Backend, samples: Sample[]): { x: Tensor; y: Tensor } {
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
    y = ys.every(Number.isInteger) ? fromHost(backend, Int32Array.from(ys), [B]) : fromHost(backend, Float32Array.from(ys), [B]);
  } else {
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
