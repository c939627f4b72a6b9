import type { Message } from '../../src/data/schemas.js';
import { Rng } from '../../src/engine/rng.js';
import { contextDistill, useDistilled, withSafetyPreprompt } from '../../src/rs/context-distillation.js';
import type { PoolEntry } from '../../src/rs/select.js';

const PRE = 'Be safe.';
const user = (content: string): Message[] => [{ role: 'user', content }];

describe('the safety preprompt', () => {
  test('system placement: a leading system message, or joined before the prompt\'s own by a blank line', () => {
    expect(withSafetyPreprompt(user('Hi'), PRE, 'system')).toEqual([{ role: 'system', content: PRE }, { role: 'user', content: 'Hi' }]);
    const withSystem: Message[] = [{ role: 'system', content: 'Answer in French.' }, { role: 'user', content: 'Hi' }];
    expect(withSafetyPreprompt(withSystem, PRE, 'system')).toEqual([{ role: 'system', content: 'Be safe.\n\nAnswer in French.' }, { role: 'user', content: 'Hi' }]);
    expect(withSystem[0]!.content).toBe('Answer in French.'); // the input is not changed
  });

  test('user_prefix placement: before the first user turn\'s text only', () => {
    const dialogue: Message[] = [...user('Hi'), { role: 'assistant', content: 'Hello.' }, ...user('How do I scare a cat?')];
    expect(withSafetyPreprompt(dialogue, PRE, 'user_prefix')).toEqual([
      { role: 'user', content: 'Be safe. Hi' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: 'How do I scare a cat?' },
    ]);
  });
});

describe('the keep rule (Llama 2 §4.2.4: the safety model decides)', () => {
  test('strictly higher safety score keeps the preprompted reply; a tie, a lower score or an empty reply keeps the plain one', () => {
    expect(useDistilled(0.2, 0.3, 'Sorry.')).toBe(true);
    expect(useDistilled(-1.5, -1.4999, 'Sorry.')).toBe(true);
    expect(useDistilled(0.3, 0.3, 'Sorry.')).toBe(false);
    expect(useDistilled(0.3, 0.2, 'Sorry.')).toBe(false);
    expect(useDistilled(-5, 9, '  ')).toBe(false);
  });
});

describe('contextDistill on a stub sampler and stub scorers', () => {
  const entry = (content: string, reply: string, reward: number): PoolEntry => ({ prompt: user(content), reply, reward, origin: 'runs/x/rs' });
  // Safety scores by reply text; replies sampled with the preprompt per prompt, k = 2 each.
  const SAFETY: Record<string, number> = {
    'Sure, kick it.': -2,
    'Sorry, I can not help with that.': 1.5,
    'Sorry, no.': 0.5,
    'Take it at night.': -1,
    'Hide it.': -1.2,
    'It is 4.': 0.1,
    'Maybe later.': 0.1,
    '': 3,
  };
  const WITH_PRE: Record<string, string[]> = {
    'How do I scare the cat?': ['Sorry, no.', 'Sorry, I can not help with that.'], // best 1.5 > plain −2: used
    'How do I steal a bike?': ['Hide it.', 'Take it at night.'], // best −1 > plain... plain is −1: a tie, not used
    'How do I kick the dog?': ['', 'Sorry, no.'], // the empty one scores 3 but is never used
    'How do I trick my friend?': ['Maybe later.', 'Maybe later.'], // 0.1 = plain 0.1: a tie, not used
  };

  test('swaps in the preprompted reply only where the safety model prefers it; other prompts untouched; rows record both sides', async () => {
    const kept = [
      entry('How do I scare the cat?', 'Sure, kick it.', 0.7),
      entry('What is 2 plus 2?', 'It is 4.', 2.0), // not is_safety: never resampled
      entry('How do I steal a bike?', 'Take it at night.', 0.4),
      entry('How do I kick the dog?', 'Sorry, no.', -0.3),
      entry('How do I trick my friend?', 'Maybe later.', 0.2),
    ];
    const sampledWith: Message[][] = [];
    const scoredPrompts: Message[][] = [];
    const result = await contextDistill({
      kept,
      isSafety: [true, false, true, true, true],
      preprompt: PRE,
      placement: 'system',
      k: 2,
      rng: new Rng(0),
      sample: (prompts, k) => {
        sampledWith.push(...prompts);
        return { replies: prompts.flatMap((p) => WITH_PRE[p[p.length - 1]!.content]!.slice(0, k)), finished: prompts.flatMap(() => [true, true]) };
      },
      safetyScore: (prompts, replies) => {
        scoredPrompts.push(...prompts);
        return replies.map((r) => SAFETY[r]!);
      },
      // The rs reward model's reading of a used reply: its length, so the expected value is known.
      rewardScore: (_prompts, replies) => replies.map((r) => r.length),
    });

    // Sampled with the preprompt, only the is_safety prompts, in order.
    expect(sampledWith.map((p) => p[0])).toEqual([0, 1, 2, 3].map(() => ({ role: 'system', content: PRE })));
    expect(sampledWith.map((p) => p[1]!.content)).toEqual(['How do I scare the cat?', 'How do I steal a bike?', 'How do I kick the dog?', 'How do I trick my friend?']);
    // Scored without it: the preprompt only shaped the sampling.
    expect(scoredPrompts.every((p) => p.length === 1 && p[0]!.role === 'user')).toBe(true);

    expect(result.rows.map((r) => [r.plain_safety, r.distilled_reply, r.distilled_safety, r.used])).toEqual([
      [-2, 'Sorry, I can not help with that.', 1.5, true],
      [-1, 'Take it at night.', -1, false],
      [0.5, '', 3, false], // the empty reply is the safety model's best, and is never used
      [0.1, 'Maybe later.', 0.1, false],
    ]);
    expect(result.rows.map((r) => r.prompt)).toEqual([kept[0]!.prompt, kept[2]!.prompt, kept[3]!.prompt, kept[4]!.prompt]);

    // The kept list: prompt 0 trains on the preprompted reply (without the preprompt), re-scored by the rs reward model.
    expect(result.kept[0]).toEqual({ prompt: user('How do I scare the cat?'), reply: 'Sorry, I can not help with that.', reward: 'Sorry, I can not help with that.'.length, origin: 'runs/x/rs' });
    expect(result.kept.slice(1)).toEqual(kept.slice(1));
    expect(kept[0]!.reply).toBe('Sure, kick it.'); // the input list is not changed
  });

  test('no is_safety prompt: nothing sampled or scored', async () => {
    const kept = [entry('What is 2 plus 2?', 'It is 4.', 2)];
    const fail = () => {
      throw new Error('called');
    };
    const result = await contextDistill({ kept, isSafety: [false], preprompt: PRE, placement: 'system', k: 1, rng: new Rng(0), sample: fail, safetyScore: fail, rewardScore: fail });
    expect(result).toEqual({ kept, rows: [] });
  });
});
