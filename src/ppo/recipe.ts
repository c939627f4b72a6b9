/**
 * The PPO recipe (Llama 2 §3.2.3, Ouyang et al. 2022): optimise a LoRA policy against a reward
 * model, with a per-token KL penalty to the frozen reference (the same backbone, adapters off).
 *
 *   setup (runPpo) → loop (trainPpo): 1. rollout 2. score 3. KL-shaped rewards 4. GAE
 *   5. PPO epochs over minibatches 6. log 7. checkpoint → save → cleanup
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readPrompts } from '../data/prompts.js';
import { initEngine } from '../engine/index.js';
import { resolveDataPath } from '../paths.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { requireRewardStats } from '../model/io/reward-stats.js';
import { readRewardReadAt } from '../model/io/reward-read.js';
import { injectLora, mergeLora, trainableVariables, unloadLora, unmergeLora } from '../lora/inject.js';
import { loadAdapter, saveAdapter } from '../lora/peft-io.js';
import { ScalarHead } from '../model/heads.js';
import { loadHfConfig, loadHfModel, saveHfModel } from '../model/io/hf.js';
import { resolveModelPath } from '../model/hub.js';
import { estimatePeakMemory, loraShortModules } from '../training/memory.js';
import { checkMemoryFits, memoryLimits } from '../training/memory-check.js';
import type { LlamaModel } from '../model/llama.js';
import { loadTokenizer, renderChatPrompt, turnEndIds, turnEndSuffix, type ChatMessage, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import type { ResolvedConfig } from '../config/index.js';
import type { Tracker } from '../tracking/index.js';
import { AdamW } from '../training/adamw.js';

import { learningRateAt, type ScheduleKind } from '../training/schedule.js';
import { trainLoop, type LoopRun } from '../training/loop.js';
import { adapterWeights, closeStatusFor, FINAL_DIR, openStageRun, resolveResume, restoreStageCheckpoint, saveStageCheckpoint, variableWeights, writeFolderAtomic } from '../training/run.js';
import type { StopSignal } from '../training/stop-signal.js';
import { gae, whitenAdvantages } from './advantages.js';
import type { PpoConfig } from './config.js';
import { answerAndScore } from './evaluate.js';
import { klControllerFromState, type KlControllerState, type KlEstimator } from './kl.js';
import { iterationMetrics, meanSequenceKl } from './metrics.js';
import { nextPrompts, type PromptCursor } from './prompts.js';
import { processScores, shapeRewards, type ScoreOptions } from './rewards.js';
import { checkRewardKinds, llama2Scorer, readSafetyFlags, rewardModelPaths, type RolloutScorer } from './reward-set.js';
import { policyHeadCritic, rollout, valueModelCritic, type Critic, type SamplingSettings } from './rollout.js';
import { ppoUpdate, type UpdateOptions } from './update.js';

/** The critic's trainable weights inside a checkpoint (beside the policy's adapter files). */
export const CRITIC_FILE = 'critic.safetensors';

/** Inside final/: the model the PPO adapter was trained on, when model.adapter was merged into model.path. */
export const ADAPTER_BASE_DIR = 'base';

export interface PpoModels {
  /** The policy, with LoRA adapters injected (adapters off = the reference). */
  policy: LlamaModel;
  critic: Critic;
  rewardModel: LlamaModel;
  /** Tokens appended after a finished response before scoring (a reward model that reads at its last token). */
  rewardSuffix?: readonly number[];
}

