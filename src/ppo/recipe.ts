/**
 * The PPO recipe (Llama 2 §3.2.3, Ouyang et al. 2022): optimise a LoRA policy against a reward
 * model, with a per-token KL penalty to the frozen reference (the same backbone, adapters off).
 *
 *   setup (runPpo: setup.ts) → loop (trainPpo: train.ts, on the harness loop): 1. rollout 2. score
 *   3. KL-shaped rewards 4. GAE 5. PPO epochs over minibatches 6. log → save → cleanup
 */
import { join, resolve } from 'node:path';
import type { ResolvedConfig } from '../config/index.js';
import { initEngine } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { injectLora, unloadLora } from '../lora/inject.js';
import { loadAdapter } from '../lora/peft-io.js';
import { loadHfModel } from '../model/io/hf.js';
import { resolveModelPath } from '../model/hub.js';
import { loadTokenizer, pickTemplate, turnEndIds, type ChatMessage } from '../tokenizer/index.js';
import { ADAPTER_BASE_DIR, writeFineTuned } from '../training/fine-tune.js';
import { closeStatusFor, FINAL_DIR, openStageRun, writeFolderAtomic } from '../training/run.js';
import type { StopSignal } from '../training/stop-signal.js';
import type { PpoConfig } from './config.js';
import { answerAndScore } from './evaluate.js';
import { checkPpoMemory, ppoInputs, ppoModels, ppoOptions } from './setup.js';
import { trainPpo } from './train.js';

export { CRITIC_FILE, trainPpo, type PpoIo, type PpoModels, type PpoOptions, type PpoResult } from './train.js';

/** Inside final/: the model the PPO adapter was trained on, when model.adapter was merged into model.path. */
export { ADAPTER_BASE_DIR } from '../training/fine-tune.js';

export interface PpoStageResult {
  outputDir: string;
  /** final/ (null when a stop request ended the run early). */
  finalDir: string | null;
  iterations: number;
  lastEval: Record<string, number> | null;
}

/**
 * A gold judge of held-out answers: the mean score in [0, 1] of `responses` to `prompts`. The
 * bundled world's judge is handed in by the pipeline and `rlhf ppo`; the stage knows no world.
 */
export type ResponseJudge = (prompts: readonly ChatMessage[][], responses: readonly string[]) => number;

