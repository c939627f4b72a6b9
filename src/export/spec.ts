/**
 * What a stage trains, read from its resolved config into one engine-independent shape: the
 * model, the hyperparameters every trainer shares, LoRA, and the stage's own objective. The TRL
 * and OpenRLHF generators read only this, so a key is interpreted in one place.
 */
import { resolve } from 'node:path';
import { UserError } from '../errors.js';
import type { LossTokens, MarginKind, Row } from './data.js';


// What the spec builders read from each stage's resolved config. Structural, so the stages'
// own config types fit without this shared block importing a stage.
type Template = 'auto' | 'tokenizer' | 'llama2' | 'chatml';
interface TokenizerIn {
  path: string | null;
  template: Template;
}
interface LoraIn {
  enabled?: boolean;
  r: number;
  alpha: number;
  dropout: number;
  target_modules: string | readonly string[];
  use_rslora?: boolean;
}
interface CommonIn {
  output_dir: string;
  engine: { seed: number };
  optim: { lr: number; betas: readonly [number, number]; eps: number; weight_decay: number; grad_clip: number | null; grad_accum: number };
  schedule: { type: 'cosine' | 'linear' | 'constant'; warmup_steps: number };
  checkpoint: { every_steps: number; keep_last: number | null };
}
interface TrainIn {
  steps: number;
  epochs: number | null;
  batch_size: number;
  eval_every: number;
  seed: number | null;
  gradient_checkpointing: boolean | 'auto';
}
export interface SftConfigIn extends CommonIn {
  train: TrainIn;
  model: { path: string };
  tokenizer: TokenizerIn;
  lora: LoraIn;
  sft: { save_merged: boolean; early_stopping_patience: number | null };
  data: {
    /** One file, or several read as one set (as the SFT stage reads them). */
    train: string | readonly string[];
    eval: string | null;
    eval_split: number;
    eval_max_rows: number | null;
    strategy: 'train_on_assistant' | 'train_on_all' | 'train_on_last';
    max_length: number;
    truncation: 'keep_start' | 'keep_end';
    packing: boolean;
    on_bad_row: 'error' | 'skip';
  };
}
interface PairsDataIn {
  on_bad_row: 'error' | 'skip';
  train: string | readonly string[];
  eval: string | null;
  eval_fraction: number;
  max_train_pairs: number | null;
  max_eval_pairs: number | null;
  max_length: number;
}
export interface RewardConfigIn extends CommonIn {
  train: TrainIn;
  model: { path: string; adapter: string | null };
  tokenizer: TokenizerIn;
  lora: LoraIn;
  data: PairsDataIn;
  reward: { margin: string; center_rewards_coefficient: number; eval_batch_size: number };
}
export interface DpoConfigIn extends CommonIn {
  train: TrainIn;
  model: { path: string; adapter: string | null };
  tokenizer: TokenizerIn;
  lora: LoraIn & { enabled: boolean };
  data: PairsDataIn;
  dpo: {
    beta: number;
    loss_type: string | readonly string[];
    loss_weights: readonly number[] | null;
    label_smoothing: number;
    precompute_ref_log_probs: boolean;
    strength_weights: unknown;
    eval_batch_size: number;
  };
  save_merged: boolean;
}
export interface PpoSections {
  ppo: {
    mini_batch_size: number;
    ppo_epochs: number;
    clip_range: number;
    clip_range_value: number;
    vf_coef: number;
    entropy_coef: number;
    gamma: number;
    lam: number;
    target_kl: number | null;
    ratio_threshold: number | null;
    critic: 'reward_model' | 'reward_model_lora' | 'policy_head';
  };
  rewards: { kl_estimator: 'k1' | 'k3' | 'abs' | 'mse'; normalize: boolean; clip: number | null; missing_eos_penalty: number | null; whiten: boolean };
  kl: { controller: 'adaptive' | 'fixed'; init_coef: number; target: number; horizon: number };
  generation: { max_new_tokens: number; temperature: number };
}
export interface PpoConfigIn extends CommonIn, PpoSections {
  train: { steps: number; rollout_batch_size: number; eval_every: number; seed: number | null };
  model: { path: string; adapter: string | null; reward_model: string | { helpfulness: string; safety: string } };
  tokenizer: TokenizerIn;
  lora: { r: number; alpha: number; dropout: number; target_modules: string | readonly string[] };
  data: { prompts: string | readonly string[]; eval_prompts: string | null; eval_limit: number | null; max_prompt_tokens: number };
  save_merged: boolean;
}
export interface RsConfigIn extends CommonIn {
  train: TrainIn;
  model: { path: string; adapter: string | null };
  tokenizer: TokenizerIn;
  lora: LoraIn;
  sft: { save_merged: boolean; early_stopping_patience: number | null };
  data: { max_length: number; eval_split: number };
}
export interface GattConfigIn extends CommonIn {
  train: TrainIn;
  model: { path: string; adapter: string | null };
  tokenizer: TokenizerIn;
  lora: LoraIn;
  sft: { save_merged: boolean; early_stopping_patience: number | null };
  data: { max_length: number; packing: boolean; eval_split: number; mix: string[]; mix_ratio: number };
}

