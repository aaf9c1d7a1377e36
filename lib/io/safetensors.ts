// The safetensors format (https://github.com/huggingface/safetensors, its README's "Format" section): an
// 8-byte little-endian header length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets: [begin,
// end]}, "__metadata__"?: {string: string}}, then the raw little-endian data, offsets relative to its start.
// The decoder trusts nothing: every length, offset, shape and dtype is checked before a byte is read, and the
// data must be covered exactly once (no holes, no overlaps), as the specification requires.
import { open, stat } from 'node:fs/promises';
import { RetrogradError } from '../errors.js';

export type StDType = 'F32' | 'F64' | 'I32' | 'I64' | 'F16' | 'BF16' | 'U8' | 'I8' | 'BOOL' | 'I16' | 'U16' | 'U32' | 'U64';
const DTYPE_SIZE: Record<StDType, number> = { F64: 8, I64: 8, U64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2, U8: 1, I8: 1, BOOL: 1 };
const MAX_HEADER = 100 * 1024 * 1024;

/** One tensor of a safetensors file as retrograd reads and writes it. */
export interface StTensor {
  /** 'F32' (float32) or 'I32' (int32). */
  dtype: 'F32' | 'I32';
  /** The dimensions. */
  shape: number[];
  /** The values, row-major: a Float32Array for F32, an Int32Array for I32. */
  data: Float32Array | Int32Array;
}
/** A bfloat16 tensor to write (rg.save's `dtype: 'bfloat16'`). */
export interface StBf16Tensor {
  /** 'BF16'. */
  dtype: 'BF16';
  /** The dimensions. */
  shape: number[];
  /** The bfloat16 words, row-major (toBfloat16 makes them from float32 values). */
  data: Uint16Array;
}
/** A tensor to write: as read, or bfloat16 words. */
export type StWritable = StTensor | StBf16Tensor;

/** float32 values as bfloat16 words, rounded to nearest even as PyTorch's `.to(torch.bfloat16)` (NaN stays NaN). */
export function toBfloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const u = bits[i];
    out[i] = (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 0x40 : (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** bfloat16 words as float32 values (exact: a bfloat16 is a float32 with its lower 16 bits zero). */
export function fromBfloat16(words: Uint16Array): Float32Array {
  const bits = new Uint32Array(words.length);
  for (let i = 0; i < words.length; i++) bits[i] = words[i] << 16;
  return new Float32Array(bits.buffer);
}

/** IEEE half-precision words as float32 values (exact: subnormals, infinities and NaN included). */
function fromFloat16(words: Uint16Array): Float32Array {
  const out = new Float32Array(words.length);
  for (let i = 0; i < words.length; i++) {
    const h = words[i], sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
    out[i] = exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

function corrupt(file: string, why: string): RetrogradError {
  return new RetrogradError(`safetensors: ${file} is not a valid safetensors file: ${why}`, 'INVALID_ARGUMENT');
}

/** Encodes tensors (in the given order) and string metadata; the header is padded with spaces to 8 bytes. */
export function encodeSafetensors(tensors: Record<string, StWritable>, metadata: Record<string, string> = {}): Buffer {
  // a null-prototype header, so that a tensor named '__proto__' is written like any other
  const header: Record<string, unknown> = Object.create(null);
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new RangeError("encodeSafetensors: no tensor may be named '__metadata__' (the format reserves the name)");
    const bytes = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  while ((Buffer.byteLength(json) + 8) % 8 !== 0) json += ' ';
  const head = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + head.length + offset);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  let at = 8 + head.length;
  for (const t of Object.values(tensors)) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, at); // little-endian hosts only (x86-64, arm64)
    at += t.data.byteLength;
  }
  return out;
}

type Entry = { name: string; dtype: StDType; shape: number[]; begin: number; end: number };
/** A decoded safetensors file. */
export type Decoded = {
  /** The tensors by name. */
  tensors: Record<string, StTensor>;
  /** The header's __metadata__ (string to string; empty when there is none). */
  metadata: Record<string, string>;
};

/** The header length (first 8 bytes), bounded by the format's limit and by the bytes that follow it. */
function headerLength(first8: Buffer, after: number, file: string): number {
  const n = first8.readBigUInt64LE(0);
  // safetensors' own reader refuses headers over 100 MB: a larger length is a corrupt file, not a model
  if (n > BigInt(MAX_HEADER)) throw corrupt(file, `header length ${n} exceeds the limit of ${MAX_HEADER} bytes`);
  if (n > BigInt(after)) throw corrupt(file, `header length ${n} exceeds the ${after} bytes that follow`);
  return Number(n);
}

/**
 * The first name that appears twice in one object of a valid JSON text, and the names of the objects around
 * it. JSON.parse keeps the last of duplicate names silently; the format allows each tensor once.
 */
function duplicateName(text: string): { name: string; path: string[] } | undefined {
  const frames: { names: Set<string> | null; label: string }[] = [];
  let expectName = false;
  let last = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = i;
      for (;;) {
        end = text.indexOf('"', end + 1);
        let slashes = 0;
        while (text.charCodeAt(end - 1 - slashes) === 0x5c) slashes++;
        if (slashes % 2 === 0) break;
      }
      if (expectName) {
        const name = JSON.parse(text.slice(i, end + 1)) as string;
        const names = frames[frames.length - 1].names!;
        if (names.has(name)) return { name, path: frames.slice(1).map((f) => f.label) };
        names.add(name);
        last = name;
        expectName = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      frames.push({ names: new Set(), label: last });
      expectName = true;
    } else if (c === 0x5b /* [ */) {
      frames.push({ names: null, label: last });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      frames.pop();
      expectName = false;
    } else if (c === 0x2c /* , */) {
      expectName = frames[frames.length - 1].names !== null;
    }
  }
  return undefined;
}

