/**
 * Parameter count and a memory estimate for a Llama config (`rlhf env --model DIR`), computed from
 * the shapes alone: no weight is loaded.
 */
import { isSequenceClassification, headDim, ropeSettings, type LlamaConfig } from './config.js';
import { describeRope } from './rope.js';
import { hasQkNorm, slidingWindow } from './families.js';
import { llamaParamShapes } from './names.js';

export interface ModelDescription {
  parameters: number;
  embeddingParameters: number;
  parametersPerLayer: number;
  /** Weights in float32 / bfloat16. */
  weightBytes: { f32: number; bf16: number };
  /** Full fine-tuning with AdamW in float32: weights + gradients + two moments (16 bytes a parameter). */
  fullTrainingStateBytes: number;
  /** Keys and values of one token across all layers (float32). */
  kvCacheBytesPerToken: number;
  /** Rough float32 activations kept for backprop for `batchSize` × `seqLen` tokens. */
  activationBytes: number;
  batchSize: number;
  seqLen: number;
  /** One line per fact, for printing. */
  lines: string[];
}

export function describeModel(
  cfg: LlamaConfig,
  opts: { batchSize?: number; seqLen?: number } = {},
): ModelDescription {
  const batchSize = opts.batchSize ?? 1;
  const seqLen = opts.seqLen ?? cfg.max_position_embeddings;
  const isSeqCls = isSequenceClassification(cfg);
  const shapes = llamaParamShapes(cfg, { lmHead: !cfg.tie_word_embeddings && !isSeqCls, score: isSeqCls });
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  let parameters = 0;
  let layer0 = 0;
  for (const [name, s] of shapes) {
    parameters += size(s);
    if (name.startsWith('model.layers.0.')) layer0 += size(s);
  }
  const hd = headDim(cfg);
  const h = cfg.hidden_size;
  const kvCacheBytesPerToken = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * hd * 4;

  // Per token and layer, the tensors autograd keeps: the two norm inputs and outputs (4H), q/k/v
  // and the attention context (2·nh·hd + 2·nkv·hd), scores and probabilities (2·nh·S), and the
  // MLP's gate, up, silu(gate) and product (4I). Plus logits and their softmax (2V) at the end.
  const perTokenLayer =
    4 * h + 2 * cfg.num_attention_heads * hd + 2 * cfg.num_key_value_heads * hd +
    2 * cfg.num_attention_heads * seqLen + 4 * cfg.intermediate_size;
  const tokens = batchSize * seqLen;
  const activationBytes = 4 * tokens * (cfg.num_hidden_layers * perTokenLayer + 2 * cfg.vocab_size);

  const d: ModelDescription = {
    parameters,
    embeddingParameters: cfg.vocab_size * h,
    parametersPerLayer: layer0,
    weightBytes: { f32: 4 * parameters, bf16: 2 * parameters },
    fullTrainingStateBytes: 16 * parameters,
    kvCacheBytesPerToken,
    activationBytes,
    batchSize,
    seqLen,
    lines: [],
  };
  d.lines = [
    `parameters: ${parameters.toLocaleString('en-US')} (${formatCount(parameters)}; embedding ${formatCount(d.embeddingParameters)}, ${formatCount(layer0)} per layer × ${cfg.num_hidden_layers})`,
    `layout: hidden ${h}, ${cfg.num_attention_heads} heads (${cfg.num_key_value_heads} KV) × ${hd}, intermediate ${cfg.intermediate_size}, vocab ${cfg.vocab_size}, ${cfg.tie_word_embeddings ? 'tied' : 'untied'} embeddings`,
    `weights: ${formatBytes(d.weightBytes.f32)} float32, ${formatBytes(d.weightBytes.bf16)} bfloat16`,
    `full fine-tuning state (weights + grads + AdamW): ${formatBytes(d.fullTrainingStateBytes)}`,
    `KV cache: ${formatBytes(kvCacheBytesPerToken)} per token`,
    `activations (estimate) for batch ${batchSize} × seq ${seqLen}: ${formatBytes(activationBytes)}`,
    `family: ${cfg.model_type} (${cfg.architectures?.join(', ') ?? 'no architectures'}), RoPE ${describeRope(ropeSettings(cfg))}` +
      (hasQkNorm(cfg) ? ', q/k RMSNorm per head' : '') +
      (slidingWindow(cfg) !== null ? `, sliding window ${slidingWindow(cfg)}` : ''),
  ];
  return d;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
