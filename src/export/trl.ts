/**
 * TRL 1.x scripts: `train_<stage>.py` with `SFTConfig` / `RewardConfig` / `DPOConfig` (and TRL's
 * `ModelConfig` for the model and LoRA) holding every equivalent hyperparameter. The values sit
 * in one `DEFAULTS` dict of flags placed before the command line's, so `python train_sft.py`
 * runs as exported and `--max_steps 3 --output_dir out` (any config field) overrides through
 * `HfArgumentParser`.
 */
import { UserError } from '../errors.js';
import { ArgList, pyLiteral, type ArgValue } from './args.js';
import type { StageContext } from './context.js';
import { batchLayout } from './layout.js';
import { sourceLabel, type CommonSpec, type DpoSpec, type LoraSpec, type RewardSpec, type SftSpec, type StageSpec } from './spec.js';
import { TRL_VERSION } from './versions.js';

export interface GeneratedScript {
  file: string;
  text: string;
  args: ArgList;
  gaps: string[];
}

const SCHEDULERS = { cosine: 'cosine', linear: 'linear', constant: 'constant_with_warmup' } as const;

/** TrainingArguments every TRL trainer shares, from our common sections. */
function trainingArgs(a: ArgList, c: CommonSpec, ctx: StageContext, evalBatchSize: number | null, hasEval: boolean): void {
  a.set('output_dir', '', 'output_dir', ctx.outputDir, 'absolute, so the script runs from anywhere');
  if (c.epochs !== null) {
    a.set('train.epochs', c.epochs, 'num_train_epochs', c.epochs);
    a.set('train.steps', c.steps, 'max_steps', -1, 'train.epochs replaces train.steps, as in rlhf-kit');
  } else {
    a.set('train.steps', c.steps, 'max_steps', c.steps);
  }
  const l = batchLayout(c.batchSize, c.gradAccum, ctx.gpus);
  const split = `${l.global} examples per optimizer step = ${l.perDevice} per device × ${l.accumulation} accumulation × ${ctx.gpus} GPU(s)`;
  a.set('train.batch_size', c.batchSize, 'per_device_train_batch_size', l.perDevice, split);
  a.set('optim.grad_accum', c.gradAccum, 'gradient_accumulation_steps', l.accumulation, split);
  if (hasEval) a.set(evalBatchSize === null ? 'train.batch_size' : '*.eval_batch_size', evalBatchSize ?? c.batchSize, 'per_device_eval_batch_size', evalBatchSize ?? l.perDevice);
  a.set('optim.lr', c.lr, 'learning_rate', c.lr);
  a.set('optim.betas', c.betas, 'adam_beta1', c.betas[0]);
  a.set('optim.betas', c.betas, 'adam_beta2', c.betas[1]);
  a.set('optim.eps', c.eps, 'adam_epsilon', c.eps);
  a.set('optim.weight_decay', c.weightDecay, 'weight_decay', c.weightDecay, c.weightDecay > 0 ? 'the HF Trainer exempts biases and norm weights from decay; rlhf-kit decays every trained weight' : '');
  a.set('(AdamW)', 'adamw', 'optim', 'adamw_torch');
  a.set('optim.grad_clip', c.gradClip, 'max_grad_norm', c.gradClip ?? 0, c.gradClip === null ? '0 = no clipping' : '');
  a.set('schedule.type', c.schedule, 'lr_scheduler_type', SCHEDULERS[c.schedule]);
  a.set('schedule.warmup_steps', c.warmupSteps, 'warmup_steps', c.warmupSteps);
  a.set('engine.seed', c.seed, 'seed', c.seed);
  if (c.dataSeed !== null) a.set('train.seed', c.dataSeed, 'data_seed', c.dataSeed);
  if (hasEval && c.evalEvery > 0) {
    a.set('train.eval_every', c.evalEvery, 'eval_strategy', 'steps');
    a.set('train.eval_every', c.evalEvery, 'eval_steps', c.evalEvery, 'the script also evaluates once after training, as rlhf-kit does');
  } else {
    a.set('train.eval_every', c.evalEvery, 'eval_strategy', 'no', hasEval ? 'the script evaluates once after training (rlhf-kit: 0 = only at the end)' : 'no eval data');
  }
  if (c.saveEvery > 0) {
    a.set('checkpoint.every_steps', c.saveEvery, 'save_strategy', 'steps');
    a.set('checkpoint.every_steps', c.saveEvery, 'save_steps', c.saveEvery, 'checkpoints in output_dir/checkpoint-<step>/');
  } else {
    a.set('checkpoint.every_steps', c.saveEvery, 'save_strategy', 'no', 'the final model is saved either way');
  }
  if (c.keepLast !== null) a.set('checkpoint.keep_last', c.keepLast, 'save_total_limit', c.keepLast);
  a.set('train.gradient_checkpointing', c.gradientCheckpointing, 'gradient_checkpointing', c.gradientCheckpointing, 'set explicitly: TRL defaults to true');
  a.set('tracking.*', 'mlflow', 'report_to', 'none', 'pass --report_to mlflow with MLFLOW_TRACKING_URI / MLFLOW_EXPERIMENT_NAME set to log to MLflow (needs the mlflow package)');
}

