/**
 * safetensors reader/writer (https://github.com/huggingface/safetensors, "Format" section):
 *
 *   [8 bytes: header length N, little-endian u64][N bytes: JSON header][raw tensor bytes]
 *
 * The header maps tensor name → {dtype, shape, data_offsets: [begin, end]} (offsets relative to the
 * start of the raw bytes) plus an optional `__metadata__` string → string map. The raw bytes must be
 * covered exactly: no gaps, no overlaps, nothing after the last tensor.
 *
 * Reading validates the whole header against the file size before allocating any tensor buffer, and
 * reads through a file descriptor, so a hostile header can never make us allocate more than the file
 * holds. F32, F16 and BF16 are decoded to float32; writing produces F32 or BF16.
 */
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { UserError } from '../../errors.js';

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export type TensorDict = Map<string, NamedTensor> | Record<string, NamedTensor>;

export type ReadDtype = 'F32' | 'F16' | 'BF16';
export type WriteDtype = 'F32' | 'BF16';

export interface SafetensorsEntry {
  name: string;
  dtype: ReadDtype;
  shape: number[];
  /** Offsets into the raw data section (after the 8-byte length and the header). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** Absolute file offset where the raw data section starts (8 + header length). */
  dataStart: number;
}

/** Refuse headers above this size, as the reference implementation does (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

const DTYPE_BYTES: Record<ReadDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** Read and validate only the header (no tensor data is read). */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = openOrThrow(path);
  try {
    return readHeaderFromFd(fd, path);
  } finally {
    closeSync(fd);
  }
}

/** Read every tensor of a safetensors file as float32. */
export function readSafetensors(path: string): {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
} {
  const fd = openOrThrow(path);
  try {
    const header = readHeaderFromFd(fd, path);
    const tensors = new Map<string, NamedTensor>();
    for (const e of header.entries) {
      tensors.set(e.name, { shape: e.shape, data: readEntry(fd, path, header.dataStart, e) });
    }
    return { tensors, metadata: header.metadata };
  } finally {
    closeSync(fd);
  }
}

/**
 * Visit the tensors of a safetensors file one at a time (each read and decoded to float32 just
 * before `visit`), so loading holds one tensor's bytes in JS, not the whole file.
 */
export function forEachSafetensor(
  path: string,
  visit: (name: string, tensor: NamedTensor, raw: { dtype: ReadDtype; bits: Uint16Array | null }) => void,
  wanted?: (name: string) => boolean,
  /** Hand BF16 entries over as their raw bits (`raw.bits`, `tensor.data` empty) instead of decoding them. */
  keepBf16?: (name: string) => boolean,
  /**
   * Decode into one buffer reused for every tensor (`tensor.data` is valid only during `visit`, which
   * must copy it): fresh memory is touched once, not once per tensor (page faults dominated loading).
   */
  reuseBuffers = false,
): void {
  const fd = openOrThrow(path);
  try {
    const header = readHeaderFromFd(fd, path);
    const scratch = reuseBuffers ? new Scratch() : null;
    for (const e of header.entries) {
      if (wanted && !wanted(e.name)) continue;
      if (e.dtype === 'BF16' && keepBf16?.(e.name)) {
        const bytes = new Uint8Array(e.end - e.begin);
        readExactly(fd, bytes, header.dataStart + e.begin, path, e.name);
        visit(e.name, { shape: e.shape, data: new Float32Array(0) }, { dtype: e.dtype, bits: new Uint16Array(bytes.buffer, 0, bytes.length / 2) });
        continue;
      }
      visit(e.name, { shape: e.shape, data: readEntry(fd, path, header.dataStart, e, scratch) }, { dtype: e.dtype, bits: null });
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Write tensors to `path` (tensor names sorted; header padded with spaces to a multiple of 8 bytes,
 * as the Python library does). Written to `path.tmp` then renamed, so a crash never leaves half a file.
 */
export function writeSafetensors(
  path: string,
  tensors: TensorDict,
  opts: { dtype?: WriteDtype; metadata?: Record<string, string> } = {},
): void {
  const dtype = opts.dtype ?? 'F32';
  const bytesPer = DTYPE_BYTES[dtype];
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (opts.metadata && Object.keys(opts.metadata).length > 0) header.__metadata__ = opts.metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new Error(`writeSafetensors: "__metadata__" is reserved (${path})`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) {
      throw new Error(
        `writeSafetensors: tensor "${name}" has shape [${t.shape.join(', ')}] (${numel} values) ` +
          `but ${t.data.length} values (${path})`,
      );
    }
    const len = numel * bytesPer;
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (jsonBytes % 8)) % 8);
  const headerBuf = Buffer.from(json, 'utf8');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(headerBuf.length));

  const tmp = path + '.tmp';
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, lenBuf);
    writeAll(fd, headerBuf);
    for (const [, t] of entries) writeAll(fd, encode(t.data, dtype));
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

// ---------------------------------------------------------------------------------------------

function openOrThrow(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    throw new UserError(`cannot open safetensors file ${path}: ${(e as Error).message}`, { cause: e });
  }
}

