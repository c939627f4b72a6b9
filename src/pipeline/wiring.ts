/**
 * How each stage's inputs come from the earlier stages' output folders, and how a stage's config
 * is assembled: its config file (or the schema's defaults) ← the pipeline's run settings ← the
 * wiring ← the stage's own overrides from the pipeline config.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveDataPath } from '../paths.js';
import { UserError } from '../errors.js';
import type { PipelineStage } from './config.js';

/** A relative path not found from the working directory is looked up inside the package (shipped data). */
export function resolvePackagePath(path: string): string {
  return resolve(resolveDataPath(path));
}

/** A model as the stages take it: an HF folder, and optionally a PEFT adapter on top. */
export interface ModelRef {
  path: string;
  adapter: string | null;
}

/**
 * The model a finished stage produced, from its `final/` folder: a merged HF folder
 * (`final/merged/`) when there is one, else `final/` itself when it is an HF folder, else the
 * adapter in `final/` on top of its `base_model_name_or_path`.
 */
export function stageModel(stageDir: string, stage: string): ModelRef {
  const final = join(stageDir, 'final');
  if (existsSync(join(final, 'merged', 'config.json'))) return { path: join(final, 'merged'), adapter: null };
  if (existsSync(join(final, 'config.json'))) return { path: final, adapter: null };
  const adapterConfig = join(final, 'adapter_config.json');
  if (existsSync(adapterConfig)) {
    const base = (JSON.parse(readFileSync(adapterConfig, 'utf8')) as { base_model_name_or_path?: unknown }).base_model_name_or_path;
    if (typeof base !== 'string' || !existsSync(join(base, 'config.json'))) {
      throw new UserError(`${adapterConfig}: base_model_name_or_path (${String(base)}) is not a model folder; rerun the ${stage} stage (--force ${stage})`);
    }
    return { path: base, adapter: final };
  }
  throw new UserError(`${final}: no model there (no config.json, merged/ or adapter_config.json); rerun the ${stage} stage (--force ${stage})`);
}

/** Where the stages' outputs are, as far as the pipeline has got. */
export interface WiringContext {
  /** The model SFT starts from: pretrain's final/ or `base_model`. */
  base: ModelRef;
  /** Finished stages' folders (`rs`: the last round's rejection-sampling folder). */
  outputs: Partial<Record<PipelineStage | 'rs', string>>;
  /** After the iterative rounds: the last round's policy (GAtt starts there) and its rs folder (its rows join GAtt's mix). */
  rounds?: { policy: { stage: 'rs' | 'ppo'; dir: string }; rs: string };
}

function need(ctx: WiringContext, stage: PipelineStage, upstream: PipelineStage): string {
  const dir = ctx.outputs[upstream];
  if (dir === undefined) {
    throw new UserError(`stage ${stage} needs the ${upstream} stage's output; enable stages.${upstream} (or run it once) first`);
  }
  return dir;
}

const set = (key: string, value: string | null): string => `${key}=${JSON.stringify(value)}`;

/**
 * The override that appends the held-out evaluation prompts to a resolved config's list of
 * excluded prompt files (`key`, e.g. `data.exclude`), or none when they are already in it: applied
 * after the user's overrides, so no setting can let a held-out prompt into training data.
 */
export function heldOutExclusion(config: Record<string, unknown>, key: string, evalPrompts: string): string[] {
  const list = key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], config) as string[];
  return list.map(resolvePackagePath).includes(evalPrompts) ? [] : [`${key}=${JSON.stringify([...list, evalPrompts])}`];
}

/**
 * The `key=value` overrides that point a stage at its inputs:
 * SFT ← base; reward ← SFT model; PPO ← base + SFT (policy and reference) and the reward model;
 * DPO ← the SFT model (policy and reference; no reward model); GAtt ← the PPO policy, else the DPO one —
 * or, after iterative rounds, the last round's policy, with its rejection-sampled rows mixed in (data.mix).
 */
export function wiringOverrides(stage: PipelineStage, ctx: WiringContext): string[] {
  switch (stage) {
    case 'pretrain':
      return [];
    case 'sft':
      if (ctx.base.adapter !== null) throw new UserError('base_model: an adapter folder cannot be the base model of SFT');
      return [set('model.path', ctx.base.path)];
    case 'reward':
    case 'reward_safety': {
      const sft = stageModel(need(ctx, stage, 'sft'), 'sft');
      return [set('model.path', sft.path), set('model.adapter', sft.adapter)];
    }
    case 'ppo': {
      const sft = stageModel(need(ctx, stage, 'sft'), 'sft');
      const reward = stageModel(need(ctx, stage, 'reward'), 'reward');
      // With a safety reward model too, PPO gets the named set (rewards.combine: llama2 in its config).
      const safetyDir = ctx.outputs.reward_safety;
      const rewardModel = safetyDir === undefined ? reward.path : { helpfulness: reward.path, safety: stageModel(safetyDir, 'reward_safety').path };
      return [set('model.path', sft.path), set('model.adapter', sft.adapter), `model.reward_model=${JSON.stringify(rewardModel)}`];
    }
    case 'dpo': {
      const sft = stageModel(need(ctx, stage, 'sft'), 'sft');
      return [set('model.path', sft.path), set('model.adapter', sft.adapter)];
    }
    case 'gatt': {
      if (ctx.rounds !== undefined) {
        // GAtt starts from the last round's policy and mixes its rejection-sampled rows into the fine-tuning.
        const policy = stageModel(ctx.rounds.policy.dir, ctx.rounds.policy.stage);
        return [set('model.path', policy.path), set('model.adapter', policy.adapter), `data.mix=${JSON.stringify([join(ctx.rounds.rs, 'rs_train.jsonl')])}`];
      }
      const from = ctx.outputs.ppo === undefined && ctx.outputs.dpo !== undefined ? 'dpo' : 'ppo';
      const policy = stageModel(need(ctx, stage, from), from);
      return [set('model.path', policy.path), set('model.adapter', policy.adapter)];
    }
  }
}

/** Nested / dotted override mapping → `key=value` strings (values as JSON, which YAML reads back). */
export function mappingToOverrides(mapping: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(mapping)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
      out.push(...mappingToOverrides(value as Record<string, unknown>, path));
    } else {
      out.push(`${path}=${JSON.stringify(value)}`);
    }
  }
  return out;
}
