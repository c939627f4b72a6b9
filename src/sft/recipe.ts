/**
 * The SFT recipe, top to bottom: setup → train loop → save → cleanup.
 *
 *   loss = Σ_scored tokens −log p(token | prefix) / (scored tokens in the optimizer step)
 *
 * on assistant tokens only by default, with LoRA adapters (default) or every weight trained.
 * The loop is resumable exactly: a checkpoint holds weights, AdamW moments, the step (hence the
 * schedule), the RNG (LoRA dropout) and the data cursor.
 */
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { join, resolve } from 'node:path';
import type { ResolvedConfig } from '../config/index.js';
import { DataCursor, loadDataset, trainEvalSplit, type CursorState, type Example, type TokenBatch } from '../data/index.js';
import { initEngine } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { injectLora, mergeLora, numLoraParameters, saveAdapter, trainableVariables, unloadLora } from '../lora/index.js';
import { configToJson, loadHfConfig, loadHfModel, resolveModelPath, saveHfModel, type LlamaModel } from '../model/index.js';
import { estimatePeakMemory, loraShortModules } from '../training/memory.js';
import { checkMemoryFits, memoryLimits, trainingKnobs } from '../training/memory-check.js';
import { loadTokenizer, type Tokenizer } from '../tokenizer/index.js';
import { ConsoleProgress, type RunContext } from '../tracking/index.js';
import {
  AdamW,
  GradientAccumulator,
  NonFiniteGuard,
  accumulateGradients,
  clipGradNormInPlace,
  learningRateAt,
  type StopSignal,
} from '../training/index.js';
import {
  FINAL_DIR,
  adapterWeights,
  closeStatusFor,
  openStageRun,
  restoreStageCheckpoint,
  saveStageCheckpoint,
  variableWeights,
  writeFolderAtomic,
  type WeightsIO,
} from '../training/run.js';
import type { SftConfig } from './config.js';
import { buildUnits, collateUnits, keepTrainable, pickTemplate, resolveDataPath, tokenizeSftRow, type TrainUnits } from './data.js';
import { updateEarlyStopping, type EarlyStoppingState } from '../training/early-stopping.js';
import { batchLossSum, lossChunkRows, batchTargets, evaluateLoss } from '../training/sft-loss.js';

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

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model'];

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
  let progress: ConsoleProgress | undefined;
  try {
    if (tokenizer.vocabSize > model.config.vocab_size) {
      throw new UserError(`tokenizer ${tokenizerDir} has ${tokenizer.vocabSize} tokens but model ${modelDir} only ${model.config.vocab_size} embeddings`);
    }
    const lora = cfg.lora.enabled;
    if (lora) {
      withoutStrayTensors(() => injectLora(model, {
        targetModules: cfg.lora.target_modules,
        r: cfg.lora.r,
        alpha: cfg.lora.alpha,
        dropout: cfg.lora.dropout,
        useRslora: cfg.lora.use_rslora,
        rng,
        dropoutRng: rng,
      }));
    }
    const trainable = lora ? trainableVariables(model) : model.params;
    const weights: WeightsIO = lora
      ? adapterWeights(model, { baseModelNameOrPath: modelDir })
      : variableWeights(model.params, {
          writeExtra: (dir) => {
            // A full checkpoint is a loadable HF folder.
            writeFileSync(join(dir, 'config.json'), JSON.stringify(configToJson(model.config), null, 2) + '\n');
            copyTokenizerFiles(tokenizerDir, dir);
          },
        });
    const adamw = { beta1: cfg.optim.betas[0], beta2: cfg.optim.betas[1], eps: cfg.optim.eps, weightDecay: cfg.optim.weight_decay };
    const opt = withoutStrayTensors(() => new AdamW(trainable, adamw));
    optimizer = opt; // for cleanup
    const trainableCount = [...trainable.values()].reduce((n, v) => n + v.size, 0);
    log(
      `sft: ${lora ? `LoRA r=${cfg.lora.r} on ${numLoraParameters(model)} adapter weights` : `full fine-tuning of ${trainableCount} weights`}, ` +
        `${data.units.items.length} ${data.units.packed ? 'packed rows' : 'examples'}, template ${template}`,
    );

    const accum = cfg.optim.grad_accum;
    const batchSize = cfg.train.batch_size;
    const cursorOpts = { size: data.units.items.length, batchSize, seed: cfg.train.seed ?? cfg.engine.seed };
    const microPerEpoch = new DataCursor(cursorOpts).batchesPerEpoch;
    const totalSteps = cfg.train.epochs !== null ? Math.max(1, Math.ceil((cfg.train.epochs * microPerEpoch) / accum)) : cfg.train.steps;
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
      let step = 0;
      let cursorState: CursorState | undefined;
      let early: EarlyStoppingState = { best: null, bad: 0 };
      if (run.resumeFrom) {
        const restored = restoreStageCheckpoint(run.resumeFrom, { weights, optimizer: opt, rng });
        step = restored.step;
        cursorState = restored.dataCursor as CursorState;
        early = (restored.trainerState['early_stopping'] as EarlyStoppingState | undefined) ?? early;
        log(`sft: resumed from ${run.resumeFrom} at step ${step}`);
      }
      const cursor = new DataCursor({ ...cursorOpts, ...(cursorState ? { state: cursorState } : {}) });
      const guard = new NonFiniteGuard(cfg.sft.max_nonfinite_steps);
      const accumulator = new GradientAccumulator();
      const collate = (indices: number[]): TokenBatch =>
        collateUnits(data.units, indices, { padId: tokenizer.padId, maxLength: cfg.data.max_length, truncation: cfg.data.truncation });
      const checkpoint = (): string =>
        saveStageCheckpoint(run.dir, {
          weights,
          optimizer: opt,
          step,
          epoch: cursor.state.epoch + cursor.state.index / cursor.size,
          maxSteps: totalSteps,
          rng,
          dataCursor: cursor.state,
          extra: { early_stopping: early },
          keepLast,
        });
      const evaluate = (): { loss: number; perplexity: number } | null => {
        if (data.evalBatches.length === 0) return null;
        const { loss } = evaluateLoss(model, data.evalBatches);
        return { loss, perplexity: Math.exp(loss) };
      };
      if (hooks.progress !== false) progress = new ConsoleProgress({ total: totalSteps, startStep: step, label: 'sft', keys: ['loss', 'lr', 'eval_loss'] });

      // ── train loop ───────────────────────────────────────────────────────────────────────────
      const losses: Array<{ step: number; loss: number }> = [];
      let lastEval: number | null = null;
      let lastEvalStep = -1;
      let lastCheckpointStep = run.resumeFrom ? step : -1;
      let stoppedEarly = false;
      while (step < totalSteps) {
        const started = performance.now();
        const micro: TokenBatch[] = [];
        for (let k = 0; k < accum; k++) micro.push(collate(cursor.next().indices));
        const targets = micro.reduce((n, b) => n + batchTargets(b), 0);
        const tokens = micro.reduce((n, b) => n + b.attentionMask.flat().reduce((s, m) => s + m, 0), 0);
        const lr = learningRateAt(cfg.schedule.type, cfg.optim.lr, step, { warmupSteps: cfg.schedule.warmup_steps, totalSteps });

        const { loss } = accumulateGradients(trainable, micro, (b) => batchLossSum(model, b, true), targets, accumulator);
        const gradNorm = clipGradNormInPlace(accumulator.grads, cfg.optim.grad_clip ?? Infinity);
        const finite = guard.check(step + 1, loss, gradNorm); // throws after max_nonfinite_steps in a row
        if (finite) opt.step(accumulator.grads, lr);
        else log(`sft: step ${step + 1}: non-finite loss ${loss} or grad norm ${gradNorm}; update skipped`);
        accumulator.reset();
        step++;

        const seconds = (performance.now() - started) / 1000;
        const metrics: Record<string, number> = {
          'train/loss': loss,
          'train/lr': lr,
          'train/grad_norm': gradNorm,
          'train/tokens_per_sec': tokens / Math.max(seconds, 1e-9),
          'train/epoch': cursor.state.epoch + cursor.state.index / cursor.size,
        };
        if (!finite) metrics['train/skipped_nonfinite'] = guard.totalSkips;
        losses.push({ step, loss });
        if (cfg.train.eval_every > 0 && step % cfg.train.eval_every === 0) {
          const ev = evaluate();
          if (ev) {
            metrics['eval/loss'] = ev.loss;
            metrics['eval/perplexity'] = ev.perplexity;
            lastEval = ev.loss;
            lastEvalStep = step;
            const es = updateEarlyStopping(early, ev.loss, { patience: cfg.sft.early_stopping_patience, minDelta: cfg.sft.early_stopping_min_delta });
            early = es.state;
            stoppedEarly = es.stop;
          }
        }
        await run.tracker.logMetrics(metrics, step);
        progress?.update(step, { loss, lr, ...(metrics['eval/loss'] !== undefined ? { eval_loss: metrics['eval/loss'] } : {}) });
        hooks.onStep?.(step, metrics);

        if (cfg.checkpoint.every_steps > 0 && step % cfg.checkpoint.every_steps === 0) {
          checkpoint();
          lastCheckpointStep = step;
        }
        if (await run.stop.poll()) {
          const path = lastCheckpointStep === step ? join(run.dir, 'checkpoints', `step_${step}`) : checkpoint();
          throw run.stoppedError(step, path);
        }
        if (stoppedEarly) {
          log(`sft: early stopping at step ${step}: eval loss did not improve for ${early.bad} evaluations (best ${early.best})`);
          break;
        }
      }
      progress?.stop();
      if (lastEvalStep !== step) {
        const ev = evaluate();
        if (ev) {
          lastEval = ev.loss;
          await run.tracker.logMetrics({ 'eval/loss': ev.loss, 'eval/perplexity': ev.perplexity }, step);
        }
      }

      // ── save ─────────────────────────────────────────────────────────────────────────────────
      if (lastCheckpointStep !== step) {
        checkpoint(); // the final state is resumable too (e.g. to train further with more steps)
      }
      const finalDir = join(run.dir, FINAL_DIR);
      writeFolderAtomic(finalDir, (tmp) => {
        if (lora) {
          saveAdapter(model, tmp, { baseModelNameOrPath: modelDir });
          copyTokenizerFiles(tokenizerDir, tmp);
          if (cfg.sft.save_merged) {
            mergeLora(model);
            saveHfModel(model, join(tmp, 'merged'));
            copyTokenizerFiles(tokenizerDir, join(tmp, 'merged'));
          }
        } else {
          saveHfModel(model, tmp);
          copyTokenizerFiles(tokenizerDir, tmp);
        }
      });
      await run.tracker.setTag('final_dir', finalDir);
      hooks.beforeCleanup?.(model);
      await run.close('FINISHED');
      log(`sft: done after ${step} steps; ${lora ? 'adapter' : 'model'} in ${finalDir}`);
      return { outputDir: run.dir, finalDir, steps: step, losses, evalLoss: lastEval, stoppedEarly };
    } catch (e) {
      progress?.stop();
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

/** Train examples as units for the cursor, and eval batches (fixed order, padded per batch). */
async function loadSftData(
  cfg: SftConfig,
  tokenizer: Tokenizer,
  template: ReturnType<typeof pickTemplate>,
  log: (m: string) => void,
): Promise<{ units: TrainUnits; evalBatches: TokenBatch[] }> {
  const read = async (path: string): Promise<Example[]> => {
    const rows = await loadDataset(resolveDataPath(path), 'sft', { onBadRow: cfg.data.on_bad_row, warn: log });
    return rows.map((row) => tokenizeSftRow(tokenizer, row, { template, strategy: cfg.data.strategy }));
  };
  const trainFiles = typeof cfg.data.train === 'string' ? [cfg.data.train] : cfg.data.train;
  let train = (await Promise.all(trainFiles.map(read))).flat();
  let evalSet: Example[] = [];
  if (cfg.data.eval !== null) evalSet = await read(cfg.data.eval);
  else if (cfg.data.eval_split > 0) {
    if (cfg.data.eval_split >= train.length) {
      throw new UserError(`data.eval_split: ${cfg.data.eval_split} rows held out, but ${trainFiles.join(', ')} has only ${train.length}`);
    }
    ({ train, eval: evalSet } = trainEvalSplit(train, { seed: cfg.train.seed ?? cfg.engine.seed, evalSize: cfg.data.eval_split }));
  }
  const { kept, dropped } = keepTrainable(train, cfg.data.max_length, cfg.data.truncation);
  if (dropped > 0) log(`sft: ${dropped} training examples have no trained token within data.max_length=${cfg.data.max_length}; dropped`);
  if (kept.length === 0) throw new UserError(`${trainFiles.join(', ')}: no example has a trained token within data.max_length=${cfg.data.max_length}`);
  const units = buildUnits(kept, { packing: cfg.data.packing, maxLength: cfg.data.max_length, truncation: cfg.data.truncation });

  const evalKept = keepTrainable(evalSet, cfg.data.max_length, cfg.data.truncation).kept.slice(0, cfg.data.eval_max_rows ?? undefined);
  const evalUnits = buildUnits(evalKept, { packing: false, maxLength: cfg.data.max_length, truncation: cfg.data.truncation });
  const evalBatches: TokenBatch[] = [];
  for (let i = 0; i < evalKept.length; i += cfg.train.batch_size) {
    const indices = Array.from({ length: Math.min(cfg.train.batch_size, evalKept.length - i) }, (_, k) => i + k);
    evalBatches.push(collateUnits(evalUnits, indices, { padId: tokenizer.padId, maxLength: cfg.data.max_length, truncation: cfg.data.truncation }));
  }
  return { units, evalBatches };
}

/**
 * Run a constructor inside `tf.tidy`: LoraLinear and AdamW leave behind the tensors their variables
 * were made from (`tf.variable(tf.zeros(...))`); variables themselves survive a tidy.
 */
function withoutStrayTensors<T>(make: () => T): T {
  let made: T | undefined;
  tf.tidy(() => void (made = make()));
  return made!;
}

function copyTokenizerFiles(fromDir: string, toDir: string): void {
  for (const f of TOKENIZER_FILES) {
    if (existsSync(join(fromDir, f))) copyFileSync(join(fromDir, f), join(toDir, f));
  }
}
