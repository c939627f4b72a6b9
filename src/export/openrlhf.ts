/**
 * OpenRLHF command lines, spelled as its 0.11 release spells them (dotted `--data.input_key`,
 * `--adam.lr`, `--ds.zero_stage` …): `deepspeed --module openrlhf.cli.train_sft | train_rm |
 * train_dpo`, and for PPO `ray job submit … -- python3 -m openrlhf.cli.train_ppo_ray`. Each stage
 * is one `train_<stage>.sh`; flags given to it are appended last, so they win (argparse).
 */
import { UserError } from '../errors.js';
import { ArgList, shQuote } from './args.js';
import type { StageContext } from './context.js';
import { batchLayout, epochPlan, warmupRatio } from './layout.js';
import { sourceLabel, type CommonSpec, type DpoSpec, type LoraSpec, type PpoSpec, type RewardSpec, type SftSpec, type StageSpec } from './spec.js';
import { OPENRLHF_VERSION } from './versions.js';
import type { GeneratedScript } from './trl.js';

/** A value the shell expands (a variable or command substitution), written in double quotes. */
const shellValue = (s: string) => `\u0000${s}`;

function renderValue(v: string | number): string {
  if (typeof v === 'number') return String(v);
  if (v.startsWith('\u0000')) return `"${v.slice(1)}"`;
  return shQuote(v);
}

/** `--flag value` lines; true = a bare switch, false / null = left out. */
function flagLines(args: ArgList): string[] {
  const lines: string[] = [];
  for (const { name, value } of args.args) {
    if (value === null || value === false) continue;
    if (value === true) lines.push(`--${name}`);
    else if (Array.isArray(value)) lines.push(`--${name} ${(value as (string | number)[]).map(renderValue).join(' ')}`);
    else lines.push(`--${name} ${renderValue(value as string | number)}`);
  }
  return lines;
}

const SCHEDULERS = { cosine: 'cosine', linear: 'linear', constant: 'constant_with_warmup' } as const;

/** Optimizer, schedule, batch and epoch flags of the DeepSpeed trainers (SFT, RM, DPO). */
function trainerArgs(a: ArgList, c: CommonSpec, ctx: StageContext, prefix = ''): { steps: number; note: string } {
  const l = batchLayout(c.batchSize, c.gradAccum, ctx.gpus);
  const split = `${l.global} examples per optimizer step = ${l.perDevice} per GPU × ${l.accumulation} accumulation × ${ctx.gpus} GPU(s)`;
  a.set('train.batch_size × optim.grad_accum', l.global, 'train.batch_size', l.global, `global batch; ${split}`);
  a.set('train.batch_size', c.batchSize, 'train.micro_batch_size', l.perDevice, split);
  const rows = ctx.trainRows;
  let steps = c.steps;
  let note = '';
  if (c.epochs !== null) {
    a.set('train.epochs', c.epochs, 'train.max_epochs', Math.max(1, Math.round(c.epochs)), Number.isInteger(c.epochs) ? '' : 'OpenRLHF counts whole epochs: rounded');
  } else if (rows !== null) {
    const p = epochPlan(c.steps, l.global, rows);
    steps = p.steps;
    note = p.steps === c.steps ? '' : `OpenRLHF counts epochs, not steps: ${p.epochs} epoch(s) of ${rows} rows give ${p.steps} steps (rlhf-kit: ${c.steps})`;
    a.set('train.steps', c.steps, 'train.max_epochs', p.epochs, note || `${c.steps} steps = ${p.epochs} epoch over the first max_samples rows`);
    a.set('train.steps', c.steps, 'data.max_samples', p.maxSamples, p.truncates ? 'the rows were shuffled (seeded by engine.seed) when exported, so the first max_samples rows are a random subset' : '');
  } else {
    a.gap('train.steps', c.steps, "OpenRLHF counts epochs; the rows are written at run time, so it trains 1 epoch over them (pass --train.max_epochs N to the script)");
    a.set('', '', 'train.max_epochs', 1);
  }
  a.set('optim.lr', c.lr, `${prefix}adam.lr`, c.lr);
  a.set('optim.betas', c.betas, `${prefix}adam.betas`, [c.betas[0], c.betas[1]]);
  a.set('optim.eps', c.eps, `${prefix}adam.eps`, c.eps);
  a.set('optim.weight_decay', c.weightDecay, `${prefix}adam.weight_decay`, c.weightDecay);
  a.set('optim.grad_clip', c.gradClip, `${prefix}max_norm`, c.gradClip ?? 0, c.gradClip === null ? '0 = no clipping' : '');
  a.set('schedule.type', c.schedule, `${prefix}lr_scheduler`, SCHEDULERS[c.schedule]);
  a.set('schedule.warmup_steps', c.warmupSteps, `${prefix}lr_warmup_ratio`, Number(warmupRatio(c.warmupSteps, steps).toFixed(6)), 'warmup as a fraction of the run');
  a.set('engine.seed', c.seed, 'train.seed', c.dataSeed ?? c.seed, c.dataSeed !== null ? 'train.seed (the data order) wins: OpenRLHF has one seed' : '');
  return { steps, note };
}