/** The file GAtt fine-tunes on under `<output_dir>/synth/`: the dialogues, or with data.mix the mixed file (`rlhf gatt synth` writes both). */
export function gattTrainFile(cfg: Pick<GattConfigIn, 'data'>): string {
  return cfg.data.mix.length > 0 && cfg.data.mix_ratio > 0 ? 'mix_train.jsonl' : 'gatt_train.jsonl';
}

export type ExportStage = 'sft' | 'reward' | 'ppo' | 'dpo' | 'rs' | 'gatt';
export const EXPORT_STAGES: readonly ExportStage[] = ['sft', 'reward', 'ppo', 'dpo', 'rs', 'gatt'];

export interface LoraSpec {
  r: number;
  alpha: number;
  dropout: number;
  targetModules: string | readonly string[];
  rslora: boolean;
}

/** The optimisation settings shared by every trainer. */
export interface CommonSpec {
  steps: number;
  epochs: number | null;
  batchSize: number;
  gradAccum: number;
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  gradClip: number | null;
  schedule: 'cosine' | 'linear' | 'constant';
  warmupSteps: number;
  seed: number;
  dataSeed: number | null;
  evalEvery: number;
  saveEvery: number;
  keepLast: number | null;
  gradientCheckpointing: boolean;
}

/**
 * Where a stage's rows come from: converted now (`rows`), or written by an rlhf-kit command at
 * run time (`runtime`, our file; the generated script converts it when it runs).
 */
export type DataSource = { rows: Row[]; from: string } | { runtime: string; madeBy: string };

/** Where rows came from, for MAPPING.md. */
export function sourceLabel(source: DataSource | null): string {
  if (source === null) return 'null';
  return 'from' in source ? source.from : source.runtime;
}

export interface ModelSpec {
  /** Absolute model folder (an rlhf-kit stage folder's final/ is resolved to final/merged at run time). */
  path: string;
  tokenizer: string | null;
  template: 'auto' | 'tokenizer' | 'llama2' | 'chatml';
}

interface Base {
  /** The config the stage was read from, as given. */
  configFile: string;
  common: CommonSpec;
  model: ModelSpec;
  lora: LoraSpec | null;
  /** Longest example in tokens. */
  maxLength: number;
  /** Keys of the stage with no equivalent in either engine, with what happens instead. */
  gaps: string[];
}

