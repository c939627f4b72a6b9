/**
 * The rejection-sampling fine-tuning recipe (Llama 2 §3.2.3), top to bottom:
 *
 *   setup → 1. sample K replies per prompt → 2. score each with the reward model
 *         → 3. keep the best (against the pool of earlier rounds) → 4. best-of-K curve, judge
 *         → 5. fine-tune on the kept dialogues (SFT objective on the reply) → save → cleanup
 *
 * Sampling resumes by chunk (samples/samples.jsonl), the fine-tuning by checkpoint (weights, AdamW
 * moments, step, RNG, data cursor), both through the shared harness's run folder, signals and
 * tracking. Output: final/ (a LoRA adapter on input model, or the full model), pool.jsonl,
 * rs_train.jsonl, best_of_k.json.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ResolvedConfig } from '../config/index.js';
import { writeFileAtomic } from '../config/write.js';
import { DataCursor, collateTrain, readJsonl, trainEvalSplit, type CursorState, type Example, type TokenBatch } from '../data/index.js';
import { promptKey, readExcludedPrompts, samplingPrompts, withoutExcluded } from '../data/prompts.js';
import type { Message } from '../data/schemas.js';
import { writeRowsAtomic } from '../data/write-atomic.js';
import { initEngine } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { mergeAdapterFolder } from '../lora/merge.js';
import { numLoraParameters, unloadLora } from '../lora/index.js';
import { loadHfConfig, loadHfModel, resolveModelPath, type LlamaModel } from '../model/index.js';
import { resolveDataPath } from '../paths.js';
import { IGNORE_INDEX, loadTokenizer, pickTemplate, renderChatPrompt, tokenizeDialogue, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import { ConsoleProgress, type RunContext } from '../tracking/index.js';
import { AdamW, type StopSignal } from '../training/index.js';
import { type EarlyStoppingState } from '../training/early-stopping.js';
import { estimatePeakMemory, loraShortModules } from '../training/memory.js';
import { checkMemoryFits, memoryLimits, trainingKnobs } from '../training/memory-check.js';
import { FINAL_DIR, StageStopped, closeStatusFor, openStageRun, restoreStageCheckpoint, saveStageCheckpoint, writeFolderAtomic, type StageRun } from '../training/run.js';
import { lossChunkRows } from '../training/sft-loss.js';
import { trainLoop } from '../training/loop.js';
import { fineTuneLoopParts, makeTrainable, writeFineTuned } from '../training/fine-tune.js';
import type { RsConfig } from './config.js';
import { policySampler } from './policy-sampler.js';
import { SAMPLES_DIR, fullSettings, samplesMatch, sampleAndScore, type ReplyScorer, type SampledPrompt } from './sampling.js';
import { rewardModelScorer } from './score.js';
import { bestIndex, bestOfKCurve, medianIndex, selectBest, type BestOfKPoint, type PoolEntry, type Selection } from './select.js';

export const POOL_FILE = 'pool.jsonl';
export const TRAIN_FILE = 'rs_train.jsonl';
export const BEST_OF_K_FILE = 'best_of_k.json';
export const INPUT_MODEL_DIR = 'input_model';

/** The gold judge of replies to prompts (the world's, handed in by the CLI or pipeline): one score each. */
export type ReplyJudge = (prompts: readonly Message[][], replies: readonly string[]) => number[];

export interface RsHooks {
  /** Nest the stage's MLflow run under this run (the pipeline's). */
  parentRunId?: string;
  /** Judge best vs median vs first sample with it (best_of_k.json `judge`, rs/judge_* metrics). */
  judge?: ReplyJudge;
  /** After every optimizer step, with that step's metrics (tests send a stop signal from here). */
  onStep?: (step: number, metrics: Record<string, number>) => void;
  /** After each sampled chunk (tests send a stop signal from here). */
  onChunk?: (chunksDone: number, chunks: number) => void;
  /** Before the model is released (tests inspect its weights). */
  beforeCleanup?: (model: LlamaModel) => void;
  stopSignal?: StopSignal;
  log?: (message: string) => void;
  /** Show progress on stdout (default true). */
  progress?: boolean;
  context?: Partial<RunContext>;
}