function readHeaderFromFd(fd: number, path: string): SafetensorsHeader {
  const fileSize = fstatSync(fd).size;
  const bad = (msg: string) => new UserError(`invalid safetensors file ${path}: ${msg}`);
  if (fileSize < 8) throw bad(`file is ${fileSize} bytes, shorter than the 8-byte header length`);

  const lenBuf = Buffer.alloc(8);
  readExactly(fd, lenBuf, 0, path);
  const headerLen = lenBuf.readBigUInt64LE(0);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    throw bad(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const n = Number(headerLen);
  if (8 + n > fileSize) throw bad(`header length ${n} runs past the end of the file (${fileSize} bytes)`);
  if (n < 2) throw bad(`header length ${n} is too small for a JSON object`);

  const headerBuf = Buffer.alloc(n);
  readExactly(fd, headerBuf, 8, path);
  let parsed: unknown;
  try {
    parsed = JSON.parse(headerBuf.toString('utf8'));
  } catch (e) {
    throw bad(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw bad('header is not a JSON object');
  }

  const dataStart = 8 + n;
  const dataLen = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(`__metadata__ key "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    entries.push(parseEntry(name, raw, dataLen, bad));
  }

  // Offsets must tile [0, dataLen) exactly: sorted by begin, each starts where the previous ended.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin < cursor) throw bad(`tensor "${e.name}" overlaps the previous tensor (offset ${e.begin} < ${cursor})`);
    if (e.begin > cursor) throw bad(`gap in the data before tensor "${e.name}" (bytes ${cursor}..${e.begin} unused)`);
    cursor = e.end;
  }
  if (cursor !== dataLen) {
    throw bad(`tensors cover ${cursor} bytes of data but the file holds ${dataLen} bytes after the header`);
  }
  return { entries, metadata, dataStart };
}

function parseEntry(
  name: string,
  raw: unknown,
  dataLen: number,
  bad: (msg: string) => UserError,
): SafetensorsEntry {
  if (typeof raw !== 'object' || raw === null) throw bad(`tensor "${name}": entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string') throw bad(`tensor "${name}": missing dtype`);
  if (!(dtype in DTYPE_BYTES)) {
    throw bad(`tensor "${name}": unsupported dtype "${dtype}" (readable: ${Object.keys(DTYPE_BYTES).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`tensor "${name}": shape must be an array of non-negative integers`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  ) {
    throw bad(`tensor "${name}": data_offsets must be two non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw bad(`tensor "${name}": data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataLen) {
    throw bad(`tensor "${name}": data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes)`);
  }
  // Exact product in BigInt, so an absurd shape cannot overflow into a plausible size.
  const bytes = (shape as number[]).reduce((acc, d) => acc * BigInt(d), BigInt(DTYPE_BYTES[dtype as ReadDtype]));
  if (bytes !== BigInt(end - begin)) {
    throw bad(
      `tensor "${name}": shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${bytes} ` +
        `bytes but data_offsets span ${end - begin}`,
    );
  }
  return { name, dtype: dtype as ReadDtype, shape: [...(shape as number[])], begin, end };
}

/** Growable buffers reused across tensors: the raw bytes, and the float32 decode of 16-bit ones. */
class Scratch {
  private raw = new ArrayBuffer(0);
  private decoded = new ArrayBuffer(0);
  bytes(n: number): Uint8Array {
    if (this.raw.byteLength < n) this.raw = new ArrayBuffer(n);
    return new Uint8Array(this.raw, 0, n);
  }
  floats(n: number): Float32Array {
    if (this.decoded.byteLength < 4 * n) this.decoded = new ArrayBuffer(4 * n);
    return new Float32Array(this.decoded, 0, n);
  }
}

function readEntry(fd: number, path: string, dataStart: number, e: SafetensorsEntry, scratch: Scratch | null = null): Float32Array {
  const bytes = scratch ? scratch.bytes(e.end - e.begin) : new Uint8Array(e.end - e.begin);
  readExactly(fd, bytes, dataStart + e.begin, path, e.name);
  const numel = bytes.length / DTYPE_BYTES[e.dtype];
  if (e.dtype === 'F32') return new Float32Array(bytes.buffer, 0, numel);
  const half = new Uint16Array(bytes.buffer, 0, numel);
  const out = scratch ? scratch.floats(numel) : new Float32Array(numel);
  if (e.dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < numel; i++) bits[i] = half[i]! << 16;
  } else {
    for (let i = 0; i < numel; i++) out[i] = f16ToF32(half[i]!);
  }
  return out;
}

function readExactly(fd: number, buf: Uint8Array, position: number, path: string, tensor?: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) {
      const what = tensor === undefined ? 'header' : `tensor "${tensor}"`;
      throw new UserError(`invalid safetensors file ${path}: file ends while reading ${what}`);
    }
    done += n;
  }
}

function writeAll(fd: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
}

function encode(data: Float32Array, dtype: WriteDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint16Array(data.length);
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < data.length; i++) out[i] = f32BitsToBf16(bits[i]!);
  return new Uint8Array(out.buffer);
}

/** float32 bits → bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN. */
export function f32BitsToBf16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff;
  const rounding = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + rounding) >>> 16) & 0xffff;
}

/** IEEE half → float32 (subnormals, infinities and NaN included). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
