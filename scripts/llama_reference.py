#!/usr/bin/env python3
"""Independent reference for the Llama-family forward pass (numpy, float64).

Builds a tiny random Llama (GQA, untied LM head, 2 layers), writes it as a Hugging Face folder
(config.json + model.safetensors, written here with its own safetensors writer) and the logits it
computes for a fixed left-padded batch, into test/fixtures/llama_ref/. The TypeScript test loads the
folder with loadHfModel and must reproduce these logits within 1e-4.

Then one folder per family / RoPE variant under test/fixtures/families_ref/<variant>/ (same files,
plus greedy continuations of two prompts of different lengths), each with the differences its
transformers modelling file computes, written from the equations:
  llama3 RoPE (modeling_rope_utils._compute_llama3_parameters): wavelen = 2*pi/inv_freq;
    wavelen > L/low_freq_factor: inv_freq/factor; wavelen < L/high_freq_factor: kept; in between
    (1 - s)*inv_freq/factor + s*inv_freq with s = (L/wavelen - low)/(high - low),
    L = original_max_position_embeddings
  linear RoPE: inv_freq / factor (positions divided by factor)
  llama head_dim != hidden/heads, attention_bias (q/k/v/o), mlp_bias (gate/up/down)
  qwen2: q/k/v biases, no o bias
  qwen3: RMSNorm over each q and k head (weights q_norm/k_norm [head_dim]) before RoPE
  mistral: sliding window: key j visible from query i iff i - window < j <= i
Config files use both spellings: transformers 4.x rope_theta + rope_scaling, 5.x rope_parameters.

The math follows transformers' modeling_llama.py (eager attention), written from the equations,
not from the TypeScript code:
  RMSNorm(x) = x / sqrt(mean(x^2) + eps) * w
  RoPE: inv_freq[i] = theta^(-2i/d); angle = pos * inv_freq; x*cos + rotate_half(x)*sin
  attention: softmax(q k^T / sqrt(d) + causal_and_padding_mask) v, KV head = query head // groups
  MLP: down(silu(gate(x)) * up(x))
  position_ids = cumsum(attention_mask) - 1 (pads at 0), as HF generation derives them.

Usage: python3 scripts/llama_reference.py [OUT_DIR [FAMILIES_OUT_DIR]]   (needs numpy only)
"""
import json
import os
import struct
import sys

import numpy as np

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 48,
    "hidden_size": 16,
    "intermediate_size": 40,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 4,
    "rms_norm_eps": 1e-5,
    "rope_theta": 100.0,
    "max_position_embeddings": 64,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
    "attention_bias": False,
    "mlp_bias": False,
    "initializer_range": 0.02,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
    "torch_dtype": "float32",
}

# Left-padded batch: pad id 0, mask 0 on the pads. Row 2 is unpadded, row 1 is mostly padding.
INPUT_IDS = [
    [0, 0, 1, 17, 33, 5, 9],
    [0, 0, 0, 0, 1, 40, 12],
    [1, 3, 25, 47, 8, 30, 2],
]


def random_weights(cfg, rng):
    h, m, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    d = cfg["head_dim"]
    nq, nkv = cfg["num_attention_heads"] * d, cfg["num_key_value_heads"] * d
    # Larger-than-usual scale (0.3) so the logits depend visibly on every weight.
    w = {"model.embed_tokens.weight": rng.normal(0, 1.0, (v, h))}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "self_attn.q_proj.weight"] = rng.normal(0, 0.3, (nq, h))
        w[p + "self_attn.k_proj.weight"] = rng.normal(0, 0.3, (nkv, h))
        w[p + "self_attn.v_proj.weight"] = rng.normal(0, 0.3, (nkv, h))
        w[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.3, (h, nq))
        w[p + "mlp.gate_proj.weight"] = rng.normal(0, 0.3, (m, h))
        w[p + "mlp.up_proj.weight"] = rng.normal(0, 0.3, (m, h))
        w[p + "mlp.down_proj.weight"] = rng.normal(0, 0.3, (h, m))
        w[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.1, (h,))
        w[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.1, (h,))
    w["model.norm.weight"] = 1 + rng.normal(0, 0.1, (h,))
    w["lm_head.weight"] = rng.normal(0, 0.3, (v, h))
    # Store float32 values; the reference computes in float64 from exactly these values.
    return {k: a.astype(np.float32) for k, a in w.items()}


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def left_pad_mask(rows):
    """1 for tokens, 0 for the leading pad (id 0) of each left-padded row."""
    return [[0 if tok == 0 and all(x == 0 for x in row[: j + 1]) else 1 for j, tok in enumerate(row)] for row in rows]


def write_safetensors(path, tensors):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


# ---------------------------------------------------------------------------------------------
# Families and RoPE variants. Sizes: hidden 16, 4 query heads over 2 KV heads, 2 layers.

FAMILY_BASE = {k: v for k, v in CONFIG.items() if k not in ("rope_theta",)}
FAMILY_BASE.update({"head_dim": 4, "max_position_embeddings": 64})

