/**
 * What the pipeline and the CLI hand the stages (src/pipeline/stage-deps.ts): the world's judge
 * reaches PPO and the world's instruction rules reach GAtt only from here, and a stage asked to use
 * one it was not given says so.
 */
import { loadConfig } from '../../src/config/index.js';
import { ppoConfigSchema } from '../../src/ppo/config.js';
import { runPpo } from '../../src/ppo/recipe.js';
import { packagePath } from '../../src/paths.js';
import { gattWiring, ppoWiring } from '../../src/pipeline/stage-deps.js';
import { check, CHECKER_IDS, judgeResponses, applyInstructions } from '../../src/world/index.js';

const ppoConfig = (overrides: string[]) =>
  loadConfig(packagePath('configs', 'ppo', 'world_lora.yaml'), overrides, { stage: 'ppo', schema: ppoConfigSchema });

test('PPO asked for eval.judge without a judge handed in: a clear error before anything loads', async () => {
  await expect(runPpo(ppoConfig(['model.path=/nonexistent'])))
    .rejects.toThrow("eval.judge: no judge was handed to this run (the pipeline and `rlhf ppo` pass the world's gold judge); set eval.judge=false");
});

test("the wiring hands PPO the world's judge (its mean score) and GAtt the world's checkers and rewrite rules", () => {
  const prompts = [[{ role: 'user', content: 'What colour is the sky?' }]];
  expect(ppoWiring.judge(prompts, ['The sky is blue.'])).toBe(judgeResponses(prompts as never, ['The sky is blue.']).mean);
  expect(gattWiring.checkers.ids).toEqual(CHECKER_IDS);
  expect(gattWiring.checkers.check('robot', 'BEEP. Hi.')).toBe(check('robot', 'BEEP. Hi.'));
  expect(gattWiring.repair.apply(['robot'], 'Hi.')).toBe(applyInstructions(['robot'], 'Hi.'));
  expect(gattWiring.repair.ids).toEqual(['zib', 'robot', 'pirate', 'uppercase', 'thanks', 'cats', 'music']);
});