function checkpointArgs(a: ArgList, c: CommonSpec, ctx: StageContext): void {
  a.set('output_dir', '', 'ckpt.output_dir', ctx.outputDir, 'the final model (HF folder, or the LoRA adapter)');
  a.set('checkpoint.every_steps', c.saveEvery, 'ckpt.save_steps', c.saveEvery > 0 ? c.saveEvery : -1, c.saveEvery > 0 ? 'DeepSpeed checkpoints in ckpt.path' : '-1 = none');
  if (c.saveEvery > 0) a.set('', '', 'ckpt.path', `${ctx.outputDir}/checkpoints`);
  if (c.keepLast !== null) a.set('checkpoint.keep_last', c.keepLast, 'ckpt.max_num', c.keepLast);
  a.set('train.eval_every', c.evalEvery, 'eval.steps', c.evalEvery > 0 ? c.evalEvery : -1, c.evalEvery > 0 ? '' : '-1 = at the end of each epoch');
}

function deepspeedArgs(a: ArgList, ctx: StageContext, c: CommonSpec, lora: LoraSpec | null, actor = false): void {
  const stage = ctx.deepspeed === 'zero3' ? 3 : 2;
  a.set('(--deepspeed)', ctx.deepspeed ?? 'zero2', 'ds.zero_stage', stage, ctx.deepspeed === null ? "OpenRLHF's default (ZeRO-2)" : '');
  if (c.gradientCheckpointing) a.set('train.gradient_checkpointing', true, actor ? 'actor.gradient_checkpointing_enable' : 'model.gradient_checkpointing_enable', true);
  if (lora === null) return;
  if (!Number.isInteger(lora.alpha)) throw new UserError(`lora.alpha=${lora.alpha}: OpenRLHF's --ds.lora.alpha takes an integer`);
  a.set('lora.r', lora.r, 'ds.lora.rank', lora.r);
  a.set('lora.alpha', lora.alpha, 'ds.lora.alpha', lora.alpha);
  a.set('lora.dropout', lora.dropout, 'ds.lora.dropout', lora.dropout);
  a.set('lora.target_modules', lora.targetModules, 'ds.lora.target_modules', typeof lora.targetModules === 'string' ? [lora.targetModules] : lora.targetModules);
  if (lora.rslora) a.gap('lora.use_rslora', true, 'no rank-stabilised scaling in OpenRLHF: alpha / r is used');
}

function templateArg(a: ArgList, ctx: StageContext, template: string): void {
  if (ctx.templateFile !== null) {
    a.set('tokenizer.template', template, 'data.tokenizer_chat_template', shellValue(`$(cat ${ctx.templateFile})`), 'the template file next to the script');
  }
}

const MODEL_LINES = (name: string, path: string) => [
  `${name}=${shQuote(path)}`,
  `# An rlhf-kit stage's final/ keeps the merged model in final/merged/ after LoRA.`,
  `if [ -f "$${name}/merged/config.json" ]; then ${name}="$${name}/merged"; fi`,
];

function header(what: string, module: string, spec: StageSpec, ctx: StageContext, extra: string[]): string[] {
  return [
    '#!/usr/bin/env bash',
    `# ${what}, for OpenRLHF ${OPENRLHF_VERSION} (${module}).`,
    `# Generated by rlhf-kit \`rlhf export\` from ${spec.configFile}; MAPPING.md says where every value comes from.`,
    `# Run:  bash ${ctx.dir}/train_${ctx.name}.sh [--flag value ...]   (flags given here are appended, so they win)`,
    ...extra.map((l) => `# ${l}`),
    'set -euo pipefail',
    '',
  ];
}