/**
 * Parses and checks a header against a data section of `dataLen` bytes: every dtype, shape and offset, the
 * coverage of the data (no holes, no overlaps, nothing left over), before any data is read.
 */
function parseHeader(bytes: Buffer, dataLen: number, file: string): { entries: Entry[]; metadata: Record<string, string> } {
  const text = bytes.toString('utf8');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw corrupt(file, `the header is not JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw corrupt(file, 'the header is not a JSON object');
  const dup = duplicateName(text);
  if (dup) throw corrupt(file, `the name '${dup.name}' appears twice${dup.path.length ? ` in ${dup.path.join('.')}` : ''}`);
  // null-prototype objects: every name, '__proto__' included, is an own key like any other
  const metadata: Record<string, string> = Object.create(null);
  const entries: Entry[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw corrupt(file, '__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw corrupt(file, `__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== 'object') throw corrupt(file, `entry '${name}' is not an object`);
    if (typeof e.dtype !== 'string' || !Object.hasOwn(DTYPE_SIZE, e.dtype)) throw corrupt(file, `entry '${name}' has unknown dtype ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw corrupt(file, `entry '${name}' has an invalid shape ${JSON.stringify(e.shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0) || off[0] > off[1])
      throw corrupt(file, `entry '${name}' has invalid data_offsets ${JSON.stringify(off)}`);
    const [begin, end] = off as [number, number];
    if (end > dataLen) throw corrupt(file, `entry '${name}' ends at byte ${end} of a ${dataLen}-byte data section (truncated?)`);
    const count = (e.shape as number[]).reduce((a, d) => a * d, 1);
    const size = DTYPE_SIZE[e.dtype as StDType];
    if (end - begin !== count * size) throw corrupt(file, `entry '${name}' spans ${end - begin} bytes, its shape and dtype need ${count * size}`);
    if (!['F32', 'I32', 'I64', 'F64', 'BF16', 'F16'].includes(e.dtype))
      throw corrupt(file, `entry '${name}' has dtype ${e.dtype}, which retrograd does not load (F32, F64, BF16, F16, I32, I64)`);
    entries.push({ name, dtype: e.dtype as StDType, shape: e.shape as number[], begin, end });
  }
  const spans = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const { begin, end, name } of spans) {
    if (begin !== covered) throw corrupt(file, begin < covered ? `entry '${name}' overlaps the previous one` : `a hole in the data before '${name}'`);
    covered = end;
  }
  if (covered !== dataLen) throw corrupt(file, `${dataLen - covered} bytes after the last tensor are not indexed`);
  return { entries, metadata };
}