export interface SftSpec extends Base {
  kind: 'sft';
  /** Which of our stages this fine-tune is: SFT itself, or the fine-tuning half of RS / GAtt. */
  origin: 'sft' | 'rs' | 'gatt';
  loss: LossTokens;
  /**
   * The exported rows: whole dialogues (`messages`), prompt + completion (the completion trained:
   * rlhf-kit's own prompt/completion rows, or dialogues whose last answer alone is trained), or
   * plain `text` (every token). Rows made at run time are dialogues, split by the script.
   */
  rows: 'messages' | 'prompt_completion' | 'text';
  train: DataSource;
  eval: DataSource | null;
  packing: boolean;
  truncation: 'keep_start' | 'keep_end';
  saveMerged: boolean;
}

export interface RewardSpec extends Base {
  kind: 'reward';
  train: DataSource;
  eval: DataSource | null;
  margin: MarginKind;
  centerCoefficient: number;
  evalBatchSize: number;
}

export interface DpoSpec extends Base {
  kind: 'dpo';
  train: DataSource;
  eval: DataSource | null;
  beta: number;
  lossTypes: readonly string[];
  lossWeights: readonly number[];
  labelSmoothing: number;
  precomputeRef: boolean;
  strengthWeights: boolean;
  evalBatchSize: number;
  saveMerged: boolean;
}

export interface PpoSpec extends Base {
  kind: 'ppo';
  rewardModel: string;
  prompts: DataSource;
  evalPrompts: DataSource | null;
  rolloutBatchSize: number;
  ppo: PpoSections['ppo'];
  rewards: PpoSections['rewards'];
  kl: PpoSections['kl'];
  generation: PpoSections['generation'];
  maxPromptTokens: number;
  saveMerged: boolean;
}

export type StageSpec = SftSpec | RewardSpec | DpoSpec | PpoSpec;

function commonSpec(c: CommonIn & { train: TrainIn }): CommonSpec {
  return {
    steps: c.train.steps,
    epochs: c.train.epochs,
    batchSize: c.train.batch_size,
    gradAccum: c.optim.grad_accum,
    lr: c.optim.lr,
    betas: c.optim.betas,
    eps: c.optim.eps,
    weightDecay: c.optim.weight_decay,
    gradClip: c.optim.grad_clip,
    schedule: c.schedule.type,
    warmupSteps: c.schedule.warmup_steps,
    seed: c.engine.seed,
    dataSeed: c.train.seed,
    evalEvery: c.train.eval_every,
    saveEvery: c.checkpoint.every_steps,
    keepLast: c.checkpoint.keep_last,
    // `auto` is decided against this machine's memory at run time; an engine on a GPU gets it off.
    gradientCheckpointing: c.train.gradient_checkpointing === true,
  };
}

function loraSpec(l: LoraIn): LoraSpec | null {
  if (l.enabled === false) return null;
  return { r: l.r, alpha: l.alpha, dropout: l.dropout, targetModules: l.target_modules, rslora: l.use_rslora ?? false };
}

/** What every fine-tune on dialogues leaves behind in the engines. */
function sftGaps(cfg: { sft: { early_stopping_patience: number | null } }, evalSplit: number | null): string[] {
  const gaps: string[] = [];
  if (cfg.sft.early_stopping_patience !== null) {
    gaps.push(`\`sft.early_stopping_patience\` (${cfg.sft.early_stopping_patience}): not exported; TRL has transformers' EarlyStoppingCallback (add it to the script), OpenRLHF has none`);
  }
  if (evalSplit !== null && evalSplit > 0) {
    gaps.push(`\`data.eval_split\` (${evalSplit}): the rows are written at run time, so nothing is held out for evaluation`);
  }
  return gaps;
}

function noAdapter(adapter: string | null, file: string): void {
  if (adapter !== null) {
    throw new UserError(
      `${file}: model.adapter is set (${adapter}); the engines take one model folder: merge the adapter first ` +
        '(rlhf merge-lora) and point model.path at the merged folder',
    );
  }
}

const abs = (p: string) => resolve(p);

function modelSpec(path: string, tokenizer: TokenizerIn): ModelSpec {
  return { path: abs(path), tokenizer: tokenizer.path === null ? null : abs(tokenizer.path), template: tokenizer.template };
}

