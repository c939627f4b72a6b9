/**
 * The PPO loop over built models (Llama 2 §3.2.3, Ouyang et al. 2022), one harness step per
 * iteration: 1. rollout 2. score 3. KL-shaped rewards 4. GAE 5. PPO epochs over minibatches
 * 6. the iteration's figures; the harness loop evaluates, checkpoints (policy adapter + critic)
 * and stops.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { trainableVariables } from '../lora/inject.js';
import type { LlamaModel } from '../model/llama.js';
import type { Tracker } from '../tracking/index.js';
import { AdamW } from '../training/adamw.js';
import { withoutStrayTensors } from '../training/fine-tune.js';
import { trainLoop, type LoopRun } from '../training/loop.js';
import { adapterWeights, resolveResume, restoreStageCheckpoint, saveStageCheckpoint, variableWeights } from '../training/run.js';
import { learningRateAt, type ScheduleKind } from '../training/schedule.js';
import { gae, whitenAdvantages } from './advantages.js';
import { klControllerFromState, type KlControllerState, type KlEstimator } from './kl.js';
import { iterationMetrics, meanSequenceKl } from './metrics.js';
import { nextPrompts, type PromptCursor } from './prompts.js';
import { processScores, shapeRewards, type ScoreOptions } from './rewards.js';
import type { RolloutScorer } from './reward-set.js';
import { rollout, type Critic, type SamplingSettings } from './rollout.js';
import { ppoUpdate, type UpdateOptions } from './update.js';

/** The critic's trainable weights inside a checkpoint (beside the policy's adapter files). */
export const CRITIC_FILE = 'critic.safetensors';

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
  const optimizer = withoutStrayTensors(() => new AdamW(params, opts.adamw));
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
