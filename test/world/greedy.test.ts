import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { generate } from '../../src/generation/index.js';
import { llamaConfig } from '../../src/model/config.js';
import { initLlama, type LlamaModel } from '../../src/model/llama.js';
import { loadTokenizer, renderChatPrompt, turnEndIds, type Tokenizer } from '../../src/tokenizer/index.js';
import type { ChatMessage } from '../../src/world/generate.js';
import { greedyChatGenerator } from '../../src/world/greedy.js';

let model: LlamaModel;
let tokenizer: Tokenizer;
beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  tokenizer = await loadTokenizer('test/fixtures/tokenizers/byte-level-bpe');
  const cfg = llamaConfig({
    vocab_size: tokenizer.vocabSize, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, initializer_range: 0.5,
    pad_token_id: tokenizer.padId, bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId,
  });
  model = initLlama(cfg, new Rng(7));
});
afterAll(() => model.dispose());

const prompts: ChatMessage[][] = [
  [{ role: 'user', content: 'What is 3 plus 4?' }],
  [{ role: 'system', content: 'Persona: robot' }, { role: 'user', content: 'Spell cat backwards.' }],
  [{ role: 'user', content: 'Which is bigger, 7 or 12?' }],
];

test('batched greedy replies equal one-at-a-time replies and the decoded generate() output', async () => {
  const before = tf.memory().numTensors;
  const opts = { template: 'llama2' as const, maxNewTokens: 12 };
  const batched = await greedyChatGenerator(model, tokenizer, { ...opts, batchSize: 3 })(prompts);
  const single = await greedyChatGenerator(model, tokenizer, { ...opts, batchSize: 1 })(prompts);
  expect(batched).toEqual(single);
  expect(tf.memory().numTensors).toBe(before);

  const stop = turnEndIds(tokenizer, 'llama2');
  const direct = generate(model, [renderChatPrompt(tokenizer, prompts[0]!, 'llama2')], { maxNewTokens: 12, temperature: 0, stopTokenIds: stop });
  const ids = direct.tokens[0]!.filter((id, i) => direct.mask[0]![i] === 1 && !stop.includes(id));
  expect(batched[0]).toBe(tokenizer.decode(ids, { skipSpecialTokens: true }).trim());
  expect(batched[0]!.length).toBeGreaterThan(0);
});
