#!/usr/bin/env python3
"""Independent reference for one PPO iteration (numpy, float64).

A tiny Llama policy with LoRA adapters on q/v/o (r=2, alpha=4, no dropout) and a value head on its
final hidden states (the `policy_head` critic). On a fixed batch of three prompt + response rows
(left-padded prompts, responses right-padded after EOS, one without EOS) it computes, from the
equations and not from the TypeScript code:

  rollout at the adapters theta0:  log pi_old, log pi_ref (adapters off), V_old
      log pi(a_t) = log_softmax(logits_{P+t-1} / temperature)[a_t], value = head . h_{P+t-1}
  scores:  (s - mean) / std, clipped to [-clip, clip], minus the missing-EOS penalty
  KL-shaped rewards:  r_t = -beta * k3_t (+ score at the last response token),
      k3 = (exp(l) - 1) - l,  l = log pi_ref - log pi_old
  GAE (gamma, lambda), returns = A + V_old; advantages whitened over the mask (unbiased variance)
  the loss at other adapters theta1 (as after some updates, so ratios differ from 1):
      rho = exp(log pi_new - log pi_old)
      L_clip = mean_mask max(-A rho, -A clip(rho, 1 - eps, 1 + eps)), clipfrac = mean_mask [clipped > unclipped]
      L_V = 1/2 mean_mask max((V - R)^2, (clip(V, V_old +- eps_v) - R)^2), its clipfrac likewise
      approx KL = 1/2 mean_mask (log rho)^2, ratio mean, entropy of softmax(logits / temperature)
      loss = L_clip + vf_coef L_V - ent_coef H
  and the gradient of that loss with respect to every adapter matrix and the value head, by central
  finite differences in float64.

The Llama forward is scripts/llama_reference.py's (HF modeling_llama equations); LoRA is its
definition, W + (alpha / r) B A. Written to test/fixtures/ppo_ref/: the base model (HF folder),
adapter0/ (PEFT folder, theta0), adapter1.safetensors (theta1), expected.json.

Usage: python3 scripts/ppo_reference.py [OUT_DIR]   (needs numpy only)
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import forward, random_weights, write_safetensors  # noqa: E402

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 12,
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 4,
    "rms_norm_eps": 1e-5,
    "rope_theta": 100.0,
    "max_position_embeddings": 32,
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
TARGETS = ["q_proj", "v_proj", "o_proj"]
R, ALPHA = 2, 4.0
PROMPT_LEN = 3
# [left-padded prompt | response]; EOS = 2, pad = 0. Row 3's response has no EOS.
IDS = [
    [0, 5, 7, 4, 9, 2, 0],
    [3, 8, 6, 10, 2, 0, 0],
    [0, 0, 11, 6, 5, 8, 3],
]
RESPONSE_MASK = [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
HAS_EOS = [True, True, False]
RAW_SCORES = [0.8, -0.3, 1.5]
SETTINGS = {
    "temperature": 0.7,
    "normalize": {"mean": 0.1, "std": 2.0},
    "clip": 0.5,
    "missing_eos_penalty": 0.25,
    "kl_coef": 0.2,
    "estimator": "k3",
    "gamma": 1.0,
    "lambda": 0.95,
    "clip_range": 0.2,
    "clip_range_value": 0.05,
    "vf_coef": 0.5,
    "entropy_coef": 0.01,
}


def module_name(layer, target):
    return f"model.layers.{layer}.self_attn.{target}"


def adapters(cfg, rng, scale):
    out = {}
    for i in range(cfg["num_hidden_layers"]):
        for t in TARGETS:
            in_dim = cfg["hidden_size"] if t != "o_proj" else cfg["num_attention_heads"] * cfg["head_dim"]
            out_dim = {"q_proj": cfg["num_attention_heads"] * cfg["head_dim"], "v_proj": cfg["num_key_value_heads"] * cfg["head_dim"], "o_proj": cfg["hidden_size"]}[t]
            out[module_name(i, t) + ".lora_A.weight"] = rng.normal(0, scale, (R, in_dim))
            out[module_name(i, t) + ".lora_B.weight"] = rng.normal(0, scale, (out_dim, R))
    return {k: a.astype(np.float32) for k, a in out.items()}


def with_lora(base, lora):
    """W + (alpha / r) B A for every adapted module (float64)."""
    w = {k: a.astype(np.float64) for k, a in base.items()}
    for key in lora:
        if key.endswith(".lora_A.weight"):
            m = key[: -len(".lora_A.weight")]
            w[m + ".weight"] = w[m + ".weight"] + (ALPHA / R) * lora[m + ".lora_B.weight"].astype(np.float64) @ lora[key].astype(np.float64)
    return w


def response_stats(cfg, w, head, ids, mask, temperature):
    """log pi of each response token, entropy of each response position, value of each state. [B, N] each."""
    ids = np.asarray(ids)
    n = ids.shape[1] - PROMPT_LEN
    logits = forward(cfg, w, ids, mask)[:, PROMPT_LEN - 1 : PROMPT_LEN - 1 + n] / temperature  # [B, N, V]
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    tokens = ids[:, PROMPT_LEN:]
    picked = np.take_along_axis(logp, tokens[:, :, None], -1)[:, :, 0]
    entropy = -(np.exp(logp) * logp).sum(-1)
    # Final hidden states: the same forward with an identity "LM head".
    hidden_w = dict(w)
    hidden_w["lm_head.weight"] = np.eye(cfg["hidden_size"])
    hidden = forward(cfg, hidden_w, ids, mask)[:, PROMPT_LEN - 1 : PROMPT_LEN - 1 + n]  # [B, N, H]
    values = hidden @ np.asarray(head, dtype=np.float64)  # [B, N]
    return picked, entropy, values


def masked_mean(x, m):
    return float((x * m).sum() / max(m.sum(), 1.0))


def gae(rewards, values, mask, gamma, lam):
    b, t = rewards.shape
    adv = np.zeros((b, t))
    for i in range(b):
        nxt = 0.0
        for j in reversed(range(t)):
            if mask[i, j] == 0:
                nxt = 0.0
                continue
            next_value = values[i, j + 1] if j + 1 < t and mask[i, j + 1] != 0 else 0.0
            delta = rewards[i, j] + gamma * next_value - values[i, j]
            nxt = delta + gamma * lam * nxt
            adv[i, j] = nxt
    return adv, (adv + values) * mask


def whiten(x, m):
    n = m.sum()
    mean = (x * m).sum() / n
    var = (((x - mean) ** 2) * m).sum() / n * n / (n - 1)
    return (x - mean) / np.sqrt(var + 1e-8) * m


def update_terms(cfg, base, lora, head, old, s):
    """Everything the PPO loss of one minibatch (the whole batch) reports, at adapters `lora`."""
    m = np.asarray(RESPONSE_MASK, dtype=np.float64)
    newlp, ent, v = response_stats(cfg, with_lora(base, lora), head, IDS, ATTENTION_MASK, s["temperature"])
    log_ratio = (newlp - old["logprobs"]) * m
    ratio = np.exp(log_ratio)
    a = old["advantages"]
    unclipped = -a * ratio
    clipped = -a * np.clip(ratio, 1 - s["clip_range"], 1 + s["clip_range"])
    vclip = np.clip(v, old["values"] - s["clip_range_value"], old["values"] + s["clip_range_value"])
    err, err_clipped = (v - old["returns"]) ** 2, (vclip - old["returns"]) ** 2
    out = {
        "policy_loss": masked_mean(np.maximum(unclipped, clipped), m),
        "policy_clipfrac": masked_mean((clipped > unclipped).astype(float), m),
        "approx_kl": 0.5 * masked_mean(log_ratio**2, m),
        "ratio_mean": masked_mean(ratio, m),
        "value_loss": 0.5 * masked_mean(np.maximum(err, err_clipped), m),
        "value_clipfrac": masked_mean((err_clipped > err).astype(float), m),
        "entropy": masked_mean(ent, m),
        "max_abs_log_ratio": float(np.abs(log_ratio).max()),
    }
    out["loss"] = out["policy_loss"] + s["vf_coef"] * out["value_loss"] - s["entropy_coef"] * out["entropy"]
    return out


def finite_difference_grads(cfg, base, lora, head, old, s, h):
    """d loss / d (every adapter matrix, the value head), central differences in float64."""
    params = {k: a.astype(np.float64) for k, a in lora.items()}
    params["value_head.weight"] = np.asarray(head, dtype=np.float64)[None, :]
    grads = {}
    for name, p in params.items():
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            def loss_at(delta):
                q = {k: a.copy() for k, a in params.items()}
                q[name][idx] += delta
                hd = q.pop("value_head.weight")[0]
                return update_terms(cfg, base, q, hd, old, s)["loss"]
            g[idx] = (loss_at(h) - loss_at(-h)) / (2 * h)
        grads[name] = g
    return grads


ATTENTION_MASK = [
    [0 if (j < PROMPT_LEN and all(x == 0 for x in row[: j + 1])) else (1 if j < PROMPT_LEN else RESPONSE_MASK[i][j - PROMPT_LEN]) for j in range(len(row))]
    for i, row in enumerate(IDS)
]


def rounded(x):
    return [[round(float(v), 12) for v in row] for row in np.asarray(x)] if np.ndim(x) == 2 else [round(float(v), 12) for v in x]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "ppo_ref")
    os.makedirs(os.path.join(out, "adapter0"), exist_ok=True)
    s = SETTINGS
    rng = np.random.default_rng(20261204)
    base = random_weights(CONFIG, rng)
    theta0 = adapters(CONFIG, rng, 0.3)
    theta1 = {k: (a + rng.normal(0, 0.25, a.shape)).astype(np.float32) for k, a in theta0.items()}
    head = rng.normal(0, 0.5, (CONFIG["hidden_size"],)).astype(np.float32)
    m = np.asarray(RESPONSE_MASK, dtype=np.float64)

    # 1. rollout quantities at theta0 (reference: adapters off), 0 at padding
    logprobs, _, values = response_stats(CONFIG, with_lora(base, theta0), head, IDS, ATTENTION_MASK, s["temperature"])
    ref_logprobs, _, _ = response_stats(CONFIG, {k: a.astype(np.float64) for k, a in base.items()}, head, IDS, ATTENTION_MASK, s["temperature"])
    logprobs, ref_logprobs, values = logprobs * m, ref_logprobs * m, values * m

    # 2. scores: normalise, clip, then the missing-EOS penalty
    scores = []
    for raw, eos in zip(RAW_SCORES, HAS_EOS):
        x = (raw - s["normalize"]["mean"]) / s["normalize"]["std"]
        x = min(s["clip"], max(-s["clip"], x))
        scores.append(x - (0 if eos else s["missing_eos_penalty"]))

    # 3. KL-shaped rewards (k3)
    log_r = (ref_logprobs - logprobs) * m
    kl = (np.expm1(log_r) - log_r) * m
    non_score = -s["kl_coef"] * kl
    rewards = non_score.copy()
    for i in range(len(IDS)):
        rewards[i, int(np.nonzero(m[i])[0][-1])] += scores[i]

    # 4. GAE, returns, whitened advantages
    advantages, returns = gae(rewards, values, m, s["gamma"], s["lambda"])
    white = whiten(advantages, m)

    # 5. the loss and its gradient at theta1
    old = {"logprobs": logprobs, "values": values, "advantages": white, "returns": returns}
    terms = update_terms(CONFIG, base, theta1, head, old, s)
    grads = finite_difference_grads(CONFIG, base, theta1, head, old, s, 1e-6)
    coarse = finite_difference_grads(CONFIG, base, theta1, head, old, s, 1e-5)
    fd_error = max(float(np.abs(grads[k] - coarse[k]).max()) for k in grads)
    assert fd_error < 1e-6, f"finite differences disagree between steps: {fd_error}"
    assert 0 < terms["policy_clipfrac"] < 1 and 0 < terms["value_clipfrac"] < 1, terms  # both branches of each max are exercised

    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    write_safetensors(os.path.join(out, "model.safetensors"), base)
    with open(os.path.join(out, "adapter0", "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": R, "lora_alpha": ALPHA, "lora_dropout": 0.0,
                   "target_modules": TARGETS, "bias": "none", "use_rslora": False, "modules_to_save": None,
                   "base_model_name_or_path": None, "inference_mode": False}, f, indent=2)
    write_safetensors(os.path.join(out, "adapter0", "adapter_model.safetensors"), {"base_model.model." + k: a for k, a in theta0.items()})
    write_safetensors(os.path.join(out, "adapter1.safetensors"), {"base_model.model." + k: a for k, a in theta1.items()})
    expected = {
        "produced_by": "scripts/ppo_reference.py (numpy float64, independent of src/ppo)",
        "prompt_len": PROMPT_LEN,
        "input_ids": IDS,
        "attention_mask": ATTENTION_MASK,
        "response_mask": RESPONSE_MASK,
        "has_eos": HAS_EOS,
        "raw_scores": RAW_SCORES,
        "settings": s,
        "value_head": [float(x) for x in head],
        "logprobs": rounded(logprobs),
        "ref_logprobs": rounded(ref_logprobs),
        "values": rounded(values),
        "scores": [round(x, 12) for x in scores],
        "kl": rounded(kl),
        "rewards": rounded(rewards),
        "advantages": rounded(advantages),
        "returns": rounded(returns),
        "whitened_advantages": rounded(white),
        "update": {k: round(v, 12) for k, v in terms.items()},
        "grads": {k: [[round(float(v), 12) for v in row] for row in g] for k, g in grads.items()},
        "grad_norm": round(float(np.sqrt(sum((g**2).sum() for g in grads.values()))), 12),
        "finite_difference_error": fd_error,
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print("wrote", out, {k: round(v, 6) for k, v in terms.items()}, "fd error", fd_error)


if __name__ == "__main__":
    main()