export interface PpoOptions {
  iterations: number;
  rolloutBatchSize: number;
  sampling: SamplingSettings;
  update: Omit<UpdateOptions, 'lr'>;
  lr: { peak: number; schedule: ScheduleKind; warmupSteps: number };
  adamw: { beta1: number; beta2: number; eps: number; weightDecay: number };
  gamma: number;
  lambda: number;
  rewards: ScoreOptions & { estimator: KlEstimator; whiten: boolean };
  /** Scores a rollout with a set of reward models (rewards.combine: llama2) in place of processScores. */
  scoreRollout?: RolloutScorer;
  /** The controller a fresh run starts with. */
  kl: KlControllerState;
  /** Seeds the run's Rng (sampling, minibatch shuffling, LoRA dropout — restored on resume). */
  seed: number;
  /** Seeds the prompt order. */
  dataSeed: number;
  checkpointEvery: number;
  keepLast: number | null;
  resume: string;
  sampleEvery: number;
  sampleCount: number;
  evalEvery: number;
  maxNonFinite: number;
  /** Stop (with a checkpoint) once this many iterations are done in total, as a signal would. */
  stopAfter?: number;
}

export interface PpoIo {
  runDir: string;
  tracker: Pick<Tracker, 'logMetrics' | 'logArtifact'>;
  /** Token ids → text, for the sample tables. */
  decode?: (ids: number[]) => string;
  /** Held-out evaluation, run before the first and after the last iteration and every evalEvery. */
  evaluate?: () => Record<string, number>;
  /** A stop request (SIGINT/SIGTERM) ends the loop after the current iteration, with a checkpoint. */
  stop?: { poll(): Promise<boolean> };
  log?: (message: string) => void;
}

export interface PpoResult {
  /** Iterations completed in total. */
  iterations: number;
  /** True when the loop ended early (stop request or stopAfter) with a checkpoint. */
  stopped: boolean;
  /** Metrics of the iterations run by this call. */
  history: Array<Record<string, number>>;
  /** The last held-out evaluation. */
  lastEval: Record<string, number> | null;
}

