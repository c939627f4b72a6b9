/** DPO's held-out evaluation: TRL's pair metrics with an eval/ prefix and the loss, and, with a judge, the judged answers. */
import type { Message } from '../data/index.js';
import type { LlamaModel } from '../model/index.js';
import type { TemplateName, Tokenizer } from '../tokenizer/index.js';
import type { Metrics } from '../training/loop.js';
import { collateDpo, type DpoPair } from './data.js';
import { answerAndJudge, type JudgedAnswers, type PromptJudge } from './judge.js';
import { dpoLossOfRecords, pairStats, type DpoLossSettings, type PairRecord } from './loss.js';
import { logpsOf, pairRecords, type ReferenceLogps } from './reference.js';

/** The loop's evaluate(); `judged.last` holds the latest judged answers (for eval.json). */
export function dpoEvaluator(opts: {
  policy: LlamaModel;
  reference: ReferenceLogps;
  pairs: readonly DpoPair[];
  settings: DpoLossSettings;
  batchSize: number;
  tokenizer: Tokenizer;
  template: TemplateName;
  /** Held-out prompts to answer and judge (none without a judge). */
  prompts: Message[][];
  judge: PromptJudge | undefined;
  generation: { max_new_tokens: number; batch_size: number };
}): { evaluate: () => Metrics | null; judged: { last: JudgedAnswers | null } } {
  const { policy, pairs, settings, tokenizer } = opts;
  const judged: { last: JudgedAnswers | null } = { last: null };
  const evaluate = (): Metrics | null => {
    const out: Metrics = {};
    if (pairs.length > 0) {
      const records: PairRecord[] = [];
      for (let i = 0; i < pairs.length; i += opts.batchSize) {
        const chunk = pairs.slice(i, i + opts.batchSize);
        const batch = collateDpo(chunk, { padId: tokenizer.padId });
        const ref = opts.reference(chunk, batch);
        records.push(...pairRecords(chunk, logpsOf(policy, batch, false), ref));
      }
      out['eval/loss'] = dpoLossOfRecords(records, settings, pairs.map((p) => p.weight));
      for (const [k, v] of Object.entries(pairStats(records, settings.beta))) out[`eval/${k}`] = v;
    }
    if (opts.prompts.length > 0) {
      judged.last = answerAndJudge(policy, tokenizer, opts.template, opts.prompts, opts.judge!, opts.generation);
      out['eval/judge_score'] = judged.last.score.mean;
    }
    return Object.keys(out).length > 0 ? out : null;
  };
  return { evaluate, judged };
}

/** The log line of a held-out evaluation: loss, accuracy, margin and judge score. */
export function evalSummary(metrics: Metrics): string {
  const shown = ['eval/loss', 'eval/rewards/accuracies', 'eval/rewards/margins', 'eval/judge_score'];
  return Object.entries(metrics).filter(([k]) => shown.includes(k)).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ');
}
