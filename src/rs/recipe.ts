/**
 * The rejection-sampling fine-tuning recipe (Llama 2 §3.2.3), top to bottom:
 *
 *   setup → 1. sample K replies per prompt → 2. score each with the reward model
 *         → 3. keep the best (against the pool of earlier rounds)
 *         → 3b. optionally, safety context distillation on is_safety prompts (context-distillation.ts)
 *         → 4. best-of-K curve, judge
 *         → 5. fine-tune on the kept dialogues (SFT objective on the reply) → save → cleanup
 *
 * Sampling resumes by chunk (samples/samples.jsonl), the fine-tuning by checkpoint (weights, AdamW
 * moments, step, RNG, data cursor), both through the shared harness's run folder, signals and
 * tracking. Output: final/ (a LoRA adapter on input model, or the full model), pool.jsonl,
 * rs_train.jsonl, best_of_k.json (and context_distillation.jsonl with context_distillation.enabled).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ResolvedConfig } from '../config/index.js';
import { writeFileAtomic } from '../config/write.js';
import { writeRowsAtomic } from '../data/write-atomic.js';
import { initEngine } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { numLoraParameters, unloadLora } from '../lora/index.js';
import { loadHfConfig, loadHfModel, resolveModelPath, type LlamaModel } from '../model/index.js';
import { resolveDataPath } from '../paths.js';
import { loadTokenizer, pickTemplate } from '../tokenizer/index.js';
import { checkTokenizerFits } from '../tokenizer/files.js';
import type { AdamW } from '../training/index.js';
import { checkTrainingMemory } from '../training/memory-check.js';
import { closeStatusFor, openRecipeRun, runDiskBytes, stageLog, writeFinalFolder, type StageHooks } from '../training/run.js';
import { lossChunkRows } from '../training/sft-loss.js';
import { fineTune, makeTrainable, writeFineTuned } from '../training/fine-tune.js';
import type { RsConfig } from './config.js';
import { promptsToSample, samplingSettings } from './inputs.js';
import { prepareInputModel } from '../training/input-model.js';
import { readPool } from './pool.js';
import type { DistillationRow } from './context-distillation.js';
import { distillSafetyPrompts, safetyRewardDir } from './distill-step.js';
import { bestOfKReport, logSelection, stageZeroMetrics, type BestOfKReport, type ReplyJudge } from './report.js';
import { sampleAll } from './sample-all.js';
import { SAMPLES_DIR, fullSettings, samplesMatch, type SampledPrompt } from './sampling.js';
import { rewardModelScorer } from './score.js';
import { selectBest, type PoolEntry } from './select.js';
import { collateKept, trainingData } from './train-data.js';

export { INPUT_MODEL_DIR } from '../training/input-model.js';
export type { BestOfKReport, ReplyJudge } from './report.js';

export const POOL_FILE = 'pool.jsonl';
export const TRAIN_FILE = 'rs_train.jsonl';
export const BEST_OF_K_FILE = 'best_of_k.json';
export { DISTILLATION_FILE } from './distill-step.js';

export interface RsHooks extends StageHooks {
  /** Judge best vs median vs first sample with it (best_of_k.json `judge`, rs/judge_* metrics). */
  judge?: ReplyJudge;
  /** After each sampled chunk (tests send a stop signal from here). */
  onChunk?: (chunksDone: number, chunks: number) => void;
  /** Before the model is released (tests inspect its weights). */
  beforeCleanup?: (model: LlamaModel) => void;
  /** Show progress on stdout (default true). */
  progress?: boolean;
}

export interface RsResult {
  outputDir: string;
  finalDir: string;
  steps: number;
  losses: Array<{ step: number; loss: number }>;
  evalLoss: number | null;
  bestOfK: BestOfKReport;
  /** Safety context distillation: is_safety prompts compared, and how many of them train on the preprompted reply (null: off). */
  contextDistillation: { safetyPrompts: number; used: number } | null;
  /** Kept dialogues the fine-tuning used. */
  kept: number;
  fromPool: number;
  poolPath: string;
}