/** Loaders the spec builders need for data that exists now. */
export interface DataReaders {
  sft(path: string, key: string, loss: LossTokens, onBad: 'error' | 'skip'): Promise<Row[]>;
  preferences(paths: readonly string[], key: string, margin: MarginKind | null, onBad: 'error' | 'skip'): Promise<Row[]>;
  prompts(path: string, key: string): Promise<Row[]>;
}

export async function sftSpec(cfg: SftConfigIn, file: string, read: DataReaders, holdOut: <T>(rows: T[], n: number, seed: number) => { train: T[]; eval: T[] }): Promise<SftSpec> {
  const loss: LossTokens = cfg.data.strategy === 'train_on_all' ? 'all' : cfg.data.strategy === 'train_on_last' ? 'last' : 'assistant';
  const trainFiles = typeof cfg.data.train === 'string' ? [cfg.data.train] : cfg.data.train;
  let train: Row[] = [];
  for (const f of trainFiles) train.push(...(await read.sft(f, 'data.train', loss, cfg.data.on_bad_row)));
  let evalRows: Row[] | null = null;
  if (cfg.data.eval !== null) evalRows = await read.sft(cfg.data.eval, 'data.eval', loss, cfg.data.on_bad_row);
  else if (cfg.data.eval_split > 0) ({ train, eval: evalRows } = holdOut(train, cfg.data.eval_split, cfg.train.seed ?? cfg.engine.seed));
  if (evalRows !== null && cfg.data.eval_max_rows !== null) evalRows = evalRows.slice(0, cfg.data.eval_max_rows);
  return {
    kind: 'sft',
    origin: 'sft',
    configFile: file,
    common: commonSpec(cfg),
    model: modelSpec(cfg.model.path, cfg.tokenizer),
    lora: loraSpec(cfg.lora),
    maxLength: cfg.data.max_length,
    gaps: sftGaps(cfg, null),
    loss,
    rows: train.length === 0 || 'messages' in train[0]! ? 'messages' : 'text' in train[0]! ? 'text' : 'prompt_completion',
    train: { rows: train, from: trainFiles.join(' + ') },
    eval: evalRows === null ? null : { rows: evalRows, from: cfg.data.eval ?? `${trainFiles.join(' + ')} (data.eval_split)` },
    packing: cfg.data.packing,
    truncation: cfg.data.truncation,
    saveMerged: cfg.sft.save_merged,
  };
}

/** Preference rows as the reward and DPO stages pick them: the train files, a held-out split, the seeded subset. */
async function preferenceRowsOf(
  cfg: RewardConfigIn | DpoConfigIn,
  read: DataReaders,
  margin: MarginKind | null,
  subset: <T>(rows: T[], max: number | null, seed: number) => T[],
  holdOut: <T>(rows: T[], n: number, seed: number) => { train: T[]; eval: T[] },
): Promise<{ trainFiles: readonly string[]; train: Row[]; evalRows: Row[] | null }> {
  const trainFiles = typeof cfg.data.train === 'string' ? [cfg.data.train] : cfg.data.train;
  let train = await read.preferences(trainFiles, 'data.train', margin, cfg.data.on_bad_row);
  let evalRows: Row[] | null = null;
  if (cfg.data.eval !== null) evalRows = await read.preferences([cfg.data.eval], 'data.eval', margin, cfg.data.on_bad_row);
  else if (cfg.data.eval_fraction > 0) ({ train, eval: evalRows } = holdOut(train, Math.round(train.length * cfg.data.eval_fraction), cfg.engine.seed));
  train = subset(train, cfg.data.max_train_pairs, cfg.train.seed ?? cfg.engine.seed);
  if (evalRows !== null && cfg.data.max_eval_pairs !== null) evalRows = evalRows.slice(0, cfg.data.max_eval_pairs);
  return { trainFiles, train, evalRows };
}

