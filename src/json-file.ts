import { readFileSync } from 'node:fs';
import { UserError } from './errors.js';

/** Parse a JSON file; a syntax error is a UserError naming the file. Read errors pass through. */
export function readJsonFile(path: string): unknown {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}
