/**
 * The SFT recipe, top to bottom: setup → train loop → save → cleanup.
 *
 *   loss = Σ_scored tokens −log p(token | prefix) / (scored tokens in the optimizer step)
 *
 * on assistant tokens only by default, with LoRA adapters (default) or every weight trained.
 * The loop is resumable exactly: a checkpoint holds weights, AdamW moments, the step (hence the
 * schedule), the RNG (LoRA dropout) and the data cursor.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ResolvedConfig } from '../config/index.js';
import { DataCursor, type CursorState } from '../data/index.js';
import { initEngine } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { numLoraParameters, unloadLora } from '../lora/index.js';
import { loadHfConfig, loadHfModel, resolveModelPath, type LlamaModel } from '../model/index.js';
import { estimatePeakMemory, loraShortModules } from '../training/memory.js';
import { checkMemoryFits, memoryLimits, trainingKnobs } from '../training/memory-check.js';
import { loadTokenizer } from '../tokenizer/index.js';
import type { RunContext } from '../tracking/index.js';
import { AdamW, type StopSignal } from '../training/index.js';
import { FINAL_DIR, closeStatusFor, openStageRun, restoreStageCheckpoint, saveStageCheckpoint, writeFolderAtomic } from '../training/run.js';
import type { SftConfig } from './config.js';
import { collateUnits, pickTemplate, resolveDataPath } from './data.js';
import type { EarlyStoppingState } from '../training/early-stopping.js';
import { trainLoop } from '../training/loop.js';
import { loadSftData } from './load.js';
import { fineTuneLoopParts, makeTrainable, writeFineTuned } from '../training/fine-tune.js';
import { lossChunkRows } from '../training/sft-loss.js';

/** Test and embedding hooks; the CLI passes none. */
export interface SftHooks {
  /** Nest the stage's MLflow run under this run (the pipeline's). */
  parentRunId?: string;
  /** After every optimizer step, with that step's metrics (tests send a stop signal from here). */
  onStep?: (step: number, metrics: Record<string, number>) => void;
  /** Before the model is released (tests inspect its weights). */
  beforeCleanup?: (model: LlamaModel) => void;
  stopSignal?: StopSignal;
  log?: (message: string) => void;
  /** Show progress on stdout (default true). */
  progress?: boolean;
  context?: Partial<RunContext>;
}

export interface SftResult {
  outputDir: string;
  finalDir: string;
  /** Optimizer steps done in total (a resumed run counts the earlier ones). */
  steps: number;
  /** Training loss of each step this invocation ran. */
  losses: Array<{ step: number; loss: number }>;
  evalLoss: number | null;
  stoppedEarly: boolean;
}

