/**
 * The pretrain recipe: a freshly initialised Llama trained on a text corpus with the causal-LM loss
 * on every token. setup → train loop → save → cleanup.
 *
 *   <output_dir>/tokenizer/          trained (or copied) tokenizer
 *   <output_dir>/checkpoints/step_N/ model.safetensors + config.json + tokenizer + optimizer + trainer_state.json
 *   <output_dir>/final/              HF folder: config.json, model.safetensors, tokenizer.json,
 *                                    tokenizer_config.json (chat_template), generation_config.json
 */
import { join } from 'node:path';
import type { ResolvedConfig } from '../config/load.js';
import { DataCursor, type CursorState } from '../data/cursor.js';
import { initEngine, Rng } from '../engine/index.js';
import { saveHfModel } from '../model/io/hf.js';
import { initLlama, type LlamaModel } from '../model/llama.js';
import { checkTrainingMemory } from '../training/memory-check.js';
import type { ProgressStream } from '../tracking/progress.js';
import { accumulateGradients } from '../training/accumulation.js';
import type { AdamW } from '../training/adamw.js';
import { clipGradNormInPlace } from '../training/clip.js';
import { loopCadence, trainLoop } from '../training/loop.js';
import { fullModelWeights, makeAdamW } from '../training/fine-tune.js';
import { closeStatusFor, openRecipeRun, restoreStageCheckpoint, saveStageCheckpoint, stageLog, writeFolderAtomic, FINAL_DIR, type StageHooks } from '../training/run.js';
import { learningRateAt } from '../training/schedule.js';
import type { PretrainConfig } from './config.js';
import { corpusRows, lmBatch, readDocuments, resolveInputPath } from './corpus.js';
import { evaluateLmLoss, lmLossSum } from './lm-loss.js';
import { copyTokenizerFiles, prepareTokenizer } from './tokenizer.js';
import { estimateDiskBytes, modelConfig, plannedSteps } from './plan.js';

export { modelConfig, plannedSteps } from './plan.js';

export interface PretrainRunOptions extends StageHooks {
  /** Where the progress bar / lines go (default stdout); null = none. */
  progress?: ProgressStream | null;
}

export interface PretrainResult {
  runDir: string;
  finalDir: string;
  /** Optimizer steps of the whole run, and the step this invocation started from (0 or a resume point). */
  totalSteps: number;
  startStep: number;
  /** Training loss of each step this invocation ran. */
  losses: Array<{ step: number; loss: number }>;
  evalLosses: Array<{ step: number; loss: number }>;
  numParameters: number;
  /** Tokens (targets) in one pass over the training rows / the eval rows. */
  trainTokens: number;
  evalTokens: number;
  /** Mean training throughput of this invocation (targets per second); NaN when no step ran. */
  tokensPerSecond: number;
}