/** The PPO loop over already-built models; resumes from `opts.resume` when it names a checkpoint. */
export async function trainPpo(models: PpoModels, prompts: number[][], opts: PpoOptions, io: PpoIo): Promise<PpoResult> {
  const { policy, critic } = models;
  const rng = new Rng(opts.seed);
  const criticParams = critic.trainableVariables();
  const params = new Map<string, tf.Variable>();
  for (const [k, v] of trainableVariables(policy)) params.set(`policy.${k}`, v);
  for (const [k, v] of criticParams) params.set(`critic.${k}`, v);
  // tidy: AdamW's constructor leaves its zerosLike initial values undisposed (the variables keep the data)
  let optimizer!: AdamW;
  tf.tidy(() => { optimizer = new AdamW(params, opts.adamw); });
  const log = io.log ?? (() => {});

  let kl = klControllerFromState(opts.kl);
  let cursor: PromptCursor = { epoch: 0, index: 0 };
  let done = 0;
  let logHistory: Array<Record<string, number>> = [];
  // A checkpoint holds two weight files: the policy adapter (a loadable PEFT folder) and the critic.
  const weights = [adapterWeights(policy, { inferenceMode: false }), variableWeights(criticParams, { file: CRITIC_FILE })];
  const ckptPath = resolveResume(opts.resume, io.runDir);
  if (ckptPath) {
    const r = restoreStageCheckpoint(ckptPath, { weights, optimizer, rng });
    const state = r.trainerState;
    if (r.dataCursor === undefined || state['kl_controller'] === undefined) {
      throw new UserError(`${ckptPath}/trainer_state.json: not a PPO checkpoint (needs data_cursor and kl_controller)`);
    }
    cursor = r.dataCursor as PromptCursor;
    logHistory = (state.log_history ?? []) as Array<Record<string, number>>;
    done = r.step;
    kl = klControllerFromState(state['kl_controller'] as KlControllerState);
    log(`resumed from ${ckptPath} at iteration ${done}`);
  }

  const history: Array<Record<string, number>> = [];
  let lastEval: Record<string, number> | null = null;
  // The harness loop: eval at the start / every evalEvery / at the end, checkpoint cadence, stop.
  const loopRun: LoopRun = {
    dir: io.runDir,
    tracker: io.tracker,
    stop: { poll: async () => (io.stop !== undefined && (await io.stop.poll())) || (opts.stopAfter !== undefined && done >= opts.stopAfter) },
    stoppedError: (step, path) => new PpoStopped(step, path),
  };
  try {
    const loop = await trainLoop({
      label: 'ppo',
      run: loopRun,
      startStep: done,
      totalSteps: opts.iterations,
      maxNonfinite: opts.maxNonFinite,
      evalEvery: opts.evalEvery,
      evalAtStart: true,
      checkpointEvery: opts.checkpointEvery,
      step: (before, guard) => {
        const it = before + 1;
        // 1. rollout: sample responses; record log π_old, log π_ref, V_old and raw scores
        const next = nextPrompts(prompts.length, opts.rolloutBatchSize, opts.dataSeed, cursor);
        cursor = next.cursor;
        const ro = rollout(models, next.indices.map((i) => prompts[i]!), opts.sampling, rng);

        // 2. score: normalise with the reward model's statistics, clip, penalise a missing EOS
        //    (or, with several reward models, their combination: reward-set.ts)
        const combined = opts.scoreRollout?.(ro, next.indices);
        const scores = combined ? combined.scores : processScores(ro.scores, ro.hasEos, opts.rewards);

        // 3. KL-shaped rewards: −β·KL per token, the score at the last response token
        const klCoef = kl.value;
        const shaped = shapeRewards({
          scores, logprobs: ro.logprobs, refLogprobs: ro.refLogprobs, mask: ro.responseMask,
          klCoef, estimator: opts.rewards.estimator, whitenRewards: opts.rewards.whiten,
        });

        // 4. GAE: advantages (whitened) and returns = advantages + values
        const { advantages, returns } = gae(shaped.rewards, ro.values, ro.responseMask, opts.gamma, opts.lambda);
        const batch = { ...ro, advantages: whitenAdvantages(advantages, ro.responseMask), returns };

        // 5. PPO epochs over minibatches (early stop on target KL, skip minibatches with a wild ratio)
        const lr = learningRateAt(opts.lr.schedule, opts.lr.peak, it - 1, { warmupSteps: opts.lr.warmupSteps, totalSteps: opts.iterations });
        const update = ppoUpdate({ policy, critic, optimizer, params }, batch, { ...opts.update, lr }, rng, guard);
        kl.update(meanSequenceKl(shaped.kl), opts.rolloutBatchSize);

        // 6. the iteration's figures (TRL's names), a sample table now and then
        const metrics = { ...iterationMetrics({ rollout: ro, scores, shaped, returns, update, klCoef, lr, episode: it * opts.rolloutBatchSize }), ...combined?.metrics };
        history.push(metrics);
        logHistory.push({ step: it, ...metrics });
        log(`iteration ${it}/${opts.iterations}: score ${metrics['objective/scores']!.toFixed(4)} kl ${metrics['objective/kl']!.toFixed(4)} β ${klCoef.toPrecision(4)}`);
        done = it;
        const table = opts.sampleEvery > 0 && it % opts.sampleEvery === 0 && io.decode ? writeSampleTable(io, it, ro, scores, shaped.kl, opts.sampleCount) : null;
        return (table ?? Promise.resolve()).then(() => ({ updated: true as const, metrics }));
      },
      ...(io.evaluate ? { evaluate: () => (lastEval = io.evaluate!()) } : {}),
      checkpoint: (at) => {
        const path = saveStageCheckpoint(io.runDir, {
          weights,
          optimizer,
          step: at,
          epoch: cursor.epoch,
          maxSteps: opts.iterations,
          rng,
          dataCursor: cursor,
          extra: { kl_controller: kl.exportState() },
          logHistory,
          keepLast: opts.keepLast,
        });
        log(`checkpoint ${path}`);
        return path;
      },
      progress: null,
      log,
    });
    return { iterations: loop.step, stopped: false, history, lastEval };
  } catch (e) {
    // A stop request (or stopAfter) ends the loop after a checkpoint: the stage reports it as stopped.
    if (e instanceof PpoStopped) return { iterations: e.step, stopped: true, history, lastEval };
    throw e;
  } finally {
    optimizer.dispose();
  }
}

