/**
 * What differs between the decoder families this package computes, each as its `transformers`
 * modelling file does it (modeling_llama.py, modeling_qwen2.py, modeling_qwen3.py,
 * modeling_mistral.py; eager attention). Everything else — RMSNorm, RoPE (incl. scaling), GQA,
 * SwiGLU MLP, tied or untied head — is shared and lives in ./llama.ts.
 *
 * | family  | q/k/v bias        | o bias            | MLP bias  | q/k RMSNorm | sliding window            |
 * | llama   | attention_bias    | attention_bias    | mlp_bias  | —           | —                         |
 * | qwen2   | always            | never             | never     | —           | refused when switched on  |
 * | qwen3   | attention_bias    | attention_bias    | never     | per head    | refused when switched on  |
 * | mistral | never             | never             | never     | —           | `sliding_window`, all layers |
 */

/** Families as transformers names them in `model_type`. */
export const SUPPORTED_FAMILIES = ['llama', 'qwen2', 'qwen3', 'mistral'] as const;
export type ModelFamily = (typeof SUPPORTED_FAMILIES)[number];

/** The class-name prefix transformers uses: `LlamaForCausalLM`, `Qwen3ForSequenceClassification`, … */
export const ARCH_PREFIX: Record<ModelFamily, string> = { llama: 'Llama', qwen2: 'Qwen2', qwen3: 'Qwen3', mistral: 'Mistral' };

/** The config keys the family-specific parts read (a subset of config.json). */
export interface FamilyKeys {
  model_type: ModelFamily;
  attention_bias?: unknown;
  mlp_bias?: unknown;
  sliding_window?: unknown;
  [key: string]: unknown;
}

export function isSupportedFamily(t: unknown): t is ModelFamily {
  return (SUPPORTED_FAMILIES as readonly unknown[]).includes(t);
}

/** Biases of the attention projections (transformers' `bias=` of q/k/v_proj and o_proj). */
export function attentionBiases(cfg: FamilyKeys): { qkv: boolean; o: boolean } {
  switch (cfg.model_type) {
    case 'qwen2':
      return { qkv: true, o: false }; // Qwen2Attention: bias=True on q/k/v, False on o
    case 'mistral':
      return { qkv: false, o: false }; // MistralAttention: no biases (attention_bias is not read)
    default: {
      const b = cfg.attention_bias === true; // llama, qwen3: attention_bias on all four
      return { qkv: b, o: b };
    }
  }
}

/** Biases of gate/up/down: only llama reads `mlp_bias`. */
export function mlpBias(cfg: FamilyKeys): boolean {
  return cfg.model_type === 'llama' && cfg.mlp_bias === true;
}

/** Qwen3 normalises each query and key head (RMSNorm over head_dim, weights `q_norm`/`k_norm`) before RoPE. */
export function hasQkNorm(cfg: FamilyKeys): boolean {
  return cfg.model_type === 'qwen3';
}

/**
 * The attention window: a key k is visible from query q when q − window < k ≤ q (the current token
 * counted in the window), as transformers' sliding-window mask; null = full causal attention.
 * Only mistral applies `sliding_window` (to every layer); qwen2/qwen3 windows are refused at parse.
 */
export function slidingWindow(cfg: FamilyKeys): number | null {
  if (cfg.model_type !== 'mistral') return null;
  const w = cfg.sliding_window;
  return typeof w === 'number' ? w : null;
}

/**
 * Keys of other transformers families (or options of these) that change the maths and that this
 * package does not compute: a config carrying one is refused by name, never run without it.
 */
const UNSUPPORTED_MATH_KEYS: Record<string, string> = {
  attn_logit_softcapping: 'attention logit soft-capping (Gemma 2)',
  final_logit_softcapping: 'final logit soft-capping (Gemma 2)',
  query_pre_attn_scalar: 'a query scale other than 1/√head_dim (Gemma 2)',
  embedding_multiplier: 'scaled embeddings (Granite)',
  residual_multiplier: 'scaled residuals (Granite)',
  attention_multiplier: 'a custom attention scale (Granite)',
  logits_scaling: 'scaled logits (Granite)',
  partial_rotary_factor: 'RoPE on part of each head (Phi, StableLM)',
  use_qk_norm: 'q/k normalisation outside qwen3 (Llama 4)',
  qk_layernorm: 'q/k layer norms (Persimmon, StableLM)',
  no_rope_layers: 'layers without RoPE (SmolLM3, Llama 4)',
  attention_chunk_size: 'chunked attention (Llama 4)',
  num_experts: 'mixture-of-experts MLPs',
  num_local_experts: 'mixture-of-experts MLPs',
  quantization_config: 'quantized weights (load the unquantized checkpoint)',
};

/** Harmless-when-zero settings: the value that leaves the maths unchanged. */
const NEUTRAL_VALUES: Record<string, unknown> = {
  attention_dropout: 0, // dropout inside attention while training: not implemented
};

/**
 * Problems with the keys of a raw config.json that change the maths in ways not computed here.
 * Keys transformers writes that change nothing for these families (`layer_types` of full attention
 * only, `sliding_window` when no window is switched on, `max_window_layers`, `use_sliding_window:
 * false`, `dtype`/`torch_dtype`, `transformers_version`, `use_cache`, …) pass.
 */
export function familyProblems(raw: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const [key, what] of Object.entries(UNSUPPORTED_MATH_KEYS)) {
    const v = raw[key];
    if (v === undefined || v === null || v === false || (key.startsWith('num_') && v === 0)) continue;
    if (key === 'partial_rotary_factor' && v === 1) continue;
    problems.push(`${key} is not supported: ${what} is not computed here`);
  }
  for (const [key, neutral] of Object.entries(NEUTRAL_VALUES)) {
    const v = raw[key];
    if (v !== undefined && v !== null && v !== neutral) {
      problems.push(`${key} must be ${JSON.stringify(neutral)} (got ${JSON.stringify(v)}): other values are not computed here`);
    }
  }
  const family = raw.model_type;
  if ((family === 'qwen2' || family === 'qwen3') && raw.use_sliding_window === true) {
    problems.push(
      `use_sliding_window: true is not supported for ${family} (per-layer sliding windows are not computed; shipped ${family === 'qwen2' ? 'Qwen2/2.5' : 'Qwen3'} checkpoints set it to false)`,
    );
  }
  const layerTypes = raw.layer_types;
  if (layerTypes !== undefined && layerTypes !== null) {
    if (!Array.isArray(layerTypes)) {
      problems.push('layer_types must be a list');
    } else {
      const other = [...new Set(layerTypes.filter((t) => t !== 'full_attention'))];
      // Mistral's window comes from `sliding_window` and applies to every layer; layer_types may only say so.
      const mistralAllSliding = family === 'mistral' && layerTypes.every((t) => t === 'sliding_attention') && typeof raw.sliding_window === 'number';
      if (other.length > 0 && !mistralAllSliding) {
        problems.push(`layer_types ${JSON.stringify(other)} is not supported (only full_attention layers${family === 'mistral' ? ', or sliding_attention on every layer' : ''})`);
      }
    }
  }
  if (family === 'mistral' && raw.sliding_window !== undefined && raw.sliding_window !== null) {
    const w = raw.sliding_window;
    if (!Number.isSafeInteger(w) || (w as number) <= 0) problems.push(`sliding_window must be a positive integer or null (got ${JSON.stringify(w)})`);
  }
  return problems;
}
