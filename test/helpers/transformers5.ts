/** The checkpoints saved by transformers 5 (test/fixtures/transformers5) and what it computed on them. */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { loadHfModel } from '../../src/model/index.js';

export const TRANSFORMERS5_DIR = join('test', 'fixtures', 'transformers5');

export interface LogitsReference {
  input_ids: number[][];
  logits: number[][][];
}

/** transformers' logits for one fixture variant (e.g. `llama_llama3`). */
export function transformers5Logits(variant: string): LogitsReference {
  const { results } = JSON.parse(readFileSync(join(TRANSFORMERS5_DIR, 'reference.json'), 'utf8')) as { results: Record<string, LogitsReference> };
  const ref = results[variant];
  if (ref === undefined) throw new Error(`no transformers 5 reference for ${variant}`);
  return ref;
}

/** Largest |ours − transformers| over every logit, for the model in `folder` on the reference's ids. */
export function maxLogitDiff(folder: string, ref: LogitsReference): number {
  const model = loadHfModel(folder);
  try {
    const got = tf.tidy(() => model.forward({ inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32') }).logits.arraySync());
    const want = ref.logits.flat(2);
    return Math.max(...got.flat(2).map((v, i) => Math.abs(v - want[i]!)));
  } finally {
    model.dispose();
  }
}
