// TensorBoard event files, as TensorFlow, Keras and PyTorch write them, so that `tensorboard --logdir` plots a
// retrograd run: SummaryWriter (PyTorch's torch.utils.tensorboard.SummaryWriter: addScalar for a hand-written loop)
// and the TensorBoard callback for fit (Keras' callback: epoch_* scalars in <logDir>/train and <logDir>/validation,
// batch_* scalars with updateFreq).
//
// The file format: TFRecord framing (a little-endian uint64 length, its masked CRC-32C, the bytes, their masked
// CRC-32C) around protobuf `Event` messages (tensorflow/core/util/event.proto: wall_time = 1, step = 2,
// file_version = 3, summary = 5; Summary.Value: tag = 1, simple_value = 2), the first one holding the file version
// "brain.Event:2". Records are appended asynchronously, in order: the event loop never waits on the disk.
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { checkOptions, describe } from '../errors.js';
import type { Callback, Logs } from './types.js';

const EVENT_SCHEMA = `
syntax = "proto3";
package tensorboard;
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
  }
}
message Summary {
  message Value {
    string tag = 1;
    float simple_value = 2;
  }
  repeated Value value = 1;
}
`;
let EventType: protobuf.Type | undefined;

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1; // Castagnoli's polynomial, reflected
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli) of `bytes`, as TFRecord files use. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotated right by 15 bits plus a constant, so CRCs of CRCs do not collide. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: length, its masked CRC, the data, its masked CRC. */
function record(data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

function encodeEvent(event: { wall_time: number; step?: number; file_version?: string; summary?: { value: { tag: string; simple_value: number }[] } }): Uint8Array {
  EventType ??= protobuf.parse(EVENT_SCHEMA, { keepCase: true }).root.lookupType('tensorboard.Event');
  return EventType.encode(EventType.fromObject(event)).finish();
}

let fileCounter = 0;

/**
 * Writes TensorBoard event files into `logDir` (created if missing), as PyTorch's SummaryWriter does:
 * `writer.addScalar('loss', value, step)`, then `await writer.close()`. `tensorboard --logdir <dir>` plots them.
 */
export class SummaryWriter {
  /** The event file this writer appends to. */
  readonly file: string;
  private chain: Promise<void>;
  private failure: unknown;
  private closed = false;

  /** Starts an event file in `logDir` (the folder is created if missing), beginning with the file-version event. */
  constructor(
    /** The folder of the event file. */
    readonly logDir: string,
  ) {
    if (typeof logDir !== 'string' || logDir === '') throw new TypeError(`SummaryWriter: logDir must be a folder path (a string), got ${describe(logDir)}`);
    this.file = join(logDir, `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${hostname()}.${process.pid}.${fileCounter++}`);
    const first = record(encodeEvent({ wall_time: Date.now() / 1000, file_version: 'brain.Event:2' }));
    this.chain = mkdir(logDir, { recursive: true }).then(() => writeFile(this.file, first));
    this.chain.catch((e) => { this.failure = e; });
  }

  /** Records `value` under `tag` at `step` (an integer ≥ 0); written asynchronously, in call order. */
  addScalar(tag: string, value: number, step: number, wallTime = Date.now() / 1000): void {
    if (this.closed) throw new Error(`SummaryWriter.addScalar: the writer of ${this.file} is closed`);
    if (typeof tag !== 'string' || tag === '') throw new TypeError(`SummaryWriter.addScalar: tag must be a non-empty string, got ${describe(tag)}`);
    if (typeof value !== 'number') throw new TypeError(`SummaryWriter.addScalar('${tag}'): value must be a number, got ${describe(value)}`);
    if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`SummaryWriter.addScalar('${tag}'): step must be an integer ≥ 0, got ${describe(step)}`);
    const bytes = record(encodeEvent({ wall_time: wallTime, step, summary: { value: [{ tag, simple_value: value }] } }));
    this.chain = this.chain.then(() => appendFile(this.file, bytes));
    this.chain.catch((e) => { this.failure = e; });
  }

  /** Waits until every scalar recorded so far is in the file; rejects with the first write error. */
  async flush(): Promise<void> {
    await this.chain.catch(() => undefined);
    if (this.failure) throw this.failure;
  }

  /** Flushes and refuses further scalars. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}

/** Options of the {@link TensorBoard} callback. */
export interface TensorBoardOptions {
  /** 'epoch' (default): scalars per epoch; 'batch': also each batch's loss; a number N: the loss every N batches. */
  updateFreq?: 'epoch' | 'batch' | number;
}

/**
 * Keras' TensorBoard callback for fit: every number in an epoch's logs as `epoch_<name>` (validation metrics under
 * `<logDir>/validation`, the rest under `<logDir>/train`, as Keras lays them out), the epoch's throughput as
 * `epoch_samples_per_second`, and with `updateFreq` the batches' loss as `batch_loss` (step = batches so far).
 * With `diagnostics: true` in fit, the per-parameter gradient norms and update ratios are plotted too.
 */
export class TensorBoard implements Callback {
  /** When scalars are written: 'epoch', 'batch', or every N batches (the batches' loss). */
  readonly updateFreq: 'epoch' | 'batch' | number;
  private train?: SummaryWriter;
  private validation?: SummaryWriter;
  private step = 0;
  private samples = 0;
  private epochStart = 0;

  /** Writes under `logDir`/train and `logDir`/validation; unknown option keys are a TypeError. */
  constructor(
    /** The run's folder (what `tensorboard --logdir` is pointed at, or a subfolder of it). */
    readonly logDir: string,
    options: TensorBoardOptions = {},
  ) {
    if (typeof logDir !== 'string' || logDir === '') throw new TypeError(`TensorBoard: logDir must be a folder path (a string), got ${describe(logDir)}`);
    checkOptions('TensorBoard', options, ['updateFreq']);
    const f = options.updateFreq ?? 'epoch';
    if (f !== 'epoch' && f !== 'batch' && !(Number.isSafeInteger(f) && (f as number) >= 1))
      throw new RangeError(`TensorBoard: updateFreq must be 'epoch', 'batch' or a whole number of batches ≥ 1, got ${describe(f)}`);
    this.updateFreq = f;
  }

  onTrainBegin(): void {
    this.train = new SummaryWriter(join(this.logDir, 'train'));
    this.validation = new SummaryWriter(join(this.logDir, 'validation'));
    this.step = 0;
  }

  onEpochBegin(): void {
    this.samples = 0;
    this.epochStart = performance.now();
  }

  onBatchEnd(_batch: number, logs: Logs): void {
    this.step++;
    if (typeof logs.size === 'number') this.samples += logs.size;
    const every = this.updateFreq === 'batch' ? 1 : this.updateFreq === 'epoch' ? 0 : this.updateFreq;
    if (every && this.step % every === 0 && typeof logs.loss === 'number') this.train?.addScalar('batch_loss', logs.loss, this.step);
  }

  async onEpochEnd(epoch: number, logs: Logs): Promise<void> {
    for (const [key, value] of Object.entries(logs)) {
      if (typeof value !== 'number') continue;
      if (key.startsWith('val_')) this.validation?.addScalar(`epoch_${key.slice(4)}`, value, epoch);
      else this.train?.addScalar(`epoch_${key}`, value, epoch);
    }
    const seconds = (performance.now() - this.epochStart) / 1000;
    if (this.samples > 0 && seconds > 0) this.train?.addScalar('epoch_samples_per_second', this.samples / seconds, epoch);
    await Promise.all([this.train?.flush(), this.validation?.flush()]);
  }

  async onTrainEnd(): Promise<void> {
    await Promise.all([this.train?.close(), this.validation?.close()]);
  }
}