function runtimeCheck(ctx: StageContext): string[] {
  if (ctx.runtimeData === null) return [];
  return [
    `if [ ! -f ${shQuote(ctx.runtimeData.file)} ]; then`,
    `  echo ${shQuote(`${ctx.runtimeData.file} does not exist yet: rlhf-kit writes it (${ctx.runtimeData.madeBy}); run that first`)} >&2`,
    '  exit 2',
    'fi',
  ];
}

function mergeLines(ctx: StageContext, modelVar: string, isRm: boolean): string[] {
  if (ctx.mergedDir === null) return [];
  return [
    '',
    '# LoRA: OpenRLHF saves the adapter; fold it into the base model for the next stage and for rlhf-kit.',
    `python3 -m openrlhf.cli.lora_combiner --model_path "$${modelVar}" --lora_path ${shQuote(ctx.outputDir)} --output_path ${shQuote(ctx.mergedDir)}${isRm ? ' --is_rm' : ''}`,
  ];
}

function deepspeedCommand(module: string, ctx: StageContext, a: ArgList): string[] {
  return [`deepspeed --num_gpus ${ctx.gpus} --module ${module} \\`, ...flagLines(a).map((l) => `   ${l} \\`), '   "$@"'];
}

function sftCommand(spec: SftSpec, ctx: StageContext): GeneratedScript {
  const a = new ArgList();
  a.set('model.path', ctx.model, 'model.model_name_or_path', shellValue('$MODEL'));
  if (ctx.runtimeData !== null) a.set('(rows made by rlhf-kit)', ctx.runtimeData.madeBy, 'data.dataset', ctx.runtimeData.file, 'read when the script runs');
  else a.set('data.train', sourceLabel(spec.train), 'data.dataset', ctx.trainFile!);
  if (ctx.evalFile !== null) a.set('data.eval', sourceLabel(spec.eval), 'eval.dataset', ctx.evalFile);
  if (spec.rows === 'text') {
    a.set('data.strategy', 'text rows', 'model.pretrain_mode_enable', true, 'plain text rows: every token trained, no chat template');
    a.set('data.strategy', 'text rows', 'data.input_key', 'text');
  } else {
    a.set('', '', 'data.apply_chat_template', true, "the tokenizer's chat template renders the messages");
  }
  if (spec.rows === 'text') {
    // no chat keys
  } else if (ctx.runtimeData !== null) {
    a.set('(last answer trained)', 'train_on_last', 'data.input_key', 'messages', 'without --data.multiturn OpenRLHF trains the last assistant turn only');
  } else if (spec.rows === 'prompt_completion') {
    const note = spec.loss === 'last' ? 'rows are prompt (every earlier turn) + completion (the last answer)' : 'prompt + completion rows';
    a.set('data.strategy', spec.loss === 'last' ? 'train_on_last' : 'prompt/completion rows', 'data.input_key', 'prompt', note);
    a.set('data.strategy', spec.loss === 'last' ? 'train_on_last' : 'prompt/completion rows', 'data.output_key', 'completion', 'only the completion is trained');
  } else if (spec.loss === 'assistant') {
    a.set('data.strategy', 'train_on_assistant', 'data.input_key', 'messages');
    a.set('data.strategy', 'train_on_assistant', 'data.multiturn', true, 'loss on every assistant turn');
  } else {
    a.set('data.strategy', 'train_on_all', 'data.input_key', 'messages');
    a.set('data.strategy', 'train_on_all', 'data.multiturn', true, 'OpenRLHF has no loss on every token of a chat: the nearest is every assistant turn');
  }
  templateArg(a, ctx, spec.model.template);
  a.set('data.max_length', spec.maxLength, 'data.max_len', spec.maxLength, 'OpenRLHF drops a row whose prompt fills max_len and truncates the rest at the end');
  const { note } = trainerArgs(a, spec.common, ctx);
  deepspeedArgs(a, ctx, spec.common, spec.lora);
  if (spec.packing) a.set('data.packing', true, 'ds.packing_samples', true, 'needs flash attention (ds.attn_implementation)');
  checkpointArgs(a, spec.common, ctx);
  const what = spec.origin === 'sft' ? 'Supervised fine-tuning' : spec.origin === 'rs' ? 'The fine-tuning half of rejection sampling (SFT on the kept answers)' : "The fine-tuning half of Ghost Attention (SFT on each dialogue's last answer)";
  const extra = ctx.runtimeData ? [`Its rows come from rlhf-kit: ${ctx.runtimeData.madeBy}  (writes ${ctx.runtimeData.file}).`] : [];
  const lines = [...header(what, 'openrlhf.cli.train_sft', spec, ctx, extra), ...MODEL_LINES('MODEL', ctx.model), ...runtimeCheck(ctx), '', ...deepspeedCommand('openrlhf.cli.train_sft', ctx, a), ...mergeLines(ctx, 'MODEL', false)];
  return { file: `train_${ctx.name}.sh`, text: lines.join('\n') + '\n', args: a, gaps: note ? [note] : [] };
}

