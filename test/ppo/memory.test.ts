/**
 * PPO's memory check at the SmolLM-135M shape (policy and reward model): what each ppo.critic adds,
 * counted by hand from the shapes, and the refusal of the full value model naming reward_model_lora.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configToJson, llamaConfig, sequenceClassificationArchitecture, causalLmArchitecture } from '../../src/model/config.js';
import { ppoConfigSchema, type PpoConfig } from '../../src/ppo/config.js';
import { checkPpoMemory, ppoMemoryEstimate } from '../../src/ppo/setup.js';

// HuggingFaceTB/SmolLM-135M's shape (bench/shapes.ts)
const smol = llamaConfig({
  vocab_size: 49152, hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9,
  num_key_value_heads: 3, tie_word_embeddings: true, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 2048,
  bos_token_id: 0, eos_token_id: 0,
});

let root: string;
let policyDir: string;
let rewardDir: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'ppo-memory-'));
  policyDir = join(root, 'policy');
  rewardDir = join(root, 'reward');
  mkdirSync(policyDir);
  mkdirSync(rewardDir);
  writeFileSync(join(policyDir, 'config.json'), JSON.stringify(configToJson({ ...smol, architectures: [causalLmArchitecture(smol)] })));
  writeFileSync(join(rewardDir, 'config.json'), JSON.stringify({ ...configToJson({ ...smol, architectures: [sequenceClassificationArchitecture(smol)] }), num_labels: 1 }));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The run: rollout 8, 32 new tokens, LoRA r 16 on all linear layers (configs/ppo/world_lora.yaml). */
function config(critic: PpoConfig['ppo']['critic']): PpoConfig {
  return ppoConfigSchema.parse({
    model: { path: policyDir, reward_model: rewardDir },
    lora: { r: 16, alpha: 32, target_modules: 'all-linear' },
    train: { rollout_batch_size: 8 },
    generation: { max_new_tokens: 32 },
    ppo: { mini_batch_size: 4, critic },
  });
}

const extra = (critic: PpoConfig['ppo']['critic']): number => {
  const items = ppoMemoryEstimate(config(critic)).items.filter((i) => i.what.startsWith('reward model'));
  expect(items).toHaveLength(1);
  return items[0]!.bytes;
};

// Counted by hand from the shape (float32, 4 bytes a number).
const H = 576;
const LAYERS = 30;
const PARAMS = 49152 * H /* embeddings (tied head) */ + LAYERS * (
  H * 576 + 2 * H * 192 + 576 * H /* q, k, v, o */ + 3 * H * 1536 /* gate, up, down */ + 2 * H /* norms */
) + H /* final norm */;
const LORA_PARAMS = LAYERS * 16 * ((576 + 576) + 2 * (576 + 192) + (576 + 576) + 2 * (576 + 1536) + (1536 + 576));
const TOKENS = 4 * (128 + 32); // mini-batch × (data.max_prompt_tokens + generation.max_new_tokens)

describe('PPO memory at the 135M shape', () => {
  test('policy_head adds the reward model\'s weights; reward_model_lora only the adapters\' and head\'s state and activations; reward_model a second copy trained in full', () => {
    expect(PARAMS).toBe(134_515_008);
    expect(extra('policy_head')).toBe(4 * PARAMS);
    const lora = extra('reward_model_lora');
    const full = extra('reward_model');
    // The full value model beside the shared one: its own weights + gradients, accumulated gradients and
    // two AdamW moments (5 copies). The LoRA critic instead keeps its adapters' weights, gradients,
    // accumulated gradients and moments (5 × r(in + out) per projection), the value head's (5 × H), and
    // per token and layer the [tokens, r] product of each of its 7 adapters (30 layers kept, and one
    // more in flight in the backward pass); both keep the same backbone activations.
    expect(full - lora).toBe(5 * 4 * PARAMS - 5 * 4 * LORA_PARAMS - 5 * 4 * H - 4 * TOKENS * (LAYERS + 1) * 16 * 7);
    expect(lora - extra('policy_head')).toBeGreaterThan(5 * 4 * LORA_PARAMS);
  });

  test('reward_model is refused on the 4 GiB wasm heap with reward_model_lora as the change; reward_model_lora fits', () => {
    const saved = process.env['RLHF_MEMORY_CHECK'];
    delete process.env['RLHF_MEMORY_CHECK'];
    try {
      expect(() => checkPpoMemory(config('reward_model'), 'wasm', () => undefined)).toThrow(/ppo: this run will not fit in memory[\s\S]*ppo\.critic: reward_model_lora \(now reward_model\)/);
      const logs: string[] = [];
      checkPpoMemory(config('reward_model_lora'), 'wasm', (m) => logs.push(m));
      expect(logs.join('\n')).toMatch(/ppo: estimated peak memory [\d.]+ GiB \(wasm heap [\d.]+ GiB of 4\.0 GiB\)/);
    } finally {
      if (saved !== undefined) process.env['RLHF_MEMORY_CHECK'] = saved;
    }
  });
});
