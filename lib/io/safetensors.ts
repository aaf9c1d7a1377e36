// The safetensors format (https://github.com/huggingface/safetensors, its README's "Format" section): an
// 8-byte little-endian header length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets: [begin,
// end]}, "__metadata__"?: {string: string}}, then the raw little-endian data, offsets relative to its start.
// The decoder trusts nothing: every length, offset, shape and dtype is checked before a byte is read, and the
// data must be covered exactly once (no holes, no overlaps), as the specification requires.
import { RetrogradError } from '../errors.js';

export type StDType = 'F32' | 'F64' | 'I32' | 'I64' | 'F16' | 'BF16' | 'U8' | 'I8' | 'BOOL' | 'I16' | 'U16' | 'U32' | 'U64';
const DTYPE_SIZE: Record<StDType, number> = { F64: 8, I64: 8, U64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2, U8: 1, I8: 1, BOOL: 1 };
const MAX_HEADER = 100 * 1024 * 1024;

export interface StTensor {
  dtype: 'F32' | 'I32';
  shape: number[];
  data: Float32Array | Int32Array;
}

function corrupt(file: string, why: string): RetrogradError {
  return new RetrogradError(`safetensors: ${file} is not a valid safetensors file: ${why}`, 'INVALID_ARGUMENT');
}

/** Encodes tensors (in the given order) and string metadata; the header is padded with spaces to 8 bytes. */
export function encodeSafetensors(tensors: Record<string, StTensor>, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
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

/** Decodes and validates a safetensors buffer. Only F32 and I32 tensors become arrays (I64 is narrowed to I32 when every value fits). */
export function decodeSafetensors(buf: Buffer, file = 'the buffer'): { tensors: Record<string, StTensor>; metadata: Record<string, string> } {
  if (buf.length < 8) throw corrupt(file, `${buf.length} bytes, shorter than the 8-byte header length`);
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(Math.min(MAX_HEADER, buf.length - 8))) throw corrupt(file, `header length ${n} exceeds the ${buf.length - 8} bytes that follow`);
  const headerLen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  } catch (e) {
    throw corrupt(file, `the header is not JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw corrupt(file, 'the header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  const tensors: Record<string, StTensor> = {};
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
    if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_SIZE)) throw corrupt(file, `entry '${name}' has unknown dtype ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw corrupt(file, `entry '${name}' has an invalid shape ${JSON.stringify(e.shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0) || off[0] > off[1])
      throw corrupt(file, `entry '${name}' has invalid data_offsets ${JSON.stringify(off)}`);
    const [begin, end] = off as [number, number];
    if (end > dataLen) throw corrupt(file, `entry '${name}' ends at byte ${end} of a ${dataLen}-byte data section (truncated?)`);
    const count = (e.shape as number[]).reduce((a, d) => a * d, 1);
    const size = DTYPE_SIZE[e.dtype as StDType];
    if (end - begin !== count * size) throw corrupt(file, `entry '${name}' spans ${end - begin} bytes, its shape and dtype need ${count * size}`);
    spans.push([begin, end, name]);
    const bytes = buf.subarray(dataStart + begin, dataStart + end);
    const aligned = new Uint8Array(bytes); // a copy: the source may be unaligned
    if (e.dtype === 'F32') tensors[name] = { dtype: 'F32', shape: e.shape as number[], data: new Float32Array(aligned.buffer) };
    else if (e.dtype === 'I32') tensors[name] = { dtype: 'I32', shape: e.shape as number[], data: new Int32Array(aligned.buffer) };
    else if (e.dtype === 'I64') {
      const wide = new BigInt64Array(aligned.buffer);
      const narrow = new Int32Array(wide.length);
      for (let i = 0; i < wide.length; i++) {
        if (wide[i] > 2147483647n || wide[i] < -2147483648n) throw corrupt(file, `entry '${name}' holds ${wide[i]}, outside int32`);
        narrow[i] = Number(wide[i]);
      }
      tensors[name] = { dtype: 'I32', shape: e.shape as number[], data: narrow };
    } else if (e.dtype === 'F64') {
      tensors[name] = { dtype: 'F32', shape: e.shape as number[], data: Float32Array.from(new Float64Array(aligned.buffer)) };
    } else {
      throw corrupt(file, `entry '${name}' has dtype ${e.dtype}, which retrograd does not load (F32, F64, I32, I64)`);
    }
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let covered = 0;
  for (const [begin, end, name] of spans) {
    if (begin !== covered) throw corrupt(file, begin < covered ? `entry '${name}' overlaps the previous one` : `a hole in the data before '${name}'`);
    covered = end;
  }
  if (covered !== dataLen) throw corrupt(file, `${dataLen - covered} bytes after the last tensor are not indexed`);
  return { tensors, metadata };
}