export async function rewardSpec(
  cfg: RewardConfigIn,
  file: string,
  read: DataReaders,
  subset: <T>(rows: T[], max: number | null, seed: number) => T[],
  holdOut: <T>(rows: T[], n: number, seed: number) => { train: T[]; eval: T[] },
): Promise<RewardSpec> {
  noAdapter(cfg.model.adapter, file);
  const margin = cfg.reward.margin as MarginKind;
  const { trainFiles, train, evalRows } = await preferenceRowsOf(cfg, read, margin, subset, holdOut);
  return {
    kind: 'reward',
    configFile: file,
    common: commonSpec(cfg),
    model: modelSpec(cfg.model.path, cfg.tokenizer),
    lora: loraSpec(cfg.lora),
    maxLength: cfg.data.max_length,
    gaps: [],
    train: { rows: train, from: trainFiles.join(' + ') },
    eval: evalRows === null ? null : { rows: evalRows, from: cfg.data.eval ?? `${trainFiles.join(' + ')} (data.eval_fraction)` },
    margin,
    centerCoefficient: cfg.reward.center_rewards_coefficient,
    evalBatchSize: cfg.reward.eval_batch_size,
  };
}

export async function dpoSpec(
  cfg: DpoConfigIn,
  file: string,
  read: DataReaders,
  subset: <T>(rows: T[], max: number | null, seed: number) => T[],
  holdOut: <T>(rows: T[], n: number, seed: number) => { train: T[]; eval: T[] },
): Promise<DpoSpec> {
  noAdapter(cfg.model.adapter, file);
  const { trainFiles, train, evalRows } = await preferenceRowsOf(cfg, read, null, subset, holdOut);
  const lossTypes = typeof cfg.dpo.loss_type === 'string' ? [cfg.dpo.loss_type] : cfg.dpo.loss_type;
  return {
    kind: 'dpo',
    configFile: file,
    common: commonSpec(cfg),
    model: modelSpec(cfg.model.path, cfg.tokenizer),
    lora: loraSpec(cfg.lora),
    maxLength: cfg.data.max_length,
    gaps: [],
    train: { rows: train, from: trainFiles.join(' + ') },
    eval: evalRows === null ? null : { rows: evalRows, from: cfg.data.eval ?? `${trainFiles.join(' + ')} (data.eval_fraction)` },
    beta: cfg.dpo.beta,
    lossTypes,
    lossWeights: cfg.dpo.loss_weights ?? lossTypes.map(() => 1),
    labelSmoothing: cfg.dpo.label_smoothing,
    precomputeRef: cfg.dpo.precompute_ref_log_probs,
    strengthWeights: cfg.dpo.strength_weights !== null,
    evalBatchSize: cfg.dpo.eval_batch_size,
    saveMerged: cfg.lora.enabled && cfg.save_merged,
  };
}

