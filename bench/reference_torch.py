#!/usr/bin/env python3
"""PyTorch reference for bench/train.ts: the same bench models and steps in PyTorch eager, float32.

  tiny : vocab 512,  hidden 128, 4 layers, 4 heads (2 KV), intermediate 344, seq 128
  small: vocab 4096, hidden 288, 6 layers, 6 heads (6 KV), intermediate 768, seq 256
  train_full_tok_s   forward + backward + AdamW(lr 1e-4, wd 0.01 except norms) over every weight, batch 8
  train_lora8_tok_s  the same with LoRA r=8, alpha 16, no dropout, on every linear; base frozen
  generate_tok_s     batch 16, 16-token prompts, 64 new tokens, KV cache (concatenated per step), temperature 1
  peak_rss_mb        peak RSS of this process after its LoRA step (comparable, not identical, to ours:
                     ours runs each job in its own process)

The model is Hugging Face's LlamaForCausalLM math written out (RMSNorm, rotate-half RoPE, grouped-query
attention, SwiGLU, untied lm_head), so it needs only torch. One JSON line per figure, like `npm run bench -- --json`:
  {"model": "tiny", "metric": "train_full_tok_s", "value": N, "backend": "torch", "threads": 1}

Usage: python3 bench/reference_torch.py [--threads N] [--quick] [--models tiny,small]
       python3 bench/reference_torch.py --threads 1 --hf-shapes smollm-135m,qwen2.5-0.5b
         greedy_generate_tok_s: batch 8, 32-token prompts, 64 new tokens, KV cache, on the real-size shapes
         (random weights), the figure `node dist/bench/scale.js DIR` reports as generate_tok_s; a stand-in for
         transformers' generate (no transformers here), which adds its own per-step overhead to the same kernels.
         Debian's PyTorch 1.13 decodes fastest on one thread (2 threads: 29 vs 90 tok/s on the 135M shape), and
         only with OpenBLAS installed (without it, the reference BLAS: 4.8 tok/s)
Needs python3-torch (bench/setup.sh installs it with apt).
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS = {
    "tiny": dict(vocab=512, hidden=128, layers=4, heads=4, kv_heads=2, inter=344, seq=128),
    "small": dict(vocab=4096, hidden=288, layers=6, heads=6, kv_heads=6, inter=768, seq=256),
}
# The real-size shapes of bench/shapes.ts (issue 16), for greedy decoding only (--hf-shapes).
HF_SHAPES = {
    "smollm-135m": dict(vocab=49152, hidden=576, layers=30, heads=9, kv_heads=3, inter=1536, seq=0),
    "qwen2.5-0.5b": dict(vocab=151936, hidden=896, layers=24, heads=14, kv_heads=2, inter=4864, seq=0),
}
GREEDY_BATCH, GREEDY_PROMPT, GREEDY_NEW = 8, 32, 64  # bench/scale.ts and bench/reference_peft.py's generate_tok_s
TRAIN_BATCH = 8
LORA_R, LORA_ALPHA = 8, 16
GEN_BATCH, GEN_PROMPT, GEN_NEW = 16, 16, 64
LR = 1e-4
EPS = 1e-6
THETA = 10000.0


class LoraLinear(nn.Module):
    """y = x·Wᵀ + (alpha/r)·x·Aᵀ·Bᵀ; W frozen, A kaiming-uniform, B zeros (PEFT's lora.Linear)."""

    def __init__(self, base: nn.Linear, r: int, alpha: int):
        super().__init__()
        self.base = base
        base.weight.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scaling


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * self.weight


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, hd = c["hidden"], c["hidden"] // c["heads"]
        self.nh, self.nkv, self.hd = c["heads"], c["kv_heads"], hd
        self.input_layernorm = RMSNorm(h)
        self.post_attention_layernorm = RMSNorm(h)
        self.q_proj = nn.Linear(h, self.nh * hd, bias=False)
        self.k_proj = nn.Linear(h, self.nkv * hd, bias=False)
        self.v_proj = nn.Linear(h, self.nkv * hd, bias=False)
        self.o_proj = nn.Linear(self.nh * hd, h, bias=False)
        self.gate_proj = nn.Linear(h, c["inter"], bias=False)
        self.up_proj = nn.Linear(h, c["inter"], bias=False)
        self.down_proj = nn.Linear(c["inter"], h, bias=False)

    def forward(self, x, cos, sin, bias, past):
        b, t, _ = x.shape
        n = self.input_layernorm(x)
        q = self.q_proj(n).view(b, t, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(n).view(b, t, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(n).view(b, t, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        groups = self.nh // self.nkv
        kr = k.repeat_interleave(groups, dim=1) if groups > 1 else k
        vr = v.repeat_interleave(groups, dim=1) if groups > 1 else v
        scores = q @ kr.transpose(-1, -2) / math.sqrt(self.hd) + bias
        attn = torch.softmax(scores, dim=-1) @ vr
        x = x + self.o_proj(attn.transpose(1, 2).reshape(b, t, self.nh * self.hd))
        n2 = self.post_attention_layernorm(x)
        x = x + self.down_proj(F.silu(self.gate_proj(n2)) * self.up_proj(n2))
        return x, (k, v)


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocab"], c["hidden"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["hidden"])
        self.lm_head = nn.Linear(c["hidden"], c["vocab"], bias=False)
        hd = c["hidden"] // c["heads"]
        self.register_buffer("inv_freq", 1.0 / THETA ** (torch.arange(0, hd, 2).float() / hd), persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids, past=None):
        b, t = ids.shape
        past_len = 0 if past is None else past[0][0].shape[2]
        pos = torch.arange(past_len, past_len + t).float()
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        s = past_len + t
        bias = torch.full((t, s), float("-inf")).triu(past_len + 1)[None, None]
        x = self.embed_tokens(ids)
        new = []
        for i, layer in enumerate(self.layers):
            x, kv = layer(x, cos, sin, bias, None if past is None else past[i])
            new.append(kv)
        return self.lm_head(self.norm(x)), new


def lora(model):
    for layer in model.layers:
        for name in ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]:
            setattr(layer, name, LoraLinear(getattr(layer, name), LORA_R, LORA_ALPHA))
    for n, p in model.named_parameters():
        p.requires_grad_("lora_" in n)


def optimizer(model):
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in params if "norm" not in n]
    no_decay = [p for n, p in params if "norm" in n]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=LR)


def time_per_call(fn, min_s, min_iters):
    fn()  # warm-up
    n, start = 0, time.perf_counter()
    while n < min_iters or time.perf_counter() - start < min_s:
        fn()
        n += 1
    return (time.perf_counter() - start) / n


def train_tok_s(c, use_lora, quick):
    torch.manual_seed(1)
    model = Llama(c)
    if use_lora:
        lora(model)
    opt = optimizer(model)
    ids = torch.randint(0, c["vocab"], (TRAIN_BATCH, c["seq"]))
    labels = torch.cat([ids[:, 1:], torch.full((TRAIN_BATCH, 1), -100)], dim=1)

    def step():
        logits, _ = model(ids)
        loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), labels.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    s = time_per_call(step, 0 if quick else 4.0, 1 if quick else 3)
    return TRAIN_BATCH * c["seq"] / s


