/** Steps 1–2 of the recipe on the run folder: K replies per prompt, scored, resumable by chunk, stoppable by signal. */
import { join } from 'node:path';
import type { Message } from '../data/schemas.js';
import type { LlamaModel } from '../model/index.js';
import type { TemplateName, Tokenizer } from '../tokenizer/index.js';
import { ConsoleProgress } from '../tracking/index.js';
import { StageStopped, type StageRun } from '../training/run.js';
import type { RsConfig } from './config.js';
import { policySampler } from './policy-sampler.js';
import { SAMPLES_DIR, sampleAndScore, type ReplyScorer, type SampledPrompt } from './sampling.js';

export async function sampleAll(
  cfg: RsConfig,
  run: StageRun,
  model: LlamaModel,
  tokenizer: Tokenizer,
  template: TemplateName,
  prompts: Array<{ key: string; prompt: Message[] }>,
  settings: Record<string, unknown>,
  score: ReplyScorer,
  hooks: { progress?: boolean; onChunk?: (chunksDone: number, chunks: number) => void },
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
