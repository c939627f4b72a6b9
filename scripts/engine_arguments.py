#!/usr/bin/env python3
"""The argument names of the engine releases `rlhf export` targets, read from their sources.

Writes test/fixtures/export/engine-arguments.json, which test/export pins every generated TRL
field and OpenRLHF flag against (a misspelt or renamed argument fails the test):

    python3 scripts/engine_arguments.py --trl TRL_CHECKOUT --openrlhf OPENRLHF_CHECKOUT > test/fixtures/export/engine-arguments.json

TRL_CHECKOUT is huggingface/trl at tag v1.9.0 and OPENRLHF_CHECKOUT is OpenRLHF/OpenRLHF at tag
v0.11.0 (only the files read below are needed). transformers' TrainingArguments is not parsed: the
fields the export sets are listed in TRAINING_ARGUMENTS, checked by hand against
src/transformers/training_args.py (commit 00349ae87eddc872ffa21a8a54f264375a0056a8).
"""
import argparse
import json
import os
import re

TRL_VERSION = "1.9.0"
OPENRLHF_VERSION = "0.11.0"

TRAINING_ARGUMENTS = [
    "output_dir", "max_steps", "num_train_epochs", "per_device_train_batch_size", "per_device_eval_batch_size",
    "gradient_accumulation_steps", "learning_rate", "adam_beta1", "adam_beta2", "adam_epsilon", "weight_decay",
    "optim", "max_grad_norm", "lr_scheduler_type", "warmup_steps", "seed", "data_seed", "eval_strategy",
    "eval_steps", "save_strategy", "save_steps", "save_total_limit", "gradient_checkpointing", "report_to", "bf16",
]

# Class → file in the TRL checkout.
TRL_CLASSES = {
    "SFTConfig": "trl/trainer/sft_config.py",
    "RewardConfig": "trl/trainer/reward_config.py",
    "DPOConfig": "trl/trainer/dpo_config.py",
    "ModelConfig": "trl/trainer/model_config.py",
    "_BaseConfig": "trl/trainer/base_config.py",
}

OPENRLHF_CLIS = ["train_sft", "train_rm", "train_dpo", "train_ppo_ray", "lora_combiner"]


def dataclass_fields(path, cls):
    """Names of the annotated fields in `class cls` (4-space indented `name: type`)."""
    text = open(path, encoding="utf-8").read()
    start = re.search(rf"^class {re.escape(cls)}\b.*$", text, re.M)
    if start is None:
        raise SystemExit(f"{path}: no class {cls}")
    body = text[start.end():]
    end = re.search(r"^\S", body, re.M)
    body = body[: end.start()] if end else body
    return sorted(set(re.findall(r"^    ([a-z_][a-z0-9_]*): ", body, re.M)))


def argparse_flags(path):
    """Flags of argparse add_argument calls; f-string prefixes ({prefix}) expand to actor and critic."""
    text = open(path, encoding="utf-8").read()
    flags = set()
    for flag in re.findall(r'add_argument\(\s*f?"(--[^"]+)"', text):
        if "{prefix}" in flag:
            flags.update(flag.replace("{prefix}", p) for p in ("actor", "critic"))
        else:
            flags.add(flag)
    return sorted(f[2:] for f in flags)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trl", required=True)
    parser.add_argument("--openrlhf", required=True)
    args = parser.parse_args()
    trl = {cls: dataclass_fields(os.path.join(args.trl, f), cls) for cls, f in TRL_CLASSES.items()}
    trl["TrainingArguments"] = sorted(TRAINING_ARGUMENTS)
    openrlhf = {cli: argparse_flags(os.path.join(args.openrlhf, "openrlhf", "cli", f"{cli}.py")) for cli in OPENRLHF_CLIS}
    out = {"trl": {"version": TRL_VERSION, "fields": trl}, "openrlhf": {"version": OPENRLHF_VERSION, "flags": openrlhf}}
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