export async function ppoSpec(cfg: PpoConfigIn, file: string, read: DataReaders): Promise<PpoSpec> {
  noAdapter(cfg.model.adapter, file);
  const rewardModel = cfg.model.reward_model;
  if (typeof rewardModel !== 'string') {
    throw new UserError(
      `${file}: model.reward_model names two reward models (helpfulness, safety) with Llama 2's combined reward; OpenRLHF's ` +
        'train_ppo_ray scores with one reward model (or a custom remote reward function), so this config is not exported. ' +
        'Export it with one reward model (model.reward_model=FOLDER rewards.combine=single).',
    );
  }
  const promptFiles = typeof cfg.data.prompts === 'string' ? [cfg.data.prompts] : cfg.data.prompts;
  const promptRowsAll: Row[] = [];
  for (const f of promptFiles) promptRowsAll.push(...(await read.prompts(f, 'data.prompts')));
  let evalRows: Row[] | null = null;
  if (cfg.data.eval_prompts !== null) {
    evalRows = await read.prompts(cfg.data.eval_prompts, 'data.eval_prompts');
    if (cfg.data.eval_limit !== null) evalRows = evalRows.slice(0, cfg.data.eval_limit);
  }
  return {
    kind: 'ppo',
    configFile: file,
    common: {
      steps: cfg.train.steps,
      epochs: null,
      batchSize: cfg.ppo.mini_batch_size,
      gradAccum: cfg.optim.grad_accum,
      lr: cfg.optim.lr,
      betas: cfg.optim.betas,
      eps: cfg.optim.eps,
      weightDecay: cfg.optim.weight_decay,
      gradClip: cfg.optim.grad_clip,
      schedule: cfg.schedule.type,
      warmupSteps: cfg.schedule.warmup_steps,
      seed: cfg.engine.seed,
      dataSeed: cfg.train.seed,
      evalEvery: cfg.train.eval_every,
      saveEvery: cfg.checkpoint.every_steps,
      keepLast: cfg.checkpoint.keep_last,
      gradientCheckpointing: false,
    },
    model: modelSpec(cfg.model.path, cfg.tokenizer),
    lora: { r: cfg.lora.r, alpha: cfg.lora.alpha, dropout: cfg.lora.dropout, targetModules: cfg.lora.target_modules, rslora: false },
    maxLength: cfg.data.max_prompt_tokens + cfg.generation.max_new_tokens,
    gaps: [],
    rewardModel: abs(rewardModel),
    prompts: { rows: promptRowsAll, from: promptFiles.join(' + ') },
    evalPrompts: evalRows === null ? null : { rows: evalRows, from: cfg.data.eval_prompts! },
    rolloutBatchSize: cfg.train.rollout_batch_size,
    ppo: cfg.ppo,
    rewards: cfg.rewards,
    kl: cfg.kl,
    generation: cfg.generation,
    maxPromptTokens: cfg.data.max_prompt_tokens,
    saveMerged: cfg.save_merged,
  };
}

/**
 * Rejection sampling: the samples, their scores and the selection are rlhf-kit's (`rlhf rs`
 * writes <output_dir>/rs_train.jsonl before it fine-tunes); the fine-tune is SFT on the kept
 * answers, the last turn of each row trained.
 */
export function rsSpec(cfg: RsConfigIn, file: string): SftSpec {
  return lastTurnSftSpec(cfg, file, 'rs', { runtime: abs(resolve(cfg.output_dir, 'rs_train.jsonl')), madeBy: `rlhf rs --config ${file}` }, false);
}

/**
 * Ghost Attention: the synthesised dialogues are rlhf-kit's (`rlhf gatt synth` writes
 * <output_dir>/synth/gatt_train.jsonl, and with data.mix the mixed mix_train.jsonl); the fine-tune is
 * SFT on each row's last answer.
 */
export function gattSpec(cfg: GattConfigIn, file: string, synthCommand = `rlhf gatt synth --config ${file}`): SftSpec {
  return lastTurnSftSpec(cfg, file, 'gatt', { runtime: abs(resolve(cfg.output_dir, 'synth', gattTrainFile(cfg))), madeBy: synthCommand }, cfg.data.packing);
}

/** SFT on rows rlhf-kit writes at run time (rejection sampling's kept answers, GAtt's dialogues), each row's last answer trained. */
function lastTurnSftSpec(
  cfg: RsConfigIn | GattConfigIn,
  file: string,
  origin: 'rs' | 'gatt',
  train: { runtime: string; madeBy: string },
  packing: boolean,
): SftSpec {
  noAdapter(cfg.model.adapter, file);
  return {
    kind: 'sft',
    origin,
    configFile: file,
    common: commonSpec(cfg),
    model: modelSpec(cfg.model.path, cfg.tokenizer),
    lora: loraSpec(cfg.lora),
    maxLength: cfg.data.max_length,
    gaps: sftGaps(cfg, cfg.data.eval_split),
    loss: 'last',
    rows: 'messages',
    train,
    eval: null,
    packing,
    truncation: 'keep_end',
    saveMerged: cfg.sft.save_merged,
  };
}