/** TRL's ModelConfig: the model folder and LoRA (PEFT). */
function modelArgs(a: ArgList, ctx: StageContext, lora: LoraSpec | null, task: 'CAUSAL_LM' | 'SEQ_CLS'): void {
  a.set('model.path', ctx.model, 'model_name_or_path', ctx.model, "an rlhf-kit stage's final/ is read from final/merged when it has one");
  a.set('lora.enabled', lora !== null, 'use_peft', lora !== null);
  if (lora === null) return;
  if (!Number.isInteger(lora.alpha)) throw new UserError(`lora.alpha=${lora.alpha}: TRL's ModelConfig takes an integer lora_alpha`);
  a.set('lora.r', lora.r, 'lora_r', lora.r);
  a.set('lora.alpha', lora.alpha, 'lora_alpha', lora.alpha);
  a.set('lora.dropout', lora.dropout, 'lora_dropout', lora.dropout);
  const targets = typeof lora.targetModules === 'string' ? [lora.targetModules] : lora.targetModules;
  a.set('lora.target_modules', lora.targetModules, 'lora_target_modules', targets, 'one entry that is not a module name (all-linear, a regex) is passed to PEFT as a string');
  if (lora.rslora) a.set('lora.use_rslora', true, 'use_rslora', true);
  a.set('', '', 'lora_task_type', task);
  if (task === 'SEQ_CLS') a.set('(score head trained in full)', 'modules_to_save: [score]', 'lora_modules_to_save', ['score']);
}

const DATA_ARGS = `@dataclass
class DataArguments:
    train_file: str | None = field(default=None, metadata={"help": "Training rows (JSONL)."})
    eval_file: str | None = field(default=None, metadata={"help": "Eval rows (JSONL); empty = none."})
    tokenizer_path: str | None = field(default=None, metadata={"help": "Tokenizer folder; empty = the model's."})
    merged_dir: str | None = field(default=None, metadata={"help": "After a LoRA run, also write the merged model here; empty = no."})`;

/** The data files and merged-model folder (the script's own DataArguments). */
function dataArgs(a: ArgList, spec: StageSpec, ctx: StageContext, saveMergedKey: string): void {
  const source = spec.kind === 'ppo' ? spec.prompts : spec.train;
  if (ctx.runtimeData !== null) {
    a.set('(rows made by rlhf-kit)', ctx.runtimeData.madeBy, 'train_file', ctx.runtimeData.file, 'read when the script runs; it stops with a message naming the command when the file is missing');
  } else {
    a.set('data.train', sourceLabel(source), 'train_file', ctx.trainFile, 'converted to TRL columns and written next to the script');
  }
  const evalSource = spec.kind === 'ppo' ? spec.evalPrompts : spec.eval;
  if (ctx.evalFile !== null) a.set('data.eval', sourceLabel(evalSource), 'eval_file', ctx.evalFile);
  if (spec.model.tokenizer !== null) a.set('tokenizer.path', spec.model.tokenizer, 'tokenizer_path', spec.model.tokenizer);
  if (ctx.mergedDir !== null) a.set(saveMergedKey, true, 'merged_dir', ctx.mergedDir, 'the script folds the saved adapter into the model with PEFT (merge_and_unload)');
}

