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
import { join, resolve } from 'node:path';
import { writeFileAtomic, type ResolvedConfig } from '../config/index.js';
import { DataCursor, type CursorState } from '../data/index.js';
import { initEngine } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { unloadLora } from '../lora/index.js';
import { loadHfConfig, resolveModelPath, type LlamaModel } from '../model/index.js';
import { loadTokenizer, pickTemplate } from '../tokenizer/index.js';
import { checkTokenizerFits } from '../tokenizer/files.js';
import type { ProgressStream } from '../tracking/progress.js';
import { GradientAccumulator, clipGradNormInPlace, disposeGrads, globalNorm, learningRateAt, type AdamW } from '../training/index.js';
import { stepsOfRun } from '../training/schedule.js';
import { float32WeightBytes } from '../training/memory.js';
import { checkTrainingMemory } from '../training/memory-check.js';
import { loopCadence, trainLoop } from '../training/loop.js';
import { makeTrainable, writeFineTuned } from '../training/fine-tune.js';
import { resolveDataPath } from '../paths.js';
import { closeStatusFor, openRecipeRun, runDiskBytes, resumeStage, saveStageCheckpoint, stageLog, writeFinalFolder, type StageHooks, type StageRun } from '../training/run.js';
import { lossTypes, lossWeights, type DpoConfig } from './config.js';
import { collateDpo, pairReplyTokens } from './data.js';
import { dpoEvaluator, evalSummary } from './evaluate.js';
import { EVAL_FILE, judgeEvalJson, type PromptJudge } from './judge.js';
import { loadDpoData } from './load.js';
import { pairStats, type DpoLossSettings, type PairRecord } from './loss.js';
import { pairsLossGrads } from './step.js';
import { adapterBase, checkModelFolder, loadMergedModel } from './policy.js';
import { dpoReference } from './reference.js';

export { EVAL_FILE, type PromptJudge } from './judge.js';

export interface DpoRunOptions extends StageHooks {
  /** Where the progress bar / lines go (default stdout). */
  progressStream?: ProgressStream;
  /** Held-out prompts are answered and scored with it when eval.judge is on. */
  judge?: PromptJudge;
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
  const log = stageLog(opts);
  const lora = cfg.lora.enabled;
  const settings: DpoLossSettings = { beta: cfg.dpo.beta, labelSmoothing: cfg.dpo.label_smoothing, lossTypes: lossTypes(cfg.dpo), lossWeights: lossWeights(cfg.dpo) };
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
  const checkpointing = checkTrainingMemory('dpo', engine.backend, {
    config: modelConfig, batchSize: cfg.train.batch_size, sequencesPerRow: 2, maxLengthKey: 'data.max_length', maxLength: cfg.data.max_length,
    lora: lora ? cfg.lora : null, gradientCheckpointing: cfg.train.gradient_checkpointing, lossChunkRows: null,
    ...(frozenCopy ? { extraHeap: { bytes: float32WeightBytes(modelConfig), label: 'the frozen reference copy' }, extraKnobs: [{ key: 'dpo.precompute_ref_log_probs', value: false, suggest: true }] } : {}),
  }, log);
  const tokenizerDir = resolve(resolveModelPath(resolveDataPath(cfg.tokenizer.path ?? cfg.model.path)));
  const tokenizer = await loadTokenizer(tokenizerDir);
  const template = pickTemplate(cfg.tokenizer.template, tokenizer);
  const data = await loadDpoData(cfg, tokenizer, template, { judged: opts.judge !== undefined && cfg.eval.judge, log });

