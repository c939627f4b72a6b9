/**
 * Fresh preference pairs from the latest model(s), unlabelled (Llama 2 §3.2.1: each round's
 * comparisons are sampled from the newest models, two replies per prompt from two model variants
 * or two temperatures). A row is in the preference format with an empty label:
 *
 *   {prompt: [...messages], chosen: [{role: assistant, content: reply A}],
 *    rejected: [{role: assistant, content: reply B}], label: null, sampled: {a: {...}, b: {...}}}
 *
 * Until someone labels it, `chosen` holds reply A and `rejected` reply B in sampling order; the
 * label (`"a"` or `"b"`: which sample was preferred) is what an annotator adds, reordering the row
 * so `chosen` is the preferred reply. Training stages refuse rows whose label is null.
 */
import type { Message } from '../data/schemas.js';
import { Rng } from '../engine/rng.js';
import { loadAdapter } from '../lora/index.js';
import { loadHfModel } from '../model/index.js';
import { loadTokenizer, pickTemplate, type TemplateName } from '../tokenizer/index.js';
import { sampleChatReplies } from './chat.js';

/** Where one side's replies come from. */
export interface PairSide {
  model: string;
  adapter: string | null;
  temperature: number;
  topP: number;
}

export interface UnlabelledPair {
  prompt: Message[];
  chosen: Message[];
  rejected: Message[];
  label: null;
  sampled: { a: SideRecord; b: SideRecord };
}

/** What the row records about each side (so a later analysis can tell the variants apart). */
export interface SideRecord {
  model: string;
  adapter: string | null;
  temperature: number;
  finished: boolean;
}

export interface SamplePairsOptions {
  template: TemplateName | 'auto';
  maxNewTokens: number;
  batchSize: number;
  seed: number;
}

/**
 * Replies from side A and side B to every prompt (B with its own random source), as unlabelled
 * pairs. A prompt where either reply is empty (the turn ended at once) gives no row — a preference
 * row needs text on both sides — and is counted in `emptyDropped`.
 */
export async function samplePairs(
  prompts: readonly Message[][],
  sides: readonly [PairSide, PairSide],
  opts: SamplePairsOptions,
): Promise<{ rows: UnlabelledPair[]; emptyDropped: number }> {
  const drawn: Array<{ replies: string[]; finished: boolean[] }> = [];
  for (const [i, side] of sides.entries()) drawn.push(await sampleSide(prompts, side, opts, new Rng((opts.seed + i * 0x9e3779b1) >>> 0)));
  const [a, b] = drawn as [(typeof drawn)[0], (typeof drawn)[0]];
  const record = (s: PairSide, finished: boolean): SideRecord => ({ model: s.model, adapter: s.adapter, temperature: s.temperature, finished });
  const rows: UnlabelledPair[] = [];
  prompts.forEach((prompt, i) => {
    if (a.replies[i] === '' || b.replies[i] === '') return;
    rows.push({
      prompt: [...prompt],
      chosen: [{ role: 'assistant', content: a.replies[i]! }],
      rejected: [{ role: 'assistant', content: b.replies[i]! }],
      label: null,
      sampled: { a: record(sides[0], a.finished[i]!), b: record(sides[1], b.finished[i]!) },
    });
  });
  return { rows, emptyDropped: prompts.length - rows.length };
}

async function sampleSide(prompts: readonly Message[][], side: PairSide, opts: SamplePairsOptions, rng: Rng): Promise<{ replies: string[]; finished: boolean[] }> {
  const tokenizer = await loadTokenizer(side.model);
  const model = loadHfModel(side.model);
  try {
    if (side.adapter !== null) loadAdapter(model, side.adapter);
    return sampleChatReplies(model, tokenizer, prompts, {
      template: pickTemplate(opts.template, tokenizer),
      maxNewTokens: opts.maxNewTokens,
      temperature: side.temperature,
      topP: side.topP,
      batchSize: opts.batchSize,
      rng,
    });
  } finally {
    model.dispose();
  }
}
