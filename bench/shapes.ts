/**
 * The small-model shapes users fine-tune (issue 16), as HF folders with random seeded weights in the
 * exact Hugging Face layout — nothing is downloaded:
 *
 *   node dist/bench/shapes.js NAME DIR [--dtype F32|BF16] [--seed N] [--reward]
 *   NAME: smollm-135m | smollm-360m | qwen2.5-0.5b | tinyllama-1.1b
 *
 * DIR gets config.json, model.safetensors (N(0, 0.02²) linears and embeddings, unit norms, as HF's
 * `_init_weights`), generation_config.json and the bundled world tokenizer (its vocabulary is far
 * smaller than the model's: every id it makes is a valid row of the embedding). Weights are float32
 * by default (what `transformers` saves a freshly made model in); TinyLlama is written in bfloat16,
 * as its hub checkpoint is, unless `--dtype F32`. `--reward` writes a reward model instead
 * (LlamaForSequenceClassification: the backbone and `score.weight` [1, hidden], no LM head).
 *
 * The Qwen2.5-0.5B row is its *shape* as a Llama (vocab 151,936, hidden 896, 24 layers, 14 heads /
 * 2 KV, MLP 4864, tied): Qwen2's q/k/v biases are left out, which changes no memory or speed figure
 * that matters here (they are 1,152 numbers a layer).
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/engine/rng.js';
import { causalLmArchitecture, configToJson, sequenceClassificationArchitecture, llamaConfig, type LlamaConfig } from '../src/model/config.js';
import { writeSafetensors, type NamedTensor, type WriteDtype } from '../src/model/io/safetensors.js';
import { EMBED, llamaParamShapes } from '../src/model/names.js';

export interface ModelShape {
  name: string;
  config: LlamaConfig;
  /** What the hub checkpoint stores its weights in. */
  dtype: WriteDtype;
}

export const MODEL_SHAPES: ModelShape[] = [
  {
    name: 'smollm-135m', // HuggingFaceTB/SmolLM-135M
    config: llamaConfig({
      vocab_size: 49152, hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9,
      num_key_value_heads: 3, tie_word_embeddings: true, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 2048,
      bos_token_id: 0, eos_token_id: 0,
    }),
    dtype: 'F32',
  },
  {
    name: 'smollm-360m', // HuggingFaceTB/SmolLM-360M
    config: llamaConfig({
      vocab_size: 49152, hidden_size: 960, intermediate_size: 2560, num_hidden_layers: 32, num_attention_heads: 15,
      num_key_value_heads: 5, tie_word_embeddings: true, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 2048,
      bos_token_id: 0, eos_token_id: 0,
    }),
    dtype: 'F32',
  },
  {
    name: 'qwen2.5-0.5b', // Qwen/Qwen2.5-0.5B's shape (see the header)
    config: llamaConfig({
      vocab_size: 151936, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14,
      num_key_value_heads: 2, tie_word_embeddings: true, rms_norm_eps: 1e-6, rope_theta: 1000000, max_position_embeddings: 32768,
      bos_token_id: 151643, eos_token_id: 151643,
    }),
    dtype: 'F32',
  },
  {
    name: 'tinyllama-1.1b', // TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T
    config: llamaConfig({
      vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32,
      num_key_value_heads: 4, tie_word_embeddings: false, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 2048,
      bos_token_id: 1, eos_token_id: 2,
    }),
    dtype: 'BF16',
  },
];

export function modelShape(name: string): ModelShape {
  const s = MODEL_SHAPES.find((m) => m.name === name);
  if (!s) throw new Error(`bench/shapes: unknown shape "${name}" (one of ${MODEL_SHAPES.map((m) => m.name).join(', ')})`);
  return s;
}

const WORLD_TOKENIZER = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'data', 'world', 'base');

/** Write `shape` as an HF folder in `dir` with weights drawn from `seed`. */
export function writeShapeFolder(shape: ModelShape, dir: string, opts: { seed?: number; dtype?: WriteDtype; reward?: boolean } = {}): void {
  const cfg = {
    ...shape.config,
    torch_dtype: (opts.dtype ?? shape.dtype) === 'BF16' ? 'bfloat16' : 'float32',
    architectures: [opts.reward ? sequenceClassificationArchitecture(shape.config) : causalLmArchitecture(shape.config)],
    ...(opts.reward ? { num_labels: 1 } : {}),
  } as LlamaConfig;
  const rng = new Rng(opts.seed ?? 0);
  const tensors = new Map<string, NamedTensor>();
  for (const [name, dims] of llamaParamShapes(cfg, { lmHead: !cfg.tie_word_embeddings && !opts.reward, score: opts.reward ?? false })) {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    if (name.endsWith('norm.weight')) data.fill(1);
    else if (!name.endsWith('.bias')) rng.fillNormal(data, cfg.initializer_range);
    tensors.set(name, { shape: dims, data });
  }
  if (!tensors.has(EMBED)) throw new Error('bench/shapes: no embedding');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(configToJson(cfg), null, 2) + '\n');
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: cfg.bos_token_id, eos_token_id: cfg.eos_token_id }, null, 2) + '\n');
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { dtype: opts.dtype ?? shape.dtype, metadata: { format: 'pt' } });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    if (existsSync(join(WORLD_TOKENIZER, f))) copyFileSync(join(WORLD_TOKENIZER, f), join(dir, f));
  }
}

function main(argv: string[]): void {
  const [name, dir, ...rest] = argv;
  if (name === undefined || dir === undefined) {
    console.error(`usage: node dist/bench/shapes.js NAME DIR [--dtype F32|BF16] [--seed N]; NAME: ${MODEL_SHAPES.map((m) => m.name).join(' | ')}`);
    process.exit(2);
  }
  let dtype: WriteDtype | undefined;
  let seed = 0;
  let reward = false;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--dtype') dtype = rest[++i] as WriteDtype;
    else if (rest[i] === '--reward') reward = true;
    else if (rest[i] === '--seed') seed = Number(rest[++i]);
    else throw new Error(`bench/shapes: unknown argument ${rest[i]}`);
  }
  const started = performance.now();
  writeShapeFolder(modelShape(name), dir, { seed, reward, ...(dtype ? { dtype } : {}) });
  console.log(`${name}: written to ${dir} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2));