/** One entry's bytes (an aligned copy) as an F32 or I32 tensor; I64 is narrowed when every value fits, F64 rounded, BF16
 * and F16 widened. */
function toTensor(e: Entry, aligned: Uint8Array, file: string): StTensor {
  const words = () => new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
  if (e.dtype === 'BF16') return { dtype: 'F32', shape: e.shape, data: fromBfloat16(words()) };
  if (e.dtype === 'F16') return { dtype: 'F32', shape: e.shape, data: fromFloat16(words()) };
  if (e.dtype === 'F32') return { dtype: 'F32', shape: e.shape, data: new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4) };
  if (e.dtype === 'I32') return { dtype: 'I32', shape: e.shape, data: new Int32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4) };
  if (e.dtype === 'F64') return { dtype: 'F32', shape: e.shape, data: Float32Array.from(new Float64Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 8)) };
  const wide = new BigInt64Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 8);
  const narrow = new Int32Array(wide.length);
  for (let i = 0; i < wide.length; i++) {
    if (wide[i] > 2147483647n || wide[i] < -2147483648n) throw corrupt(file, `entry '${e.name}' holds ${wide[i]}, outside int32`);
    narrow[i] = Number(wide[i]);
  }
  return { dtype: 'I32', shape: e.shape, data: narrow };
}

/** Decodes and validates a safetensors buffer. F32 and I32 tensors load as they are, F64 is rounded to F32, BF16 and F16
 * widened to F32 (exactly) and I64 narrowed to I32 when every value fits; other dtypes, and any inconsistency of the
 * header, are a RetrogradError naming the entry. */
export function decodeSafetensors(buf: Buffer, file = 'the buffer'): Decoded {
  if (buf.length < 8) throw corrupt(file, `${buf.length} bytes, shorter than the 8-byte header length`);
  const n = headerLength(buf, buf.length - 8, file);
  const dataStart = 8 + n;
  const { entries, metadata } = parseHeader(buf.subarray(8, dataStart), buf.length - dataStart, file);
  const tensors: Record<string, StTensor> = Object.create(null);
  for (const e of entries) tensors[e.name] = toTensor(e, new Uint8Array(buf.subarray(dataStart + e.begin, dataStart + e.end)), file); // a copy: the source may be unaligned
  return { tensors, metadata };
}

/**
 * Reads a safetensors file without trusting it: a regular file only (a device or a pipe could be endless), the
 * header length and header first, and the data only once the file's size matches what the header indexes;
 * each tensor is read straight into its own array.
 */
export async function readSafetensorsFile(path: string, where: string): Promise<Decoded> {
  // stat before open: opening a FIFO would wait for a writer
  const notRegular = () => new RetrogradError(`${where}: ${path} is not a regular file`, 'INVALID_ARGUMENT');
  if (!(await stat(path)).isFile()) throw notRegular();
  const fh = await open(path, 'r');
  try {
    const info = await fh.stat();
    if (!info.isFile()) throw notRegular();
    const size = info.size;
    if (size < 8) throw corrupt(path, `${size} bytes, shorter than the 8-byte header length`);
    const readAt = async (into: Uint8Array, position: number) => {
      // at most 1 GiB per read: one read cannot pass 2 GiB
      for (let done = 0; done < into.length;) {
        const { bytesRead } = await fh.read(into, done, Math.min(into.length - done, 2 ** 30), position + done);
        if (bytesRead === 0) throw corrupt(path, `the file ended at byte ${position + done} while it was read (it changed?)`);
        done += bytesRead;
      }
    };
    const first8 = Buffer.alloc(8);
    await readAt(first8, 0);
    const n = headerLength(first8, size - 8, path);
    const head = Buffer.alloc(n);
    await readAt(head, 8);
    const { entries, metadata } = parseHeader(head, size - 8 - n, path);
    const tensors: Record<string, StTensor> = Object.create(null);
    for (const e of entries) {
      const bytes = new Uint8Array(e.end - e.begin);
      await readAt(bytes, 8 + n + e.begin);
      tensors[e.name] = toTensor(e, bytes, path);
    }
    return { tensors, metadata };
  } finally {
    await fh.close();
  }
}
