import { run, type CliIo } from '../../src/cli/main.js';

async function rlhf(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += t + '\n'), err: (t) => void (err += t + '\n'), debug: false };
  const code = await run(argv, io);
  return { code, out, err };
}

describe('rlhf pretrain', () => {
  test('the shipped config is valid and found by its short name', async () => {
    const r = await rlhf('validate', 'pretrain/world_tiny');
    expect(r.err).toBe('');
    expect(r.out).toMatch(/world_tiny\.yaml: valid pretrain config/);
  });

  test('a misspelt override is reported with the nearest key before anything runs (exit 2)', async () => {
    const r = await rlhf('pretrain', '--config', 'pretrain/world_tiny', 'model.hidden_sise=64', 'data.seq_len=1');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/model\.hidden_sise: unknown key \(did you mean model\.hidden_size\?\)/);
    expect(r.err).toMatch(/data\.seq_len/);
  });

  test('--help lists the stage keys with their defaults', async () => {
    const r = await rlhf('pretrain', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/data\.token_budget/);
    expect(r.out).toMatch(/tokenizer\.vocab_size/);
  });
});
