import { checkRow, type DatasetKind } from '../../src/data/schemas.js';

const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });
const system = (content: string) => ({ role: 'system', content });

function issues(kind: DatasetKind, row: unknown): string[] {
  const r = checkRow(kind, row);
  return r.ok ? [] : r.issues.map((i) => `${i.field}: ${i.reason}`);
}

describe('sft rows', () => {
  test('the three TRL forms pass and come back as given', () => {
    const rows = [
      { messages: [system('s'), user('u'), assistant('a'), user('u2'), assistant('a2')] },
      { prompt: 'p', completion: 'c' },
      { text: 't' },
    ];
    for (const row of rows) expect(checkRow('sft', row)).toEqual({ ok: true, row });
  });

  test('null columns (Arrow rows lacking a key) are absent columns', () => {
    expect(checkRow('sft', { messages: null, prompt: null, completion: null, text: 'hello' })).toEqual({ ok: true, row: { text: 'hello' } });
  });

  test('semantic checks name the field', () => {
    expect(issues('sft', { messages: [user('u'), assistant('  ')] })).toEqual(['messages[1].content: must not be empty']);
    expect(issues('sft', { messages: [user('u'), { role: 'assistant' }] })).toEqual(['messages[1].content: missing (expected a string)']);
    expect(issues('sft', { messages: [assistant('a')] })).toEqual([
      'messages[0].role: "assistant": expected a user turn (roles alternate user/assistant after an optional system message)',
    ]);
    expect(issues('sft', { messages: [user('u'), system('s'), assistant('a')] })).toEqual([
      'messages[1].role: "system": a system message may only come first',
    ]);
    expect(issues('sft', { messages: [system('s'), user('u')] })).toEqual(['messages: must end on an assistant turn, ends on "user"']);
    expect(issues('sft', { messages: [] })).toEqual(['messages: must hold at least one message']);
    expect(issues('sft', { prompt: 'p' })).toEqual(['completion: missing (expected a string)']);
    expect(issues('sft', { text: 3 })).toEqual(['text: expected a string, got a number']);
    expect(issues('sft', { title: 'x' })).toEqual([': no SFT columns: expected "messages", "prompt" + "completion", or "text" (found: title)']);
    expect(issues('sft', [1])).toEqual([': a row must be an object with named columns, got an array']);
  });
});

describe('preference rows', () => {
  test('standard, implicit-prompt and conversational forms pass', () => {
    const rows = [
      { prompt: 'p', chosen: 'c', rejected: 'r', margin: 1, strength: 'significantly_better' },
      { chosen: 'p c', rejected: 'p r' },
      { prompt: [user('u')], chosen: [assistant('c')], rejected: [assistant('r')] },
      { chosen: [user('u'), assistant('c')], rejected: [user('u'), assistant('r')], strength: 'negligibly_better' },
    ];
    for (const row of rows) expect(checkRow('preference', row)).toEqual({ ok: true, row });
  });

  test('bad strength, margin, mixed forms and bad turns are reported by field', () => {
    expect(issues('preference', { chosen: 'c', rejected: 'r', strength: 'much_better' })).toEqual([
      'strength: unknown strength "much_better" (expected significantly_better | better | slightly_better | negligibly_better)',
    ]);
    expect(issues('preference', { chosen: 'c', rejected: 'r', margin: 'big' })).toEqual(['margin: expected a number, got a string']);
    expect(issues('preference', { chosen: 'c', rejected: [assistant('r')] })).toEqual(['rejected: chosen and rejected must both be strings or both message lists']);
    expect(issues('preference', { prompt: 'p', chosen: [assistant('c')], rejected: [assistant('r')] })).toEqual([
      'prompt: prompt must be a message list exactly when chosen and rejected are',
    ]);
    expect(issues('preference', { prompt: [user('u')], chosen: [{ role: 'bot', content: 'x' }], rejected: [assistant('r')] })).toEqual([
      'chosen[0].role: unknown role "bot" (expected system | user | assistant)',
    ]);
    expect(issues('preference', { prompt: [user('u')], chosen: [user('c')], rejected: [assistant('r')] })).toEqual([
      'chosen[0].role: "user": expected an assistant turn (roles alternate user/assistant after an optional system message)',
    ]);
    expect(issues('preference', { prompt: 'p', chosen: 'c' })).toEqual([
      'rejected: missing (must be a non-empty string or a list of {role, content} messages)',
    ]);
  });
});

describe('prompt rows', () => {
  test('a prompt string or a dialogue ending on a user turn', () => {
    expect(checkRow('prompts', { prompt: 'p' }).ok).toBe(true);
    expect(checkRow('prompts', { prompt: [system('s'), user('u')] }).ok).toBe(true); // TRL conversational prompt-only
    expect(issues('prompts', { prompt: [user('u'), assistant('a')] })).toEqual(['prompt: must end on a user turn, ends on "assistant"']);
    expect(issues('prompts', { prompt: 7 })).toEqual(['prompt: must be a non-empty string or a list of {role, content} messages']);
    expect(checkRow('prompts', { messages: [system('s'), user('u'), assistant('a'), user('u2')] }).ok).toBe(true);
    expect(issues('prompts', { messages: [user('u'), assistant('a')] })).toEqual(['messages: must end on a user turn, ends on "assistant"']);
    expect(issues('prompts', { completion: 'c' })).toEqual([': no prompt columns: expected "prompt" or "messages" (found: completion)']);
  });
});