export async function runPretrain(resolved: ResolvedConfig<PretrainConfig>, opts: PretrainRunOptions = {}): Promise<PretrainResult> {
  const cfg = resolved.config;
  const log = stageLog(opts);
  const seqLen = cfg.data.seq_len;
  const batchSize = cfg.train.batch_size;
  const accum = cfg.optim.grad_accum;

  // ── setup ──────────────────────────────────────────────────────────────────────────────────
  const engine = await initEngine({ backend: cfg.engine.backend, threads: cfg.engine.threads, seed: cfg.engine.seed });
  const documents = await readDocuments(cfg.data.corpus, { separator: cfg.data.document_separator, textColumn: cfg.data.text_column });
  const run = await openRecipeRun('pretrain', resolved, { minFreeBytes: estimateDiskBytes(cfg), hooks: opts, log });
  let model: LlamaModel | undefined;
  let optimizer: AdamW | undefined;
  try {
    const tokenizerDir = join(run.dir, 'tokenizer');
    const tokenizer = await prepareTokenizer({
      outDir: tokenizerDir,
      given: cfg.tokenizer.path === null ? null : resolveInputPath(cfg.tokenizer.path),
      vocabSize: cfg.tokenizer.vocab_size,
      minPairCount: cfg.tokenizer.min_pair_count,
      corpusFiles: cfg.data.corpus.map(resolveInputPath),
      documents,
    });

    const dataSeed = cfg.train.seed ?? cfg.engine.seed;
    const { trainRows, evalRows, trainTokens, evalTokens } = corpusRows(documents, tokenizer, {
      seqLen, packing: cfg.data.packing, batchSize, seed: dataSeed, evalDocuments: cfg.data.eval_documents, evalMaxRows: cfg.data.eval_max_rows,
    });

    const llama = modelConfig(cfg, tokenizer);
    // Fail before, not during: every weight trains (AdamW), on micro-batches of seq_len tokens.
    const checkpointing = checkTrainingMemory('pretrain', engine.backend, {
      config: llama, batchSize, maxLengthKey: 'data.seq_len', maxLength: seqLen,
      lora: null, gradientCheckpointing: cfg.train.gradient_checkpointing, lossChunkRows: null,
    }, log);
    const rng = new Rng(cfg.engine.seed);
    model = initLlama(llama, rng);
    model.gradientCheckpointing = checkpointing;
    optimizer = makeAdamW(model.params, cfg.optim);
    const weights = fullModelWeights(model, tokenizerDir); // a checkpoint is a loadable HF model folder too

    const cursorOptions = { size: trainRows.length, batchSize, seed: dataSeed, shuffle: true, dropLast: true };
    let cursor = new DataCursor(cursorOptions);
    const totalSteps = plannedSteps(cfg, cursor.batchesPerEpoch);
    const schedule = { warmupSteps: cfg.schedule.warmup_steps, totalSteps };
    let step = 0;
    // trainer_state.json's log_history: every logged step of the run, resumed runs included.
    let history: Array<Record<string, number | string | null>> = [];
    if (run.resumeFrom) {
      const restored = restoreStageCheckpoint(run.resumeFrom, { weights, optimizer, rng });
      step = restored.step;
      history = restored.trainerState.log_history ?? [];
      cursor = new DataCursor({ ...cursorOptions, state: restored.dataCursor as CursorState });
      log(`resuming from ${run.resumeFrom} (step ${step} of ${totalSteps})`);
    }
    const startStep = step;
    log(
      `pretrain: ${(model.numParameters() / 1e6).toFixed(2)}M parameters, vocab ${llama.vocab_size}, ` +
        `${trainRows.length} rows × ${seqLen} tokens (${trainTokens} train / ${evalTokens} eval targets), ` +
        `${totalSteps} steps of ${batchSize * accum * seqLen} tokens`,
    );

    // ── train loop (the harness's policies: NaN guard, eval/checkpoint cadence, stop, progress) ──
    const evalLosses: PretrainResult['evalLosses'] = [];
    const epochOf = () => cursor.state.epoch + cursor.state.index / cursor.size;
    let trainSeconds = 0;
    let trainedTargets = 0;
    const loop = await trainLoop({
      label: 'pretrain',
      run,
      startStep,
      totalSteps,
      ...loopCadence(cfg),
      step: (done) => {
        const started = performance.now();
        const microBatches = Array.from({ length: accum }, () =>
          lmBatch(cursor.next().indices.map((i) => trainRows[i]!), seqLen, tokenizer.padId),
        );
        const targets = microBatches.reduce((n, mb) => n + mb.targets, 0);
        const lr = learningRateAt(cfg.schedule.type, cfg.optim.lr, done, schedule);
        const { loss, accumulator } = accumulateGradients(model!.params, microBatches, (mb) => lmLossSum(model!, mb), targets);
        const gradNorm = clipGradNormInPlace(accumulator.grads, cfg.optim.grad_clip ?? Infinity);
        trainSeconds += (performance.now() - started) / 1000;
        trainedTargets += targets;
        history.push({ step: done + 1, loss, lr });
        return {
          loss,
          gradNorm,
          tokens: targets,
          apply: () => optimizer!.step(accumulator.grads, lr),
          release: () => accumulator.reset(),
          metrics: { 'train/lr': lr, 'train/epoch': epochOf() },
        };
      },
      evaluate: (at) => {
        if (evalRows.length === 0) return null;
        const ev = evaluateLmLoss(model!, evalRows, { batchSize, seqLen, padId: tokenizer.padId });
        evalLosses.push({ step: at, loss: ev.loss });
        history.push({ step: at, eval_loss: ev.loss });
        return { 'eval/loss': ev.loss, 'eval/perplexity': Math.exp(ev.loss) };
      },
      checkpoint: (at) => saveStageCheckpoint(run.dir, {
        weights, optimizer: optimizer!, step: at, epoch: epochOf(), maxSteps: totalSteps, rng,
        dataCursor: cursor.state, logHistory: history, keepLast: cfg.checkpoint.keep_last,
      }),
      progress:
        opts.progress === null
          ? null
          : { keys: { loss: 'train/loss', eval_loss: 'eval/loss', lr: 'train/lr', tokens_per_sec: 'train/tokens_per_sec' }, ...(opts.progress ? { stream: opts.progress } : {}) },
      ...(opts.onStep ? { onStep: opts.onStep } : {}),
      log,
    });

    // ── save ─────────────────────────────────────────────────────────────────────────────────
    const finalDir = join(run.dir, FINAL_DIR);
    writeFolderAtomic(finalDir, (tmp) => {
      copyTokenizerFiles(tokenizerDir, tmp);
      saveHfModel(model!, tmp, { dtype: cfg.model.save_dtype === 'bfloat16' ? 'BF16' : 'F32' });
    });
    log(`pretrain: wrote ${finalDir}`);
    await run.close('FINISHED');
    return {
      runDir: run.dir,
      finalDir,
      totalSteps,
      startStep,
      losses: loop.losses,
      evalLosses,
      numParameters: model.numParameters(),
      trainTokens,
      evalTokens,
      tokensPerSecond: trainSeconds > 0 ? trainedTargets / trainSeconds : NaN,
    };
  } catch (e) {
    await run.close(closeStatusFor(e));
    throw e;
  } finally {
    // ── cleanup ──────────────────────────────────────────────────────────────────────────────
    optimizer?.dispose();
    model?.dispose();
  }
}
