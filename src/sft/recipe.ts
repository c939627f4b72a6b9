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
import { initEngine } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { numLoraParameters, unloadLora } from '../lora/index.js';
import { loadHfConfig, loadHfModel, resolveModelPath, type LlamaModel } from '../model/index.js';
import { checkTrainingMemory } from '../training/memory-check.js';
import { loadTokenizer } from '../tokenizer/index.js';
import { checkTokenizerFits } from '../tokenizer/files.js';
import type { AdamW } from '../training/index.js';
import { closeStatusFor, openRecipeRun, runDiskBytes, stageLog, writeFinalFolder, type StageHooks } from '../training/run.js';
import type { SftConfig } from './config.js';
import { collateUnits, pickTemplate, resolveDataPath } from './data.js';
import { loadSftData } from './load.js';
import { fineTune, makeTrainable, writeFineTuned } from '../training/fine-tune.js';
import { lossChunkRows } from '../training/sft-loss.js';

/** Test and embedding hooks; the CLI passes none. */
export interface SftHooks extends StageHooks {
  /** Before the model is released (tests inspect its weights). */
  beforeCleanup?: (model: LlamaModel) => void;
  /** Show progress on stdout (default true). */
  progress?: boolean;
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
  const log = stageLog(hooks);

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
  const checkpointing = checkTrainingMemory('sft', engine.backend, {
    config: modelConfig,
    batchSize: cfg.train.batch_size,
    maxLengthKey: 'data.max_length',
    maxLength: cfg.data.max_length,
    lora: cfg.lora.enabled ? cfg.lora : null,
    gradientCheckpointing: cfg.train.gradient_checkpointing,
    frozenDtype: cfg.model.frozen_dtype,
    lossChunkRows: lossChunkRows(modelConfig.vocab_size),
  }, log);
  const tokenizer = await loadTokenizer(tokenizerDir);
  const template = pickTemplate(cfg.tokenizer.template, tokenizer);
  const data = await loadSftData(cfg, tokenizer, template, log);

  const model = loadHfModel(modelDir, { frozenDtype: cfg.model.frozen_dtype });
  model.gradientCheckpointing = checkpointing;
  model.checkpointRng = rng;
  let optimizer: AdamW | undefined;
  try {
    checkTokenizerFits(tokenizer, tokenizerDir, model, modelDir);
    const trainable = makeTrainable(model, cfg, rng, { modelDir, tokenizerDir });
    const { lora } = trainable;
    optimizer = trainable.optimizer; // for cleanup
    const trainableCount = [...trainable.params.values()].reduce((n, v) => n + v.size, 0);
    log(
      `sft: ${lora ? `LoRA r=${cfg.lora.r} on ${numLoraParameters(model)} adapter weights` : `full fine-tuning of ${trainableCount} weights`}, ` +
        `${data.units.items.length} ${data.units.packed ? 'packed rows' : 'examples'}, template ${template}`,
    );

    const savedWeights = (lora ? trainableCount : 0) + (lora && !cfg.sft.save_merged ? 0 : model.numParameters());
    const minFreeBytes = runDiskBytes({ trainable: trainableCount, savedWeights, keepLast: cfg.checkpoint.keep_last });
    const run = await openRecipeRun('sft', resolved, { minFreeBytes, hooks, log });
    try {
      // ── train loop (the harness's policies: NaN guard, eval/checkpoint cadence, stop, progress) ──
      const loop = await fineTune({
        label: 'sft',
        run,
        model,
        trainable,
        cfg,
        rng,
        rows: data.units.items.length,
        batchOf: (indices) => collateUnits(data.units, indices, { padId: tokenizer.padId, maxLength: cfg.data.max_length, truncation: cfg.data.truncation }),
        evalBatches: data.evalBatches,
        progress: hooks.progress !== false,
        ...(hooks.onStep ? { onStep: hooks.onStep } : {}),
        log,
      });
      const step = loop.step;

      // ── save ─────────────────────────────────────────────────────────────────────────────────
      const finalDir = await writeFinalFolder(run, (tmp) => writeFineTuned(model, tmp, { lora, saveMerged: cfg.sft.save_merged, modelDir, tokenizerDir }));
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
