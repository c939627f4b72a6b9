#!/usr/bin/env python3
"""Independent reference for the Llama forward pass (numpy, float64).

Builds a tiny random Llama (GQA, untied LM head, 2 layers), writes it as a Hugging Face folder
(config.json + model.safetensors, written here with its own safetensors writer) and the logits it
computes for a fixed left-padded batch, into test/fixtures/llama_ref/. The TypeScript test loads the
folder with loadHfModel and must reproduce these logits within 1e-4.

The math follows transformers' modeling_llama.py (eager attention), written from the equations,
not from the TypeScript code:
  RMSNorm(x) = x / sqrt(mean(x^2) + eps) * w
  RoPE: inv_freq[i] = theta^(-2i/d); angle = pos * inv_freq; x*cos + rotate_half(x)*sin
  attention: softmax(q k^T / sqrt(d) + causal_and_padding_mask) v, KV head = query head // groups
  MLP: down(silu(gate(x)) * up(x))
  position_ids = cumsum(attention_mask) - 1 (pads at 0), as HF generation derives them.

Usage: python3 scripts/llama_reference.py [OUT_DIR]   (needs numpy only)
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


def forward(cfg, w, ids, mask):
    ids = np.asarray(ids)
    mask = np.asarray(mask, dtype=np.float64)
    b, t = ids.shape
    d = cfg["head_dim"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    groups = nh // nkv
    eps = cfg["rms_norm_eps"]
    W = {k: a.astype(np.float64) for k, a in w.items()}

    pos = np.maximum(np.cumsum(mask, axis=1) - 1, 0)  # [B, T]
    inv_freq = cfg["rope_theta"] ** (-np.arange(0, d, 2) / d)  # [d/2]
    ang = pos[:, :, None] * inv_freq[None, None, :]
    ang = np.concatenate([ang, ang], axis=-1)  # [B, T, d]
    cos, sin = np.cos(ang)[:, None], np.sin(ang)[:, None]  # [B, 1, T, d]

    allowed = np.tril(np.ones((t, t)))[None] * mask[:, None, :]  # [B, T(query), T(key)]
    bias = np.where(allowed > 0, 0.0, -1e30)[:, None]  # [B, 1, T, T]

    x = W["model.embed_tokens.weight"][ids]  # [B, T, H]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        hn = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = (hn @ W[p + "self_attn.q_proj.weight"].T).reshape(b, t, nh, d).transpose(0, 2, 1, 3)
        k = (hn @ W[p + "self_attn.k_proj.weight"].T).reshape(b, t, nkv, d).transpose(0, 2, 1, 3)
        v = (hn @ W[p + "self_attn.v_proj.weight"].T).reshape(b, t, nkv, d).transpose(0, 2, 1, 3)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, groups, axis=1)  # HF repeat_kv: KV head j serves query heads j*g .. j*g+g-1
        v = np.repeat(v, groups, axis=1)
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
        s = s - s.max(axis=-1, keepdims=True)
        pr = np.exp(s)
        pr = pr / pr.sum(axis=-1, keepdims=True)
        ctx = (pr @ v).transpose(0, 2, 1, 3).reshape(b, t, nh * d)
        x = x + ctx @ W[p + "self_attn.o_proj.weight"].T
        hn = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = hn @ W[p + "mlp.gate_proj.weight"].T
        u = hn @ W[p + "mlp.up_proj.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * u) @ W[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, W["model.norm.weight"], eps)
    return x @ W["lm_head.weight"].T  # [B, T, V]


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


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "llama_ref")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240611)
    w = random_weights(CONFIG, rng)
    mask = [[0 if tok == 0 and all(x == 0 for x in row[: j + 1]) else 1 for j, tok in enumerate(row)] for row in INPUT_IDS]
    logits = forward(CONFIG, w, INPUT_IDS, mask)
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


if __name__ == "__main__":
    main()