/** Preference pairs as OpenRLHF reads them: the converted files, prompt / chosen / rejected keys, the chat template. */
function preferenceDataArgs(a: ArgList, spec: RewardSpec | DpoSpec, ctx: StageContext): void {
  a.set('data.train', sourceLabel(spec.train), 'data.dataset', ctx.trainFile!);
  if (ctx.evalFile !== null) a.set('data.eval', sourceLabel(spec.eval), 'eval.dataset', ctx.evalFile);
  a.set('', '', 'data.apply_chat_template', true);
  a.set('', '', 'data.prompt_key', 'prompt');
  a.set('', '', 'data.chosen_key', 'chosen');
  a.set('', '', 'data.rejected_key', 'rejected');
  templateArg(a, ctx, spec.model.template);
}

function rewardCommand(spec: RewardSpec, ctx: StageContext): GeneratedScript {
  const a = new ArgList();
  a.set('model.path', ctx.model, 'model.model_name_or_path', shellValue('$MODEL'));
  preferenceDataArgs(a, spec, ctx);
  a.set('data.max_length', spec.maxLength, 'data.max_len', spec.maxLength, 'OpenRLHF truncates a longer side; rlhf-kit drops the pair');
  if (spec.margin !== 'none') a.set('reward.margin', spec.margin, 'model.margin_loss_enable', true, "reads each row's `margin` column (written from strength, Llama 2 Table 27): −log σ(r_c − r_r − m)");
  else a.gap('reward.margin', 'none', 'no margin: −log σ(r_c − r_r)');
  if (spec.centerCoefficient > 0) a.gap('reward.center_rewards_coefficient', spec.centerCoefficient, 'no reward-centring term in OpenRLHF train_rm');
  a.set('(score head)', 'score.weight', 'ds.value_head_prefix', 'score', 'the head is `score`, as in LlamaForSequenceClassification');
  const { note } = trainerArgs(a, spec.common, ctx);
  deepspeedArgs(a, ctx, spec.common, spec.lora);
  checkpointArgs(a, spec.common, ctx);
  const lines = [...header('Reward model (a scalar score head on the backbone, Bradley-Terry loss)', 'openrlhf.cli.train_rm', spec, ctx, []), ...MODEL_LINES('MODEL', ctx.model), '', ...deepspeedCommand('openrlhf.cli.train_rm', ctx, a), ...mergeLines(ctx, 'MODEL', true)];
  return { file: `train_${ctx.name}.sh`, text: lines.join('\n') + '\n', args: a, gaps: note ? [note] : [] };
}

