/**
 * The DPO recipe (Rafailov et al. 2023, as TRL 1.x's DPOTrainer computes it), top to bottom:
 *
 *   setup:  engine → tokenizer → preference pairs (reply tokens labelled) → policy (model.adapter
 *           merged in) with LoRA adapters, or every weight trainable → reference: the same backbone
 *           with adapters off (LoRA) or a frozen copy (full) → AdamW → run folder (harness) →
 *           optionally every pair's reference log-probs, once
 *   train:  each step: grad_accum micro-batches of pairs, chosen and rejected through the policy as
 *           one [2B, T] batch; sequence log-probs over the reply tokens; the loss variants of
 *           dpo.loss_type weighted by dpo.loss_weights (loss.ts); clip, NaN guard, AdamW; TRL's
 *           metrics (rewards/…, logps/…, logits/…); held-out pairs and, with a judge, held-out prompts
 *           on schedule; checkpoints on schedule; a signal stops after the step with a checkpoint
 *   save:   final evaluation; final/ = the PEFT adapter (+ base/ when model.adapter was merged in,
 *           + merged/ with save_merged) or, for full fine-tuning, the HF model folder
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { writeFileAtomic, type ResolvedConfig } from '../config/index.js';
import { DataCursor, loadDataset, type CursorState, type Message, type NumberedPreference, readPreferences } from '../data/index.js';
import { initEngine } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { generate } from '../generation/index.js';
import { ADAPTER_CONFIG_FILE, injectLora, loadAdapter, mergeLora, saveAdapter, trainableVariables, unloadLora, unmergeLora, withAdaptersDisabled } from '../lora/index.js';
import { loadHfConfig, loadHfModel, resolveModelPath, saveHfModel, type LlamaModel } from '../model/index.js';

import { copyTokenizerFiles, loadTokenizer, pickTemplate, renderChatPrompt, turnEndIds, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import type { RunContext } from '../tracking/index.js';
import type { ProgressStream } from '../tracking/progress.js';
import { AdamW, GradientAccumulator, clipGradNormInPlace, disposeGrads, globalNorm, learningRateAt, microBatchGrads } from '../training/index.js';
import { estimatePeakMemory, loraShortModules } from '../training/memory.js';
import { checkMemoryFits, memoryLimits, trainingKnobs } from '../training/memory-check.js';
import { trainLoop } from '../training/loop.js';
import { withoutStrayTensors } from '../training/fine-tune.js';
import { resolveDataPath } from '../paths.js';
import {
  FINAL_DIR,
  adapterWeights,
  closeStatusFor,
  openStageRun,
  restoreStageCheckpoint,
  saveStageCheckpoint,
  variableWeights,
  writeFolderAtomic,
  type StageRun,
  type WeightsIO,
} from '../training/run.js';
import type { StopSignal } from '../training/stop-signal.js';
import { lossTypes, lossWeights, type DpoConfig } from './config.js';
import { collateDpo, pairReplyTokens, tokenizeDpoPairs, type DpoBatch, type DpoPair } from './data.js';
import { dpoLossOfRecords, dpoLossSum, pairStats, sequenceLogps, type DpoLossSettings, type PairRecord } from './loss.js';

/** Inside final/: the model the adapter was trained on, when model.adapter was merged into model.path. */
export const ADAPTER_BASE_DIR = 'base';
/** The judge's score of the held-out answers (the report's JudgeEval format). */
export const EVAL_FILE = 'eval.json';

/**
 * Scores replies to prompts (mean in [0, 1], per family, per prompt): the world's gold judge,
 * passed in by the pipeline or the CLI — this stage never imports the world.
 */
export type PromptJudge = (
  prompts: readonly (readonly Message[])[],
  replies: readonly string[],
) => { mean: number; byFamily: Record<string, { mean: number }>; scores: number[] };

export interface DpoRunOptions {
  log?: (msg: string) => void;
  /** Where the progress bar / lines go (default stdout). */
  progressStream?: ProgressStream;
  /** Held-out prompts are answered and scored with it when eval.judge is on. */
  judge?: PromptJudge;
  /** Tests: deterministic tracking context and a StopSignal on a fake process. */
  context?: Partial<RunContext>;
  stopSignal?: StopSignal;
  /** The pipeline's MLflow run: this stage's run is nested under it. */
  parentRunId?: string;
  /** After every optimizer step, with that step's metrics. */
  onStep?: (step: number, metrics: Record<string, number>) => void;
}