/** The loop ended early on a stop request, after writing `checkpoint`. */
class PpoStopped extends Error {
  constructor(readonly step: number, readonly checkpoint: string) {
    super(`stopped after iteration ${step}; checkpoint ${checkpoint}`);
  }
}

/** An MLflow table (`mlflow.log_table` JSON: columns + data) of a few rollout samples. */
async function writeSampleTable(
  io: PpoIo,
  iteration: number,
  ro: { ids: number[][]; promptLen: number; attentionMask: number[][]; responseMask: number[][] },
  scores: number[],
  kl: number[][],
  count: number,
): Promise<void> {
  const decode = io.decode!;
  const rows = ro.ids.slice(0, count).map((ids, r) => {
    const prompt = ids.slice(0, ro.promptLen).filter((_, i) => ro.attentionMask[r]![i] === 1);
    const response = ids.slice(ro.promptLen).filter((_, i) => ro.responseMask[r]![i] === 1);
    return [iteration, decode(prompt), decode(response), scores[r]!, kl[r]!.reduce((s, x) => s + x, 0)];
  });
  const dir = join(io.runDir, 'samples');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `samples_iter_${String(iteration).padStart(6, '0')}.json`);
  writeFileSync(path, JSON.stringify({ columns: ['iteration', 'prompt', 'response', 'score', 'kl'], data: rows }, null, 2) + '\n');
  await io.tracker.logArtifact(path, 'samples');
}

// ---------------------------------------------------------------------------------------------
// The stage: config → models → trainPpo → final folder.

function renderPrompts(tokenizer: Tokenizer, prompts: ChatMessage[][], template: TemplateName, maxTokens: number, file: string): number[][] {
  return prompts.map((messages, i) => {
    const ids = renderChatPrompt(tokenizer, messages, template);
    if (ids.length > maxTokens) {
      throw new UserError(`${file} row ${i + 1}: prompt has ${ids.length} tokens, more than data.max_prompt_tokens = ${maxTokens}`);
    }
    return ids;
  });
}

/** Copy the tokenizer files that exist in `from` into `to` (so a saved model folder is self-contained). */
function copyTokenizerFiles(from: string, to: string): void {
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
    if (existsSync(join(from, f))) copyFileSync(join(from, f), join(to, f));
  }
}

export interface PpoStageResult {
  outputDir: string;
  /** final/ (null when a stop request ended the run early). */
  finalDir: string | null;
  iterations: number;
  lastEval: Record<string, number> | null;
}

/**
 * A gold judge of held-out answers: the mean score in [0, 1] of `responses` to `prompts`. The
 * bundled world's judge is handed in by the pipeline and `rlhf ppo`; the stage knows no world.
 */
export type ResponseJudge = (prompts: readonly ChatMessage[][], responses: readonly string[]) => number;

