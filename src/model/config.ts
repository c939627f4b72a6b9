/**
 * LlamaConfig with the exact keys of Hugging Face's `config.json` for `model_type: "llama"` (and
 * `"qwen2"`, `"qwen3"`, `"mistral"`: the same decoder with the differences in ./families.ts), the
 * defaults of `transformers.LlamaConfig`, and a parser that reports every problem at once. RoPE
 * settings are read from either spelling (transformers 4.x `rope_theta` + `rope_scaling`, 5.x
 * `rope_parameters`): see ./rope.ts.
 */
import { UserError } from '../errors.js';
import { ARCH_PREFIX, SUPPORTED_FAMILIES, familyProblems, isSupportedFamily, type ModelFamily } from './families.js';
import { readRopeSettings, type RopeSettings } from './rope.js';

export { SUPPORTED_FAMILIES, attentionBiases, type ModelFamily } from './families.js';

export interface LlamaConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  /** Per-head width; HF defaults it to hidden_size / num_attention_heads. */
  head_dim?: number;
  rms_norm_eps: number;
  rope_theta: number;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  pad_token_id: number | null;
  hidden_act: 'silu';
  attention_bias: boolean;
  mlp_bias: boolean;
  initializer_range: number;
  architectures: string[];
  model_type: ModelFamily;
  torch_dtype: 'float32' | 'bfloat16' | 'float16';
  /** Anything else found in config.json (kept so a load → save round trip loses nothing). */
  [extra: string]: unknown;
}

/** Architectures this package writes: a causal LM, or a backbone with a scalar `score` head. */
export const CAUSAL_LM = 'LlamaForCausalLM';
export const SEQUENCE_CLASSIFICATION = 'LlamaForSequenceClassification';

/** HF LlamaConfig's defaults for every key that is not a size (GQA defaults to one KV head per head). */
function llamaDefaults(heads: number): Omit<LlamaConfig, 'vocab_size' | 'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'num_attention_heads'> {
  return {
    num_key_value_heads: heads,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    max_position_embeddings: 2048,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: null,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    initializer_range: 0.02,
    architectures: [CAUSAL_LM],
    model_type: 'llama',
    torch_dtype: 'float32',
  };
}

/** Build a full config from the sizes that matter, filling HF's defaults for the rest. */
export function llamaConfig(
  sizes: Pick<LlamaConfig, 'vocab_size' | 'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'num_attention_heads'> &
    Partial<LlamaConfig>,
): LlamaConfig {
  const cfg = { ...llamaDefaults(sizes.num_attention_heads), ...sizes } as LlamaConfig;
  const problems = validateConfig(cfg);
  if (problems.length > 0) throw new UserError(`invalid Llama config: ${problems.join('; ')}`);
  return cfg;
}

export function headDim(cfg: LlamaConfig): number {
  return cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads;
}

/** EOS ids as a list (HF allows a number or a list). */
export function eosTokenIds(cfg: LlamaConfig): number[] {
  const e = cfg.eos_token_id;
  return e === null || e === undefined ? [] : Array.isArray(e) ? e : [e];
}

/** Parse a config.json object; `source` (the file path) goes into the error message. */
export function parseLlamaConfig(json: unknown, source: string): LlamaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new UserError(`${source}: expected a JSON object`);
  }
  const raw = json as Record<string, unknown>;
  const problems: string[] = [];
  if (raw.model_type !== undefined && !isSupportedFamily(raw.model_type)) {
    problems.push(`model_type "${String(raw.model_type)}" is not supported (supported: ${SUPPORTED_FAMILIES.join(', ')})`);
  }
  problems.push(...familyProblems(raw));
  const rope = readRopeSettings(raw, problems);
  if (raw.pretraining_tp !== undefined && raw.pretraining_tp !== 1) {
    problems.push('pretraining_tp must be 1');
  }
  for (const key of ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads']) {
    if (raw[key] === undefined) problems.push(`${key} is required`);
  }
  if (problems.length > 0) throw new UserError(`${source}: ${problems.join('; ')}`);

  const cfg = llamaConfigUnchecked(raw);
  normalizeRope(cfg, rope!);
  const more = validateConfig(cfg);
  if (more.length > 0) throw new UserError(`${source}: ${more.join('; ')}`);
  return cfg;
}

/**
 * Write the settings back in both spellings, consistently: top-level `rope_theta` (+ `rope_scaling`
 * when scaled) for transformers 4.x; a `rope_parameters` read from the file stays for 5.x.
 */