export interface DpoRunResult {
  dir: string;
  finalDir: string;
  steps: number;
  /** The last held-out evaluation (eval/… metrics), null without eval data. */
  eval: Record<string, number> | null;
}

export async function runDpo(resolved: ResolvedConfig<DpoConfig>, opts: DpoRunOptions = {}): Promise<DpoRunResult> {
  const cfg = resolved.config;
  const log = opts.log ?? ((msg: string) => process.stderr.write(msg + '\n'));
  const lora = cfg.lora.enabled;
  const settings: DpoLossSettings = {
    beta: cfg.dpo.beta,
    labelSmoothing: cfg.dpo.label_smoothing,
    lossTypes: lossTypes(cfg.dpo),
    lossWeights: lossWeights(cfg.dpo),
  };
  const precompute = cfg.dpo.precompute_ref_log_probs;

  // ── setup ──────────────────────────────────────────────────────────────────────────────────
  const engine = await initEngine({ backend: cfg.engine.backend, threads: cfg.engine.threads, seed: cfg.engine.seed });
  const rng = new Rng(cfg.engine.seed); // LoRA init, then LoRA dropout: saved in every checkpoint
  const modelDir = resolve(resolveModelPath(resolveDataPath(cfg.model.path)));
  const adapterDir = cfg.model.adapter === null ? null : resolve(resolveDataPath(cfg.model.adapter));
  checkModelFolder(modelDir, cfg.model.path);
  // Fail before, not during: a micro-batch is batch_size pairs, chosen and rejected side by side;
  // full fine-tuning without precomputed reference log-probs holds a frozen copy beside the policy.
  const modelConfig = loadHfConfig(modelDir);
  const frozenCopy = !lora && !precompute;
  const weightsBytes = estimatePeakMemory({ config: modelConfig, batchSize: 1, seqLen: 1, trained: { kind: 'none' }, lossChunkRows: 'none' })
    .items.find((i) => i.what.startsWith('weights'))!.bytes;
  checkMemoryFits('dpo', estimatePeakMemory({
    config: modelConfig,
    batchSize: 2 * cfg.train.batch_size,
    seqLen: cfg.data.max_length,
    trained: lora ? { kind: 'lora', rank: cfg.lora.r, modules: loraShortModules(modelConfig, cfg.lora.target_modules), dropout: cfg.lora.dropout } : { kind: 'full' },
    gradientCheckpointing: cfg.train.gradient_checkpointing,
    lossChunkRows: null,
    ...(frozenCopy ? { extraHeapBytes: weightsBytes, extraLabel: 'the frozen reference copy' } : {}),
  }), memoryLimits(engine.backend), [
    ...trainingKnobs({ batchSize: cfg.train.batch_size, maxLengthKey: 'data.max_length', maxLength: cfg.data.max_length, gradientCheckpointing: cfg.train.gradient_checkpointing }),
    ...(frozenCopy ? [{ key: 'dpo.precompute_ref_log_probs', value: false, suggest: true }] : []),
  ], log);
  const tokenizerDir = resolve(resolveModelPath(resolveDataPath(cfg.tokenizer.path ?? cfg.model.path)));
  const tokenizer = await loadTokenizer(tokenizerDir);
  const template = pickTemplate(cfg.tokenizer.template, tokenizer);
  const data = await loadDpoData(cfg, tokenizer, template, log);
  const evalPrompts = opts.judge && cfg.eval.judge && cfg.data.eval_prompts !== null ? await readEvalPrompts(cfg.data.eval_prompts, cfg.data.eval_limit, log) : [];
  log(`dpo: ${data.train.length} training pairs, ${data.eval.length} eval pairs, ${evalPrompts.length} judged prompts; ` +
    `loss ${settings.lossTypes.map((t, i) => `${settings.lossWeights[i]}·${t}`).join(' + ')}, β ${settings.beta}`);

  const policy = loadMergedModel(modelDir, adapterDir);
  policy.gradientCheckpointing = cfg.train.gradient_checkpointing;
  policy.checkpointRng = rng;
  let reference: LlamaModel | null = null;
  let run: StageRun | null = null;
  let optimizer: AdamW | null = null;
  const accumulator = new GradientAccumulator();
  try {
    if (tokenizer.vocabSize > policy.config.vocab_size) {
      throw new UserError(`tokenizer ${tokenizerDir} has ${tokenizer.vocabSize} tokens but model ${modelDir} only ${policy.config.vocab_size} embeddings`);
    }
    let trainable: Map<string, tf.Variable>;
    let weights: WeightsIO;
    if (lora) {
      withoutStrayTensors(() => injectLora(policy, {
        targetModules: cfg.lora.target_modules, r: cfg.lora.r, alpha: cfg.lora.alpha, dropout: cfg.lora.dropout, rng, dropoutRng: rng,
      }));
      trainable = trainableVariables(policy);
      weights = adapterWeights(policy, { baseModelNameOrPath: adapterBase(cfg, modelDir) });
    } else {
      trainable = policy.params;
      weights = variableWeights(policy.params);
      if (frozenCopy) reference = loadMergedModel(modelDir, adapterDir);
    }
    optimizer = withoutStrayTensors(() => new AdamW(trainable, {
      beta1: cfg.optim.betas[0], beta2: cfg.optim.betas[1], eps: cfg.optim.eps, weightDecay: cfg.optim.weight_decay,
    }));

    const batchSize = cfg.train.batch_size;
    const accum = cfg.optim.grad_accum;
    const trainSeed = cfg.train.seed ?? cfg.engine.seed;
    const batchesPerEpoch = Math.ceil(data.train.length / batchSize);
    const totalSteps = cfg.train.epochs !== null ? Math.max(1, Math.ceil((cfg.train.epochs * batchesPerEpoch) / accum)) : cfg.train.steps;
    const trainableCount = [...trainable.values()].reduce((n, v) => n + v.size, 0);

    run = await openStageRun({
      stage: 'dpo',
      outputDir: cfg.output_dir,
      resolved,
      tracking: cfg.tracking,
      resume: cfg.train.resume,
      minFreeBytes: Math.ceil(4 * (((cfg.checkpoint.keep_last ?? 3) + 1) * 3 * trainableCount + 3 * policy.numParameters()) * 1.2),
      log,
      ...(opts.context ? { context: opts.context } : {}),
      ...(opts.stopSignal ? { stopSignal: opts.stopSignal } : {}),
      ...(opts.parentRunId !== undefined ? { parentRunId: opts.parentRunId } : {}),
    });

    // The reference: adapters off (LoRA), the frozen copy, or — full fine-tuning with precomputed
    // log-probs — the policy itself before any update (so precompute before restoring a checkpoint).
    const referenceModel = (): LlamaModel => reference ?? policy;
    const referenceLogps = (batch: DpoBatch): Float32Array =>
      lora ? withAdaptersDisabled(policy, () => logpsOf(policy, batch, false).logps) : logpsOf(referenceModel(), batch, false).logps;
    if (precompute) {
      const started = performance.now();
      for (const pairs of [data.train, data.eval]) {
        for (let i = 0; i < pairs.length; i += cfg.dpo.eval_batch_size) {
          const chunk = pairs.slice(i, i + cfg.dpo.eval_batch_size);
          const ref = referenceLogps(collateDpo(chunk, { padId: tokenizer.padId }));
          chunk.forEach((p, k) => {
            p.refChosen = ref[k]!;
            p.refRejected = ref[chunk.length + k]!;
          });
        }
      }
      log(`dpo: reference log-probs of ${data.train.length + data.eval.length} pairs precomputed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    const referenceOf = (pairs: readonly DpoPair[], batch: DpoBatch): number[] => {
      if (precompute) return [...pairs.map((p) => p.refChosen!), ...pairs.map((p) => p.refRejected!)];
      return Array.from(referenceLogps(batch));
    };

    let startStep = 0;
    let cursorState: CursorState | undefined;
    if (run.resumeFrom) {
      const restored = restoreStageCheckpoint(run.resumeFrom, { weights, optimizer, rng });
      if (restored.trainerState.data_units !== data.train.length) {
        throw new UserError(
          `${run.resumeFrom}: written for ${String(restored.trainerState.data_units)} training pairs, this run has ${data.train.length} ` +
            '(data or max_length changed); use train.resume=never to start over',
        );
      }
      startStep = restored.step;
      cursorState = restored.dataCursor as CursorState | undefined;
      log(`dpo: resumed from ${run.resumeFrom} at step ${startStep}`);
    }
    const cursor = new DataCursor({ size: data.train.length, batchSize, seed: trainSeed, shuffle: true, ...(cursorState ? { state: cursorState } : {}) });
    // Held-out pairs (TRL's metrics with an eval/ prefix, and the loss) and, with a judge, prompts.
    const judged: { last: JudgedAnswers | null } = { last: null };
    const evaluate = (): Record<string, number> | null => {
      const out: Record<string, number> = {};
      if (data.eval.length > 0) {
        const records: PairRecord[] = [];
        for (let i = 0; i < data.eval.length; i += cfg.dpo.eval_batch_size) {
          const chunk = data.eval.slice(i, i + cfg.dpo.eval_batch_size);
          const batch = collateDpo(chunk, { padId: tokenizer.padId });
          const ref = referenceOf(chunk, batch);
          const policyOut = logpsOf(policy, batch, false);
          records.push(...pairRecords(chunk, policyOut, ref));
        }
        out['eval/loss'] = dpoLossOfRecords(records, settings, data.eval.map((p) => p.weight));
        for (const [k, v] of Object.entries(pairStats(records, settings.beta))) out[`eval/${k}`] = v;
      }
      if (evalPrompts.length > 0) {
        judged.last = answerAndJudge(policy, tokenizer, template, evalPrompts, opts.judge!, cfg.eval);
        out['eval/judge_score'] = judged.last.score.mean;
      }
      return Object.keys(out).length > 0 ? out : null;
    };
    const epoch = (): number => cursor.state.epoch + cursor.state.index / cursor.size;
    if (startStep === 0 && cfg.train.eval_every > 0) {
      // The starting point: the reference's own score (rewards are 0 here by construction).
      const start = evaluate();
      if (start) await run.tracker.logMetrics(start, 0);
    }

    // ── train (the harness's loop: NaN guard, eval/checkpoint cadence, stop, progress) ──────
    const loop = await trainLoop({
      label: 'dpo',
      run,
      startStep,
      totalSteps,
      maxNonfinite: cfg.train.max_nonfinite,
      evalEvery: cfg.train.eval_every,
      checkpointEvery: cfg.checkpoint.every_steps,
      step: (done) => {
          const lr = learningRateAt(cfg.schedule.type, cfg.optim.lr, done, { warmupSteps: cfg.schedule.warmup_steps, totalSteps });
          const microBatches = Array.from({ length: accum }, () => cursor.next().indices.map((i) => data.train[i]!));
          const stepPairs = microBatches.reduce((n, mb) => n + mb.length, 0);
          const stepChosenTokens = microBatches.reduce((n, mb) => n + mb.reduce((m, p) => m + pairReplyTokens(p).chosen, 0), 0);
          let tokens = 0;

          let loss = 0;
          const records: PairRecord[] = [];
          for (const mb of microBatches) {
            const batch = collateDpo(mb, { padId: tokenizer.padId });
            tokens += batch.mask.reduce((n, row) => n + row.reduce((s, m) => s + m, 0), 0);
            const ref = referenceOf(mb, batch); // [2B] constants: no gradient through the reference
            const part = microBatchGrads(
              trainable,
              () => {
                const out = forwardLogps(policy, batch, true); // [2B] each
                const b = mb.length;
                records.push(...pairRecords(mb, { logps: out.logps.dataSync() as Float32Array, logitSums: out.logitSums.dataSync() as Float32Array }, ref));
                const [chosen, rejected] = tf.split(out.logps, [b, b]) as [tf.Tensor1D, tf.Tensor1D];
                const lengths = mb.map(pairReplyTokens);
                return dpoLossSum(
                  {
                    chosen,
                    rejected,
                    refChosen: tf.tensor1d(ref.slice(0, b)),
                    refRejected: tf.tensor1d(ref.slice(b)),
                    chosenLengths: lengths.map((l) => l.chosen),
                    rejectedLengths: lengths.map((l) => l.rejected),
                  },
                  settings,
                  { pairs: stepPairs, chosenTokens: stepChosenTokens },
                  cfg.dpo.strength_weights === null ? undefined : mb.map((p) => p.weight),
                );
              },
              1, // dpoLossSum already divides by the step's pair / token counts
            );
            accumulator.add(part.grads);
            disposeGrads(part.grads);
            loss += part.loss;
          }
        const gradNorm = cfg.optim.grad_clip !== null ? clipGradNormInPlace(accumulator.grads, cfg.optim.grad_clip) : globalNorm(accumulator.grads.values());
        return {
          loss,
          gradNorm,
          tokens,
          apply: () => optimizer!.step(accumulator.grads, lr),
          release: () => accumulator.reset(),
          metrics: { ...pairStats(records, settings.beta), 'train/lr': lr, 'train/epoch': epoch() },
        };
      },
      evaluate,
      checkpoint: (at) =>
        saveStageCheckpoint(run!.dir, {
          weights,
          optimizer: optimizer!,
          step: at,
          epoch: epoch(),
          maxSteps: totalSteps,
          rng,
          dataCursor: cursor.state,
          extra: { data_units: data.train.length },
          keepLast: cfg.checkpoint.keep_last,
        }),
      progress: {
        keys: { loss: 'train/loss', 'rewards/accuracies': 'rewards/accuracies', 'rewards/margins': 'rewards/margins', 'eval/rewards/accuracies': 'eval/rewards/accuracies', 'eval/judge_score': 'eval/judge_score' },
        ...(opts.progressStream ? { stream: opts.progressStream } : {}),
      },
      ...(opts.onStep ? { onStep: opts.onStep } : {}),
      log,
    });
    const step = loop.step;
    const lastEval = loop.lastEval;

    // ── save ─────────────────────────────────────────────────────────────────────────────────
    if (lastEval) {
      log(`dpo eval: ${Object.entries(lastEval).filter(([k]) => ['eval/loss', 'eval/rewards/accuracies', 'eval/rewards/margins', 'eval/judge_score'].includes(k)).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
    }
    if (judged.last) writeFileAtomic(join(run.dir, EVAL_FILE), JSON.stringify(judgeEvalJson(judged.last), null, 2) + '\n');

    const finalDir = join(run.dir, FINAL_DIR);
    writeFolderAtomic(finalDir, (tmp) => {
      if (!lora) {
        saveHfModel(policy, tmp);
        copyTokenizerFiles(tokenizerDir, tmp);
        return;
      }
      saveAdapter(policy, tmp, { baseModelNameOrPath: adapterBase(cfg, modelDir) });
      copyTokenizerFiles(tokenizerDir, tmp);
      if (adapterDir !== null) {
        // The adapter was trained on model.path with model.adapter merged in: that model is written
        // as final/base and recorded as the adapter's base, so PEFT-style loading reproduces the policy.
        withAdaptersDisabled(policy, () => saveHfModel(policy, join(tmp, ADAPTER_BASE_DIR)));
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
    log(`dpo: done after ${step} steps; ${lora ? 'adapter' : 'model'} in ${finalDir}`);
    await run.close('FINISHED');
    return { dir: run.dir, finalDir, steps: step, eval: lastEval };
  } catch (e) {
    await run?.close(closeStatusFor(e));
    throw e;
  } finally {
    // ── cleanup ────────────────────────────────────────────────────────────────────────────────
    accumulator.reset();
    optimizer?.dispose();
    unloadLora(policy, { merge: false });
    policy.dispose();
    reference?.dispose();
  }
}

// ── helpers ────────────────────────────────────────────────────────────────────────────────────

/** Sequence log-probs (summed over reply tokens) and logit sums of a collated batch; differentiable, no tidy. */
function forwardLogps(model: LlamaModel, batch: DpoBatch, training: boolean): { logps: tf.Tensor1D; logitSums: tf.Tensor1D } {
  const inputIds = tf.tensor2d(batch.ids, undefined, 'int32'); // [2B, T]
  const attentionMask = tf.tensor2d(batch.mask, undefined, 'int32'); // [2B, T]
  const { logits } = model.forward({ inputIds, attentionMask, training }); // [2B, T, V]
  return sequenceLogps(logits as tf.Tensor3D, batch.labels);
}

/** The same without a gradient, read back: [2B] each. */
function logpsOf(model: LlamaModel, batch: DpoBatch, training: boolean): { logps: Float32Array; logitSums: Float32Array } {
  const [logps, logitSums] = tf.tidy(() => {
    const out = forwardLogps(model, batch, training);
    return [out.logps, out.logitSums];
  });
  const result = { logps: logps!.dataSync() as Float32Array, logitSums: logitSums!.dataSync() as Float32Array };
  tf.dispose([logps!, logitSums!]);
  return result;
}

/** Per-pair numbers from a [2B] policy pass (chosen rows first) and the [2B] reference log-probs. */
function pairRecords(pairs: readonly DpoPair[], policy: { logps: Float32Array; logitSums: Float32Array }, ref: readonly number[]): PairRecord[] {
  const b = pairs.length;
  return pairs.map((p, i) => {
    const tokens = pairReplyTokens(p);
    return {
      chosen: policy.logps[i]!,
      rejected: policy.logps[b + i]!,
      refChosen: ref[i]!,
      refRejected: ref[b + i]!,
      chosenLogitSum: policy.logitSums[i]!,
      rejectedLogitSum: policy.logitSums[b + i]!,
      chosenTokens: tokens.chosen,
      rejectedTokens: tokens.rejected,
    };
  });
}

interface JudgedAnswers {
  prompts: Message[][];
  replies: string[];
  score: ReturnType<PromptJudge>;
}

/** Greedy answers to the held-out prompts (until a turn-end token), scored by the judge. */
function answerAndJudge(
  model: LlamaModel,
  tokenizer: Tokenizer,
  template: TemplateName,
  prompts: Message[][],
  judge: PromptJudge,
  settings: { max_new_tokens: number; batch_size: number },
): JudgedAnswers {
  const stopTokenIds = turnEndIds(tokenizer, template);
  const replies: string[] = [];
  for (let start = 0; start < prompts.length; start += settings.batch_size) {
    const batch = prompts.slice(start, start + settings.batch_size).map((p) => renderChatPrompt(tokenizer, p, template));
    const out = generate(model, batch, { maxNewTokens: settings.max_new_tokens, temperature: 0, stopTokenIds, padTokenId: tokenizer.padId });
    out.tokens.forEach((row, r) => {
      const kept = row.filter((id, i) => out.mask[r]![i] === 1 && !stopTokenIds.includes(id));
      replies.push(tokenizer.decode(kept, { skipSpecialTokens: true }).trim());
    });
  }
  return { prompts, replies, score: judge(prompts, replies) };
}

/** eval.json as the run report reads a generating stage's (judge_score, by_family, count, samples). */
function judgeEvalJson(j: JudgedAnswers): Record<string, unknown> {
  const lastUser = (m: Message[]) => [...m].reverse().find((x) => x.role === 'user')?.content ?? '';
  return {
    judge_score: j.score.mean,
    by_family: Object.fromEntries(Object.entries(j.score.byFamily).map(([f, s]) => [f, s.mean])),
    count: j.replies.length,
    samples: j.prompts.slice(0, 3).map((p, i) => ({ prompt: lastUser(p), completion: j.replies[i]!, score: j.score.scores[i]! })),
  };
}

/** Train and eval pairs, tokenized; eval from its own file or a seeded split of train. */
async function loadDpoData(
  cfg: DpoConfig,
  tokenizer: Tokenizer,
  template: TemplateName,
  log: (msg: string) => void,
): Promise<{ train: DpoPair[]; eval: DpoPair[] }> {
  type Row = { file: string; row: NumberedPreference };
  const read = async (file: string): Promise<Row[]> => {
    const path = resolveDataPath(file);
    return (await readPreferences(path, { onBadRow: cfg.data.on_bad_row, warn: log })).map((row) => ({ file: path, row }));
  };
  const trainFiles = typeof cfg.data.train === 'string' ? [cfg.data.train] : cfg.data.train;
  let trainRows = (await Promise.all(trainFiles.map(read))).flat();
  let evalRows: Row[] = [];
  if (cfg.data.eval !== null) evalRows = await read(cfg.data.eval);
  else if (cfg.data.eval_fraction > 0) {
    const order = new Rng(cfg.engine.seed).shuffle(trainRows.map((_, i) => i));
    const isEval = new Set(order.slice(0, Math.round(trainRows.length * cfg.data.eval_fraction)));
    evalRows = trainRows.filter((_, i) => isEval.has(i));
    trainRows = trainRows.filter((_, i) => !isEval.has(i));
  }
  trainRows = sampleSubset(trainRows, cfg.data.max_train_pairs, cfg.train.seed ?? cfg.engine.seed);
  if (cfg.data.max_eval_pairs !== null) evalRows = evalRows.slice(0, cfg.data.max_eval_pairs);
  // Rows keep the file they came from, so a problem is reported in its own file.
  const tokenize = (rows: Row[], what: string): DpoPair[] =>
    [...new Set(rows.map((r) => r.file))].flatMap((file) => {
      const { pairs, dropped } = tokenizeDpoPairs(tokenizer, rows.filter((r) => r.file === file).map((r) => r.row), {
        file, template, maxLength: cfg.data.max_length, strengthWeights: cfg.dpo.strength_weights, onWarning: log,
      });
      if (dropped > 0) log(`dpo: dropped ${dropped} ${what} pairs of ${file} with a side longer than data.max_length=${cfg.data.max_length} tokens`);
      return pairs;
    });
  const train = tokenize(trainRows, 'training');
  if (train.length === 0) throw new UserError(`${trainFiles.join(', ')}: no training pair fits data.max_length=${cfg.data.max_length}`);
  return { train, eval: tokenize(evalRows, 'eval') };
}

/** Held-out prompts as message lists (a text prompt is one user message). */
async function readEvalPrompts(file: string, limit: number | null, log: (msg: string) => void): Promise<Message[][]> {
  const rows = await loadDataset(resolveDataPath(file), 'prompts', { warn: log });
  const prompts = rows.map((r): Message[] => ('messages' in r ? r.messages : typeof r.prompt === 'string' ? [{ role: 'user', content: r.prompt }] : r.prompt));
  return limit === null ? prompts : prompts.slice(0, limit);
}

/** At most `max` items, a seeded choice kept in file order (all of them when max is null). */
function sampleSubset<T>(items: readonly T[], max: number | null, seed: number): T[] {
  if (max === null || items.length <= max) return items.slice();
  const chosen = new Rng(seed).shuffle(items.map((_, i) => i)).slice(0, max).sort((a, b) => a - b);
  return chosen.map((i) => items[i]!);
}

/** The model folder, with `adapterDir` (a PEFT adapter) merged into its weights when given. */
function loadMergedModel(modelDir: string, adapterDir: string | null): LlamaModel {
  const model = loadHfModel(modelDir);
  try {
    if (adapterDir !== null) {
      loadAdapter(model, adapterDir);
      unloadLora(model, { merge: true });
    }
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

function checkModelFolder(dir: string, key: string): void {
  if (existsSync(join(dir, 'config.json'))) return;
  if (existsSync(join(dir, ADAPTER_CONFIG_FILE))) {
    throw new UserError(`model.path: ${key} is a LoRA adapter folder; set model.path to its base model and model.adapter to this folder`);
  }
  throw new UserError(`model.path: ${key} has no config.json (an HF model folder is needed; run the SFT stage first?)`);
}

/** The base an adapter records: model.path, or final/base when model.adapter was merged into it. */
function adapterBase(cfg: DpoConfig, modelDir: string): string {
  return cfg.model.adapter === null ? modelDir : join(resolve(cfg.output_dir), FINAL_DIR, ADAPTER_BASE_DIR);
}
