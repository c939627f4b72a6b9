#!/usr/bin/env python3
"""transformers + PEFT on the same HF folder as rlhf-kit's small-model bench (issue 16), side by side.

Make the folder first (random seeded weights, nothing downloaded):
  node dist/bench/shapes.js smollm-135m /tmp/shapes/smollm-135m
then run ours and this on it:
  rlhf sft --config configs/sft/world_lora.yaml model.path=/tmp/shapes/smollm-135m train.batch_size=4 \
      data.max_length=256 data.packing=true data.eval=null tracking.enabled=false checkpoint.every_steps=0 \
      sft.save_merged=false train.eval_every=0 train.steps=4
  python3 bench/reference_peft.py /tmp/shapes/smollm-135m --batch 4 --seq 256 --threads 2

It measures what the issue's "Done when" compares, one JSON line each:
  train_lora_tok_s   LoRA (r 16, alpha 32, dropout 0.05, all-linear) SFT steps with AdamW (lr 5e-3), batch × seq
                     random tokens, mean tokens/s over steps 2..N (step 1 warms up), as our metrics.jsonl's
                     train/tokens_per_sec over steps 2–4
  generate_tok_s     greedy generate, batch 8, 32-token prompts, 64 new tokens (KV cache)
  load_first_token_s from_pretrained + the first generated token of one prompt
  peak_rss_mb        peak RSS of this process (ru_maxrss)
Options: --gradient-checkpointing, --bf16-base (frozen weights stored in bfloat16, computed in float32 is not what
torch does: its bf16 base computes in bf16; use it only as a memory reference), --steps N, --skip-generate.

Needs torch, transformers and peft (pip install torch transformers peft). Not run in rlhf-kit's tests.
"""
import argparse
import json
import resource
import time


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def emit(metric: str, value: float, **extra) -> None:
    print(json.dumps({"metric": metric, "value": round(value, 3), "backend": "torch+peft", **extra}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="HF model folder (config.json + model.safetensors)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--bf16-base", action="store_true")
    ap.add_argument("--skip-generate", action="store_true")
    args = ap.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    common = dict(threads=args.threads, batch=args.batch, seq=args.seq, torch=torch.__version__)

    if not args.skip_generate:
        started = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32)
        model.eval()
        vocab = model.config.vocab_size
        with torch.no_grad():
            model.generate(torch.randint(0, vocab, (1, 32)), max_new_tokens=1, do_sample=False)
        emit("load_first_token_s", time.perf_counter() - started, **common)
        prompts = torch.randint(0, vocab, (8, 32))
        with torch.no_grad():
            model.generate(prompts[:1], max_new_tokens=4, do_sample=False)  # warm-up
            started = time.perf_counter()
            out = model.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=64, min_new_tokens=64, do_sample=False)
            seconds = time.perf_counter() - started
        emit("generate_tok_s", (out.shape[1] - prompts.shape[1]) * prompts.shape[0] / seconds, **common)
        del model

    dtype = torch.bfloat16 if args.bf16_base else torch.float32
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.train()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3, weight_decay=0.0)
    vocab = model.config.vocab_size
    rates = []
    for step in range(args.steps):
        ids = torch.randint(0, vocab, (args.batch, args.seq))
        started = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)
        if step > 0:
            rates.append(args.batch * args.seq / (time.perf_counter() - started))
    emit("train_lora_tok_s", sum(rates) / max(1, len(rates)), checkpointing=args.gradient_checkpointing, **common)
    emit("peak_rss_mb", peak_rss_mb(), **common)


if __name__ == "__main__":
    main()
