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
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { writeFileAtomic, type ResolvedConfig } from '../config/index.js';
import { DataCursor, type CursorState } from '../data/index.js';
import { initEngine } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { injectLora, trainableVariables, unloadLora } from '../lora/index.js';
import { loadHfConfig, resolveModelPath, type LlamaModel } from '../model/index.js';
import { estimatePeakMemory, loraShortModules } from '../training/memory.js';
import { checkMemoryFits, memoryLimits, trainingKnobs } from '../training/memory-check.js';
import { packagePath } from '../paths.js';
import { loadTokenizer, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import { type RunContext } from '../tracking/index.js';
import type { ProgressStream } from '../tracking/progress.js';
import { AdamW, GradientAccumulator, clipGradNormInPlace, disposeGrads, globalNorm, learningRateAt, microBatchGrads } from '../training/index.js';
import {
  FINAL_DIR,
  adapterWeights,
  closeStatusFor,
  openStageRun,
  restoreStageCheckpoint,
  saveStageCheckpoint,
  variableWeights,
  type StageRun,
  type WeightsIO,
} from '../training/run.js';
import type { StopSignal } from '../training/stop-signal.js';
import type { RewardInfo } from '../model/io/reward-kind.js';
import type { RewardConfig } from './config.js';
import { evalMetrics, evaluatePairs, scorePairs, type PairEvaluation } from './evaluate.js';
import { trainLoop } from '../training/loop.js';
import { bradleyTerryLossSum, pairStats, rewardStats, type MarginKind } from './loss.js';
import { loadRewardBackbone, pairRewards, resolveBackbone, saveRewardModel, type RewardStats } from './model.js';
import { disposePairBatch, lengthGroupedBatches, pairBatch, readPreferences, tokenizePairs, type NumberedPreference, type TokenizedPair } from './pairs.js';

/** Held-out accuracy overall and per strength level, in the run folder (for the run report). */
export const EVAL_FILE = 'eval.json';

export interface RewardRunOptions {
  log?: (msg: string) => void;
  /** Where the progress bar / lines go (default stdout). */
  progressStream?: ProgressStream;
  /** Tests: deterministic tracking context and a StopSignal on a fake process. */
  context?: Partial<RunContext>;
  stopSignal?: StopSignal;
  /** The pipeline's MLflow run: this stage's run is nested under it. */
  parentRunId?: string;
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
  const log = opts.log ?? ((msg: string) => process.stderr.write(msg + '\n'));

  // ── setup ──────────────────────────────────────────────────────────────────────────────────
  const engine = await initEngine({ backend: cfg.engine.backend, threads: cfg.engine.threads, seed: cfg.engine.seed });
  const rng = new Rng(cfg.engine.seed);
  // model.path may be a LoRA SFT output (an adapter folder): its base model is loaded and it is merged in.
  const { modelDir, adapterDir } = resolveBackbone(resolveModelPath(resolvePath(cfg.model.path)), cfg.model.adapter === null ? null : resolvePath(cfg.model.adapter));
  // Fail before, not during: a micro-batch is batch_size pairs, chosen and rejected side by side.
  const backbone = loadHfConfig(modelDir);
  checkMemoryFits('reward', estimatePeakMemory({
    config: backbone,
    batchSize: 2 * cfg.train.batch_size,
    seqLen: cfg.data.max_length,
    trained: cfg.lora.enabled
      ? { kind: 'lora', rank: cfg.lora.r, modules: loraShortModules(backbone, cfg.lora.target_modules), dropout: cfg.lora.dropout }
      : { kind: 'full' },
    gradientCheckpointing: cfg.train.gradient_checkpointing,
    lossChunkRows: 'none',
  }), memoryLimits(engine.backend), trainingKnobs({
    batchSize: cfg.train.batch_size,
    maxLengthKey: 'data.max_length',
    maxLength: cfg.data.max_length,
    gradientCheckpointing: cfg.train.gradient_checkpointing,
  }), log);
  const tokenizerDir = resolveModelPath(resolvePath(cfg.tokenizer.path ?? cfg.model.path));
  const tokenizer = await loadTokenizer(tokenizerDir);
  const template = pickTemplate(cfg.tokenizer.template, tokenizer);

  const data = await loadPairs(cfg, tokenizer, template, log);
  log(`reward: ${data.train.length} training pairs, ${data.eval.length} eval pairs (margin: ${cfg.reward.margin})`);

  const model = loadRewardBackbone(modelDir, rng.fork(), { adapterDir });
  model.gradientCheckpointing = cfg.train.gradient_checkpointing;
  model.checkpointRng = rng;
  let run: StageRun | null = null;
  let optimizer: AdamW | null = null;
  const accumulator = new GradientAccumulator();
  try {
    let trainable: Map<string, tf.Variable>;
    let weights: WeightsIO;
    if (cfg.lora.enabled) {
      injectLora(model, {
        targetModules: cfg.lora.target_modules,
        r: cfg.lora.r,
        alpha: cfg.lora.alpha,
        dropout: cfg.lora.dropout,
        modulesToSave: ['score'],
        rng: rng.fork(),
        dropoutRng: rng,
      });
      trainable = trainableVariables(model);
      weights = adapterWeights(model, { baseModelNameOrPath: cfg.model.path });
    } else {
      trainable = new Map([...model.params].filter(([, v]) => v.trainable));
      weights = variableWeights(trainable);
    }
    optimizer = new AdamW(trainable, {
      beta1: cfg.optim.betas[0],
      beta2: cfg.optim.betas[1],
      eps: cfg.optim.eps,
      weightDecay: cfg.optim.weight_decay,
    });

    const batchSize = cfg.train.batch_size;
    const accum = cfg.optim.grad_accum;
    const trainSeed = cfg.train.seed ?? cfg.engine.seed;
    // The cursor walks pairs (random batches) or, with group_by_length, fixed batches of similar length.
    const grouped = cfg.data.group_by_length ? lengthGroupedBatches(data.train, { batchSize, seed: trainSeed }) : null;
    const batchesPerEpoch = grouped ? grouped.length : Math.ceil(data.train.length / batchSize);
    const totalSteps = cfg.train.epochs !== null ? Math.max(1, Math.ceil((cfg.train.epochs * batchesPerEpoch) / accum)) : cfg.train.steps;

    run = await openStageRun({
      stage: 'reward',
      outputDir: cfg.output_dir,
      resolved,
      tracking: cfg.tracking,
      resume: cfg.train.resume,
      minFreeBytes: estimateOutputBytes(model, trainable, cfg.checkpoint.keep_last),
      log,
      ...(opts.context ? { context: opts.context } : {}),
      ...(opts.stopSignal ? { stopSignal: opts.stopSignal } : {}),
      ...(opts.parentRunId !== undefined ? { parentRunId: opts.parentRunId } : {}),
    });

    // What the data cursor walks over; a checkpoint only fits a run with the same data setup.
    const cursorSize = grouped ? grouped.length : data.train.length;
    let step = 0;
    let cursorState: CursorState | undefined;
    if (run.resumeFrom) {
      const restored = restoreStageCheckpoint(run.resumeFrom, { weights, optimizer, rng });
      if (restored.trainerState.data_units !== cursorSize) {
        throw new UserError(
          `${run.resumeFrom}: written for ${String(restored.trainerState.data_units)} training ${grouped ? 'batches' : 'pairs'}, ` +
            `this run has ${cursorSize} (data, batch size or group_by_length changed); use train.resume=never to start over`,
        );
      }
      step = restored.step;
      cursorState = restored.dataCursor as CursorState | undefined;
      log(`reward: resumed from ${run.resumeFrom} at step ${step}`);
    }
    const cursor = new DataCursor({
      size: cursorSize,
      batchSize: grouped ? 1 : batchSize,
      seed: trainSeed,
      shuffle: true,
      ...(cursorState ? { state: cursorState } : {}),
    });
    const nextMicroBatch = (): TokenizedPair[] => {
      const { indices } = cursor.next();
      return (grouped ? grouped[indices[0]!]! : indices).map((i) => data.train[i]!);
    };
    const evaluate = (): PairEvaluation | null =>
      data.eval.length === 0
        ? null
        : evaluatePairs(model, data.eval, { batchSize: cfg.reward.eval_batch_size, padId: tokenizer.padId, centerCoefficient: cfg.reward.center_rewards_coefficient });
    const lastPairs: { eval: PairEvaluation | null } = { eval: null }; // the loop's last evaluation, for eval.json

    // ── train (the harness's loop: NaN guard, eval/checkpoint cadence, stop, progress) ──────────
    const loop = await trainLoop({
      label: 'reward',
      run,
      startStep: step,
      totalSteps,
      maxNonfinite: cfg.train.max_nonfinite,
      evalEvery: cfg.train.eval_every,
      checkpointEvery: cfg.checkpoint.every_steps,
      step: (done) => {
        const lr = learningRateAt(cfg.schedule.type, cfg.optim.lr, done, { warmupSteps: cfg.schedule.warmup_steps, totalSteps });
        const microBatches = Array.from({ length: accum }, nextMicroBatch);
        const pairCount = microBatches.reduce((n, mb) => n + mb.length, 0);

        // Σ over micro-batches of (their loss sum) / (pairs in the whole step) = the big batch's mean loss.
        let loss = 0;
        const chosen: number[] = [];
        const rejected: number[] = [];
        for (const mb of microBatches) {
          const batch = pairBatch(mb, { padId: tokenizer.padId, side: 'right', padToMultipleOf: 8 });
          const part = microBatchGrads(
            trainable,
            () => {
              const r = pairRewards(model, batch, { training: true }); // [B] each
              chosen.push(...r.chosen.dataSync());
              rejected.push(...r.rejected.dataSync());
              return bradleyTerryLossSum(r.chosen, r.rejected, batch.margins, cfg.reward.center_rewards_coefficient);
            },
            pairCount,
          );
          accumulator.add(part.grads);
          disposeGrads(part.grads);
          disposePairBatch(batch);
          loss += part.loss;
        }
        const gradNorm = cfg.optim.grad_clip !== null ? clipGradNormInPlace(accumulator.grads, cfg.optim.grad_clip) : globalNorm(accumulator.grads.values());
        const s = pairStats(chosen, rejected);
        return {
          loss,
          gradNorm,
          apply: () => optimizer!.step(accumulator.grads, lr),
          release: () => accumulator.reset(),
          metrics: {
            'train/accuracy': s.accuracy,
            'train/margin': s.margin,
            'train/rewards/chosen': s.chosenMean,
            'train/rewards/rejected': s.rejectedMean,
            'train/lr': lr,
            'train/epoch': cursor.state.epoch + cursor.state.index / cursor.size,
          },
        };
      },
      evaluate: () => {
        lastPairs.eval = evaluate();
        return lastPairs.eval ? evalMetrics(lastPairs.eval) : null;
      },
      checkpoint: (at) =>
        saveStageCheckpoint(run!.dir, {
          weights,
          optimizer: optimizer!,
          step: at,
          epoch: cursor.state.epoch,
          maxSteps: totalSteps,
          rng,
          dataCursor: cursor.state,
          extra: { data_units: cursorSize },
          keepLast: cfg.checkpoint.keep_last,
        }),
      progress: {
        keys: { loss: 'train/loss', accuracy: 'train/accuracy', margin: 'train/margin', 'eval/accuracy': 'eval/accuracy' },
        ...(opts.progressStream ? { stream: opts.progressStream } : {}),
      },
      log,
    });
    step = loop.step;

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

// ── helpers ────────────────────────────────────────────────────────────────────────────────────

/** Train and eval pairs, tokenized with their margins; eval from its own file or a seeded split. */
async function loadPairs(
  cfg: RewardConfig,
  tokenizer: Tokenizer,
  template: TemplateName,
  log: (msg: string) => void,
): Promise<{ train: TokenizedPair[]; eval: TokenizedPair[]; trainCounts: Array<{ file: string; pairs: number }> }> {
  const marginKind = cfg.reward.margin as MarginKind;
  const read = async (file: string): Promise<{ file: string; rows: NumberedPreference[] }> => {
    const path = resolvePath(file);
    return { file: path, rows: await readPreferences(path, { onBadRow: cfg.data.on_bad_row, warn: log }) };
  };
  const tokenize = (file: string, rows: NumberedPreference[], what: string): TokenizedPair[] => {
    const { pairs, dropped } = tokenizePairs(tokenizer, rows, { file, template, readAt: cfg.reward.read_at, marginKind, maxLength: cfg.data.max_length, onWarning: log });
    if (dropped > 0) log(`reward: dropped ${dropped} ${what} pairs of ${file} with a side longer than data.max_length=${cfg.data.max_length} tokens`);
    return pairs;
  };

  // Rows keep the file they came from, so a bad row or a missing margin is reported in its own file.
  const trainFiles = typeof cfg.data.train === 'string' ? [cfg.data.train] : cfg.data.train;
  const train = mixFiles(await Promise.all(trainFiles.map(read)), cfg.data.mix, cfg.train.seed ?? cfg.engine.seed, log);
  let trainRows = train.flatMap((t) => t.rows.map((row) => ({ file: t.file, row })));
  let evalRows: { file: string; row: NumberedPreference }[] = [];
  if (cfg.data.eval !== null) {
    const ev = await read(cfg.data.eval);
    evalRows = ev.rows.map((row) => ({ file: ev.file, row }));
  } else if (cfg.data.eval_fraction > 0) {
    const order = new Rng(cfg.engine.seed).shuffle(trainRows.map((_, i) => i));
    const evalCount = Math.round(trainRows.length * cfg.data.eval_fraction);
    const isEval = new Set(order.slice(0, evalCount));
    evalRows = trainRows.filter((_, i) => isEval.has(i));
    trainRows = trainRows.filter((_, i) => !isEval.has(i));
  }
  trainRows = sampleSubset(trainRows, cfg.data.max_train_pairs, cfg.train.seed ?? cfg.engine.seed);
  if (cfg.data.max_eval_pairs !== null) evalRows = evalRows.slice(0, cfg.data.max_eval_pairs);
  const trainCounts: Array<{ file: string; pairs: number }> = [];
  const tokenizeAll = (rows: { file: string; row: NumberedPreference }[], what: string): TokenizedPair[] => {
    const files = [...new Set(rows.map((r) => r.file))];
    const pairs = files.flatMap((file) => {
      const filePairs = tokenize(file, rows.filter((r) => r.file === file).map((r) => r.row), what);
      if (what === 'training') trainCounts.push({ file, pairs: filePairs.length });
      return filePairs;
    });
    if (pairs.length === 0 && what === 'training') throw new UserError(`${trainFiles.join(', ')}: no training pair fits data.max_length=${cfg.data.max_length}`);
    return pairs;
  };
  return { train: tokenizeAll(trainRows, 'training'), eval: tokenizeAll(evalRows, 'eval'), trainCounts };
}

/**
 * The data mix: with shares w_i (normalised) over files of n_i rows, the largest set with those
 * shares has T = min_i n_i / w_i rows, round(T·w_i) of them (a seeded subset) from file i.
 */
export function mixFiles<T extends { file: string; rows: unknown[] }>(files: T[], mix: readonly number[] | null, seed: number, log: (m: string) => void = () => undefined): T[] {
  if (mix === null) return files;
  if (mix.length !== files.length) {
    throw new UserError(`data.mix: one share per data.train file (${files.length} file${files.length === 1 ? '' : 's'}), got ${mix.length}`);
  }
  const total = mix.reduce((s, w) => s + w, 0);
  const shares = mix.map((w) => w / total);
  const size = Math.min(...files.map((f, i) => f.rows.length / shares[i]!));
  const mixed = files.map((f, i) => ({ ...f, rows: sampleSubset(f.rows, Math.round(size * shares[i]!), seed + i) }));
  log(`reward: data mix ${mixed.map((f, i) => `${f.rows.length} pairs of ${f.file} (${(100 * shares[i]!).toFixed(0)}%)`).join(', ')}`);
  return mixed;
}

/** At most `max` items, a seeded choice kept in file order (all of them when max is null). */
export function sampleSubset<T>(items: readonly T[], max: number | null, seed: number): T[] {
  if (max === null || items.length <= max) return items.slice();
  const chosen = new Rng(seed).shuffle(items.map((_, i) => i)).slice(0, max).sort((a, b) => a - b);
  return chosen.map((i) => items[i]!);
}

/** A relative path that does not exist from the working directory is looked up inside the package (shipped data). */
function resolvePath(path: string): string {
  if (isAbsolute(path) || existsSync(path)) return path;
  const shipped = packagePath(path);
  return existsSync(shipped) ? shipped : path;
}

/** `auto` → the tokenizer's own chat template when it has one, else llama2. */
function pickTemplate(choice: TemplateName | 'auto', tokenizer: Tokenizer): TemplateName {
  if (choice !== 'auto') return choice;
  return tokenizer.chatTemplate !== undefined ? 'tokenizer' : 'llama2';
}

/** Checkpoints (trainable weights + 2 Adam moments each) and the final model, float32, with room to spare. */
function estimateOutputBytes(model: LlamaModel, trainable: Map<string, tf.Variable>, keepLast: number | null): number {
  let trainableSize = 0;
  for (const v of trainable.values()) trainableSize += v.size;
  const checkpoints = (keepLast ?? 3) + 1;
  return Math.ceil(4 * (checkpoints * 3 * trainableSize + model.numParameters()) * 1.2);
}

/** `eval.json`: fractions, as the report's `rewardEvalSchema` reads them. */
export function evalSummary(e: PairEvaluation): { accuracy: number; accuracy_by_strength: Record<string, number>; pairs_by_strength: Record<string, number>; pairs: number } {
  const levels = Object.entries(e.byStrength);
  return {
    accuracy: e.accuracy,
    accuracy_by_strength: Object.fromEntries(levels.map(([k, v]) => [k, v.accuracy])),
    pairs_by_strength: Object.fromEntries(levels.map(([k, v]) => [k, v.pairs])),
    pairs: e.pairs,
  };
}

function formatByStrength(e: PairEvaluation): string {
  return Object.entries(e.byStrength)
    .map(([level, v]) => `${level} ${(100 * v.accuracy).toFixed(1)}% of ${v.pairs}`)
    .join(', ');
}
