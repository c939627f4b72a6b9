/**
 * The reward-model recipe (Llama 2 §3.2.2), top to bottom:
 *
 *   setup:  engine → tokenizer → preference pairs (tokenized, margins from Table 27) → backbone +
 *           score head (LoRA or full; the head always trains) → AdamW → run folder (harness)
 *   train:  each step: grad_accum micro-batches of pairs, chosen and rejected through the model as
 *           one [2B, T] batch; loss −log σ(r_c − r_r − m) + c·mean((r_c + r_r)²); clip, NaN guard,
 *           AdamW; log loss / accuracy / margin / reward means; eval (accuracy per strength level)
 *           and checkpoints on schedule; a signal stops after the step with a checkpoint
 *   save:   final eval; reward mean/std over training pairs; LoRA merged; final/ = HF folder
 *           (LlamaForSequenceClassification) + reward_stats.json + reward_read.json + tokenizer files
 */
import { join } from 'node:path';
import { writeFileAtomic, type ResolvedConfig } from '../config/index.js';
import { DataCursor, type CursorState } from '../data/index.js';
import { initEngine } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { unloadLora } from '../lora/index.js';
import type { RewardInfo } from '../model/io/reward-kind.js';
import { loadHfConfig, resolveModelPath } from '../model/index.js';
import { resolveDataPath } from '../paths.js';
import { loadTokenizer, pickTemplate } from '../tokenizer/index.js';
import type { ProgressStream } from '../tracking/progress.js';
import { AdamW, GradientAccumulator, learningRateAt } from '../training/index.js';
import { makeAdamW } from '../training/fine-tune.js';
import { trainLoop } from '../training/loop.js';
import { checkTrainingMemory } from '../training/memory-check.js';
import { FINAL_DIR, closeStatusFor, openRecipeRun, resumeStage, saveStageCheckpoint, stageLog, type StageHooks, type StageRun } from '../training/run.js';
import { stepsOfRun } from '../training/schedule.js';
import type { RewardConfig } from './config.js';
import { loadPairs, sampleSubset } from './data.js';
import { evalMetrics, evalSummary, evaluatePairs, formatByStrength, scorePairs, type PairEvaluation } from './evaluate.js';
import { rewardStats } from './loss.js';
import { loadRewardBackbone, resolveBackbone, saveRewardModel, type RewardStats } from './model.js';
import { lengthGroupedBatches, type TokenizedPair } from './pairs.js';
import { estimateOutputBytes, rewardStep, rewardTrainable } from './step.js';

export { evalSummary } from './evaluate.js';
export { mixFiles, sampleSubset } from './data.js';

/** Held-out accuracy overall and per strength level, in the run folder (for the run report). */
export const EVAL_FILE = 'eval.json';

export interface RewardRunOptions extends StageHooks {
  /** Where the progress bar / lines go (default stdout). */
  progressStream?: ProgressStream;
}

export interface RewardRunResult {
  dir: string;
  finalDir: string;
  steps: number;
  eval: PairEvaluation | null;
  stats: RewardStats;
}

