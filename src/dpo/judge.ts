/**
 * DPO's optional judged evaluation: greedy answers to held-out prompts, scored by a judge the
 * pipeline or the CLI passes in (the world's gold judge) — this stage never imports the world.
 */
import type { Message } from '../data/index.js';
import { loadDataset } from '../data/index.js';
import { generate } from '../generation/index.js';
import type { LlamaModel } from '../model/index.js';
import { resolveDataPath } from '../paths.js';
import { renderChatPrompt, turnEndIds, type TemplateName, type Tokenizer } from '../tokenizer/index.js';

/** The judge's score of the held-out answers (the report's JudgeEval format). */
export const EVAL_FILE = 'eval.json';

/** Scores replies to prompts (mean in [0, 1], per family, per prompt). */
export type PromptJudge = (
  prompts: readonly (readonly Message[])[],
  replies: readonly string[],
) => { mean: number; byFamily: Record<string, { mean: number }>; scores: number[] };

export interface JudgedAnswers {
  prompts: Message[][];
  replies: string[];
  score: ReturnType<PromptJudge>;
}

/** Greedy answers to the held-out prompts (until a turn-end token), scored by the judge. */
export function answerAndJudge(
  model: LlamaModel,
  tokenizer: Tokenizer,
  template: TemplateName,
  prompts: Message[][],
  judge: PromptJudge,
  settings: { max_new_tokens: number; batch_size: number },
): JudgedAnswers {
  const stopTokenIds = turnEndIds(tokenizer, template);
  const replies: string[] = [];
  for (let start = 0; start < prompts.length; start += settings.batch_size) {
    const batch = prompts.slice(start, start + settings.batch_size).map((p) => renderChatPrompt(tokenizer, p, template));
    const out = generate(model, batch, { maxNewTokens: settings.max_new_tokens, temperature: 0, stopTokenIds, padTokenId: tokenizer.padId });
    out.tokens.forEach((row, r) => {
      const kept = row.filter((id, i) => out.mask[r]![i] === 1 && !stopTokenIds.includes(id));
      replies.push(tokenizer.decode(kept, { skipSpecialTokens: true }).trim());
    });
  }
  return { prompts, replies, score: judge(prompts, replies) };
}

/** eval.json as the run report reads a generating stage's (judge_score, by_family, count, samples). */
export function judgeEvalJson(j: JudgedAnswers): Record<string, unknown> {
  const lastUser = (m: Message[]) => [...m].reverse().find((x) => x.role === 'user')?.content ?? '';
  return {
    judge_score: j.score.mean,
    by_family: Object.fromEntries(Object.entries(j.score.byFamily).map(([f, s]) => [f, s.mean])),
    count: j.replies.length,
    samples: j.prompts.slice(0, 3).map((p, i) => ({ prompt: lastUser(p), completion: j.replies[i]!, score: j.score.scores[i]! })),
  };
}

/** Held-out prompts as message lists (a text prompt is one user message). */
export async function readEvalPrompts(file: string, limit: number | null, log: (msg: string) => void): Promise<Message[][]> {
  const rows = await loadDataset(resolveDataPath(file), 'prompts', { warn: log });
  const prompts = rows.map((r): Message[] => ('messages' in r ? r.messages : typeof r.prompt === 'string' ? [{ role: 'user', content: r.prompt }] : r.prompt));
  return limit === null ? prompts : prompts.slice(0, limit);
}
