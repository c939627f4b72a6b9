/**
 * Shared pieces of the reliability tests: run the real CLI in-process with every output channel
 * captured, and build hostile safetensors files byte by byte.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { run, type CliIo } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  /** Everything printed: run()'s io, console.*, process.stdout / stderr. */
  output: string;
  /** True when the command did not finish within the time limit. */
  hung: boolean;
}

/** A stack frame as V8 prints it (`    at fn (file.js:1:2)`). */
export const STACK_FRAME = /^\s+at .+(:\d+:\d+\)?|\(native\)|<anonymous>\)?)$/m;

/**
 * `rlhf ...argv` in-process, with console and process streams captured so a stray stack trace
 * printed anywhere is seen. Resolves with `hung: true` instead of waiting past `timeoutMs`.
 */
export async function runCli(argv: string[], timeoutMs = 20_000): Promise<CliResult> {
  const chunks: string[] = [];
  const io: CliIo = { out: (t) => void chunks.push(t), err: (t) => void chunks.push(t), debug: false };
  const saved = {
    log: console.log,
    info: console.info,
    warn: console.warn,
    error: console.error,
    stdout: process.stdout.write,
    stderr: process.stderr.write,
  };
  const capture = (...args: unknown[]) => void chunks.push(args.map(String).join(' '));
  console.log = console.info = console.warn = console.error = capture;
  const write = ((chunk: unknown) => (chunks.push(String(chunk)), true)) as typeof process.stdout.write;
  process.stdout.write = write;
  process.stderr.write = write;
  let timer: NodeJS.Timeout | undefined;
  try {
    const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), timeoutMs)));
    const code = await Promise.race([run(argv, io), hang]);
    return { code: code === 'hang' ? -1 : code, output: chunks.join('\n'), hung: code === 'hang' };
  } finally {
    clearTimeout(timer);
    Object.assign(console, { log: saved.log, info: saved.info, warn: saved.warn, error: saved.error });
    process.stdout.write = saved.stdout;
    process.stderr.write = saved.stderr;
  }
}

/** A raw safetensors file: 8-byte little-endian header length, header (JSON or raw text), data. */
export function safetensorsBytes(header: unknown, data: Uint8Array, lengthOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

export interface ParsedSafetensors {
  header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  data: Buffer;
}

/** Split a (valid) safetensors file into its header object and data bytes, for mutation. */
export function parseSafetensorsFile(path: string): ParsedSafetensors {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')), data: bytes.subarray(8 + n) };
}

/** Read `path`, let `mutate` edit its header (and optionally return new data bytes), write it back. */
export function mutateSafetensors(path: string, mutate: (p: ParsedSafetensors) => Buffer | void): void {
  const parsed = parseSafetensorsFile(path);
  const data = mutate(parsed) ?? parsed.data;
  writeFileSync(path, safetensorsBytes(parsed.header, data));
}
