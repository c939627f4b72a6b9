import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pairsCommand } from '../../src/cli/pairs.js';
import { rsCommand } from '../../src/cli/rs.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { loadHfModel, attachScoreHead } from '../../src/model/index.js';
import { packagePath } from '../../src/paths.js';
import { saveRewardModel } from '../../src/reward/model.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { runCommand } from '../helpers/cli.js';
import { makeTinyWorld, type TinyWorld } from '../sft/fixture.js';

/**
 * No held-out evaluation prompt (data/world/prompts_eval.jsonl) reaches sampled pairs or
 * rejection-sampling data when the CLI is pointed at the world's training prompts — which hold 331
 * of them. A tiny model samples every training prompt (two tokens per reply), so the whole file is
 * checked, not a prefix.
 */

const TRAIN = packagePath('data', 'world', 'prompts.jsonl');
const HELD_OUT = packagePath('data', 'world', 'prompts_eval.jsonl');
const userTexts = (prompt: { role: string; content: string }[]) => prompt.map((m) => m.content.trim().toLowerCase()).join('\n');
const lines = <T>(path: string): T[] => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as T);
const heldOut = new Set(lines<{ prompt: { role: string; content: string }[] }>(HELD_OUT).map((r) => userTexts(r.prompt)));
const trainPrompts = lines<{ prompt: { role: string; content: string }[] }>(TRAIN).map((r) => userTexts(r.prompt));
const distinctAllowed = new Set(trainPrompts.filter((p) => !heldOut.has(p)));

let world: TinyWorld;
let rewardDir: string;
beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
  world = await makeTinyWorld();
  rewardDir = join(world.dir, 'reward');
  const rm = loadHfModel(world.modelDir);
  attachScoreHead(rm, new Rng(11), { dropLmHead: true });
  saveRewardModel(rm, rewardDir, { stats: { mean: 0, std: 1 }, tokenizerDir: world.modelDir, padId: (await loadTokenizer(world.modelDir)).padId });
  rm.dispose();
});
afterAll(() => rmSync(world.dir, { recursive: true, force: true }));

async function quietly<T>(run: () => Promise<T>): Promise<T> {
  const write = process.stderr.write.bind(process.stderr);
  const out = process.stdout.write.bind(process.stdout);
  process.stderr.write = (() => true) as typeof process.stderr.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return await run();
  } finally {
    process.stderr.write = write;
    process.stdout.write = out;
  }
}

describe('held-out prompts never become training data', () => {
  test('the training prompts do hold held-out ones (the check below is not vacuous)', () => {
    expect(trainPrompts.filter((p) => heldOut.has(p))).toHaveLength(331);
    expect(distinctAllowed.size).toBe(2797);
  });

  test('rlhf pairs sample on the world\'s training prompts: no held-out prompt; --exclude none lets them through', async () => {
    const out = join(world.dir, 'pairs.jsonl');
    await quietly(() => runCommand(pairsCommand, ['pairs', 'sample', '--model', world.modelDir, '--prompts', TRAIN, '--out', out, '--max-new-tokens', '2', '--batch-size', '512', '--backend', 'wasm']));
    const rows = lines<{ prompt: { role: string; content: string }[]; label: null }>(out);
    expect(rows.length).toBeGreaterThan(2000); // (prompts whose reply was empty on a side give no row)
    expect(rows.filter((r) => heldOut.has(userTexts(r.prompt)))).toEqual([]);
    expect(rows.every((r) => distinctAllowed.has(userTexts(r.prompt)) && r.label === null)).toBe(true);

    const first = trainPrompts.findIndex((p) => heldOut.has(p));
    const open = join(world.dir, 'pairs_open.jsonl');
    await quietly(() =>
      runCommand(pairsCommand, ['pairs', 'sample', '--model', world.modelDir, '--prompts', TRAIN, '--exclude', 'none', '--limit', String(first + 1), '--out', open, '--max-new-tokens', '2', '--backend', 'wasm']),
    );
    const control = lines<{ prompt: { role: string; content: string }[] }>(open).map((r) => userTexts(r.prompt));
    expect(control.some((p) => heldOut.has(p))).toBe(true);
  });

  test('rlhf rs with the shipped world config on the training prompts: no held-out prompt in samples, pool or training rows', async () => {
    const dir = join(world.dir, 'rs');
    await quietly(() =>
      runCommand(rsCommand, [
        'rs', '--config', packagePath('configs', 'rs', 'world_lora.yaml'), '--no-judge',
        `model.path=${world.modelDir}`, `model.reward_model=${rewardDir}`, 'data.max_prompts=null', 'rs.k=2', 'rs.max_new_tokens=2',
        'rs.batch_size=512', 'rs.score_batch_size=512', 'lora.r=2', 'sft.save_merged=false', 'train.steps=1', 'train.batch_size=2',
        'checkpoint.every_steps=0', 'tracking.enabled=false', `output_dir=${dir}`,
      ]),
    );
    const samples = lines<{ prompt: { role: string; content: string }[] }>(join(dir, 'samples', 'samples.jsonl')).map((r) => userTexts(r.prompt));
    expect(new Set(samples)).toEqual(distinctAllowed); // every allowed prompt once, no other
    expect(samples).toHaveLength(2797);
    const pool = lines<{ prompt: { role: string; content: string }[] }>(join(dir, 'pool.jsonl')).map((r) => userTexts(r.prompt));
    const train = lines<{ messages: { role: string; content: string }[] }>(join(dir, 'rs_train.jsonl')).map((r) => userTexts(r.messages.slice(0, -1)));
    for (const texts of [pool, train]) expect(texts.filter((p) => heldOut.has(p))).toEqual([]);
  });
});
