/**
 * PPO's setup, from a resolved config: the prompts (through src/data), the reward models and where
 * they read, the critic, and the loop's options; and the memory check that runs before any weight
 * is loaded.
 */
import { readPromptRows, readPrompts } from '../data/prompts.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { injectLora, unloadLora } from '../lora/inject.js';
import { ScalarHead } from '../model/heads.js';
import { loadHfConfig, loadHfModel } from '../model/io/hf.js';
import { readRewardReadAt } from '../model/io/reward-read.js';
import { requireRewardStats, type RewardStats } from '../model/io/reward-stats.js';
import type { LlamaConfig } from '../model/config.js';
import type { LlamaModel } from '../model/llama.js';
import { newVariable } from '../model/variables.js';
import { resolveDataPath } from '../paths.js';
import { renderChatPrompt, turnEndSuffix, type ChatMessage, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import { estimatePeakMemory, loraShortModules, type MemoryEstimate, type Trained } from '../training/memory.js';
import { checkMemoryFits, memoryLimits } from '../training/memory-check.js';
import type { PpoConfig } from './config.js';
import { checkRewardKinds, llama2Scorer, rewardModelPaths, type RewardModelPaths, type RolloutScorer } from './reward-set.js';
import { policyHeadCritic, rewardModelLoraCritic, valueModelCritic, type Critic } from './rollout.js';
import type { PpoOptions } from './train.js';

const STATS_HINT = 'or set rewards.normalize=false';

export interface PpoInputs {
  promptFiles: string[];
  /** Training prompts as token ids (chat template applied). */
  train: number[][];
  /** Llama 2's IS_SAFETY(p) of each training prompt (its row's `is_safety`), aligned with `train`. */
  trainIsSafety: boolean[];
  evalMessages: ChatMessage[][];
  evalIds: number[][];
  rewardPaths: RewardModelPaths;
  /** The primary reward model's normalisation statistics (rewards.normalize). */
  stats: RewardStats | null;
  /** Tokens appended after a finished response before scoring (a model that reads at its last token). */
  rewardSuffix: number[];
}

/**
 * Prompt files through src/data (JSONL, Arrow, Parquet; TRL's prompt / messages columns; a relative
 * path missing from the working directory is the package's shipped data), and the reward models.
 * One scoring rule (src/tokenizer/score-position.ts): responses stop at the turn end, where a reward
 * model recording read_at: turn_end reads; one without the record (trained elsewhere on the full
 * rendering) reads at its last token, so it gets what the template writes after the turn end.
 */
export async function ppoInputs(cfg: PpoConfig, tokenizer: Tokenizer, template: TemplateName, log: (m: string) => void): Promise<PpoInputs> {
  const promptFiles = (typeof cfg.data.prompts === 'string' ? [cfg.data.prompts] : cfg.data.prompts).map(resolveDataPath);
  const evalFile = cfg.data.eval_prompts ? resolveDataPath(cfg.data.eval_prompts) : null;
  const train: number[][] = [];
  const trainIsSafety: boolean[] = [];
  for (const file of promptFiles) {
    const rows = await readPromptRows(file, { warn: log });
    train.push(...renderPrompts(tokenizer, rows.map((r) => r.prompt), template, cfg.data.max_prompt_tokens, file));
    trainIsSafety.push(...rows.map((r) => r.isSafety));
  }
  if (train.length === 0) throw new UserError(`${promptFiles.join(', ')}: no prompts (data.prompts)`);
  const rewardPaths = rewardModelPaths(cfg.model.reward_model, cfg.rewards.combine);
  checkRewardKinds(rewardPaths, log);
  const evalMessages = evalFile ? (await readPrompts(evalFile, { warn: log })).slice(0, cfg.data.eval_limit ?? undefined) : [];
  const evalIds = evalFile ? renderPrompts(tokenizer, evalMessages, template, cfg.data.max_prompt_tokens, evalFile) : [];
  const stats = cfg.rewards.normalize ? requireRewardStats(rewardPaths.primary, 'rewards.normalize', STATS_HINT) : null;
  const suffix = turnEndSuffix(tokenizer, template);
  const rewardSuffix = readRewardReadAt(rewardPaths.primary) === 'last_token' ? suffix : [];
  if (rewardSuffix.length > 0) log(`ppo: ${rewardPaths.primary} reads at its last token: scoring each finished response + ${JSON.stringify(tokenizer.decode(rewardSuffix))}`);
  if (rewardPaths.safety !== null && readRewardReadAt(rewardPaths.safety) === 'last_token' && suffix.length > 0) {
    throw new UserError(
      `model.reward_model.safety: ${rewardPaths.safety} reads at its last token (no reward_read.json), but the ${template} template writes text after ` +
        'the turn end and the combined reward scores the safety model at the turn end; retrain it with rlhf reward (read_at: turn_end)',
    );
  }
  return { promptFiles, train, trainIsSafety, evalMessages, evalIds, rewardPaths, stats, rewardSuffix };
}

/**
 * The reward model(s), the critic (a value model from the reward model, LoRA adapters and a value
 * head on the reward model itself, or a head on the policy), and Llama 2's combined scorer.
 * `toDispose` gets what the caller releases at cleanup, in order.
 */
export function ppoModels(
  cfg: PpoConfig,
  policy: LlamaModel,
  inputs: PpoInputs,
  initRng: Rng,
  toDispose: Array<{ dispose(): void }>,
): { rewardModel: LlamaModel; critic: Critic; scoreRollout?: RolloutScorer } {
  const { rewardPaths } = inputs;
  const rewardModel = loadHfModel(rewardPaths.primary);
  toDispose.push(rewardModel);
  let scoreRollout: RolloutScorer | undefined;
  if (rewardPaths.safety !== null) {
    const safetyModel = loadHfModel(rewardPaths.safety);
    toDispose.push(safetyModel);
    scoreRollout = llama2Scorer({
      safetyModel, isSafety: inputs.trainIsSafety, helpfulStats: inputs.stats,
      safetyStats: cfg.rewards.normalize ? requireRewardStats(rewardPaths.safety, 'rewards.normalize', STATS_HINT) : null,
      threshold: cfg.rewards.safety_threshold, clip: cfg.rewards.clip, missingEosPenalty: cfg.rewards.missing_eos_penalty,
    });
  }
  let critic: Critic;
  if (cfg.ppo.critic === 'reward_model') {
    const valueModel = loadHfModel(rewardPaths.primary);
    toDispose.push(valueModel);
    critic = valueModelCritic(valueModel);
  } else if (cfg.ppo.critic === 'reward_model_lora') {
    critic = loraCriticOn(rewardModel, rewardPaths.primary, cfg, initRng, toDispose);
  } else {
    critic = policyHeadCritic(policy, ScalarHead.init(policy.config.hidden_size, initRng, policy.config.initializer_range));
  }
  return { rewardModel, critic, ...(scoreRollout ? { scoreRollout } : {}) };
}

/**
 * ppo.critic: reward_model_lora — the policy's LoRA settings put on the reward model (as OpenRLHF's
 * LoRA settings reach its critic), and a trainable value head that starts as a copy of the score
 * head. Released before the reward model itself (it is already in `toDispose`).
 */
function loraCriticOn(rewardModel: LlamaModel, rewardPath: string, cfg: PpoConfig, initRng: Rng, toDispose: Array<{ dispose(): void }>): Critic {
  const score = rewardModel.scoreHead;
  if (!score) throw new UserError(`model.reward_model: ${rewardPath} has no score head (score.weight)`);
  injectLora(rewardModel, {
    targetModules: cfg.lora.target_modules, r: cfg.lora.r, alpha: cfg.lora.alpha, dropout: cfg.lora.dropout,
    rng: initRng, dropoutRng: initRng,
  });
  const head = new ScalarHead(newVariable((score.weight.dataSync() as Float32Array).slice(), score.weight.shape.slice())); // [1, H]
  toDispose.splice(toDispose.indexOf(rewardModel), 0, {
    dispose: () => {
      unloadLora(rewardModel, { merge: false });
      head.weight.dispose();
    },
  });
  return rewardModelLoraCritic(rewardModel, head);
}

/** The loop's options from the config. */
export function ppoOptions(
  cfg: PpoConfig,
  a: { stats: RewardStats | null; scoreRollout?: RolloutScorer; stopTokenIds: number[]; padTokenId: number; resume: string },
): PpoOptions {
  return {
    iterations: cfg.train.steps,
    rolloutBatchSize: cfg.train.rollout_batch_size,
    sampling: { maxNewTokens: cfg.generation.max_new_tokens, temperature: cfg.generation.temperature, stopTokenIds: a.stopTokenIds, padTokenId: a.padTokenId },
    update: {
      ppoEpochs: cfg.ppo.ppo_epochs, miniBatchSize: cfg.ppo.mini_batch_size, gradAccum: cfg.optim.grad_accum, clipRange: cfg.ppo.clip_range,
      clipRangeValue: cfg.ppo.clip_range_value, vfCoef: cfg.ppo.vf_coef, entropyCoef: cfg.ppo.entropy_coef,
      temperature: cfg.generation.temperature, targetKl: cfg.ppo.target_kl, ratioThreshold: cfg.ppo.ratio_threshold,
      maxGradNorm: cfg.optim.grad_clip,
    },
    lr: { peak: cfg.optim.lr, schedule: cfg.schedule.type, warmupSteps: cfg.schedule.warmup_steps },
    adamw: { beta1: cfg.optim.betas[0], beta2: cfg.optim.betas[1], eps: cfg.optim.eps, weightDecay: cfg.optim.weight_decay },
    gamma: cfg.ppo.gamma,
    lambda: cfg.ppo.lam,
    rewards: {
      normalize: a.stats, clip: cfg.rewards.clip, missingEosPenalty: cfg.rewards.missing_eos_penalty,
      estimator: cfg.rewards.kl_estimator, whiten: cfg.rewards.whiten,
    },
    ...(a.scoreRollout ? { scoreRollout: a.scoreRollout } : {}),
    kl: cfg.kl.controller === 'fixed'
      ? { kind: 'fixed', value: cfg.kl.init_coef }
      : { kind: 'adaptive', value: cfg.kl.init_coef, target: cfg.kl.target, horizon: cfg.kl.horizon },
    seed: cfg.engine.seed,
    dataSeed: cfg.train.seed ?? cfg.engine.seed,
    checkpointEvery: cfg.checkpoint.every_steps,
    keepLast: cfg.checkpoint.keep_last,
    resume: a.resume,
    sampleEvery: cfg.train.sample_every,
    sampleCount: cfg.train.sample_count,
    evalEvery: cfg.train.eval_every,
    maxNonFinite: cfg.train.max_nonfinite,
  };
}

function renderPrompts(tokenizer: Tokenizer, prompts: ChatMessage[][], template: TemplateName, maxTokens: number, file: string): number[][] {
  return prompts.map((messages, i) => {
    const ids = renderChatPrompt(tokenizer, messages, template);
    if (ids.length > maxTokens) {
      throw new UserError(`${file} row ${i + 1}: prompt has ${ids.length} tokens, more than data.max_prompt_tokens = ${maxTokens}`);
    }
    return ids;
  });
}

/**
 * Fail before, not during: the LoRA policy (its reference is the same weights with adapters off) on
 * a mini-batch of prompt + response tokens, beside the frozen reward model and the critic, whose
 * backward pass runs in the same update: with ppo.critic: reward_model a value model trained in
 * full (a second copy of the reward model's weights, its gradients and AdamW moments); with
 * reward_model_lora only adapters, a value head and their activations on the reward model's own
 * weights; with policy_head nothing beyond the policy.
 */
export function checkPpoMemory(cfg: PpoConfig, backend: string, log: (m: string) => void): void {
  checkMemoryFits('ppo', ppoMemoryEstimate(cfg), memoryLimits(backend), [
    { key: 'ppo.mini_batch_size', value: cfg.ppo.mini_batch_size },
    { key: 'generation.max_new_tokens', value: cfg.generation.max_new_tokens },
    { key: 'data.max_prompt_tokens', value: cfg.data.max_prompt_tokens },
    ...(cfg.ppo.critic === 'reward_model' ? [{ key: 'ppo.critic', value: 'reward_model', suggest: 'reward_model_lora' }] : []),
  ], log);
}

/** The estimate {@link checkPpoMemory} judges, from the model folders' config.json alone. */
export function ppoMemoryEstimate(cfg: PpoConfig): MemoryEstimate {
  const policy = loadHfConfig(cfg.model.path);
  const reward = loadHfConfig(rewardModelPaths(cfg.model.reward_model, cfg.rewards.combine).primary);
  const seqLen = cfg.data.max_prompt_tokens + cfg.generation.max_new_tokens;
  const rewardWeights = estimatePeakMemory({ config: reward, batchSize: 1, seqLen: 1, trained: { kind: 'none' }, lossChunkRows: 'none' })
    .items.find((i) => i.what.startsWith('weights'))!.bytes;
  // A set of two reward models (combine: llama2): the safety model's weights too, taken as the same shape.
  let extra = typeof cfg.model.reward_model === 'string' ? rewardWeights : 2 * rewardWeights;
  const critic = criticTrainingBytes(cfg, reward, seqLen);
  extra += critic.bytes;
  // The update's micro-batch is the binding case (rollouts and evaluation hold no activations for backprop).
  return estimatePeakMemory({
    config: policy,
    batchSize: cfg.ppo.mini_batch_size,
    seqLen,
    trained: { kind: 'lora', rank: cfg.lora.r, modules: loraShortModules(policy, cfg.lora.target_modules), dropout: cfg.lora.dropout },
    lossChunkRows: null,
    extraHeapBytes: extra,
    extraLabel: critic.label,
  });
}

/**
 * What training the critic adds on the heap beside the reward model's frozen weights (counted once,
 * by the caller), for one micro-batch: its weights' training state and the activations its backward
 * pass keeps (no LM head: values come from a scalar head).
 */
function criticTrainingBytes(cfg: PpoConfig, reward: LlamaConfig, seqLen: number): { bytes: number; label: string } {
  if (cfg.ppo.critic === 'policy_head') return { bytes: 0, label: 'reward model weights' };
  const lora = cfg.ppo.critic === 'reward_model_lora';
  const trained: Trained = lora
    ? { kind: 'lora', rank: cfg.lora.r, modules: loraShortModules(reward, cfg.lora.target_modules), dropout: cfg.lora.dropout }
    : { kind: 'full' };
  const items = estimatePeakMemory({ config: reward, batchSize: cfg.ppo.mini_batch_size, seqLen, trained, lossChunkRows: 'none' }).items
    // the LoRA critic's frozen weights are the reward model's own, already counted
    .filter((i) => i.where === 'heap' && !(lora && i.what.startsWith('weights')));
  // + the value head: its weight, gradient, accumulated gradient and AdamW moments
  const bytes = items.reduce((n, i) => n + i.bytes, 0) + (lora ? 5 * 4 * reward.hidden_size : 0);
  return {
    bytes,
    label: lora
      ? "reward model weights (shared with the critic), the critic's LoRA adapters, value head and activations"
      : 'reward model, and the value model trained in full',
  };
}