/** Run the `ppo` stage from a resolved config: setup → trainPpo → save → cleanup. */
export async function runPpo(
  resolved: ResolvedConfig<PpoConfig>,
  opts: { log?: (m: string) => void; stopSignal?: StopSignal; parentRunId?: string; judge?: ResponseJudge } = {},
): Promise<PpoStageResult> {
  const cfg = resolved.config;
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
  const stepSize = cfg.ppo.mini_batch_size * cfg.optim.grad_accum;
  if (cfg.train.rollout_batch_size % stepSize !== 0) {
    throw new UserError(
      `ppo.mini_batch_size × optim.grad_accum (${cfg.ppo.mini_batch_size} × ${cfg.optim.grad_accum} = ${stepSize}) ` +
        `must divide train.rollout_batch_size (${cfg.train.rollout_batch_size})`,
    );
  }
  const judge = cfg.eval.judge && cfg.data.eval_prompts ? opts.judge : undefined;
  if (cfg.eval.judge && cfg.data.eval_prompts && !judge) {
    throw new UserError('eval.judge: no judge was handed to this run (the pipeline and `rlhf ppo` pass the world\'s gold judge); set eval.judge=false');
  }

  // ── setup ──
  const engine = await initEngine({ backend: cfg.engine.backend, threads: cfg.engine.threads, seed: cfg.engine.seed });
  checkPpoMemory(cfg, engine.backend, log);
  const tokenizerDir = resolveModelPath(cfg.tokenizer.path ?? cfg.model.path);
  const tokenizer = await loadTokenizer(tokenizerDir);
  const template = pickTemplate(cfg.tokenizer.template, tokenizer);
  const stopTokenIds = turnEndIds(tokenizer, template);
  const inputs = await ppoInputs(cfg, tokenizer, template, log);
  const { train, evalMessages, evalIds, stats, rewardSuffix } = inputs;

  const policy = loadHfModel(cfg.model.path);
  const toDispose: Array<{ dispose(): void }> = [policy];
  const run = await openStageRun({
    stage: 'ppo', outputDir: cfg.output_dir, resolved, tracking: cfg.tracking, resume: cfg.train.resume, log,
    ...(opts.stopSignal ? { stopSignal: opts.stopSignal } : {}),
    ...(opts.parentRunId !== undefined ? { parentRunId: opts.parentRunId } : {}),
  });
  try {
    if (cfg.model.adapter !== null) {
      loadAdapter(policy, cfg.model.adapter); // the SFT adapter becomes part of the reference
      unloadLora(policy, { merge: true });
    }
    const initRng = new Rng(cfg.engine.seed);
    injectLora(policy, {
      targetModules: cfg.lora.target_modules, r: cfg.lora.r, alpha: cfg.lora.alpha, dropout: cfg.lora.dropout,
      rng: initRng, dropoutRng: initRng,
    });
    const { rewardModel, critic, scoreRollout } = ppoModels(cfg, policy, inputs, initRng, toDispose);

    const decode = (ids: number[]) => tokenizer.decode(ids.filter((t) => !stopTokenIds.includes(t)), { skipSpecialTokens: true }).trim();
    const evaluate = evalIds.length === 0 ? undefined : () => {
      const answers = answerAndScore(policy, rewardModel, evalIds, {
        maxNewTokens: cfg.generation.max_new_tokens, batchSize: cfg.generation.eval_batch_size, stopTokenIds, padTokenId: tokenizer.padId, rewardSuffix,
      });
      const out: Record<string, number> = { 'eval/reward_mean': answers.scores.reduce((s, x) => s + x, 0) / answers.scores.length };
      if (judge) out['eval/judge_score'] = judge(evalMessages, answers.responses.map(decode));
      log(`ppo eval: ${Object.entries(out).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
      return out;
    };

    // ── train loop ──
    const options = ppoOptions(cfg, { stats, ...(scoreRollout ? { scoreRollout } : {}), stopTokenIds, padTokenId: tokenizer.padId, resume: run.resumeFrom ?? 'never' });
    const result = await trainPpo({ policy, critic, rewardModel, rewardSuffix }, train, options, { runDir: run.dir, tracker: run.tracker, decode, ...(evaluate ? { evaluate } : {}), stop: run.stop, log });
    if (result.stopped) throw run.stoppedError(result.iterations, join(run.dir, 'checkpoints', `step_${result.iterations}`));

    // ── save: the PPO adapter (PEFT) and, with save_merged, the merged policy ──
    const finalDir = join(run.dir, FINAL_DIR);
    // The adapter was trained on model.path with model.adapter merged in: that merged model is written
    // as final/base, and the adapter records its absolute path, so PEFT-style loading (recorded base +
    // adapter) reproduces this stage's policy instead of silently dropping the SFT delta.
    const adapterBase = cfg.model.adapter === null ? resolve(cfg.model.path) : join(resolve(finalDir), ADAPTER_BASE_DIR);
    writeFolderAtomic(finalDir, (tmp) =>
      writeFineTuned(policy, tmp, { lora: true, saveMerged: cfg.save_merged, modelDir: cfg.model.path, tokenizerDir, adapterBase, writeBase: cfg.model.adapter !== null }),
    );
    await run.tracker.setTag('final_dir', finalDir);
    log(`ppo: done after ${result.iterations} iterations; adapter in ${finalDir}`);
    await run.close('FINISHED');
    return { outputDir: run.dir, finalDir, iterations: result.iterations, lastEval: result.lastEval };
  } catch (e) {
    await run.close(closeStatusFor(e));
    throw e;
  } finally {
    // ── cleanup ──
    unloadLora(policy, { merge: false });
    for (const m of toDispose) m.dispose();
  }
}