  const policy = loadMergedModel(modelDir, adapterDir);
  policy.gradientCheckpointing = checkpointing;
  policy.checkpointRng = rng;
  let frozen: LlamaModel | null = null;
  let run: StageRun | null = null;
  let optimizer: AdamW | null = null;
  const accumulator = new GradientAccumulator();
  try {
    checkTokenizerFits(tokenizer, tokenizerDir, policy, modelDir);
    // A full-model checkpoint is a loadable HF folder (config.json + tokenizer files), as SFT's is.
    const { params: trainable, weights, optimizer: adamw } = makeTrainable(policy, cfg, rng, { modelDir: adapterBase(cfg, modelDir), tokenizerDir });
    optimizer = adamw;
    if (frozenCopy) frozen = loadMergedModel(modelDir, adapterDir);
    const totalSteps = stepsOfRun(cfg.train, Math.ceil(data.train.length / cfg.train.batch_size), cfg.optim.grad_accum);
    const trainableCount = [...trainable.values()].reduce((n, v) => n + v.size, 0);
    const minFreeBytes = runDiskBytes({ trainable: trainableCount, savedWeights: 3 * policy.numParameters() /* final/, base/, merged/ */, keepLast: cfg.checkpoint.keep_last });
    run = await openRecipeRun('dpo', resolved, { minFreeBytes, hooks: opts, log });

    // Precomputed before a checkpoint is restored: the reference is the policy before any update.
    const referenceOf = dpoReference({
      policy,
      frozen,
      lora,
      precompute: precompute ? { pairSets: [data.train, data.eval], batchSize: cfg.dpo.eval_batch_size, padId: tokenizer.padId, log } : null,
    });
    const restored = resumeStage(run, { weights, optimizer, rng }, { label: 'dpo', log, check: (r, from) => {
      if (r.trainerState.data_units !== data.train.length) throw new UserError(`${from}: written for ${String(r.trainerState.data_units)} training pairs, this run has ${data.train.length} (data or max_length changed); use train.resume=never to start over`);
    } });
    const startStep = restored?.step ?? 0;
    const cursorState = restored?.dataCursor as CursorState | undefined;
    const cursor = new DataCursor({ size: data.train.length, batchSize: cfg.train.batch_size, seed: cfg.train.seed ?? cfg.engine.seed, shuffle: true, ...(cursorState ? { state: cursorState } : {}) });
    const epoch = (): number => cursor.state.epoch + cursor.state.index / cursor.size;
    const { evaluate, judged } = dpoEvaluator({
      policy, reference: referenceOf, pairs: data.eval, settings, batchSize: cfg.dpo.eval_batch_size,
      tokenizer, template, prompts: data.prompts, judge: opts.judge, generation: cfg.eval,
    });
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
      ...loopCadence(cfg),
      step: (done) => {
        const lr = learningRateAt(cfg.schedule.type, cfg.optim.lr, done, { warmupSteps: cfg.schedule.warmup_steps, totalSteps });
        const microBatches = Array.from({ length: cfg.optim.grad_accum }, () => cursor.next().indices.map((i) => data.train[i]!));
        const stepCounts = {
          pairs: microBatches.reduce((n, mb) => n + mb.length, 0),
          chosenTokens: microBatches.reduce((n, mb) => n + mb.reduce((m, p) => m + pairReplyTokens(p).chosen, 0), 0),
        };
        let tokens = 0;
        let loss = 0;
        const records: PairRecord[] = [];
        for (const mb of microBatches) {
          const batch = collateDpo(mb, { padId: tokenizer.padId });
          tokens += batch.mask.reduce((n, row) => n + row.reduce((s, m) => s + m, 0), 0);
          const ref = referenceOf(mb, batch); // [2B]
          const part = pairsLossGrads({ policy, trainable, pairs: mb, batch, ref, settings, step: stepCounts, strengthWeights: cfg.dpo.strength_weights !== null });
          accumulator.add(part.grads);
          disposeGrads(part.grads);
          loss += part.loss;
          records.push(...part.records);
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
      checkpoint: (at) => saveStageCheckpoint(run!.dir, {
        weights, optimizer: optimizer!, step: at, epoch: epoch(), maxSteps: totalSteps, rng,
        dataCursor: cursor.state, extra: { data_units: data.train.length }, keepLast: cfg.checkpoint.keep_last,
      }),
      progress: {
        keys: { loss: 'train/loss', 'rewards/accuracies': 'rewards/accuracies', 'rewards/margins': 'rewards/margins', 'eval/rewards/accuracies': 'eval/rewards/accuracies', 'eval/judge_score': 'eval/judge_score' },
        ...(opts.progressStream ? { stream: opts.progressStream } : {}),
      },
      ...(opts.onStep ? { onStep: opts.onStep } : {}),
      log,
    });
    const lastEval = loop.lastEval;

    // ── save ─────────────────────────────────────────────────────────────────────────────────
    if (lastEval) log(`dpo eval: ${evalSummary(lastEval)}`);
    if (judged.last) writeFileAtomic(join(run.dir, EVAL_FILE), JSON.stringify(judgeEvalJson(judged.last), null, 2) + '\n');
    const finalDir = await writeFinalFolder(run, (tmp) =>
      writeFineTuned(policy, tmp, { lora, saveMerged: cfg.save_merged, modelDir, tokenizerDir, adapterBase: adapterBase(cfg, modelDir), writeBase: adapterDir !== null }));
    log(`dpo: done after ${loop.step} steps; ${lora ? 'adapter' : 'model'} in ${finalDir}`);
    await run.close('FINISHED');
    return { dir: run.dir, finalDir, steps: loop.step, eval: lastEval };
  } catch (e) {
    await run?.close(closeStatusFor(e));
    throw e;
  } finally {
    // ── cleanup ────────────────────────────────────────────────────────────────────────────────
    accumulator.reset();
    optimizer?.dispose();
    unloadLora(policy, { merge: false });
    policy.dispose();
    frozen?.dispose();
  }
}