@torch.no_grad()
def generate_tok_s(c, quick):
    torch.manual_seed(1)
    model = Llama(c)
    prompts = torch.randint(0, c["vocab"], (GEN_BATCH, GEN_PROMPT))
    new_tokens = 8 if quick else GEN_NEW

    def run():
        logits, past = model(prompts)
        for step in range(new_tokens):
            probs = torch.softmax(logits[:, -1, :] / 1.0, dim=-1)
            nxt = torch.multinomial(probs, 1)
            if step == new_tokens - 1:
                break
            logits, past = model(nxt, past)

    s = time_per_call(run, 0, 1 if quick else 3)
    return GEN_BATCH * new_tokens / s


@torch.no_grad()
def greedy_generate_tok_s(c):
    """Greedy decoding with a KV cache, as `bench/scale.ts` times ours: a warm-up call, then one timed call."""
    torch.manual_seed(1)
    model = Llama(c).eval()
    prompts = torch.randint(0, c["vocab"], (GREEDY_BATCH, GREEDY_PROMPT))

    def run(new_tokens):
        logits, past = model(prompts)
        for step in range(new_tokens):
            nxt = logits[:, -1, :].argmax(dim=-1, keepdim=True)
            if step == new_tokens - 1:
                break
            logits, past = model(nxt, past)

    run(4)
    start = time.perf_counter()
    run(GREEDY_NEW)
    return GREEDY_BATCH * GREEDY_NEW / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--models", default="tiny,small")
    ap.add_argument("--hf-shapes", default="", help="comma list of " + ", ".join(HF_SHAPES) + ": greedy decoding only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    def emit(model, metric, value):
        print(json.dumps({"model": model, "metric": metric, "value": value, "backend": "torch", "threads": args.threads}), flush=True)

    if args.hf_shapes:
        for name in args.hf_shapes.split(","):
            emit(name, "greedy_generate_tok_s", greedy_generate_tok_s(HF_SHAPES[name]))
        return
    for name in args.models.split(","):
        c = MODELS[name]
        emit(name, "train_lora8_tok_s", train_tok_s(c, True, args.quick))
        emit(name, "peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        emit(name, "train_full_tok_s", train_tok_s(c, False, args.quick))
        emit(name, "generate_tok_s", generate_tok_s(c, args.quick))


if __name__ == "__main__":
    main()