/** What best_of_k.json holds. */
export interface BestOfKReport {
  prompts: number;
  k: number;
  temperature: number;
  curve: BestOfKPoint[];
  /** Mean gold-judge score of the kept (best-reward), median-reward and first sample; null without a judge. */
  judge: { best: number; median: number; first: number } | null;
  /** Share of samples that ran out of max_new_tokens before their turn end. */
  unfinished: number;
}

export interface RsResult {
  outputDir: string;
  finalDir: string;
  steps: number;
  losses: Array<{ step: number; loss: number }>;
  evalLoss: number | null;
  bestOfK: BestOfKReport;
  /** Kept dialogues the fine-tuning used. */
  kept: number;
  fromPool: number;
  poolPath: string;
}

export async function runRs(resolved: ResolvedConfig<RsConfig>, hooks: RsHooks = {}): Promise<RsResult> {
  const cfg = resolved.config;
  const log = hooks.log ?? ((m: string) => void process.stderr.write(m + '\n'));

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
  const input = prepareInputModel(cfg, log);
  const modelConfig = loadHfConfig(input.modelDir);
  checkMemoryFits('rs', estimatePeakMemory({
    config: modelConfig,
    batchSize: cfg.train.batch_size,
    seqLen: cfg.data.max_length,
    trained: cfg.lora.enabled
      ? { kind: 'lora', rank: cfg.lora.r, modules: loraShortModules(modelConfig, cfg.lora.target_modules), dropout: cfg.lora.dropout }
      : { kind: 'full' },
    gradientCheckpointing: cfg.train.gradient_checkpointing,
    frozenDtype: 'float32',
    lossChunkRows: lossChunkRows(modelConfig.vocab_size),
  }), memoryLimits(engine.backend), trainingKnobs({
    batchSize: cfg.train.batch_size,
    maxLengthKey: 'data.max_length',
    maxLength: cfg.data.max_length,
    gradientCheckpointing: cfg.train.gradient_checkpointing,
    frozenDtype: null,
  }), log);
  const tokenizer = await loadTokenizer(input.tokenizerDir);
  const template = pickTemplate(cfg.tokenizer.template, tokenizer);
  const prompts = await promptsToSample(cfg, tokenizer, template, log);

  const model = loadHfModel(input.modelDir);
  model.gradientCheckpointing = cfg.train.gradient_checkpointing;
  model.checkpointRng = rng;
  let optimizer: AdamW | undefined;
  try {
    if (tokenizer.vocabSize > model.config.vocab_size) {
      throw new UserError(`tokenizer ${input.tokenizerDir} has ${tokenizer.vocabSize} tokens but model ${input.modelDir} only ${model.config.vocab_size} embeddings`);
    }
    const minFree = model.numParameters() * 4 * (cfg.lora.enabled ? 1 : 4 + (cfg.checkpoint.keep_last ?? 3) * 3);
    const run = await openStageRun({
      stage: 'rs',
      outputDir: cfg.output_dir,
      resolved,
      tracking: cfg.tracking,
      resume: cfg.train.resume,
      minFreeBytes: minFree,
      log,
      ...(hooks.stopSignal ? { stopSignal: hooks.stopSignal } : {}),
      ...(hooks.parentRunId !== undefined ? { parentRunId: hooks.parentRunId } : {}),
      ...(hooks.context ? { context: hooks.context } : {}),
    });
    try {
      // ── 1–2. sample K replies per prompt, score each ──────────────────────────────────────────
      const samplesDir = join(run.dir, SAMPLES_DIR);
      const settings = samplingSettings(cfg, input.modelDir, rewardDir, template);
      const full = fullSettings({ settings, k: cfg.rs.k, batchSize: cfg.rs.batch_size, seed: cfg.engine.seed, prompts });
      if (run.resumeFrom && !samplesMatch(samplesDir, full)) {
        throw new UserError(
          `${run.resumeFrom}: this checkpoint was trained on samples drawn under other settings (model, reward model, prompts or rs.* changed); ` +
            'start fresh with train.resume=never',
        );
      }
      const reward = await rewardModelScorer(rewardDir, { template: cfg.tokenizer.template, batchSize: cfg.rs.score_batch_size });
      let samples: SampledPrompt[];
      let pool: Map<string, PoolEntry> | null = null;
      try {
        samples = await sampleAll(cfg, run, model, tokenizer, template, prompts, settings, reward.score, hooks, log);
        // ── 3. keep the best, against the pool re-scored by this round's reward model ─────────────
        if (cfg.rs.keep_best_across_rounds && cfg.rs.pool !== null) pool = await readPool(resolveDataPath(cfg.rs.pool), reward.score, cfg, log);
      } finally {
        reward.dispose();
      }
      const selection = selectBest(samples, run.dir, pool);
      const bestOfK = bestOfKReport(cfg, samples, hooks.judge);
      const poolPath = join(run.dir, POOL_FILE);
      await writeRowsAtomic(poolPath, selection.kept as unknown as Record<string, unknown>[]);
      await writeRowsAtomic(join(run.dir, TRAIN_FILE), selection.kept.map((e) => ({ messages: [...e.prompt, { role: 'assistant', content: e.reply }], reward: e.reward })));
      writeFileAtomic(join(run.dir, BEST_OF_K_FILE), JSON.stringify(bestOfK, null, 2) + '\n');
      logSelection(bestOfK, selection, log);
      if (!run.resumeFrom) await run.tracker.logMetrics(stageZeroMetrics(bestOfK, selection), 0);

      // ── 5. fine-tune on the kept dialogues ─────────────────────────────────────────────────────
      const data = trainingData(cfg, selection.kept, tokenizer, template, log);
      const trainable = makeTrainable(model, cfg, rng, input);
      optimizer = trainable.optimizer;
      const lora = trainable.lora;
      log(`rs: fine-tuning ${lora ? `LoRA r=${cfg.lora.r} (${numLoraParameters(model)} adapter weights)` : 'every weight'} on ${data.train.length} kept dialogues`);

      const cursorOpts = { size: data.train.length, batchSize: cfg.train.batch_size, seed: cfg.train.seed ?? cfg.engine.seed };
      const microPerEpoch = new DataCursor(cursorOpts).batchesPerEpoch;
      const totalSteps = cfg.train.epochs !== null ? Math.max(1, Math.ceil((cfg.train.epochs * microPerEpoch) / cfg.optim.grad_accum)) : cfg.train.steps;
      let startStep = 0;
      let cursorState: CursorState | undefined;
      const early = { state: { best: null, bad: 0 } as EarlyStoppingState };
      if (run.resumeFrom) {
        const restored = restoreStageCheckpoint(run.resumeFrom, { weights: trainable.weights, optimizer: trainable.optimizer, rng });
        startStep = restored.step;
        cursorState = restored.dataCursor as CursorState;
        early.state = (restored.trainerState['early_stopping'] as EarlyStoppingState | undefined) ?? early.state;
        log(`rs: resumed from ${run.resumeFrom} at step ${startStep}`);
      }
      const cursor = new DataCursor({ ...cursorOpts, ...(cursorState ? { state: cursorState } : {}) });
      const epoch = (): number => cursor.state.epoch + cursor.state.index / cursor.size;
      const loop = await trainLoop({
        label: 'rs',
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
            collateTrain(cursor.next().indices.map((i) => data.train[i]!), { padId: tokenizer.padId, maxLength: cfg.data.max_length, truncation: 'keep_end', padToMultipleOf: 8 }),
          epoch,
          evalBatches: data.evalBatches,
          early,
        }),
        checkpoint: (at) =>
          saveStageCheckpoint(run.dir, {
            weights: trainable.weights,
            optimizer: trainable.optimizer,
            step: at,
            epoch: epoch(),
            maxSteps: totalSteps,
            rng,
            dataCursor: cursor.state,
            extra: { early_stopping: early.state },
            keepLast: cfg.checkpoint.keep_last,
          }),
        progress: hooks.progress === false ? null : { keys: { loss: 'train/loss', lr: 'train/lr', eval_loss: 'eval/loss' } },
        ...(hooks.onStep ? { onStep: hooks.onStep } : {}),
        log,
      });
      const step = loop.step;

      // ── save ─────────────────────────────────────────────────────────────────────────────────
      const finalDir = join(run.dir, FINAL_DIR);
      writeFolderAtomic(finalDir, (tmp) => writeFineTuned(model, tmp, { lora, saveMerged: cfg.sft.save_merged, ...input }));
      await run.tracker.setTag('final_dir', finalDir);
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

// ───────────────────────────── setup helpers ─────────────────────────────

/** The policy as one HF folder: model.path, or model.path with model.adapter merged into input_model/. */
function prepareInputModel(cfg: RsConfig, log: (m: string) => void): { modelDir: string; tokenizerDir: string } {
  const base = resolve(resolveModelPath(resolveDataPath(cfg.model.path)));
  if (!existsSync(join(base, 'config.json'))) {
    throw new UserError(`model.path: ${cfg.model.path} has no config.json (an HF model folder is needed, e.g. the SFT stage's final/merged)`);
  }
  const tokenizerDir = resolve(resolveModelPath(resolveDataPath(cfg.tokenizer.path ?? cfg.model.path)));
  if (cfg.model.adapter === null) return { modelDir: base, tokenizerDir };
  const adapter = resolve(resolveDataPath(cfg.model.adapter));
  const merged = resolve(cfg.output_dir, INPUT_MODEL_DIR);
  // Written under a temporary name and renamed: a kill never leaves a half-merged policy.
  writeFolderAtomic(merged, (tmp) => void mergeAdapterFolder(base, adapter, tmp));
  log(`rs: merged adapter ${adapter} into ${merged}`);
  return { modelDir: merged, tokenizerDir: cfg.tokenizer.path === null ? merged : tokenizerDir };
}

/** The prompts to sample: the file's, minus excluded ones, minus too-long ones, the first max_prompts. */
async function promptsToSample(
  cfg: RsConfig,
  tokenizer: Tokenizer,
  template: TemplateName,
  log: (m: string) => void,
): Promise<Array<{ key: string; prompt: Message[] }>> {
  const distinct = await samplingPrompts(resolveDataPath(cfg.data.prompts), cfg.data.exclude.map(resolveDataPath), (m) => log(`rs: ${m}`));
  const fitting = distinct.filter((p) => renderChatPrompt(tokenizer, p.prompt, template).length <= cfg.data.max_prompt_tokens);
  if (fitting.length < distinct.length) {
    log(`rs: ${distinct.length - fitting.length} prompts are longer than data.max_prompt_tokens=${cfg.data.max_prompt_tokens}; skipped`);
  }
  const chosen = fitting.slice(0, cfg.data.max_prompts ?? undefined);
  if (chosen.length === 0) throw new UserError(`data.prompts: ${cfg.data.prompts} has no prompt left to sample (after data.exclude and data.max_prompt_tokens)`);
  return chosen;
}

/** What the samples depend on besides K, batch size, seed and the prompt list. */
function samplingSettings(cfg: RsConfig, modelDir: string, rewardDir: string, template: TemplateName): Record<string, unknown> {
  return {
    policy: modelDir,
    reward_model: rewardDir,
    template,
    temperature: cfg.rs.temperature,
    top_p: cfg.rs.top_p,
    max_new_tokens: cfg.rs.max_new_tokens,
  };
}

async function sampleAll(
  cfg: RsConfig,
  run: StageRun,
  model: LlamaModel,
  tokenizer: Tokenizer,
  template: TemplateName,
  prompts: Array<{ key: string; prompt: Message[] }>,
  settings: Record<string, unknown>,
  score: ReplyScorer,
  hooks: RsHooks,
  log: (m: string) => void,
): Promise<SampledPrompt[]> {
  const dir = join(run.dir, SAMPLES_DIR);
  const sample = policySampler(model, tokenizer, {
    template,
    maxNewTokens: cfg.rs.max_new_tokens,
    temperature: cfg.rs.temperature,
    topP: cfg.rs.top_p,
    batchSize: cfg.rs.batch_size,
  });
  log(`rs: ${cfg.rs.k} samples for each of ${prompts.length} prompts at temperature ${cfg.rs.temperature}`);
  let bar: ConsoleProgress | undefined;
  const started = Date.now();
  try {
    const result = await sampleAndScore({
      dir,
      prompts,
      k: cfg.rs.k,
      batchSize: cfg.rs.batch_size,
      seed: cfg.engine.seed,
      settings,
      sample,
      score,
      shouldStop: () => run.stop.poll(),
      onChunk: (done, chunks) => {
        if (hooks.progress !== false) {
          bar ??= new ConsoleProgress({ total: chunks, startStep: done - 1, label: 'rs sample', keys: [] });
          bar.update(done);
        }
        hooks.onChunk?.(done, chunks);
      },
      log,
    });
    bar?.stop();
    if (!result.complete) {
      throw new StageStopped(
        `${run.stop.signal ?? 'stop'} received: stopped after sampling chunk ${result.chunksDone} of ${result.chunks}; ` +
          `the samples so far are in ${dir}. Run the same command again to resume.`,
        { exitCode: run.stop.exitCode || 130 },
      );
    }
    log(`rs: ${result.prompts.length} prompts sampled and scored (${result.reused} chunks reused) in ${((Date.now() - started) / 1000).toFixed(0)}s`);
    return result.prompts;
  } finally {
    bar?.stop();
  }
}

/** The previous round's pool, every reply re-scored by this round's reward model (their old rewards came from another one). */
async function readPool(
  file: string,
  score: ReplyScorer,
  cfg: RsConfig,
  log: (m: string) => void,
): Promise<Map<string, PoolEntry>> {
  const rows: PoolEntry[] = [];
  for await (const r of readJsonl(file)) {
    if (r.error !== undefined) throw new UserError(`rs.pool: ${file} line ${r.row}: ${r.error}`);
    const v = r.value as Partial<PoolEntry>;
    if (!Array.isArray(v.prompt) || typeof v.reply !== 'string') {
      throw new UserError(`rs.pool: ${file} line ${r.row}: expected {prompt: messages, reply: text, ...} (a pool.jsonl written by rlhf rs)`);
    }
    rows.push({ prompt: v.prompt, reply: v.reply, reward: 0, origin: typeof v.origin === 'string' ? v.origin : file });
  }
  // The exclusion guard holds for the pool too: a pool from an older run without it cannot leak held-out prompts.
  const excluded = await readExcludedPrompts(cfg.data.exclude.map(resolveDataPath));
  const { kept, dropped } = withoutExcluded(rows, (e) => e.prompt, excluded);
  if (dropped > 0) log(`rs: ${dropped} pool prompts are in data.exclude; dropped from the pool`);
  const rewards = await score(kept.map((e) => e.prompt), kept.map((e) => e.reply));
  const pool = new Map<string, PoolEntry>();
  kept.forEach((e, i) => pool.set(promptKey(e.prompt), { ...e, reward: rewards[i]! }));
  log(`rs: pool of ${pool.size} best replies from ${file}, re-scored by this round's reward model`);
  return pool;
}

function bestOfKReport(cfg: RsConfig, samples: readonly SampledPrompt[], judge: ReplyJudge | undefined): BestOfKReport {
  const all = samples.flatMap((s) => s.finished);
  let judged: BestOfKReport['judge'] = null;
  if (judge) {
    const prompts = samples.map((s) => s.prompt);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    judged = {
      best: mean(judge(prompts, samples.map((s) => s.replies[bestIndex(s.rewards)]!))),
      median: mean(judge(prompts, samples.map((s) => s.replies[medianIndex(s.rewards)]!))),
      first: mean(judge(prompts, samples.map((s) => s.replies[0]!))),
    };
  }
  return {
    prompts: samples.length,
    k: cfg.rs.k,
    temperature: cfg.rs.temperature,
    curve: bestOfKCurve(samples.map((s) => s.rewards), cfg.rs.k),
    judge: judged,
    unfinished: all.filter((f) => !f).length / Math.max(1, all.length),
  };
}

/** Logged once at step 0 of a fresh run: the curve as one metric per K, and the judge comparison. */
function stageZeroMetrics(r: BestOfKReport, s: Selection): Record<string, number> {
  const m: Record<string, number> = { 'rs/prompts': r.prompts, 'rs/kept': s.kept.length, 'rs/from_pool': s.fromPool, 'rs/unfinished': r.unfinished };
  for (const p of r.curve) {
    m[`rs/reward_max_at_${p.k}`] = p.reward_max;
    m[`rs/reward_median_at_${p.k}`] = p.reward_median;
  }
  if (r.judge) {
    m['rs/judge_best'] = r.judge.best;
    m['rs/judge_median'] = r.judge.median;
    m['rs/judge_first'] = r.judge.first;
  }
  return m;
}

function logSelection(r: BestOfKReport, s: Selection, log: (m: string) => void): void {
  const curve = r.curve.map((p) => `K=${p.k}: max ${p.reward_max.toFixed(3)} median ${p.reward_median.toFixed(3)}`).join('; ');
  log(`rs: best of K over ${r.prompts} prompts: ${curve}`);
  if (r.judge) log(`rs: gold judge: best ${r.judge.best.toFixed(3)}, median ${r.judge.median.toFixed(3)}, first sample ${r.judge.first.toFixed(3)}`);
  if (s.fromPool > 0 || s.carried > 0) log(`rs: pool: ${s.fromPool} prompts kept an earlier round's reply, ${s.carried} carried over unsampled`);
  if (r.unfinished > 0) log(`rs: ${(100 * r.unfinished).toFixed(1)}% of samples ran out of rs.max_new_tokens before their turn end`);
}

/** Kept dialogues as training examples (loss on the reply only), an optional seeded eval split. */
function trainingData(
  cfg: RsConfig,
  kept: readonly PoolEntry[],
  tokenizer: Tokenizer,
  template: TemplateName,
  log: (m: string) => void,
): { train: Example[]; evalBatches: TokenBatch[]; evalCount: number } {
  const nonEmpty = kept.filter((e) => e.reply.trim() !== '');
  if (nonEmpty.length < kept.length) log(`rs: ${kept.length - nonEmpty.length} prompts kept an empty reply; not trained on`);
  let examples = nonEmpty.map((e) => tokenizeDialogue(tokenizer, [...e.prompt, { role: 'assistant', content: e.reply }], { template, strategy: 'train_on_last' }));
  // keep_end truncation keeps the reply; an example needs a trained token after the first position.
  examples = examples.filter((ex) => ex.labels.slice(-cfg.data.max_length).slice(1).some((l) => l !== IGNORE_INDEX));
  let evalSet: Example[] = [];
  if (cfg.data.eval_split > 0) {
    if (cfg.data.eval_split >= examples.length) {
      throw new UserError(`data.eval_split: ${cfg.data.eval_split} rows held out, but only ${examples.length} dialogues were kept`);
    }
    ({ train: examples, eval: evalSet } = trainEvalSplit(examples, { seed: cfg.train.seed ?? cfg.engine.seed, evalSize: cfg.data.eval_split }));
  }
  if (examples.length === 0) throw new UserError('rs: no kept dialogue to train on');
  const evalRows = evalSet.slice(0, cfg.data.eval_max_rows ?? undefined);
  const evalBatches: TokenBatch[] = [];
  for (let i = 0; i < evalRows.length; i += cfg.train.batch_size) {
    evalBatches.push(collateTrain(evalRows.slice(i, i + cfg.train.batch_size), { padId: tokenizer.padId, maxLength: cfg.data.max_length, truncation: 'keep_end', padToMultipleOf: 8 }));
  }
  return { train: examples, evalBatches, evalCount: evalSet.length };
}