const FLAGS_HELPER = `def as_flags(values):
    """DEFAULTS as command-line flags; the real command line comes after them and wins."""
    flags = []
    for name, value in values.items():
        if value is None:
            continue
        for_each = value if isinstance(value, list) else [value]
        flags += [f"--{name}"] + [str(v) for v in for_each]
    return flags


def model_folder(path):
    """An rlhf-kit stage's final/ keeps the merged model in final/merged/ after LoRA."""
    merged = os.path.join(path, "merged")
    if os.path.isfile(os.path.join(merged, "config.json")):
        return merged
    if not os.path.isfile(os.path.join(path, "config.json")):
        sys.exit(f"{path}: no model there (no config.json): train the stage that writes it first")
    return path


def peft_targets(model_args):
    """One entry that is not a module name (all-linear, a regex) is a string to PEFT, not a list."""
    t = model_args.lora_target_modules
    if t and len(t) == 1 and not t[0].isidentifier():
        model_args.lora_target_modules = t[0]`;

function runtimeCheck(ctx: StageContext): string {
  if (ctx.runtimeData === null) return '';
  return [
    '    if not os.path.isfile(data_args.train_file):',
    `        sys.exit(f"{data_args.train_file} does not exist yet: rlhf-kit writes it (${ctx.runtimeData.madeBy}); run that first")`,
    '',
  ].join('\n');
}

function loadData(ctx: StageContext, lastTurnSplit: boolean): string {
  const lines = [
    runtimeCheck(ctx),
    '    files = {"train": data_args.train_file}',
    '    if data_args.eval_file:',
    '        files["eval"] = data_args.eval_file',
    '    data = load_dataset("json", data_files=files)',
  ];
  if (lastTurnSplit) {
    lines.push(
      '    # rlhf-kit rows are whole dialogues and only their last answer is trained: as conversational',
      '    # prompt + completion, TRL trains the completion only.',
      '    data = data.map(lambda row: {"prompt": row["messages"][:-1], "completion": row["messages"][-1:]}, remove_columns=data["train"].column_names)',
    );
  }
  return lines.filter((l) => l !== '').join('\n');
}

function mergeBlock(peftClass: string): string {
  // A reward model's base loads with one label, the shape of its saved score head.
  const kwargs = peftClass === 'AutoPeftModelForSequenceClassification' ? ', num_labels=1' : '';
  return [
    '    if model_args.use_peft and data_args.merged_dir and trainer.accelerator.is_main_process:',
    '        # Reloaded from the saved adapter, so this also works after DeepSpeed ZeRO-3 (sharded weights).',
    `        merged = ${peftClass}.from_pretrained(training_args.output_dir${kwargs}).merge_and_unload()`,
    '        merged.save_pretrained(data_args.merged_dir)',
    '        trainer.processing_class.save_pretrained(data_args.merged_dir)',
  ].join('\n');
}