function dpoCommand(spec: DpoSpec, ctx: StageContext): GeneratedScript {
  const a = new ArgList();
  a.set('model.path', ctx.model, 'model.model_name_or_path', shellValue('$MODEL'), 'also the reference (ref.model_name_or_path defaults to it)');
  preferenceDataArgs(a, spec, ctx);
  a.set('data.max_length', spec.maxLength, 'data.max_len', spec.maxLength, 'OpenRLHF truncates a longer pair; rlhf-kit drops it');
  a.set('dpo.beta', spec.beta, 'model.beta', spec.beta);
  spec.lossTypes.forEach((t, i) => {
    const w = spec.lossWeights[i]!;
    if (t === 'sft') a.set('dpo.loss_type', 'sft', 'model.nll_loss_coef', w, `NLL of the chosen reply, weight ${w} (dpo.loss_weights)`);
    else if (t === 'sigmoid' || t === 'ipo') {
      if (w !== 1) throw new UserError(`${spec.configFile}: dpo.loss_weights gives ${t} weight ${w}; OpenRLHF's DPO loss has no weight (only nll_loss_coef for sft)`);
      if (t === 'ipo') a.set('dpo.loss_type', 'ipo', 'model.ipo_enable', true, "OpenRLHF's IPO uses summed log-ratios; rlhf-kit and TRL average them over the reply length");
      else a.gap('dpo.loss_type', 'sigmoid', "OpenRLHF's default DPO loss (no flag)");
    } else {
      throw new UserError(`${spec.configFile}: dpo.loss_type ${t} has no OpenRLHF equivalent (it has sigmoid, ipo, label_smoothing and nll_loss_coef); export it with --to trl`);
    }
  });
  if (spec.labelSmoothing > 0) a.set('dpo.label_smoothing', spec.labelSmoothing, 'model.label_smoothing', spec.labelSmoothing, "OpenRLHF's is conservative DPO (cDPO); TRL's robust loss also divides by 1 − 2ε");
  if (spec.precomputeRef) a.gap('dpo.precompute_ref_log_probs', true, 'OpenRLHF runs the reference every step (--ref.offload moves it to CPU)');
  if (spec.strengthWeights) a.gap('dpo.strength_weights', 'set', 'no per-pair weight in OpenRLHF: every pair weighs 1');
  const { note } = trainerArgs(a, spec.common, ctx);
  deepspeedArgs(a, ctx, spec.common, spec.lora);
  checkpointArgs(a, spec.common, ctx);
  const lines = [...header('Direct preference optimisation (the reference is the starting model)', 'openrlhf.cli.train_dpo', spec, ctx, []), ...MODEL_LINES('MODEL', ctx.model), '', ...deepspeedCommand('openrlhf.cli.train_dpo', ctx, a), ...mergeLines(ctx, 'MODEL', false)];
  return { file: `train_${ctx.name}.sh`, text: lines.join('\n') + '\n', args: a, gaps: note ? [note] : [] };
}