LLAMA3 = {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 16}

VARIANTS = {
    # transformers 4.x spelling: top-level rope_theta + rope_scaling. head_dim 8: angles 1, 0.32, 0.1,
    # 0.03 rad/position; wavelengths 6.3 (blended), 20, 63, 199 (> 16: divided by factor).
    "llama_llama3": {"model_type": "llama", "head_dim": 8, "rope_theta": 100.0, "rope_scaling": LLAMA3},
    # transformers 5.x spelling: rope_parameters with rope_theta inside.
    "llama_linear": {"model_type": "llama", "rope_parameters": {"rope_type": "linear", "factor": 3.0, "rope_theta": 100.0}},
    "llama_headdim_bias": {"model_type": "llama", "head_dim": 6, "attention_bias": True, "mlp_bias": True,
                           "rope_parameters": {"rope_type": "default", "rope_theta": 100.0}},
    "qwen2": {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "rope_theta": 1000.0,
              "use_sliding_window": False, "sliding_window": 32768, "max_window_layers": 2, "tie_word_embeddings": True},
    "qwen3": {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "head_dim": 8,
              "rope_parameters": {"rope_type": "default", "rope_theta": 1000.0}, "use_sliding_window": False,
              "sliding_window": None, "layer_types": ["full_attention", "full_attention"]},
    "mistral_window": {"model_type": "mistral", "architectures": ["MistralForCausalLM"], "rope_theta": 100.0,
                       "sliding_window": 3},
}


def rope_theta_of(cfg):
    return cfg.get("rope_parameters", {}).get("rope_theta", cfg.get("rope_theta", 10000.0))


def rope_scaling_of(cfg):
    if "rope_parameters" in cfg:
        return cfg["rope_parameters"]
    return cfg.get("rope_scaling") or {"rope_type": "default"}


def inv_freq_of(cfg, d):
    inv = rope_theta_of(cfg) ** (-np.arange(0, d, 2) / d)
    sc = rope_scaling_of(cfg)
    kind = sc.get("rope_type", sc.get("type", "default"))
    if kind == "linear":
        return inv / sc["factor"]
    if kind == "llama3":
        L, low, high, factor = sc["original_max_position_embeddings"], sc["low_freq_factor"], sc["high_freq_factor"], sc["factor"]
        out = []
        for f in inv:
            wavelen = 2 * np.pi / f
            if wavelen < L / high:
                out.append(f)
            elif wavelen > L / low:
                out.append(f / factor)
            else:
                s = (L / wavelen - low) / (high - low)
                out.append((1 - s) * f / factor + s * f)
        return np.array(out)
    assert kind == "default", kind
    return inv


def family_weights(cfg, rng):
    h, m, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    d = cfg["head_dim"]
    nq, nkv = cfg["num_attention_heads"] * d, cfg["num_key_value_heads"] * d
    fam = cfg["model_type"]
    qkv_bias = fam == "qwen2" or (fam in ("llama", "qwen3") and cfg.get("attention_bias", False))
    o_bias = fam in ("llama", "qwen3") and cfg.get("attention_bias", False)
    mlp_bias = fam == "llama" and cfg.get("mlp_bias", False)
    w = {"model.embed_tokens.weight": rng.normal(0, 1.0, (v, h))}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for name, shape, bias in (("self_attn.q_proj", (nq, h), qkv_bias), ("self_attn.k_proj", (nkv, h), qkv_bias),
                                  ("self_attn.v_proj", (nkv, h), qkv_bias), ("self_attn.o_proj", (h, nq), o_bias),
                                  ("mlp.gate_proj", (m, h), mlp_bias), ("mlp.up_proj", (m, h), mlp_bias),
                                  ("mlp.down_proj", (h, m), mlp_bias)):
            w[p + name + ".weight"] = rng.normal(0, 0.3, shape)
            if bias:
                w[p + name + ".bias"] = rng.normal(0, 0.3, (shape[0],))
        if fam == "qwen3":
            w[p + "self_attn.q_norm.weight"] = 1 + rng.normal(0, 0.3, (d,))
            w[p + "self_attn.k_norm.weight"] = 1 + rng.normal(0, 0.3, (d,))
        w[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.1, (h,))
        w[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.1, (h,))
    w["model.norm.weight"] = 1 + rng.normal(0, 0.1, (h,))
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = rng.normal(0, 0.3, (v, h))
    return {k: a.astype(np.float32) for k, a in w.items()}


