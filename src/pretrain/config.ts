/**
 * The `pretrain` stage's config: a Llama trained from scratch on plain text. Every key has a
 * default and a help text here (they feed `--help`, `rlhf ls pretrain` and config.resolved.yaml).
 */
import { z } from 'zod';
import { commonSections, registerStageSchema } from '../config/index.js';

const positiveInt = () => z.number().int().min(1);

/** The LlamaConfig keys that shape the model; the vocabulary size comes from the tokenizer. */
export const pretrainModelSection = z
  .strictObject({
    hidden_size: positiveInt().default(128).describe('Width of the residual stream (HF hidden_size).'),
    intermediate_size: positiveInt().default(384).describe('Width of the SwiGLU MLP (HF intermediate_size).'),
    num_hidden_layers: positiveInt().default(4).describe('Decoder layers.'),
    num_attention_heads: positiveInt().default(4).describe('Query heads; hidden_size / heads must be even.'),
    num_key_value_heads: positiveInt()
      .nullable()
      .default(null)
      .describe('Key/value heads (grouped-query attention); null = num_attention_heads.'),
    max_position_embeddings: positiveInt()
      .default(2048)
      .describe('Longest sequence the saved config declares (RoPE has no learned positions, so later stages may exceed data.seq_len).'),
    rope_theta: z.number().gt(0).default(10000).describe('RoPE base frequency.'),
    rms_norm_eps: z.number().gt(0).default(1e-6).describe('RMSNorm epsilon.'),
    tie_word_embeddings: z.boolean().default(false).describe('Share the embedding matrix with the LM head.'),
    initializer_range: z.number().gt(0).default(0.02).describe('Std of the normal initialisation of every weight matrix.'),
    save_dtype: z
      .enum(['float32', 'bfloat16'])
      .default('float32')
      .describe('Weight dtype of final/model.safetensors (checkpoints are always float32).'),
  })
  .prefault({})
  .describe('Shape of the freshly initialised Llama (HF LlamaConfig keys).');

export const pretrainTokenizerSection = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('Folder with tokenizer.json (+ tokenizer_config.json) to use; null = train a byte-level BPE on data.corpus.'),
    vocab_size: z
      .number()
      .int()
      .min(261)
      .default(1024)
      .describe('Vocabulary of the trained tokenizer (5 special tokens + 256 bytes + merges); ignored with path.'),
    min_pair_count: positiveInt().default(2).describe('The trained tokenizer never merges a pair seen fewer times.'),
  })
  .prefault({})
  .describe('Tokenizer: trained on the corpus, or an existing one.');

export const pretrainDataSection = z
  .strictObject({
    corpus: z
      .array(z.string().min(1))
      .min(1)
      .default(['data/world/corpus.txt'])
      .describe(
        'Text files (.txt) or datasets with a text column (.jsonl, .arrow, .parquet). A relative path not found ' +
          'from the working directory is looked up inside the package (shipped data).',
      ),
    document_separator: z
      .enum(['blank_line', 'line', 'file'])
      .default('blank_line')
      .describe('How a .txt file splits into documents: at blank lines, at every line, or one document per file.'),
    text_column: z.string().min(1).default('text').describe('Column holding the documents in .jsonl/.arrow/.parquet files.'),
    seq_len: z.number().int().min(2).default(128).describe('Tokens per training row.'),
    packing: z
      .boolean()
      .default(true)
      .describe(
        'true: join documents (<s> doc </s>) into one stream cut into full rows, every token a target; ' +
          'false: one document per row, cut at seq_len and padded.',
      ),
    eval_documents: z
      .number()
      .int()
      .min(0)
      .default(500)
      .describe('Documents held out (seeded choice) for the eval loss; 0 = no eval.'),
    eval_max_rows: positiveInt()
      .nullable()
      .default(null)
      .describe('Evaluate on at most this many held-out rows (the first ones); null = all.'),
    token_budget: positiveInt()
      .nullable()
      .default(null)
      .describe('Train on this many tokens (rounded up to whole steps); when set, it replaces train.steps and train.epochs.'),
  })
  .prefault({})
  .describe('Pretraining text and how it becomes rows.');

export const pretrainConfigSchema = z
  .strictObject({
    ...commonSections({
      optim: { lr: 3e-3, weight_decay: 0.1, betas: [0.9, 0.95] },
      schedule: { type: 'cosine', warmup_steps: 30 },
      train: { steps: 600, batch_size: 16, eval_every: 100 },
      checkpoint: { every_steps: 200, keep_last: 2 },
    }),
    model: pretrainModelSection,
    tokenizer: pretrainTokenizerSection,
    data: pretrainDataSection,
  })
  .describe('Train a base Llama from scratch on a text corpus (causal LM loss on every token).');

export type PretrainConfig = z.output<typeof pretrainConfigSchema>;

registerStageSchema('pretrain', pretrainConfigSchema);