function script(o: {
  spec: StageSpec;
  ctx: StageContext;
  what: string;
  configClass: string;
  trainerClass: string;
  peftClass: string;
  args: ArgList;
  lastTurnSplit: boolean;
  notes: string[];
}): string {
  const { ctx } = o;
  const file = `train_${ctx.name}.py`;
  const defaults = o.args.args.map((x) => `    ${JSON.stringify(x.name)}: ${pyLiteral(x.value as ArgValue)},`).join('\n');
  const accelerate = `accelerate launch --config_file ${ctx.root}/accelerate_config.yaml ${ctx.dir}/${file}`;
  return `#!/usr/bin/env python3
"""${o.what}, for TRL ${TRL_VERSION} (${o.trainerClass} + ${o.configClass}, PEFT).

Generated by rlhf-kit \`rlhf export\` from ${o.spec.configFile}; MAPPING.md says where every value comes from.
  Run:          python ${file}                      (from any folder; every path is absolute)
  Shorter run:  python ${file} --max_steps 3 --output_dir out
  GPUs:         ${accelerate}
Any ${o.configClass}, ModelConfig or DataArguments field is a flag (transformers.HfArgumentParser).
${o.notes.map((n) => `${n}\n`).join('')}"""
import os
import sys
from dataclasses import dataclass, field

from datasets import load_dataset
from peft import ${o.peftClass}
from transformers import AutoTokenizer, HfArgumentParser
from trl import ModelConfig, ${o.configClass}, ${o.trainerClass}, get_peft_config


${DATA_ARGS}


# Every value the rlhf-kit config sets, as the flags HfArgumentParser takes.
DEFAULTS = {
${defaults}
}


${FLAGS_HELPER}


def main():
    parser = HfArgumentParser((${o.configClass}, ModelConfig, DataArguments))
    training_args, model_args, data_args = parser.parse_args_into_dataclasses(args=as_flags(DEFAULTS) + sys.argv[1:])
    peft_targets(model_args)
    model_path = model_folder(model_args.model_name_or_path)
${loadData(ctx, o.lastTurnSplit)}
    tokenizer = AutoTokenizer.from_pretrained(data_args.tokenizer_path or model_path)
    trainer = ${o.trainerClass}(
        model=model_path,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data["eval"] if "eval" in data else None,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    trainer.train()
    if "eval" in data:
        trainer.evaluate()
    trainer.save_model(training_args.output_dir)
${mergeBlock(o.peftClass)}


if __name__ == "__main__":
    main()
`;
}

function sftScript(spec: SftSpec, ctx: StageContext): GeneratedScript {
  const a = new ArgList();
  const gaps: string[] = [];
  dataArgs(a, spec, ctx, spec.origin === 'sft' ? 'sft.save_merged' : 'sft.save_merged (or a later stage reads it)');
  trainingArgs(a, spec.common, ctx, null, ctx.evalFile !== null);
  modelArgs(a, ctx, spec.lora, 'CAUSAL_LM');
  a.set('data.max_length', spec.maxLength, 'max_length', spec.maxLength);
  if (spec.truncation === 'keep_end') {
    a.set('data.truncation', spec.truncation, 'truncation_mode', 'keep_start', 'TRL 1.x keeps only keep_start (keep_end is deprecated): a too-long dialogue loses its end, not its start');
  } else {
    a.set('data.truncation', spec.truncation, 'truncation_mode', 'keep_start');
  }
  a.set('data.packing', spec.packing, 'packing', spec.packing, spec.packing ? "TRL's bfd packing keeps examples apart (padding-free); rlhf-kit's packed rows attend across examples" : '');
  const strategy = spec.origin === 'sft' ? 'data.strategy' : '(last answer trained)';
  if (spec.rows === 'text') {
    a.gap(strategy, 'text rows', 'plain text rows: TRL trains every token, as rlhf-kit does');
  } else if (spec.rows === 'prompt_completion' || ctx.runtimeData !== null) {
    const note = spec.loss === 'last' ? 'rows are conversational prompt (every earlier turn) + completion (the last answer)' : 'prompt + completion rows: the completion is trained, as rlhf-kit does';
    a.set(strategy, spec.loss === 'last' ? 'train_on_last' : 'prompt/completion rows', 'completion_only_loss', true, note);
  } else if (spec.loss === 'assistant') {
    a.set('data.strategy', 'train_on_assistant', 'assistant_only_loss', true, 'needs {% generation %} markers: chat_template.jinja is the template with them (the shipped one has none)');
  } else {
    a.set('data.strategy', 'train_on_all', 'assistant_only_loss', false, 'every token of the dialogue');
  }
  if (ctx.templateFile !== null) a.set('tokenizer.template', spec.model.template, 'chat_template_path', ctx.templateFile);
  const what = spec.origin === 'sft' ? 'Supervised fine-tuning' : spec.origin === 'rs' ? 'The fine-tuning half of rejection sampling (SFT on the kept answers)' : 'The fine-tuning half of Ghost Attention (SFT on each dialogue\'s last answer)';
  const notes: string[] = [];
  if (ctx.runtimeData !== null) notes.push(`Its rows come from rlhf-kit: ${ctx.runtimeData.madeBy}  (writes ${ctx.runtimeData.file}).`);
  return { file: `train_${ctx.name}.py`, text: script({ spec, ctx, what, configClass: 'SFTConfig', trainerClass: 'SFTTrainer', peftClass: 'AutoPeftModelForCausalLM', args: a, lastTurnSplit: ctx.runtimeData !== null, notes }), args: a, gaps };
}

