/** A tiny world for SFT tests: a trained byte-level BPE, a 1-layer Llama and a few dialogues, in a temp folder. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/engine/rng.js';
import { llamaConfig } from '../../src/model/config.js';
import { saveHfModel } from '../../src/model/io/hf.js';
import { initLlama } from '../../src/model/llama.js';
import { loadTokenizer, trainTokenizer } from '../../src/tokenizer/index.js';

const ANIMALS = ['cat', 'dog', 'cow', 'pig', 'owl', 'bee', 'hen', 'fox'];
const SOUNDS = ['meow', 'woof', 'moo', 'oink', 'hoot', 'buzz', 'cluck', 'yip'];

/** Dialogue i: "What does a <animal> say?" → "A <animal> says <sound>." */
export function dialogue(i: number): { messages: { role: string; content: string }[] } {
  const a = i % ANIMALS.length;
  return {
    messages: [
      { role: 'user', content: `What does a ${ANIMALS[a]} say?` },
      { role: 'assistant', content: `A ${ANIMALS[a]} says ${SOUNDS[a]}.` },
    ],
  };
}

export interface TinyWorld {
  dir: string;
  modelDir: string;
  train: string;
  eval: string;
}

export async function makeTinyWorld(opts: { trainRows?: number } = {}): Promise<TinyWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'sft-tiny-'));
  const modelDir = join(dir, 'base');
  const corpus = join(dir, 'corpus.txt');
  const lines = ANIMALS.map((a, i) => `What does a ${a} say? A ${a} says ${SOUNDS[i]}.`);
  writeFileSync(corpus, (lines.join('\n') + '\n').repeat(10));
  await trainTokenizer({ corpusFiles: [corpus], vocabSize: 300, outDir: modelDir });
  const tokenizer = await loadTokenizer(modelDir);
  const cfg = llamaConfig({
    vocab_size: tokenizer.vocabSize,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: tokenizer.padId,
    initializer_range: 0.2,
  });
  const model = initLlama(cfg, new Rng(3));
  saveHfModel(model, modelDir);
  model.dispose();
  const train = join(dir, 'train.jsonl');
  const evalFile = join(dir, 'eval.jsonl');
  const n = opts.trainRows ?? 16;
  writeFileSync(train, Array.from({ length: n }, (_, i) => JSON.stringify(dialogue(i))).join('\n') + '\n');
  writeFileSync(evalFile, [3, 5].map((i) => JSON.stringify(dialogue(i))).join('\n') + '\n');
  return { dir, modelDir, train, eval: evalFile };
}
