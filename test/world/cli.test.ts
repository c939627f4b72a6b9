import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthCommand } from '../../src/cli/data-synth.js';
import { worldCommand } from '../../src/cli/world.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { llamaConfig } from '../../src/model/config.js';
import { saveHfModel } from '../../src/model/index.js';
import { initLlama } from '../../src/model/llama.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { generateWorld } from '../../src/world/generate.js';
import { runCommand } from '../helpers/cli.js';

const cli = runCommand;

const dir = mkdtempSync(join(tmpdir(), 'rlhf-world-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('data synth writes the same files as generateWorld, one line per file', async () => {
  const out = join(dir, 'world');
  const lines = await cli(synthCommand, ['synth', '--out', out, '--seed', '2', '--scale', '0.01']);
  expect(lines).toHaveLength(16); // 10 files, and the 6 of the safety dimension
  for (const [name, content] of generateWorld({ seed: 2, scale: 0.01 })) expect(readFileSync(join(out, name), 'utf8')).toBe(content);
  await expect(cli(synthCommand, ['synth', '--out', out, '--seed', '-1'])).rejects.toThrow('--seed must be a non-negative integer, got -1');
});

test('world eval prints the mean judge score and one line per family', async () => {
  await initEngine({ backend: 'cpu' });
  const fixture = 'test/fixtures/tokenizers/byte-level-bpe';
  const tokenizer = await loadTokenizer(fixture);
  const model = initLlama(
    llamaConfig({
      vocab_size: tokenizer.vocabSize, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1,
      num_attention_heads: 2, num_key_value_heads: 2, pad_token_id: tokenizer.padId, eos_token_id: tokenizer.eosId,
    }),
    new Rng(1),
  );
  const modelDir = join(dir, 'model');
  saveHfModel(model, modelDir);
  model.dispose();
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(fixture, f), join(modelDir, f));
  const prompts = join(dir, 'prompts.jsonl');
  writeFileSync(prompts, ['What is 1 plus 1?', 'Spell cat backwards.'].map((p) => JSON.stringify({ prompt: [{ role: 'user', content: p }] })).join('\n'));

  const lines = await cli(worldCommand, ['world', 'eval', '--model', modelDir, '--prompts', prompts, '--max-new-tokens', '4', '--backend', 'cpu']);
  // An untrained model states no answer: only the wrong-answer share of style is left, 0.2 · style
  // with style = 0.2 · polite 0.5 + 0.3 · concise 1 + 0.2 · well_formed 0.25 = 0.45 → 0.09.
  expect(lines.join('\n').split('\n')).toEqual(['judge score: 0.0900 over 2 prompts', '  add           0.0900  (1)', '  backwards     0.0900  (1)']);
});
