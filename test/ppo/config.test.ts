import { loadConfig } from '../../src/config/index.js';
import { ppoConfigSchema } from '../../src/ppo/config.js';
import { packagePath } from '../../src/paths.js';

describe('ppo config', () => {
  test('the shipped world_lora config validates, with defaults filled in', () => {
    const { config } = loadConfig(packagePath('configs/ppo/world_lora.yaml'), [], { stage: 'ppo', schema: ppoConfigSchema });
    expect(config.model.path).toBe('runs/world/sft/final/merged');
    expect(config.train.rollout_batch_size % config.ppo.mini_batch_size).toBe(0);
    expect(config.kl).toEqual({ controller: 'adaptive', init_coef: 0.05, target: 6, horizon: 10000 });
    expect(config.ppo.ratio_threshold).toBe(10); // a default
    expect(config.rewards.kl_estimator).toBe('k1');
  });

  test('overrides are checked: an unknown estimator and a misspelt key are both reported', () => {
    expect(() => loadConfig(packagePath('configs/ppo/world_lora.yaml'), ['rewards.kl_estimator=k2', 'ppo.clip_rnge=0.1'], { stage: 'ppo', schema: ppoConfigSchema }))
      .toThrow(/rewards\.kl_estimator[\s\S]*ppo\.clip_rnge|ppo\.clip_rnge[\s\S]*rewards\.kl_estimator/);
  });

  test('LoRA dropout > 0 is refused at the key (the ratio would not be 1 before an update, and resume not exact)', () => {
    expect(() => loadConfig(packagePath('configs/ppo/world_lora.yaml'), ['lora.dropout=0.05'], { stage: 'ppo', schema: ppoConfigSchema }))
      .toThrow(/lora\.dropout: must be 0 in PPO: dropout makes the importance ratio differ from 1/);
    expect(loadConfig(packagePath('configs/ppo/world_lora.yaml'), ['lora.dropout=0'], { stage: 'ppo', schema: ppoConfigSchema }).config.lora.dropout).toBe(0);
  });
});