def family_forward(cfg, w, ids, mask):
    ids = np.asarray(ids)
    mask = np.asarray(mask, dtype=np.float64)
    b, t = ids.shape
    d = cfg["head_dim"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    groups = nh // nkv
    eps = cfg["rms_norm_eps"]
    W = {k: a.astype(np.float64) for k, a in w.items()}
    lin = lambda x, name: x @ W[name + ".weight"].T + (W[name + ".bias"] if name + ".bias" in W else 0.0)

    pos = np.maximum(np.cumsum(mask, axis=1) - 1, 0)  # [B, T]
    ang = pos[:, :, None] * inv_freq_of(cfg, d)[None, None, :]
    ang = np.concatenate([ang, ang], axis=-1)  # [B, T, d]
    cos, sin = np.cos(ang)[:, None], np.sin(ang)[:, None]  # [B, 1, T, d]

    qi, kj = np.arange(t)[:, None], np.arange(t)[None, :]
    visible = kj <= qi
    window = cfg.get("sliding_window") if cfg["model_type"] == "mistral" else None
    if window is not None:
        visible = visible & (kj > qi - window)
    allowed = visible[None].astype(np.float64) * mask[:, None, :]  # [B, T(query), T(key)]
    bias = np.where(allowed > 0, 0.0, -1e30)[:, None]  # [B, 1, T, T]

    x = W["model.embed_tokens.weight"][ids]  # [B, T, H]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        hn = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = lin(hn, p + "self_attn.q_proj").reshape(b, t, nh, d).transpose(0, 2, 1, 3)
        k = lin(hn, p + "self_attn.k_proj").reshape(b, t, nkv, d).transpose(0, 2, 1, 3)
        v = lin(hn, p + "self_attn.v_proj").reshape(b, t, nkv, d).transpose(0, 2, 1, 3)
        if cfg["model_type"] == "qwen3":  # per-head RMSNorm over d, before RoPE
            q = rms_norm(q, W[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, W[p + "self_attn.k_norm.weight"], eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, groups, axis=1)
        v = np.repeat(v, groups, axis=1)
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
        s = s - s.max(axis=-1, keepdims=True)
        pr = np.exp(s)
        pr = pr / pr.sum(axis=-1, keepdims=True)
        ctx = (pr @ v).transpose(0, 2, 1, 3).reshape(b, t, nh * d)
        x = x + lin(ctx, p + "self_attn.o_proj")
        hn = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = lin(hn, p + "mlp.gate_proj")
        u = lin(hn, p + "mlp.up_proj")
        x = x + lin((g / (1 + np.exp(-g))) * u, p + "mlp.down_proj")
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    return x @ head.T  # [B, T, V]


GREEDY_PROMPTS = [[1, 17, 33, 5, 9, 21, 40], [1, 40, 12]]
GREEDY_NEW = 8


def greedy(cfg, w, prompt):
    """Greedy continuation by full forwards (no cache); also the smallest top-1 margin seen."""
    seq, margin = list(prompt), np.inf
    for _ in range(GREEDY_NEW):
        last = family_forward(cfg, w, [seq], [[1] * len(seq)])[0, -1]
        top = np.sort(last)[-2:]
        margin = min(margin, top[1] - top[0])
        seq.append(int(np.argmax(last)))
    return seq[len(prompt):], margin


def write_families(out_root):
    rng = np.random.default_rng(20261204)
    mask = left_pad_mask(INPUT_IDS)
    for name, extra in VARIANTS.items():
        cfg = {**FAMILY_BASE, **extra}
        w = family_weights(cfg, rng)
        logits = family_forward(cfg, w, INPUT_IDS, mask)
        runs = [greedy(cfg, w, p) for p in GREEDY_PROMPTS]
        # A top-1 margin this small could flip under float32 rounding; the fixture would be brittle.
        assert min(m for _, m in runs) > 1e-3, (name, [m for _, m in runs])
        out = os.path.join(out_root, name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        write_safetensors(os.path.join(out, "model.safetensors"), w)
        expected = {
            "produced_by": "scripts/llama_reference.py (numpy float64, independent of src/model)",
            "input_ids": INPUT_IDS,
            "attention_mask": mask,
            "logits": [[[round(float(z), 9) for z in tok] for tok in row] for row in logits],
            "greedy_prompts": GREEDY_PROMPTS,
            "greedy": [toks for toks, _ in runs],
            "greedy_min_margin": round(float(min(m for _, m in runs)), 6),
        }
        with open(os.path.join(out, "expected.json"), "w") as f:
            json.dump(expected, f, separators=(",", ":"))
        print("wrote", out, "greedy", expected["greedy"], "min margin", expected["greedy_min_margin"])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "llama_ref")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240611)
    w = random_weights(CONFIG, rng)
    mask = left_pad_mask(INPUT_IDS)
    logits = family_forward(CONFIG, w, INPUT_IDS, mask)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    write_safetensors(os.path.join(out, "model.safetensors"), w)
    expected = {
        "produced_by": "scripts/llama_reference.py (numpy float64, independent of src/model)",
        "input_ids": INPUT_IDS,
        "attention_mask": mask,
        # Logits at every position; pad positions are garbage in any implementation, compare mask == 1 only.
        "logits": [[[round(float(z), 9) for z in tok] for tok in row] for row in logits],
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, separators=(",", ":"))
    print("wrote", out)
    here = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "families_ref")
    write_families(sys.argv[2] if len(sys.argv) > 2 else here)


if __name__ == "__main__":
    main()
