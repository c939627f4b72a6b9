/**
 * The pipeline's final evaluation: every model (base, SFT, PPO, GAtt) answers the same held-out
 * prompts greedily and the world's gold judge scores the answers; one `eval/<model>.json` each
 * (the report's JudgeEval format).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../config/write.js';
import { initEngine } from '../engine/index.js';
import { loadAdapter } from '../lora/index.js';
import { loadHfModel } from '../model/index.js';
import type { JudgeEval } from '../report/inputs.js';
import { loadTokenizer, pickTemplate } from '../tokenizer/index.js';
import { readPrompts } from '../data/prompts.js';
import { judgeResponses } from '../world/evaluate.js';
import { judgeSafetyResponses } from '../world/safety-eval.js';
import { greedyChatGenerator } from '../world/greedy.js';
import type { FinalEvaluationInput } from './runner.js';
import { resolvePackagePath } from './wiring.js';

/** The text a sample shows for a prompt: its last user message. */
function promptText(messages: ReadonlyArray<{ role: string; content: string }>): string {
  return [...messages].reverse().find((m) => m.role === 'user')?.content ?? messages[messages.length - 1]?.content ?? '';
}

export async function judgeModels({ models, settings, outDir, log }: FinalEvaluationInput): Promise<void> {
  await initEngine({ backend: settings.backend });
  // through src/data: JSONL, Arrow or Parquet, TRL's prompt / messages columns
  const prompts = (await readPrompts(resolvePackagePath(settings.prompts), { warn: log })).slice(0, settings.limit ?? undefined);
  const safetyPrompts = settings.safety_prompts === null ? [] : (await readPrompts(resolvePackagePath(settings.safety_prompts), { warn: log })).slice(0, settings.safety_limit ?? undefined);
  mkdirSync(outDir, { recursive: true });
  for (const [name, ref] of Object.entries(models)) {
    const tokenizer = await loadTokenizer(ref.path);
    const model = loadHfModel(ref.path);
    try {
      if (ref.adapter !== null) loadAdapter(model, ref.adapter);
      const template = pickTemplate('auto', tokenizer);
      const generate = greedyChatGenerator(model, tokenizer, { template, maxNewTokens: settings.max_new_tokens, batchSize: settings.batch_size });
      const replies = await generate(prompts);
      const score = judgeResponses(prompts, replies);
      const result: JudgeEval = {
        judge_score: score.mean,
        by_family: Object.fromEntries(Object.entries(score.byFamily).map(([f, s]) => [f, s.mean])),
        count: score.count,
        samples: prompts.slice(0, settings.samples).map((p, i) => ({ prompt: promptText(p), completion: replies[i]!, score: score.scores[i]! })),
      };
      if (safetyPrompts.length > 0) {
        // Llama 2 §4: violations on harmful prompts, false refusals on borderline ones, and each reply's point.
        const safety = judgeSafetyResponses(safetyPrompts, await generate(safetyPrompts));
        Object.assign(result, safety);
        log(`pipeline: eval: ${name} violation rate ${safety.violation_rate?.toFixed(3)} (${safety.harmful_count} harmful), ` +
          `false refusals ${safety.false_refusal_rate?.toFixed(3)} (${safety.borderline_count} borderline)`);
      }
      writeFileAtomic(join(outDir, `${name}.json`), JSON.stringify(result, null, 2) + '\n');
      log(`pipeline: eval: ${name} judge score ${score.mean.toFixed(3)} over ${score.count} prompts`);
    } finally {
      model.dispose();
    }
  }
}
