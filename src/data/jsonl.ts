import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { RawRecord } from './records.js';

/**
 * Stream a JSONL file one record at a time. `row` is the 1-based line number. CRLF line ends, blank
 * lines and a trailing newline are tolerated; a line that is not JSON yields `{ row, error }` so the
 * caller can report it with the others instead of stopping at the first.
 */
export async function* readJsonl(path: string): AsyncGenerator<RawRecord> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const rawLine of lines) {
    lineNo++;
    // A UTF-8 byte-order mark can open the first line of files written on Windows.
    const line = lineNo === 1 ? rawLine.replace(/^\uFEFF/, '') : rawLine;
    if (line.trim() === '') continue;
    try {
      yield { row: lineNo, value: JSON.parse(line) as unknown };
    } catch (e) {
      yield { row: lineNo, error: `invalid JSON: ${(e as Error).message}` };
    }
  }
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