function normalizeRope(cfg: LlamaConfig, rope: RopeSettings): void {
  cfg.rope_theta = rope.theta;
  if (rope.type === 'default') {
    delete cfg.rope_scaling;
    return;
  }
  const scaling: Record<string, unknown> = { rope_type: rope.type, factor: rope.factor };
  if (rope.type === 'llama3') {
    scaling.low_freq_factor = rope.lowFreqFactor;
    scaling.high_freq_factor = rope.highFreqFactor;
    scaling.original_max_position_embeddings = rope.originalMaxPositionEmbeddings;
  }
  cfg.rope_scaling = scaling;
}

/** RoPE settings of a parsed config (throws on settings `parseLlamaConfig` would have refused). */
export function ropeSettings(cfg: LlamaConfig): RopeSettings {
  const problems: string[] = [];
  const rope = readRopeSettings(cfg, problems);
  if (rope === null) throw new UserError(`invalid RoPE settings: ${problems.join('; ')}`);
  return rope;
}

/** `LlamaForCausalLM`, `Qwen2ForCausalLM`, … for this config's family. */
export function causalLmArchitecture(cfg: Pick<LlamaConfig, 'model_type'>): string {
  return `${ARCH_PREFIX[cfg.model_type] ?? 'Llama'}ForCausalLM`;
}

/** `LlamaForSequenceClassification`, `Qwen2ForSequenceClassification`, … */
export function sequenceClassificationArchitecture(cfg: Pick<LlamaConfig, 'model_type'>): string {
  return `${ARCH_PREFIX[cfg.model_type] ?? 'Llama'}ForSequenceClassification`;
}

/** Whether config.json names a `*ForSequenceClassification` architecture (a backbone with a score head). */
export function isSequenceClassification(cfg: LlamaConfig): boolean {
  return cfg.architectures?.some((a) => a.endsWith('ForSequenceClassification')) ?? false;
}

function llamaConfigUnchecked(raw: Record<string, unknown>): LlamaConfig {
  const cfg = llamaDefaults(raw.num_attention_heads as number) as Record<string, unknown>;
  for (const [k, v] of Object.entries(raw)) {
    // HF writes `num_key_value_heads: null` / `head_dim: null` to mean "use the default".
    if (v === null && (k === 'num_key_value_heads' || k === 'head_dim')) continue;
    cfg[k] = v;
  }
  return cfg as LlamaConfig;
}

function validateConfig(cfg: LlamaConfig): string[] {
  const problems: string[] = [];
  const posInt = (k: keyof LlamaConfig) => {
    const v = cfg[k];
    if (!Number.isSafeInteger(v) || (v as number) <= 0) problems.push(`${String(k)} must be a positive integer (got ${JSON.stringify(v)})`);
  };
  for (const k of ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'max_position_embeddings'] as const) {
    posInt(k);
  }
  if (cfg.head_dim !== undefined) posInt('head_dim');
  for (const k of ['rms_norm_eps', 'rope_theta', 'initializer_range'] as const) {
    if (typeof cfg[k] !== 'number' || !((cfg[k] as number) > 0)) problems.push(`${k} must be a positive number`);
  }
  if (problems.length > 0) return problems;
  if (cfg.num_attention_heads % cfg.num_key_value_heads !== 0) {
    problems.push(
      `num_attention_heads (${cfg.num_attention_heads}) must be a multiple of num_key_value_heads (${cfg.num_key_value_heads})`,
    );
  }
  const hd = headDim(cfg);
  if (!Number.isInteger(hd) || hd % 2 !== 0) {
    problems.push(`head_dim (${hd}) must be an even integer (set head_dim or make hidden_size divisible by num_attention_heads)`);
  }
  if (cfg.hidden_act !== 'silu') problems.push(`hidden_act "${String(cfg.hidden_act)}" is not supported (only "silu")`);
  if (typeof cfg.tie_word_embeddings !== 'boolean') problems.push('tie_word_embeddings must be true or false');
  for (const k of ['bos_token_id', 'pad_token_id'] as const) {
    const v = cfg[k];
    if (v !== null && v !== undefined && (!Number.isSafeInteger(v) || (v as number) < 0)) problems.push(`${k} must be a token id or null`);
  }
  for (const id of eosTokenIdsLoose(cfg.eos_token_id)) {
    if (!Number.isSafeInteger(id) || id < 0) problems.push('eos_token_id must be a token id, a list of ids, or null');
  }
  return problems;
}

function eosTokenIdsLoose(e: unknown): number[] {
  return e === null || e === undefined ? [] : Array.isArray(e) ? (e as number[]) : [e as number];
}

/** The object written to config.json (key order: HF's usual). */
export function configToJson(cfg: LlamaConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...cfg };
  if (out.head_dim === undefined) out.head_dim = headDim(cfg);
  return out;
}
