/**
 * Drawing and scoring the K samples per prompt, chunk by chunk, so a killed run resumes at the
 * first unfinished chunk with exactly the samples an uninterrupted run would draw: chunk c always
 * holds the same prompts and uses its own random source, seeded from (seed, c).
 *
 * `samples.jsonl` holds one line per prompt — {chunk, index, prompt, replies, rewards, finished} —
 * and a chunk's lines are appended with one write once the chunk is scored; `settings.json` beside
 * it says what the samples depend on (other settings: the samples are drawn again).
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../config/write.js';
import type { Message } from '../data/schemas.js';
import { Rng } from '../engine/rng.js';
import type { ScoredPrompt } from './select.js';

export const SAMPLES_DIR = 'samples';
export const SAMPLES_FILE = 'samples.jsonl';
export const SETTINGS_FILE = 'settings.json';

/** K replies to each prompt (prompt i's are replies[i·K … i·K + K − 1]) and whether each ended with a turn end. */
export type ReplySampler = (prompts: readonly Message[][], k: number, rng: Rng) => { replies: string[]; finished: boolean[] };

/** One reward per (prompt, reply), higher is better. */
export type ReplyScorer = (prompts: readonly Message[][], replies: readonly string[]) => number[] | Promise<number[]>;

export interface SampledPrompt extends ScoredPrompt {
  /** Position of the prompt in the sampled list. */
  index: number;
  finished: boolean[];
}

/** The random source of chunk `c`: a pure function of the seed and the chunk. */
export function chunkRng(seed: number, chunk: number): Rng {
  return new Rng((seed + Math.imul(chunk + 1, 0x9e3779b1)) >>> 0);
}

/** Prompts per chunk: the K copies of ⌊batchSize / K⌋ prompts fill one generation batch. */
export function promptsPerChunk(batchSize: number, k: number): number {
  return Math.max(1, Math.floor(batchSize / k));
}

export interface SampleRunOptions {
  /** The run's samples folder. */
  dir: string;
  prompts: readonly { key: string; prompt: Message[] }[];
  k: number;
  batchSize: number;
  seed: number;
  /** Everything else the samples depend on (models, temperature, …): compared with settings.json. */
  settings: Record<string, unknown>;
  sample: ReplySampler;
  score: ReplyScorer;
  /** Checked after each chunk; true stops sampling (the chunks written so far are kept). */
  shouldStop?: () => Promise<boolean>;
  onChunk?: (chunksDone: number, chunks: number, last: SampledPrompt[]) => void;
  log?: (message: string) => void;
}

export type SampleRunResult = { complete: true; prompts: SampledPrompt[]; reused: number } | { complete: false; chunksDone: number; chunks: number };

/** Everything the samples depend on, as settings.json records it. */
export function fullSettings(opts: Pick<SampleRunOptions, 'settings' | 'k' | 'batchSize' | 'seed' | 'prompts'>): Record<string, unknown> {
  return { ...opts.settings, k: opts.k, batch_size: opts.batchSize, seed: opts.seed, prompts: sha256(opts.prompts.map((p) => p.key).join('\n')) };
}

/** Whether `dir` holds samples drawn under `settings` (complete or not). */
export function samplesMatch(dir: string, settings: Record<string, unknown>): boolean {
  const path = join(dir, SETTINGS_FILE);
  if (!existsSync(path)) return false;
  try {
    return JSON.stringify(JSON.parse(readFileSync(path, 'utf8'))) === JSON.stringify(settings);
  } catch {
    return false;
  }
}

/** Draw and score what is missing; reuse every complete chunk already in `dir` under the same settings. */
export async function sampleAndScore(opts: SampleRunOptions): Promise<SampleRunResult> {
  const log = opts.log ?? (() => undefined);
  const settings = fullSettings(opts);
  const file = join(opts.dir, SAMPLES_FILE);
  if (!samplesMatch(opts.dir, settings)) {
    if (existsSync(opts.dir)) log(`rs: sampling settings changed; drawing the samples in ${opts.dir} again`);
    rmSync(opts.dir, { recursive: true, force: true });
    mkdirSync(opts.dir, { recursive: true });
    writeFileAtomic(join(opts.dir, SETTINGS_FILE), JSON.stringify(settings) + '\n');
    writeFileSync(file, '');
  }
  const per = promptsPerChunk(opts.batchSize, opts.k);
  const chunks = Math.ceil(opts.prompts.length / per);
  const done = readCompleteChunks(file, per, opts.prompts.length, opts.k);
  const out: SampledPrompt[] = done.flat();
  if (done.length > 0) log(`rs: reusing ${done.length} of ${chunks} sampled chunks from ${file}`);

  for (let c = done.length; c < chunks; c++) {
    const part = opts.prompts.slice(c * per, (c + 1) * per);
    const { replies, finished } = opts.sample(part.map((p) => p.prompt), opts.k, chunkRng(opts.seed, c));
    const repeated = part.flatMap((p) => Array.from({ length: opts.k }, () => p.prompt));
    const rewards = await opts.score(repeated, replies);
    if (replies.length !== repeated.length || rewards.length !== repeated.length) {
      throw new Error(`rs: chunk ${c}: ${replies.length} replies and ${rewards.length} rewards for ${repeated.length} samples`);
    }
    const rows: SampledPrompt[] = part.map((p, i) => {
      const span = (xs: readonly unknown[]) => xs.slice(i * opts.k, (i + 1) * opts.k);
      return {
        index: c * per + i,
        key: p.key,
        prompt: p.prompt,
        replies: span(replies) as string[],
        rewards: span(rewards) as number[],
        finished: span(finished) as boolean[],
      };
    });
    // One write per chunk: a crash leaves whole chunks and at most one torn line, which is dropped on resume.
    appendFileSync(file, rows.map((r) => JSON.stringify({ chunk: c, ...r }) + '\n').join(''));
    out.push(...rows);
    opts.onChunk?.(c + 1, chunks, rows);
    if (c + 1 < chunks && opts.shouldStop && (await opts.shouldStop())) return { complete: false, chunksDone: c + 1, chunks };
  }
  return { complete: true, prompts: out, reused: done.length };
}

/**
 * The leading complete chunks of a samples file; anything after them (a torn line, a partial
 * chunk) is cut off the file so new chunks append cleanly.
 */
function readCompleteChunks(file: string, per: number, total: number, k: number): SampledPrompt[][] {
  if (!existsSync(file)) {
    writeFileSync(file, '');
    return [];
  }
  const chunks: SampledPrompt[][] = [];
  let current: SampledPrompt[] = [];
  let keptText = '';
  let pending = '';
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    let row: SampledPrompt & { chunk: number };
    try {
      row = JSON.parse(line) as SampledPrompt & { chunk: number };
    } catch {
      break; // a torn last line
    }
    const c = chunks.length;
    if (row.chunk !== c || row.index !== c * per + current.length || row.rewards?.length !== k) break;
    current.push({ index: row.index, key: row.key, prompt: row.prompt, replies: row.replies, rewards: row.rewards, finished: row.finished });
    pending += line + '\n';
    if (current.length === Math.min(per, total - c * per)) {
      chunks.push(current);
      keptText += pending;
      current = [];
      pending = '';
    }
  }
  writeFileAtomic(file, keptText);
  return chunks;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