export async function runReward(resolved: ResolvedConfig<RewardConfig>, opts: RewardRunOptions = {}): Promise<RewardRunResult> {
  const cfg = resolved.config;
  const log = stageLog(opts);

  // ── setup ──────────────────────────────────────────────────────────────────────────────────
  const engine = await initEngine({ backend: cfg.engine.backend, threads: cfg.engine.threads, seed: cfg.engine.seed });
  const rng = new Rng(cfg.engine.seed);
  // model.path may be a LoRA SFT output (an adapter folder): its base model is loaded and it is merged in.
  const { modelDir, adapterDir } = resolveBackbone(resolveModelPath(resolveDataPath(cfg.model.path)), cfg.model.adapter === null ? null : resolveDataPath(cfg.model.adapter));
  // Fail before, not during: a micro-batch is batch_size pairs, chosen and rejected side by side.
  const checkpointing = checkTrainingMemory('reward', engine.backend, {
    config: loadHfConfig(modelDir),
    batchSize: cfg.train.batch_size,
    sequencesPerRow: 2,
    maxLengthKey: 'data.max_length',
    maxLength: cfg.data.max_length,
    lora: cfg.lora.enabled ? cfg.lora : null,
    gradientCheckpointing: cfg.train.gradient_checkpointing,
    lossChunkRows: 'none',
  }, log);
  const tokenizerDir = resolveModelPath(resolveDataPath(cfg.tokenizer.path ?? cfg.model.path));
  const tokenizer = await loadTokenizer(tokenizerDir);
  const data = await loadPairs(cfg, tokenizer, pickTemplate(cfg.tokenizer.template, tokenizer), log);
  log(`reward: ${data.train.length} training pairs, ${data.eval.length} eval pairs (margin: ${cfg.reward.margin})`);

  const model = loadRewardBackbone(modelDir, rng.fork(), { adapterDir });
  model.gradientCheckpointing = checkpointing;
  model.checkpointRng = rng;
  let run: StageRun | null = null;
  let optimizer: AdamW | null = null;
  const accumulator = new GradientAccumulator();
  try {
    const { trainable, weights } = rewardTrainable(model, cfg, rng);
    optimizer = makeAdamW(trainable, cfg.optim);

    const trainSeed = cfg.train.seed ?? cfg.engine.seed;
    // The cursor walks pairs (random batches) or, with group_by_length, fixed batches of similar length.
    const grouped = cfg.data.group_by_length ? lengthGroupedBatches(data.train, { batchSize: cfg.train.batch_size, seed: trainSeed }) : null;
    const cursorSize = grouped ? grouped.length : data.train.length;
    const totalSteps = stepsOfRun(cfg.train, grouped ? grouped.length : Math.ceil(data.train.length / cfg.train.batch_size), cfg.optim.grad_accum);

    run = await openRecipeRun('reward', resolved, { minFreeBytes: estimateOutputBytes(model, trainable, cfg.checkpoint.keep_last), hooks: opts, log });
    const restored = resumeStage(run, { weights, optimizer, rng }, {
      label: 'reward',
      log,
      // A checkpoint only fits a run with the same data setup.
      check: (r, from) => {
        if (r.trainerState.data_units === cursorSize) return;
        throw new UserError(
          `${from}: written for ${String(r.trainerState.data_units)} training ${grouped ? 'batches' : 'pairs'}, ` +
            `this run has ${cursorSize} (data, batch size or group_by_length changed); use train.resume=never to start over`,
        );
      },
    });
    const cursorState = restored?.dataCursor as CursorState | undefined;
    const cursor = new DataCursor({ size: cursorSize, batchSize: grouped ? 1 : cfg.train.batch_size, seed: trainSeed, shuffle: true, ...(cursorState ? { state: cursorState } : {}) });
    const nextMicroBatch = (): TokenizedPair[] => {
      const { indices } = cursor.next();
      return (grouped ? grouped[indices[0]!]! : indices).map((i) => data.train[i]!);
    };
    const lastPairs: { eval: PairEvaluation | null } = { eval: null }; // the loop's last evaluation, for eval.json

    // ── train (the harness's loop: NaN guard, eval/checkpoint cadence, stop, progress) ──────────
    const loop = await trainLoop({
      label: 'reward',
      run,
      startStep: restored?.step ?? 0,
      totalSteps,
      maxNonfinite: cfg.train.max_nonfinite,
      evalEvery: cfg.train.eval_every,
      checkpointEvery: cfg.checkpoint.every_steps,
      step: (done) => {
        const out = rewardStep({
          model, trainable, optimizer: optimizer!, accumulator,
          microBatches: Array.from({ length: cfg.optim.grad_accum }, nextMicroBatch),
          padId: tokenizer.padId, centerCoefficient: cfg.reward.center_rewards_coefficient, gradClip: cfg.optim.grad_clip,
          lr: learningRateAt(cfg.schedule.type, cfg.optim.lr, done, { warmupSteps: cfg.schedule.warmup_steps, totalSteps }),
        });
        return { ...out, metrics: { ...out.metrics, 'train/epoch': cursor.state.epoch + cursor.state.index / cursor.size } };
      },
      evaluate: () => {
        lastPairs.eval = data.eval.length === 0
          ? null
          : evaluatePairs(model, data.eval, { batchSize: cfg.reward.eval_batch_size, padId: tokenizer.padId, centerCoefficient: cfg.reward.center_rewards_coefficient });
        return lastPairs.eval ? evalMetrics(lastPairs.eval) : null;
      },
      checkpoint: (at) =>
        saveStageCheckpoint(run!.dir, {
          weights, optimizer: optimizer!, step: at, epoch: cursor.state.epoch, maxSteps: totalSteps, rng,
          dataCursor: cursor.state, extra: { data_units: cursorSize }, keepLast: cfg.checkpoint.keep_last,
        }),
      progress: {
        keys: { loss: 'train/loss', accuracy: 'train/accuracy', margin: 'train/margin', 'eval/accuracy': 'eval/accuracy' },
        ...(opts.progressStream ? { stream: opts.progressStream } : {}),
      },
      log,
    });
    const step = loop.step;

    // ── save ─────────────────────────────────────────────────────────────────────────────────
    const finalEval = lastPairs.eval;
    if (finalEval) {
      log(`reward: eval accuracy ${(100 * finalEval.accuracy).toFixed(1)}% (${formatByStrength(finalEval)})`);
      // eval.json: what the run report reads (accuracy overall and per strength level).
      writeFileAtomic(join(run.dir, EVAL_FILE), JSON.stringify(evalSummary(finalEval), null, 2) + '\n');
    }
    // Mean/std over (a seeded subset of) the training pairs' rewards, chosen and rejected alike.
    const statsPairs = sampleSubset(data.train, cfg.reward.stats_max_pairs, trainSeed + 1);
    const scored = scorePairs(model, statsPairs, { batchSize: cfg.reward.eval_batch_size, padId: tokenizer.padId });
    const stats = rewardStats([...scored.chosen, ...scored.rejected]);
    await run.tracker.logMetrics({ 'rewards/train_mean': stats.mean, 'rewards/train_std': stats.std }, step);

    if (cfg.lora.enabled) unloadLora(model, { merge: true });
    const finalDir = join(run.dir, FINAL_DIR);
    const info: RewardInfo = { kind: cfg.reward.kind, train: data.trainCounts, eval: cfg.data.eval };
    saveRewardModel(model, finalDir, { stats, tokenizerDir, padId: tokenizer.padId, readAt: cfg.reward.read_at, info });
    log(`reward: saved ${finalDir}`);
    await run.close('FINISHED');
    return { dir: run.dir, finalDir, steps: step, eval: finalEval, stats };
  } catch (e) {
    await run?.close(closeStatusFor(e));
    throw e;
  } finally {
    accumulator.reset();
    optimizer?.dispose();
    if (cfg.lora.enabled) unloadLora(model, { merge: false });
    model.dispose();
  }
}