/** Run the `ppo` stage from a resolved config: setup → trainPpo → save → cleanup. */
export async function runPpo(
  resolved: ResolvedConfig<PpoConfig>,
  opts: { log?: (m: string) => void; stopSignal?: StopSignal; parentRunId?: string; judge?: ResponseJudge } = {},
): Promise<PpoStageResult> {
  const cfg = resolved.config;
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
  const stepSize = cfg.ppo.mini_batch_size * cfg.optim.grad_accum;
  if (cfg.train.rollout_batch_size % stepSize !== 0) {
    throw new UserError(
      `ppo.mini_batch_size × optim.grad_accum (${cfg.ppo.mini_batch_size} × ${cfg.optim.grad_accum} = ${stepSize}) ` +
        `must divide train.rollout_batch_size (${cfg.train.rollout_batch_size})`,
    );
  }
  const judge = cfg.eval.judge && cfg.data.eval_prompts ? opts.judge : undefined;
  if (cfg.eval.judge && cfg.data.eval_prompts && !judge) {
    throw new UserError('eval.judge: no judge was handed to this run (the pipeline and `rlhf ppo` pass the world\'s gold judge); set eval.judge=false');
  }

  // ── setup ──
  const engine = await initEngine({ backend: cfg.engine.backend, threads: cfg.engine.threads, seed: cfg.engine.seed });
  checkPpoMemory(cfg, engine.backend, log);
  const tokenizerDir = resolveModelPath(cfg.tokenizer.path ?? cfg.model.path);
  const tokenizer = await loadTokenizer(tokenizerDir);
  const template: TemplateName = cfg.tokenizer.template !== 'auto' ? cfg.tokenizer.template : tokenizer.chatTemplate ? 'tokenizer' : 'llama2';
  const stopTokenIds = turnEndIds(tokenizer, template);
  // Prompt files through src/data (JSONL, Arrow, Parquet; TRL's prompt / messages columns); a
  // relative path missing from the working directory is the package's shipped data, as in the other stages.
  const promptFiles = (typeof cfg.data.prompts === 'string' ? [cfg.data.prompts] : cfg.data.prompts).map(resolveDataPath);
  const evalFile = cfg.data.eval_prompts ? resolveDataPath(cfg.data.eval_prompts) : null;
  const train: number[][] = [];
  for (const file of promptFiles) train.push(...renderPrompts(tokenizer, await readPrompts(file, { warn: log }), template, cfg.data.max_prompt_tokens, file));
  if (train.length === 0) throw new UserError(`${promptFiles.join(', ')}: no prompts (data.prompts)`);
  const rewardPaths = rewardModelPaths(cfg.model.reward_model, cfg.rewards.combine);
  checkRewardKinds(rewardPaths, log);
  const evalMessages = evalFile ? (await readPrompts(evalFile, { warn: log })).slice(0, cfg.data.eval_limit ?? undefined) : [];
  const evalIds = evalFile ? renderPrompts(tokenizer, evalMessages, template, cfg.data.max_prompt_tokens, evalFile) : [];
  const stats = cfg.rewards.normalize ? requireRewardStats(rewardPaths.primary, 'rewards.normalize', 'or set rewards.normalize=false') : null;
  // One scoring rule (src/tokenizer/score-position.ts): responses stop at the turn end, where a
  // reward model recording read_at: turn_end reads; one without the record (trained elsewhere on the
  // full rendering) reads at its last token, so it gets what the template writes after the turn end.
  const readAt = readRewardReadAt(rewardPaths.primary);
  const rewardSuffix = readAt === 'last_token' ? turnEndSuffix(tokenizer, template) : [];
  if (rewardSuffix.length > 0) log(`ppo: ${rewardPaths.primary} reads at its last token: scoring each finished response + ${JSON.stringify(tokenizer.decode(rewardSuffix))}`);
  if (rewardPaths.safety !== null && readRewardReadAt(rewardPaths.safety) === 'last_token' && turnEndSuffix(tokenizer, template).length > 0) {
    throw new UserError(
      `model.reward_model.safety: ${rewardPaths.safety} reads at its last token (no reward_read.json), but the ${template} template writes text after ` +
        'the turn end and the combined reward scores the safety model at the turn end; retrain it with rlhf reward (read_at: turn_end)',
    );
  }

  const policy = loadHfModel(cfg.model.path);
  const toDispose: LlamaModel[] = [policy];
  const run = await openStageRun({
    stage: 'ppo', outputDir: cfg.output_dir, resolved, tracking: cfg.tracking, resume: cfg.train.resume, log,
    ...(opts.stopSignal ? { stopSignal: opts.stopSignal } : {}),
    ...(opts.parentRunId !== undefined ? { parentRunId: opts.parentRunId } : {}),
  });
  try {
    if (cfg.model.adapter !== null) {
      loadAdapter(policy, cfg.model.adapter); // the SFT adapter becomes part of the reference
      unloadLora(policy, { merge: true });
    }
    const initRng = new Rng(cfg.engine.seed);
    injectLora(policy, {
      targetModules: cfg.lora.target_modules, r: cfg.lora.r, alpha: cfg.lora.alpha, dropout: cfg.lora.dropout,
      rng: initRng, dropoutRng: initRng,
    });
    const rewardModel = loadHfModel(rewardPaths.primary);
    toDispose.push(rewardModel);
    let scoreRollout: RolloutScorer | undefined;
    if (rewardPaths.safety !== null) {
      const safetyModel = loadHfModel(rewardPaths.safety);
      toDispose.push(safetyModel);
      scoreRollout = llama2Scorer({
        safetyModel, isSafety: readSafetyFlags(promptFiles), helpfulStats: stats,
        safetyStats: cfg.rewards.normalize ? requireRewardStats(rewardPaths.safety, 'rewards.normalize', 'or set rewards.normalize=false') : null,
        threshold: cfg.rewards.safety_threshold, clip: cfg.rewards.clip, missingEosPenalty: cfg.rewards.missing_eos_penalty,
      });
    }
    let critic: Critic;
    if (cfg.ppo.critic === 'reward_model') {
      const valueModel = loadHfModel(rewardPaths.primary);
      toDispose.push(valueModel);
      critic = valueModelCritic(valueModel);
    } else {
      critic = policyHeadCritic(policy, ScalarHead.init(policy.config.hidden_size, initRng, policy.config.initializer_range));
    }

    const decode = (ids: number[]) => tokenizer.decode(ids.filter((t) => !stopTokenIds.includes(t)), { skipSpecialTokens: true }).trim();
    const evaluate = evalIds.length === 0 ? undefined : () => {
      const answers = answerAndScore(policy, rewardModel, evalIds, {
        maxNewTokens: cfg.generation.max_new_tokens, batchSize: cfg.generation.eval_batch_size, stopTokenIds, padTokenId: tokenizer.padId, rewardSuffix,
      });
      const out: Record<string, number> = { 'eval/reward_mean': answers.scores.reduce((s, x) => s + x, 0) / answers.scores.length };
      if (judge) out['eval/judge_score'] = judge(evalMessages, answers.responses.map(decode));
      log(`ppo eval: ${Object.entries(out).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
      return out;
    };

    // ── train loop ──
    const result = await trainPpo({ policy, critic, rewardModel, rewardSuffix }, train, {
      iterations: cfg.train.steps,
      rolloutBatchSize: cfg.train.rollout_batch_size,
      sampling: { maxNewTokens: cfg.generation.max_new_tokens, temperature: cfg.generation.temperature, stopTokenIds, padTokenId: tokenizer.padId },
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
        normalize: stats, clip: cfg.rewards.clip, missingEosPenalty: cfg.rewards.missing_eos_penalty,
        estimator: cfg.rewards.kl_estimator, whiten: cfg.rewards.whiten,
      },
      ...(scoreRollout ? { scoreRollout } : {}),
      kl: cfg.kl.controller === 'fixed'
        ? { kind: 'fixed', value: cfg.kl.init_coef }
        : { kind: 'adaptive', value: cfg.kl.init_coef, target: cfg.kl.target, horizon: cfg.kl.horizon },
      seed: cfg.engine.seed,
      dataSeed: cfg.train.seed ?? cfg.engine.seed,
      checkpointEvery: cfg.checkpoint.every_steps,
      keepLast: cfg.checkpoint.keep_last,
      resume: run.resumeFrom ?? 'never',
      sampleEvery: cfg.train.sample_every,
      sampleCount: cfg.train.sample_count,
      evalEvery: cfg.train.eval_every,
      maxNonFinite: cfg.train.max_nonfinite,
    }, { runDir: run.dir, tracker: run.tracker, decode, ...(evaluate ? { evaluate } : {}), stop: run.stop, log });
    if (result.stopped) throw run.stoppedError(result.iterations, join(run.dir, 'checkpoints', `step_${result.iterations}`));

    // ── save: the PPO adapter (PEFT) and, with save_merged, the merged policy ──
    const finalDir = join(run.dir, FINAL_DIR);
    // The adapter was trained on model.path with model.adapter merged in: that merged model is written
    // as final/base, and the adapter records its absolute path, so PEFT-style loading (recorded base +
    // adapter) reproduces this stage's policy instead of silently dropping the SFT delta.
    const adapterBase = cfg.model.adapter === null ? resolve(cfg.model.path) : join(resolve(finalDir), ADAPTER_BASE_DIR);
    writeFolderAtomic(finalDir, (tmp) => {
      saveAdapter(policy, tmp, { baseModelNameOrPath: adapterBase });
      copyTokenizerFiles(tokenizerDir, tmp);
      if (cfg.model.adapter !== null) {
        saveHfModel(policy, join(tmp, ADAPTER_BASE_DIR)); // base weights only: adapters are not params
        copyTokenizerFiles(tokenizerDir, join(tmp, ADAPTER_BASE_DIR));
      }
      if (cfg.save_merged) {
        mergeLora(policy);
        try {
          saveHfModel(policy, join(tmp, 'merged'));
        } finally {
          unmergeLora(policy);
        }
        copyTokenizerFiles(tokenizerDir, join(tmp, 'merged'));
      }
    });
    await run.tracker.setTag('final_dir', finalDir);
    log(`ppo: done after ${result.iterations} iterations; adapter in ${finalDir}`);
    await run.close('FINISHED');
    return { outputDir: run.dir, finalDir, iterations: result.iterations, lastEval: result.lastEval };
  } catch (e) {
    await run.close(closeStatusFor(e));
    throw e;
  } finally {
    // ── cleanup ──
    unloadLora(policy, { merge: false });
    for (const m of toDispose) m.dispose();
  }
}

/**
 * Fail before, not during: the LoRA policy (its reference is the same weights with adapters off) on
 * a mini-batch of prompt + response tokens, beside the frozen reward model and — with
 * ppo.critic: reward_model — a value model trained in full.
 */
function checkPpoMemory(cfg: PpoConfig, backend: string, log: (m: string) => void): void {
  const policy = loadHfConfig(cfg.model.path);
  const reward = loadHfConfig(rewardModelPaths(cfg.model.reward_model, cfg.rewards.combine).primary);
  const seqLen = cfg.data.max_prompt_tokens + cfg.generation.max_new_tokens;
  const rewardWeights = estimatePeakMemory({ config: reward, batchSize: 1, seqLen: 1, trained: { kind: 'none' }, lossChunkRows: 'none' })
    .items.find((i) => i.what.startsWith('weights'))!.bytes;
  // A set of two reward models (combine: llama2): the safety model's weights too, taken as the same shape.
  let extra = typeof cfg.model.reward_model === 'string' ? rewardWeights : 2 * rewardWeights;
  if (cfg.ppo.critic === 'reward_model') {
    const value = estimatePeakMemory({ config: reward, batchSize: cfg.ppo.mini_batch_size, seqLen, trained: { kind: 'full' }, lossChunkRows: 'none' });
    extra += value.items.filter((i) => i.where === 'heap').reduce((n, i) => n + i.bytes, 0);
  }
  // The update's micro-batch is the binding case (rollouts and evaluation hold no activations for backprop).
  checkMemoryFits('ppo', estimatePeakMemory({
    config: policy,
    batchSize: cfg.ppo.mini_batch_size,
    seqLen,
    trained: { kind: 'lora', rank: cfg.lora.r, modules: loraShortModules(policy, cfg.lora.target_modules), dropout: cfg.lora.dropout },
    lossChunkRows: null,
    extraHeapBytes: extra,
    extraLabel: cfg.ppo.critic === 'reward_model' ? 'reward model, and the value model trained in full' : 'reward model weights',
  }), memoryLimits(backend), [
    { key: 'ppo.mini_batch_size', value: cfg.ppo.mini_batch_size },
    { key: 'generation.max_new_tokens', value: cfg.generation.max_new_tokens },
    { key: 'data.max_prompt_tokens', value: cfg.data.max_prompt_tokens },
    ...(cfg.ppo.critic === 'reward_model' ? [{ key: 'ppo.critic', value: 'reward_model', suggest: 'policy_head' }] : []),
  ], log);
}