export async function runSft(resolved: ResolvedConfig<SftConfig>, hooks: SftHooks = {}): Promise<SftResult> {
  const cfg = resolved.config;
  const log = hooks.log ?? ((m: string) => void process.stderr.write(m + '\n'));

  // ── setup ──────────────────────────────────────────────────────────────────────────────────
  const engine = await initEngine({ backend: cfg.engine.backend, threads: cfg.engine.threads });
  const rng = new Rng(cfg.engine.seed); // LoRA init, then LoRA dropout: saved in every checkpoint
  const modelDir = resolve(resolveModelPath(resolveDataPath(cfg.model.path)));
  const tokenizerDir = resolve(resolveModelPath(resolveDataPath(cfg.tokenizer.path ?? cfg.model.path)));
  if (!existsSync(join(modelDir, 'config.json'))) {
    throw new UserError(`model.path: ${cfg.model.path} has no config.json (an HF model folder is needed; run the pretrain stage first?)`);
  }
  // Fail before, not during: refuse a run that cannot fit before any weight or data is loaded.
  const modelConfig = loadHfConfig(modelDir);
  checkMemoryFits('sft', estimatePeakMemory({
    config: modelConfig,
    batchSize: cfg.train.batch_size,
    seqLen: cfg.data.max_length,
    trained: cfg.lora.enabled
      ? { kind: 'lora', rank: cfg.lora.r, modules: loraShortModules(modelConfig, cfg.lora.target_modules), dropout: cfg.lora.dropout }
      : { kind: 'full' },
    gradientCheckpointing: cfg.train.gradient_checkpointing,
    frozenDtype: cfg.model.frozen_dtype,
    lossChunkRows: lossChunkRows(modelConfig.vocab_size),
  }), memoryLimits(engine.backend), trainingKnobs({
    batchSize: cfg.train.batch_size,
    maxLengthKey: 'data.max_length',
    maxLength: cfg.data.max_length,
    gradientCheckpointing: cfg.train.gradient_checkpointing,
    frozenDtype: cfg.lora.enabled ? cfg.model.frozen_dtype : null,
  }), log);
  const tokenizer = await loadTokenizer(tokenizerDir);
  const template = pickTemplate(cfg.tokenizer.template, tokenizer);
  const data = await loadSftData(cfg, tokenizer, template, log);

  const model = loadHfModel(modelDir, { frozenDtype: cfg.model.frozen_dtype });
  model.gradientCheckpointing = cfg.train.gradient_checkpointing;
  model.checkpointRng = rng;
  let optimizer: AdamW | undefined;
  try {
    if (tokenizer.vocabSize > model.config.vocab_size) {
      throw new UserError(`tokenizer ${tokenizerDir} has ${tokenizer.vocabSize} tokens but model ${modelDir} only ${model.config.vocab_size} embeddings`);
    }
    const trainable = makeTrainable(model, cfg, rng, { modelDir, tokenizerDir });
    const { lora, weights } = trainable;
    optimizer = trainable.optimizer; // for cleanup
    const trainableCount = [...trainable.params.values()].reduce((n, v) => n + v.size, 0);
    log(
      `sft: ${lora ? `LoRA r=${cfg.lora.r} on ${numLoraParameters(model)} adapter weights` : `full fine-tuning of ${trainableCount} weights`}, ` +
        `${data.units.items.length} ${data.units.packed ? 'packed rows' : 'examples'}, template ${template}`,
    );

    const cursorOpts = { size: data.units.items.length, batchSize: cfg.train.batch_size, seed: cfg.train.seed ?? cfg.engine.seed };
    const microPerEpoch = new DataCursor(cursorOpts).batchesPerEpoch;
    const totalSteps = cfg.train.epochs !== null ? Math.max(1, Math.ceil((cfg.train.epochs * microPerEpoch) / cfg.optim.grad_accum)) : cfg.train.steps;
    const keepLast = cfg.checkpoint.keep_last;
    const ckptBytes = trainableCount * 4 * 3; // weights + two AdamW moments, float32
    const finalBytes = (lora ? trainableCount * 4 : 0) + (lora && !cfg.sft.save_merged ? 0 : model.numParameters() * 4);

    const run = await openStageRun({
      stage: 'sft',
      outputDir: cfg.output_dir,
      resolved,
      tracking: cfg.tracking,
      resume: cfg.train.resume,
      minFreeBytes: ckptBytes * ((keepLast ?? 3) + 1) + finalBytes,
      log,
      ...(hooks.stopSignal ? { stopSignal: hooks.stopSignal } : {}),
      ...(hooks.parentRunId !== undefined ? { parentRunId: hooks.parentRunId } : {}),
      ...(hooks.context ? { context: hooks.context } : {}),
    });
    try {
      let startStep = 0;
      let cursorState: CursorState | undefined;
      const early = { state: { best: null, bad: 0 } as EarlyStoppingState };
      if (run.resumeFrom) {
        const restored = restoreStageCheckpoint(run.resumeFrom, { weights, optimizer: trainable.optimizer, rng });
        startStep = restored.step;
        cursorState = restored.dataCursor as CursorState;
        early.state = (restored.trainerState['early_stopping'] as EarlyStoppingState | undefined) ?? early.state;
        log(`sft: resumed from ${run.resumeFrom} at step ${startStep}`);
      }
      const cursor = new DataCursor({ ...cursorOpts, ...(cursorState ? { state: cursorState } : {}) });
      const epoch = (): number => cursor.state.epoch + cursor.state.index / cursor.size;

      // ── train loop (the harness's policies: NaN guard, eval/checkpoint cadence, stop, progress) ──
      const loop = await trainLoop({
        label: 'sft',
        run,
        startStep,
        totalSteps,
        maxNonfinite: cfg.train.max_nonfinite,
        evalEvery: cfg.train.eval_every,
        checkpointEvery: cfg.checkpoint.every_steps,
        ...fineTuneLoopParts({
          model,
          trainable,
          cfg,
          totalSteps,
          nextBatch: () =>
            collateUnits(data.units, cursor.next().indices, { padId: tokenizer.padId, maxLength: cfg.data.max_length, truncation: cfg.data.truncation }),
          epoch,
          evalBatches: data.evalBatches,
          early,
        }),
        checkpoint: (at) =>
          saveStageCheckpoint(run.dir, {
            weights,
            optimizer: trainable.optimizer,
            step: at,
            epoch: epoch(),
            maxSteps: totalSteps,
            rng,
            dataCursor: cursor.state,
            extra: { early_stopping: early.state },
            keepLast,
          }),
        progress: hooks.progress === false ? null : { keys: { loss: 'train/loss', lr: 'train/lr', eval_loss: 'eval/loss' } },
        ...(hooks.onStep ? { onStep: hooks.onStep } : {}),
        log,
      });
      const step = loop.step;

      // ── save ─────────────────────────────────────────────────────────────────────────────────
      const finalDir = join(run.dir, FINAL_DIR);
      writeFolderAtomic(finalDir, (tmp) => writeFineTuned(model, tmp, { lora, saveMerged: cfg.sft.save_merged, modelDir, tokenizerDir }));
      await run.tracker.setTag('final_dir', finalDir);
      hooks.beforeCleanup?.(model);
      await run.close('FINISHED');
      log(`sft: done after ${step} steps; ${lora ? 'adapter' : 'model'} in ${finalDir}`);
      return { outputDir: run.dir, finalDir, steps: step, losses: loop.losses, evalLoss: loop.lastEval?.['eval/loss'] ?? null, stoppedEarly: loop.stoppedEarly !== null };
    } catch (e) {
      await run.close(closeStatusFor(e));
      throw e;
    }
  } finally {
    // ── cleanup ────────────────────────────────────────────────────────────────────────────────
    optimizer?.dispose();
    unloadLora(model, { merge: false });
    model.dispose();
  }
}
