/** Hugging Face tensor names and shapes of a Llama checkpoint ([out, in] for linear weights, as PyTorch stores them). */
import { attentionBiases, headDim, type LlamaConfig } from './config.js';
import { hasQkNorm, mlpBias } from './families.js';

export const EMBED = 'model.embed_tokens.weight';
export const FINAL_NORM = 'model.norm.weight';
export const LM_HEAD = 'lm_head.weight';
export const SCORE = 'score.weight';

export const ATTN_PROJ = ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const;
export const MLP_PROJ = ['gate_proj', 'up_proj', 'down_proj'] as const;

export interface HeadChoice {
  /** An `lm_head` weight of its own (false when tied, or for a score-only backbone). */
  lmHead: boolean;
  /** A scalar `score` head [1, hidden] (reward / value models). */
  score: boolean;
}

/** Module names (tensor name without `.weight`) of the seven projections of layer i. */
export function layerLinearModules(i: number): string[] {
  return [
    ...ATTN_PROJ.map((p) => `model.layers.${i}.self_attn.${p}`),
    ...MLP_PROJ.map((p) => `model.layers.${i}.mlp.${p}`),
  ];
}

/** Every tensor of the checkpoint with its shape, in HF module order. */
export function llamaParamShapes(cfg: LlamaConfig, heads: HeadChoice): Map<string, number[]> {
  const h = cfg.hidden_size;
  const hd = headDim(cfg);
  const q = cfg.num_attention_heads * hd;
  const kv = cfg.num_key_value_heads * hd;
  const m = cfg.intermediate_size;
  const bias = attentionBiases(cfg);
  const mb = mlpBias(cfg);
  const qkNorm = hasQkNorm(cfg);
  const shapes = new Map<string, number[]>();
  shapes.set(EMBED, [cfg.vocab_size, h]);
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const lin = (name: string, out: number, inp: number, bias: boolean) => {
      shapes.set(`${name}.weight`, [out, inp]);
      if (bias) shapes.set(`${name}.bias`, [out]);
    };
    lin(`${p}.self_attn.q_proj`, q, h, bias.qkv);
    lin(`${p}.self_attn.k_proj`, kv, h, bias.qkv);
    lin(`${p}.self_attn.v_proj`, kv, h, bias.qkv);
    lin(`${p}.self_attn.o_proj`, h, q, bias.o);
    if (qkNorm) {
      // Qwen3: one RMSNorm weight [head_dim] shared by every query head, one by every key head.
      shapes.set(`${p}.self_attn.q_norm.weight`, [hd]);
      shapes.set(`${p}.self_attn.k_norm.weight`, [hd]);
    }
    lin(`${p}.mlp.gate_proj`, m, h, mb);
    lin(`${p}.mlp.up_proj`, m, h, mb);
    lin(`${p}.mlp.down_proj`, h, m, mb);
    shapes.set(`${p}.input_layernorm.weight`, [h]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [h]);
  }
  shapes.set(FINAL_NORM, [h]);
  if (heads.lmHead) shapes.set(LM_HEAD, [cfg.vocab_size, h]);
  if (heads.score) shapes.set(SCORE, [1, h]);
  return shapes;
}
