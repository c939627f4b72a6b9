import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { RawRecord } from './records.js';

/**
 * Longest line read as a row (64 MiB). A longer line — a runaway row, or a file that is not JSONL —
 * is reported as a bad row and skipped without being held in memory.
 */
export const MAX_JSONL_LINE_BYTES = 64 * 1024 * 1024;

/**
 * Stream a JSONL file one record at a time. `row` is the 1-based line number. CRLF line ends, blank
 * lines and a trailing newline are tolerated; a line that is not JSON, not valid UTF-8 or longer
 * than `maxLineBytes` yields `{ row, error }` so the caller can report it with the others instead of
 * stopping at the first.
 */
export async function* readJsonl(path: string, opts: { maxLineBytes?: number } = {}): AsyncGenerator<RawRecord> {
  const maxLineBytes = opts.maxLineBytes ?? MAX_JSONL_LINE_BYTES;
  // fatal: invalid bytes are an error, not a silent U+FFFD in the training data.
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let lineNo = 0;
  const parseLine = (bytes: Buffer): RawRecord | null => {
    let line = bytes.toString('utf8');
    // Invalid bytes decode to U+FFFD; only then is the (slower) strict decoder asked whether the
    // file really holds U+FFFD or bytes that are not UTF-8.
    if (line.includes('\uFFFD')) {
      try {
        utf8.decode(bytes);
      } catch {
        return { row: lineNo, error: `invalid UTF-8 (byte ${firstInvalidUtf8(bytes) + 1} of the line)` };
      }
    }
    if (line.endsWith('\r')) line = line.slice(0, -1);
    // A UTF-8 byte-order mark can open the first line of files written on Windows.
    if (lineNo === 1) line = line.replace(/^\uFEFF/, '');
    if (line.trim() === '') return null;
    try {
      return { row: lineNo, value: JSON.parse(line) as unknown };
    } catch (e) {
      return { row: lineNo, error: `invalid JSON: ${(e as Error).message}` };
    }
  };

  let parts: Buffer[] = [];
  let partBytes = 0;
  let tooLong = false; // the current line passed the limit: drop its bytes until its newline
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      lineNo++;
      const bytes = partBytes + nl - start;
      if (tooLong || bytes > maxLineBytes) {
        yield { row: lineNo, error: `line is ${bytes} bytes, over the ${maxLineBytes}-byte limit for one row` };
      } else {
        const rec = parseLine(parts.length === 0 ? chunk.subarray(start, nl) : Buffer.concat([...parts, chunk.subarray(start, nl)]));
        if (rec) yield rec;
      }
      parts = [];
      partBytes = 0;
      tooLong = false;
      start = nl + 1;
    }
    if (start < chunk.length) {
      partBytes += chunk.length - start;
      if (partBytes > maxLineBytes) {
        tooLong = true;
        parts = [];
      } else parts.push(chunk.subarray(start));
    }
  }
  if (partBytes > 0) {
    lineNo++;
    if (tooLong) yield { row: lineNo, error: `line is ${partBytes} bytes, over the ${maxLineBytes}-byte limit for one row` };
    else {
      const rec = parseLine(Buffer.concat(parts));
      if (rec) yield rec;
    }
  }
}

/** Index of the first byte that does not start or continue a valid UTF-8 sequence (for messages). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  // Binary search for the shortest failing prefix; `stream: true` lets a prefix end mid-character.
  const fails = (n: number): boolean => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, n), { stream: true });
      return false;
    } catch {
      return true;
    }
  };
  let lo = 1;
  let hi = bytes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (fails(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo - 1;
}

/** Write rows as JSONL (one JSON object per line, LF, trailing newline), streaming. */
export async function writeJsonl(path: string, rows: Iterable<unknown> | AsyncIterable<unknown>): Promise<number> {
  const out = createWriteStream(path, { encoding: 'utf8' });
  let n = 0;
  try {
    for await (const row of rows) {
      if (!out.write(JSON.stringify(row) + '\n')) await once(out, 'drain');
      n++;
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  return n;
}