export async function runRs(resolved: ResolvedConfig<RsConfig>, hooks: RsHooks = {}): Promise<RsResult> {
  const cfg = resolved.config;
  const log = stageLog(hooks);

  // ── setup ──────────────────────────────────────────────────────────────────────────────────
  const engine = await initEngine({ backend: cfg.engine.backend, threads: cfg.engine.threads });
  const rng = new Rng(cfg.engine.seed); // LoRA init, then LoRA dropout: saved in every checkpoint
  const rewardDir = resolve(resolveModelPath(resolveDataPath(cfg.model.reward_model)));
  if (!existsSync(join(rewardDir, 'config.json'))) {
    throw new UserError(`model.reward_model: ${cfg.model.reward_model} has no config.json (run the reward stage first)`);
  }
  if (cfg.rs.keep_best_across_rounds && cfg.rs.pool !== null && !existsSync(resolveDataPath(cfg.rs.pool))) {
    // Before any sampling: a missing pool found after minutes of sampling would waste them.
    throw new UserError(`rs.pool: ${cfg.rs.pool} does not exist (the previous round's rs folder has pool.jsonl)`);
  }
  const safetyDir = safetyRewardDir(cfg);
  const input = prepareInputModel(cfg, { label: 'rs', log });
  const modelConfig = loadHfConfig(input.modelDir);
  const checkpointing = checkTrainingMemory('rs', engine.backend, {
    config: modelConfig,
    batchSize: cfg.train.batch_size,
    maxLengthKey: 'data.max_length',
    maxLength: cfg.data.max_length,
    lora: cfg.lora.enabled ? cfg.lora : null,
    gradientCheckpointing: cfg.train.gradient_checkpointing,
    lossChunkRows: lossChunkRows(modelConfig.vocab_size),
  }, log);
  const tokenizer = await loadTokenizer(input.tokenizerDir);
  const template = pickTemplate(cfg.tokenizer.template, tokenizer);
  const prompts = await promptsToSample(cfg, tokenizer, template, log);

  const model = loadHfModel(input.modelDir);
  model.gradientCheckpointing = checkpointing;
  model.checkpointRng = rng;
  let optimizer: AdamW | undefined;
  try {
    checkTokenizerFits(tokenizer, input.tokenizerDir, model, input.modelDir);
    // Before LoRA is injected the trainable count is not known: a full run's is the upper bound.
    const total = model.numParameters();
    const minFreeBytes = runDiskBytes({ trainable: cfg.lora.enabled ? 0 : total, savedWeights: total, keepLast: cfg.checkpoint.keep_last });
    const run = await openRecipeRun('rs', resolved, { minFreeBytes, hooks, log });
    try {
      // ── 1–2. sample K replies per prompt, score each ──────────────────────────────────────────
      const samplesDir = join(run.dir, SAMPLES_DIR);
      const settings = samplingSettings(cfg, input.modelDir, rewardDir, template, safetyDir);
      const full = fullSettings({ settings, k: cfg.rs.k, batchSize: cfg.rs.batch_size, seed: cfg.engine.seed, prompts });
      if (run.resumeFrom && !samplesMatch(samplesDir, full)) {
        throw new UserError(
          `${run.resumeFrom}: this checkpoint was trained on samples drawn under other settings (model, reward model, prompts or rs.* changed); ` +
            'start fresh with train.resume=never',
        );
      }
      const reward = await rewardModelScorer(rewardDir, { template: cfg.tokenizer.template, batchSize: cfg.rs.score_batch_size });
      let samples: SampledPrompt[];
      let selection: ReturnType<typeof selectBest>;
      let distillation: DistillationRow[] | null = null;
      try {
        samples = await sampleAll(cfg, run, model, tokenizer, template, prompts, settings, reward.score, hooks, log);
        // ── 3. keep the best, against the pool re-scored by this round's reward model ─────────────
        let pool: Map<string, PoolEntry> | null = null;
        if (cfg.rs.keep_best_across_rounds && cfg.rs.pool !== null) pool = await readPool(resolveDataPath(cfg.rs.pool), reward.score, cfg, log);
        selection = selectBest(samples, run.dir, pool);
        // ── 3b. safety context distillation: the preprompted reply where the safety model prefers it ──
        if (safetyDir !== null) {
          const result = await distillSafetyPrompts({ cfg, safetyDir, runDir: run.dir, kept: selection.kept, prompts, model, tokenizer, template, rewardScore: reward.score, log });
          selection = { ...selection, kept: result.kept };
          distillation = result.rows;
        }
      } finally {
        reward.dispose();
      }
      const bestOfK = bestOfKReport(cfg, samples, hooks.judge);
      const poolPath = join(run.dir, POOL_FILE);
      await writeRowsAtomic(poolPath, selection.kept as unknown as Record<string, unknown>[]);
      await writeRowsAtomic(join(run.dir, TRAIN_FILE), selection.kept.map((e) => ({ messages: [...e.prompt, { role: 'assistant', content: e.reply }], reward: e.reward })));
      writeFileAtomic(join(run.dir, BEST_OF_K_FILE), JSON.stringify(bestOfK, null, 2) + '\n');
      logSelection(bestOfK, selection, log);
      if (!run.resumeFrom) {
        const cdMetrics: Record<string, number> = distillation === null ? {} : { 'rs/safety_prompts': distillation.length, 'rs/context_distilled': distillation.filter((r) => r.used).length };
        await run.tracker.logMetrics({ ...stageZeroMetrics(bestOfK, selection), ...cdMetrics }, 0);
      }

      // ── 5. fine-tune on the kept dialogues ─────────────────────────────────────────────────────
      const data = trainingData(cfg, selection.kept, tokenizer, template, log);
      const trainable = makeTrainable(model, cfg, rng, input);
      optimizer = trainable.optimizer;
      const lora = trainable.lora;
      log(`rs: fine-tuning ${lora ? `LoRA r=${cfg.lora.r} (${numLoraParameters(model)} adapter weights)` : 'every weight'} on ${data.train.length} kept dialogues`);

      const loop = await fineTune({
        label: 'rs',
        run,
        model,
        trainable,
        cfg,
        rng,
        rows: data.train.length,
        batchOf: (indices) => collateKept(indices.map((i) => data.train[i]!), cfg, tokenizer.padId),
        evalBatches: data.evalBatches,
        progress: hooks.progress !== false,
        ...(hooks.onStep ? { onStep: hooks.onStep } : {}),
        log,
      });
      const step = loop.step;

      // ── save ─────────────────────────────────────────────────────────────────────────────────
      const finalDir = await writeFinalFolder(run, (tmp) => writeFineTuned(model, tmp, { lora, saveMerged: cfg.sft.save_merged, ...input }));
      hooks.beforeCleanup?.(model);
      await run.close('FINISHED');
      log(`rs: done after ${step} steps; ${lora ? 'adapter' : 'model'} in ${finalDir}`);
      return {
        outputDir: run.dir,
        finalDir,
        steps: step,
        losses: loop.losses,
        evalLoss: loop.lastEval?.['eval/loss'] ?? null,
        bestOfK,
        kept: data.train.length + data.evalCount,
        fromPool: selection.fromPool,
        poolPath,
        contextDistillation: distillation === null ? null : { safetyPrompts: distillation.length, used: distillation.filter((r) => r.used).length },
      };
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
