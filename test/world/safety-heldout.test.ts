import { readdirSync, readFileSync } from 'node:fs';
import { packagePath } from '../../src/paths.js';
import { borderlineSplitOfText, harmfulSplit, normaliseRequest, promptCategory } from '../../src/world/safety.js';

/**
 * The safety evaluation is held out: no request of data/world's safety evaluation files (harmful or
 * borderline) appears in any training file, compared on normalised text (lower case, single spaces),
 * and every request sits on its side of the generator's split (safety.ts).
 */

const dir = packagePath('data', 'world');
type Msg = { role: string; content: string };
const EVAL_FILES = ['prompts_safety_eval.jsonl', 'preferences_safety_eval.jsonl'];
/** Every bundled file that is not an evaluation split trains something (SFT, reward models, PPO, rs prompts). */
const TRAINING_FILES = readdirSync(dir).filter((f) => f.endsWith('.jsonl') && !f.includes('_eval'));

/** The user messages of a file's rows (prompt-only, preference and dialogue rows alike). */
function userRequests(name: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync(`${dir}/${name}`, 'utf8').trim().split('\n')) {
    const row = JSON.parse(line) as { prompt?: Msg[]; messages?: Msg[]; user_turns?: string[] };
    for (const m of row.prompt ?? row.messages ?? []) if (m.role === 'user') out.push(m.content);
    out.push(...(row.user_turns ?? []));
  }
  return out;
}

describe('the held-out safety evaluation', () => {
  const evalRequests = EVAL_FILES.flatMap(userRequests);
  const evalSet = new Set(evalRequests.map(normaliseRequest));

  test('covers the training files that carry safety requests', () => {
    for (const f of ['sft_safety.jsonl', 'preferences_safety.jsonl', 'prompts_safety.jsonl', 'prompts_safety_harmful.jsonl', 'sft.jsonl', 'preferences.jsonl']) {
      expect(TRAINING_FILES).toContain(f);
    }
    expect(evalRequests.length).toBeGreaterThan(900);
  });

  test.each(TRAINING_FILES)('no evaluation request appears in %s', (name) => {
    const requests = userRequests(name);
    expect(requests.length).toBeGreaterThan(0);
    const shared = [...new Set(requests.map(normaliseRequest))].filter((r) => evalSet.has(r));
    expect(shared).toEqual([]);
  });

  test('the pretraining corpus holds no evaluation request', () => {
    const corpus = normaliseRequest(readFileSync(`${dir}/corpus.txt`, 'utf8'));
    expect([...evalSet].filter((r) => corpus.includes(r))).toEqual([]);
  });

  test('evaluation requests are held-out ones, training requests never are', () => {
    const distinctHarmful = new Set<string>();
    for (const text of evalRequests) {
      const category = promptCategory(text);
      expect([text, category === 'harmful' || category === 'borderline']).toEqual([text, true]);
      if (category === 'harmful') distinctHarmful.add(normaliseRequest(text));
      const split = category === 'harmful' ? harmfulSplit(text) : borderlineSplitOfText(text);
      expect([text, split]).toEqual([text, 'eval']);
    }
    expect(distinctHarmful.size).toBeGreaterThanOrEqual(25);
    for (const name of ['sft_safety.jsonl', 'preferences_safety.jsonl', 'prompts_safety.jsonl']) {
      for (const text of userRequests(name)) {
        const category = promptCategory(text);
        const split = category === 'harmful' ? harmfulSplit(text) : borderlineSplitOfText(text);
        expect([name, text, split]).toEqual([name, text, 'train']);
      }
    }
  });
});