function ppoCommand(spec: PpoSpec, ctx: StageContext): GeneratedScript {
  const a = new ArgList();
  const g = ctx.gpus;
  for (const role of ['ref', 'reward', 'critic', 'actor']) {
    a.set('(--gpus)', g, `${role}.num_nodes`, 1);
    a.set('(--gpus)', g, `${role}.num_gpus_per_node`, g);
  }
  a.set('(--gpus)', g, 'vllm.num_engines', g, 'one vLLM engine per GPU, colocated with training (hybrid engine)');
  a.set('', '', 'vllm.tensor_parallel_size', 1);
  a.set('', '', 'train.colocate_all', true);
  a.set('', '', 'vllm.gpu_memory_utilization', 0.5);
  a.set('', '', 'vllm.enable_sleep', true);
  a.set('', '', 'ds.enable_sleep', true);
  a.set('model.path', ctx.model, 'actor.model_name_or_path', shellValue('$POLICY'), 'the policy starts from it and it is the frozen reference');
  a.set('model.reward_model', ctx.rewardModel, 'reward.model_name_or_path', shellValue('$REWARD'));
  if (spec.ppo.critic === 'reward_model') a.set('ppo.critic', 'reward_model', 'critic.model_name_or_path', shellValue('$REWARD'), 'the value model starts from the reward model, as in rlhf-kit');
  else if (spec.ppo.critic === 'reward_model_lora') {
    a.set('ppo.critic', 'reward_model_lora', 'critic.model_name_or_path', shellValue('$REWARD'),
      "the critic starts from the reward model and OpenRLHF's LoRA settings (ds.lora.*) put the policy's adapters on it too, as here; " +
        'but PEFT then freezes its value head (rlhf-kit trains a copy of the score head), and OpenRLHF loads the reward model a second time instead of sharing its frozen weights');
  } else a.gap('ppo.critic', 'policy_head', 'OpenRLHF always trains a separate critic: it starts from the reward model here');
  if (spec.ppo.critic === 'policy_head') a.set('', '', 'critic.model_name_or_path', shellValue('$REWARD'));
  a.set('data.prompts', sourceLabel(spec.prompts), 'data.prompt_dataset', ctx.trainFile!);
  a.set('', '', 'data.input_key', 'prompt');
  a.set('', '', 'data.apply_chat_template', true);
  if (ctx.evalFile !== null) {
    a.set('data.eval_prompts', sourceLabel(spec.evalPrompts), 'eval.dataset', ctx.evalFile, 'data.eval_limit rows');
    a.gap('(greedy evaluation)', 'greedy', "OpenRLHF samples eval.n_samples_per_prompt answers at eval.temperature (its defaults 4 and 0.6); rlhf-kit answers greedily and also scores with the world's judge (rlhf world eval on the output)");
  }
  templateArg(a, ctx, spec.model.template);
  a.set('data.max_prompt_tokens + generation.max_new_tokens', spec.maxLength, 'data.max_len', spec.maxLength);
  a.set('generation.max_new_tokens', spec.generation.max_new_tokens, 'rollout.max_new_tokens', spec.generation.max_new_tokens);
  a.set('generation.temperature', spec.generation.temperature, 'rollout.temperature', spec.generation.temperature);
  a.set('train.rollout_batch_size', spec.rolloutBatchSize, 'rollout.batch_size', spec.rolloutBatchSize, 'prompts per iteration');
  a.set('', '', 'rollout.n_samples_per_prompt', 1);
  const l = batchLayout(spec.ppo.mini_batch_size, spec.common.gradAccum, g, 'ppo.mini_batch_size');
  a.set('ppo.mini_batch_size', spec.ppo.mini_batch_size, 'train.batch_size', l.global, 'sequences per optimizer step');
  a.set('ppo.mini_batch_size', spec.ppo.mini_batch_size, 'train.micro_batch_size', l.perDevice);
  a.set('', '', 'rollout.micro_batch_size', l.perDevice);
  a.set('ppo.ppo_epochs', spec.ppo.ppo_epochs, 'train.max_epochs', spec.ppo.ppo_epochs, 'passes over each rollout');
  const rows = ctx.trainRows ?? 0;
  const wanted = spec.common.steps * spec.rolloutBatchSize;
  const episodes = Math.max(1, Math.ceil(wanted / Math.max(rows, 1)));
  a.set('train.steps', spec.common.steps, 'data.max_samples', Math.min(wanted, rows), `${spec.common.steps} iterations × ${spec.rolloutBatchSize} prompts; the prompts were shuffled (seeded) when exported`);
  a.set('train.steps', spec.common.steps, 'train.num_episodes', episodes);
  a.set('ppo.clip_range', spec.ppo.clip_range, 'actor.eps_clip', spec.ppo.clip_range);
  a.set('ppo.clip_range_value', spec.ppo.clip_range_value, 'critic.value_clip', spec.ppo.clip_range_value);
  a.set('ppo.gamma', spec.ppo.gamma, 'algo.advantage.gamma', spec.ppo.gamma);
  a.set('ppo.lam', spec.ppo.lam, 'algo.advantage.lambd', spec.ppo.lam);
  a.set('', '', 'algo.advantage.estimator', 'gae');
  if (spec.ppo.entropy_coef > 0) a.set('ppo.entropy_coef', spec.ppo.entropy_coef, 'actor.entropy_coef', spec.ppo.entropy_coef);
  a.gap('ppo.vf_coef', spec.ppo.vf_coef, 'the critic has its own optimizer in OpenRLHF (critic.adam.lr), so there is no value-loss weight');
  if (spec.ppo.target_kl !== null) a.gap('ppo.target_kl', spec.ppo.target_kl, 'no early stop on approx-KL within a rollout in OpenRLHF');
  if (spec.ppo.ratio_threshold !== null) a.gap('ppo.ratio_threshold', spec.ppo.ratio_threshold, 'no minibatch skip on the ratio in OpenRLHF');
  const est = { k1: 'k1', k3: 'k3', mse: 'k2', abs: null }[spec.rewards.kl_estimator];
  if (est === null) throw new UserError(`${spec.configFile}: rewards.kl_estimator abs has no OpenRLHF equivalent (it has k1, k2 = mse, k3)`);
  a.set('rewards.kl_estimator', spec.rewards.kl_estimator, 'algo.kl.estimator', est);
  a.set('kl.init_coef', spec.kl.init_coef, 'algo.kl.init_coef', spec.kl.init_coef);
  if (spec.kl.controller === 'adaptive') {
    a.set('kl.target', spec.kl.target, 'algo.kl.target', spec.kl.target, 'setting a target turns on the adaptive controller');
    a.set('kl.horizon', spec.kl.horizon, 'algo.kl.horizon', spec.kl.horizon);
  }
  if (spec.rewards.normalize) {
    a.set('rewards.normalize', true, 'reward.normalize_enable', true, "OpenRLHF reads the mean and std from the reward model's config.json (its train_rm writes them); an rlhf-kit reward model keeps them in reward_stats.json: copy mean and std into config.json, or it normalises with 0 and 1");
  }
  if (spec.rewards.clip !== null) a.set('rewards.clip', spec.rewards.clip, 'reward.clip_range', [-spec.rewards.clip, spec.rewards.clip]);
  if (spec.rewards.missing_eos_penalty !== null) a.gap('rewards.missing_eos_penalty', spec.rewards.missing_eos_penalty, 'OpenRLHF\'s reward.stop_properly_penalty_coef scales or replaces the score of a truncated reply; it does not subtract a penalty');
  if (spec.rewards.whiten) a.gap('rewards.whiten', true, 'no per-token reward whitening in OpenRLHF (advantages are normalised)');
  const c = spec.common;
  for (const role of ['actor', 'critic']) {
    a.set('optim.lr', c.lr, `${role}.adam.lr`, c.lr, role === 'critic' ? 'rlhf-kit trains policy and value with one optimizer' : '');
    a.set('optim.betas', c.betas, `${role}.adam.betas`, [c.betas[0], c.betas[1]]);
    a.set('optim.eps', c.eps, `${role}.adam.eps`, c.eps);
    a.set('optim.weight_decay', c.weightDecay, `${role}.adam.weight_decay`, c.weightDecay);
    a.set('optim.grad_clip', c.gradClip, `${role}.max_norm`, c.gradClip ?? 0);
    a.set('schedule.type', c.schedule, `${role}.lr_scheduler`, SCHEDULERS[c.schedule]);
    a.set('schedule.warmup_steps', c.warmupSteps, `${role}.lr_warmup_ratio`, Number(warmupRatio(c.warmupSteps, c.steps).toFixed(6)));
  }
  a.set('engine.seed', c.seed, 'train.seed', c.dataSeed ?? c.seed);
  deepspeedArgs(a, ctx, c, spec.lora, true);
  a.set('output_dir', '', 'ckpt.output_dir', ctx.outputDir, 'the final policy (HF folder, or the LoRA adapter)');
  a.set('checkpoint.every_steps', c.saveEvery, 'ckpt.save_steps', c.saveEvery > 0 ? c.saveEvery : -1);
  if (c.saveEvery > 0) a.set('', '', 'ckpt.path', `${ctx.outputDir}/checkpoints`);
  if (c.keepLast !== null) a.set('checkpoint.keep_last', c.keepLast, 'ckpt.max_num', c.keepLast);
  a.set('train.eval_every', c.evalEvery, 'eval.steps', c.evalEvery > 0 ? c.evalEvery : -1);
  const lines = [
    ...header('PPO against the reward model (GAE, clipped losses, adaptive KL)', 'openrlhf.cli.train_ppo_ray on Ray, vLLM rollouts', spec, ctx, [
      'Needs a Ray cluster: ray start --head --num-gpus N (RAY_ADDRESS picks another one).',
    ]),
    ...MODEL_LINES('POLICY', ctx.model),
    ...MODEL_LINES('REWARD', ctx.rewardModel!),
    '',
    `ray job submit --address="\${RAY_ADDRESS:-http://127.0.0.1:8265}" \\`,
    `   --runtime-env-json=${shQuote(JSON.stringify({ working_dir: ctx.dir }))} \\`,
    '   -- python3 -m openrlhf.cli.train_ppo_ray \\',
    ...flagLines(a).map((l) => `   ${l} \\`),
    '   "$@"',
    ...mergeLines(ctx, 'POLICY', false),
  ];
  return { file: `train_${ctx.name}.sh`, text: lines.join('\n') + '\n', args: a, gaps: [] };
}

export function openrlhfScript(spec: StageSpec, ctx: StageContext): GeneratedScript {
  switch (spec.kind) {
    case 'sft':
      return sftCommand(spec, ctx);
    case 'reward':
      return rewardCommand(spec, ctx);
    case 'dpo':
      return dpoCommand(spec, ctx);
    case 'ppo':
      return ppoCommand(spec, ctx);
  }
}

