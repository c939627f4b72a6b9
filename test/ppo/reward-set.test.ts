import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRewardKinds, combineScores, rewardModelPaths } from '../../src/ppo/reward-set.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'reward-set-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('combineScores (Llama 2 rule over a rollout batch)', () => {
  test('normalise each model → σ / select / logit / whiten → clip → missing-EOS penalty, by hand', () => {
    const out = combineScores({
      helpfulRaw: [3, -1, 1, 5], // (x − 1) / 2 → 1, −1, 0, 2
      safetyRaw: [2, -3, -2, 1], // mean 0, std 1 → unchanged
      isSafety: [false, false, false, true],
      hasEos: [true, true, false, true],
      helpfulStats: { mean: 1, std: 2 },
      safetyStats: { mean: 0, std: 1 },
      threshold: 0.15,
      clip: 1,
      missingEosPenalty: 0.5,
    });
    // σ(2) ≥ 0.15 → helpfulness 1; σ(−3) = 0.047 and σ(−2) = 0.119 < 0.15 → safety −3, −2; is_safety → safety 1.
    // logits (1, −3, −2, 1): mean −0.75, Σ(x − mean)² = 12.75, unbiased var 4.25
    const w = [1.75, -2.25, -1.25, 1.75].map((d) => d / Math.sqrt(4.25));
    // clip to [−1, 1] (−1.0914 → −1), then the third response (no EOS) pays 0.5
    const expected = [w[0]!, -1, w[2]! - 0.5, w[3]!];
    out.scores.forEach((s, i) => expect(s).toBeCloseTo(expected[i]!, 6));
    expect(out.scores[0]).toBeCloseTo(0.848875, 5);
    expect(out.metrics['objective/scores_helpfulness']).toBeCloseTo(0.5, 12);
    expect(out.metrics['objective/scores_safety']).toBeCloseTo(-0.5, 12);
    expect(out.metrics['objective/combined_from_safety']).toBe(0.75);
    expect(out.metrics['objective/safety_prompts']).toBe(0.25);
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    expect(out.metrics['objective/scores_combined_sigmoid']).toBeCloseTo((2 * sig(1) + sig(-3) + sig(-2)) / 4, 10);
  });
});

describe('reward model settings', () => {
  test('single takes a folder; llama2 takes {helpfulness, safety}; a mismatch names the key to change', () => {
    expect(rewardModelPaths('rm', 'single')).toEqual({ primary: 'rm', safety: null });
    expect(rewardModelPaths({ helpfulness: 'h', safety: 's' }, 'llama2')).toEqual({ primary: 'h', safety: 's' });
    expect(() => rewardModelPaths('rm', 'llama2')).toThrow(/rewards\.combine: llama2 needs two reward models; set model\.reward_model to \{helpfulness/);
    expect(() => rewardModelPaths({ helpfulness: 'h', safety: 's' }, 'single')).toThrow(/set rewards\.combine=llama2/);
  });

  test('reward_model.json must match the slot; a folder without one is taken at its word', () => {
    for (const [name, kind] of [['h', 'helpfulness'], ['s', 'safety'], ['old', null]] as const) {
      mkdirSync(join(dir, name), { recursive: true });
      if (kind) writeFileSync(join(dir, name, 'reward_model.json'), JSON.stringify({ kind, train: [], eval: null }));
    }
    const logs: string[] = [];
    expect(() => checkRewardKinds({ primary: join(dir, 'h'), safety: join(dir, 's') })).not.toThrow();
    checkRewardKinds({ primary: join(dir, 'old'), safety: join(dir, 's') }, (m) => logs.push(m));
    expect(logs).toEqual([`ppo: ${join(dir, 'old')} has no reward_model.json; taken as the helpfulness reward model`]);
    expect(() => checkRewardKinds({ primary: join(dir, 's'), safety: join(dir, 'h') })).toThrow(
      `model.reward_model.helpfulness: ${join(dir, 's')} is a safety reward model (its reward_model.json)`,
    );
  });
});