function rewardScript(spec: RewardSpec, ctx: StageContext): GeneratedScript {
  const a = new ArgList();
  dataArgs(a, spec, ctx, '(a later stage reads it)');
  trainingArgs(a, spec.common, ctx, spec.evalBatchSize, ctx.evalFile !== null);
  modelArgs(a, ctx, spec.lora, 'SEQ_CLS');
  a.set('data.max_length', spec.maxLength, 'max_length', spec.maxLength, 'TRL drops pairs longer than this, as rlhf-kit does');
  a.set('reward.center_rewards_coefficient', spec.centerCoefficient, 'center_rewards_coefficient', spec.centerCoefficient === 0 ? null : spec.centerCoefficient);
  if (spec.margin === 'none') a.gap('reward.margin', 'none', 'no margin column: −log σ(r_c − r_r)');
  else a.gap('reward.margin', spec.margin, "written as each row's `margin` column (Llama 2 Table 27 by strength); RewardTrainer subtracts it: −log σ(r_c − r_r − m)");
  if (ctx.templateFile !== null) a.set('tokenizer.template', spec.model.template, 'chat_template_path', ctx.templateFile);
  return {
    file: `train_${ctx.name}.py`,
    text: script({ spec, ctx, what: 'Reward model (a scalar score head on the backbone, Bradley-Terry loss)', configClass: 'RewardConfig', trainerClass: 'RewardTrainer', peftClass: 'AutoPeftModelForSequenceClassification', args: a, lastTurnSplit: false, notes: [] }),
    args: a,
    gaps: [],
  };
}

function dpoScript(spec: DpoSpec, ctx: StageContext): GeneratedScript {
  const a = new ArgList();
  dataArgs(a, spec, ctx, 'save_merged');
  trainingArgs(a, spec.common, ctx, spec.evalBatchSize, ctx.evalFile !== null);
  modelArgs(a, ctx, spec.lora, 'CAUSAL_LM');
  a.set('data.max_length', spec.maxLength, 'max_length', spec.maxLength, 'TRL truncates a longer pair; rlhf-kit drops it');
  a.set('dpo.beta', spec.beta, 'beta', spec.beta);
  a.set('dpo.loss_type', spec.lossTypes, 'loss_type', spec.lossTypes, 'the same TRL 1.x names');
  a.set('dpo.loss_weights', spec.lossWeights, 'loss_weights', spec.lossWeights);
  a.set('dpo.label_smoothing', spec.labelSmoothing, 'label_smoothing', spec.labelSmoothing);
  a.set('dpo.precompute_ref_log_probs', spec.precomputeRef, 'precompute_ref_log_probs', spec.precomputeRef);
  if (spec.strengthWeights) a.gap('dpo.strength_weights', 'set', 'no per-pair weight in DPOTrainer: every pair weighs 1');
  if (ctx.templateFile !== null) a.set('tokenizer.template', spec.model.template, 'chat_template_path', ctx.templateFile);
  return {
    file: `train_${ctx.name}.py`,
    text: script({ spec, ctx, what: 'Direct preference optimisation (the reference is the starting model)', configClass: 'DPOConfig', trainerClass: 'DPOTrainer', peftClass: 'AutoPeftModelForCausalLM', args: a, lastTurnSplit: false, notes: [] }),
    args: a,
    gaps: [],
  };
}

/** The TRL script of a stage; PPO is refused (TRL has no PPO trainer any more). */
export function trlScript(spec: StageSpec, ctx: StageContext): GeneratedScript {
  switch (spec.kind) {
    case 'sft':
      return sftScript(spec, ctx);
    case 'reward':
      return rewardScript(spec, ctx);
    case 'dpo':
      return dpoScript(spec, ctx);
    case 'ppo':
      throw new UserError(
        `${spec.configFile}: TRL has no PPO trainer any more (TRL moved PPOTrainer to trl.experimental and then removed it); ` +
          'export PPO with --to openrlhf, or align with DPO (rlhf export --to trl on a dpo config)',
      );
  }
}
