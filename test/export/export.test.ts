/**
 * `rlhf export` on the shipped configs, for each stage and engine:
 *   - the generated files are pinned (test/fixtures/export/<case>/, paths written as <OUT> and
 *     <REPO>; UPDATE_FIXTURES=1 rewrites them after a reviewed change);
 *   - every TRL field and OpenRLHF flag they set exists in the release they name
 *     (test/fixtures/export/engine-arguments.json, read from TRL 1.9.0 / OpenRLHF 0.11.0 sources
 *     by scripts/engine_arguments.py);
 *   - the Python compiles (python3 -m py_compile) and the shell parses (bash -n);
 *   - the converted data holds the source rows in the engines' columns.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { jest } from '@jest/globals';
import { run, type CliIo } from '../../src/cli/main.js';
import { writeExport } from '../../src/export/export.js';
import { planExport } from '../../src/cli/export.js';
import type { Engine } from '../../src/export/versions.js';
import { packageRoot } from '../../src/paths.js';

const FIXTURES = 'test/fixtures/export';
const ARGS = JSON.parse(readFileSync(join(FIXTURES, 'engine-arguments.json'), 'utf8')) as {
  trl: { version: string; fields: Record<string, string[]> };
  openrlhf: { version: string; flags: Record<string, string[]> };
};
const hasPython = (() => {
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'export-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function exportCase(name: string, config: string, engine: Engine, overrides: string[] = [], gpus = 1): Promise<string> {
  const out = join(tmp, name);
  const items = await planExport(config, overrides, engine);
  await writeExport(items, { engine, gpus, deepspeed: null, out, source: config });
  return out;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const isData = (p: string) => p.endsWith('.jsonl');
const normalise = (text: string, out: string) => text.split(out).join('<OUT>').split(packageRoot()).join('<REPO>');

/** Compare every generated file but the data with its pinned copy. */
function expectPinned(name: string, out: string): void {
  const files = walk(out).filter((p) => !isData(p) && !p.includes('__pycache__'));
  const pinnedDir = join(FIXTURES, name);
  for (const file of files) {
    const rel = relative(out, file);
    const text = normalise(readFileSync(file, 'utf8'), out);
    const pinned = join(pinnedDir, rel);
    if (process.env.UPDATE_FIXTURES === '1') {
      mkdirSync(dirname(pinned), { recursive: true });
      writeFileSync(pinned, text);
    }
    expect({ file: rel, text }).toEqual({ file: rel, text: readFileSync(pinned, 'utf8') });
  }
  const pinnedFiles = walk(pinnedDir).map((p) => relative(pinnedDir, p)).sort();
  expect(files.map((p) => relative(out, p)).sort()).toEqual(pinnedFiles);
}

/** Every field a TRL script's DEFAULTS sets exists in its config class, TrainingArguments, ModelConfig or the script's DataArguments. */
function expectTrlNames(script: string): void {
  const configClass = /HfArgumentParser\(\((\w+), ModelConfig, DataArguments\)\)/.exec(script)![1]!;
  const f = ARGS.trl.fields;
  const known = new Set([...f[configClass]!, ...f._BaseConfig!, ...f.TrainingArguments!, ...f.ModelConfig!, 'train_file', 'eval_file', 'tokenizer_path', 'merged_dir']);
  const block = script.slice(script.indexOf('DEFAULTS = {'), script.indexOf('\n}\n'));
  const names = [...block.matchAll(/^ {4}"(\w+)": /gm)].map((m) => m[1]!);
  expect(names.length).toBeGreaterThan(20);
  expect(names.filter((n) => !known.has(n))).toEqual([]);
  expect(script).toContain(`for TRL ${ARGS.trl.version}`);
}

/** Every flag of an OpenRLHF script exists in the CLI module it runs. */
function expectOpenRlhfNames(script: string): void {
  const module = /(?:--module|-m) openrlhf\.cli\.(\w+)/.exec(script)![1]!;
  const command = script.slice(script.search(/(?:--module|-m) openrlhf\.cli\./));
  const flags = [...command.matchAll(/^ {3}--([\w.]+)/gm)].map((m) => m[1]!);
  expect(flags.length).toBeGreaterThan(20);
  expect(flags.filter((x) => !ARGS.openrlhf.flags[module]!.includes(x))).toEqual([]);
  for (const line of script.split('\n').filter((l) => l.includes('openrlhf.cli.lora_combiner'))) {
    const used = [...line.matchAll(/ --([\w.]+)/g)].map((m) => m[1]!);
    expect(used.filter((x) => !ARGS.openrlhf.flags.lora_combiner!.includes(x))).toEqual([]);
  }
  expect(script).toContain(`for OpenRLHF ${ARGS.openrlhf.version}`);
}

function expectRunnable(out: string): void {
  for (const sh of walk(out).filter((p) => p.endsWith('.sh'))) execFileSync('bash', ['-n', sh]);
  const py = walk(out).filter((p) => p.endsWith('.py'));
  if (!hasPython) {
    console.warn('python3 not found: the generated Python was not compiled (py_compile skipped)');
    return;
  }
  for (const p of py) execFileSync('python3', ['-m', 'py_compile', p]);
}

const jsonl = (p: string) => readFileSync(p, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const sorted = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).sort();

const CASES: [string, string, Engine][] = [
  ['sft-world_lora-trl', 'configs/sft/world_lora.yaml', 'trl'],
  ['sft-world_lora-openrlhf', 'configs/sft/world_lora.yaml', 'openrlhf'],
  ['sft-world_full-trl', 'configs/sft/world_full.yaml', 'trl'],
  ['reward-world-trl', 'configs/reward/world.yaml', 'trl'],
  ['reward-world-openrlhf', 'configs/reward/world.yaml', 'openrlhf'],
  ['dpo-world_lora-trl', 'configs/dpo/world_lora.yaml', 'trl'],
  ['dpo-world_lora-openrlhf', 'configs/dpo/world_lora.yaml', 'openrlhf'],
  ['ppo-world_lora-openrlhf', 'configs/ppo/world_lora.yaml', 'openrlhf'],
  ['rs-world_lora-trl', 'configs/rs/world_lora.yaml', 'trl'],
  ['rs-world_lora-openrlhf', 'configs/rs/world_lora.yaml', 'openrlhf'],
  ['gatt-world-trl', 'configs/gatt/world.yaml', 'trl'],
  ['gatt-world-openrlhf', 'configs/gatt/world.yaml', 'openrlhf'],
  ['pipeline-world_ppo-openrlhf', 'configs/pipeline/world_ppo.yaml', 'openrlhf'],
  ['pipeline-world_dpo-trl', 'configs/pipeline/world_dpo.yaml', 'trl'],
];

test.each(CASES)('%s: pinned files, real argument names, compiles', async (name, config, engine) => {
  const out = await exportCase(name, config, engine);
  expectPinned(name, out);
  for (const script of walk(out).filter((p) => /train_\w+\.(py|sh)$/.test(p))) {
    const text = readFileSync(script, 'utf8');
    if (engine === 'trl') expectTrlNames(text);
    else expectOpenRlhfNames(text);
  }
  expectRunnable(out);
}, 60_000);

test('SFT data: every dialogue kept multi-turn as `messages` (TRL); OpenRLHF gets them shuffled since max_samples takes the first 2,400', async () => {
  const source = jsonl(join(packageRoot(), 'data/world/sft.jsonl'));
  const trl = jsonl(join(tmp, 'sft-world_lora-trl', 'sft', 'train.jsonl'));
  expect(trl).toEqual(source.map((r) => ({ messages: r.messages })));
  expect(jsonl(join(tmp, 'sft-world_lora-trl', 'sft', 'eval.jsonl'))).toHaveLength(64); // data.eval_max_rows
  const openrlhf = jsonl(join(tmp, 'sft-world_lora-openrlhf', 'sft', 'train.jsonl'));
  expect(openrlhf).not.toEqual(trl);
  expect(sorted(openrlhf)).toEqual(sorted(trl));
  expect(readFileSync(join(tmp, 'sft-world_lora-openrlhf', 'sft', 'train_sft.sh'), 'utf8')).toContain('--data.max_samples 2400');
});

test('reward data: prompt/chosen/rejected only; with reward.margin=small each pair gets its Llama 2 Table 27 margin column', async () => {
  const plain = jsonl(join(tmp, 'reward-world-trl', 'reward', 'train.jsonl'));
  expect(plain).toHaveLength(12000 + 8000);
  expect(Object.keys(plain[0]!).sort()).toEqual(['chosen', 'prompt', 'rejected']);
  const out = await exportCase('reward-margin', 'configs/reward/world.yaml', 'trl', ['reward.margin=small']);
  const rows = jsonl(join(out, 'reward', 'train.jsonl'));
  const source = [...jsonl(join(packageRoot(), 'data/world/preferences.jsonl')), ...jsonl(join(packageRoot(), 'data/world/preferences_contrast.jsonl'))];
  const table: Record<string, number> = { significantly_better: 1, better: 2 / 3, slightly_better: 1 / 3, negligibly_better: 0 };
  expect(rows.map((r) => r.margin)).toEqual(source.map((r) => table[r.strength as string]));
  const open = await exportCase('reward-margin-openrlhf', 'configs/reward/world.yaml', 'openrlhf', ['reward.margin=large']);
  expect(readFileSync(join(open, 'reward', 'train_reward.sh'), 'utf8')).toContain('--model.margin_loss_enable');
  expect(readFileSync(join(open, 'MAPPING.md'), 'utf8')).toContain('reward.margin');
});

test('PPO with ppo.critic: reward_model_lora: the critic starts from the reward model under the same LoRA settings; MAPPING says what differs', async () => {
  const out = await exportCase('ppo-lora-critic', 'configs/ppo/world_lora.yaml', 'openrlhf', ['ppo.critic=reward_model_lora']);
  const sh = readFileSync(join(out, 'ppo', 'train_ppo.sh'), 'utf8');
  expect(sh).toContain('--critic.model_name_or_path "$REWARD"');
  expect(sh).toContain('--ds.lora.rank 16');
  const mapping = readFileSync(join(out, 'MAPPING.md'), 'utf8');
  const row = mapping.split('\n').find((l) => l.startsWith('| ppo.critic |'))!;
  expect(row).toContain('| reward_model_lora | critic.model_name_or_path = $REWARD |');
  expect(row).toContain('PEFT then freezes its value head');
  expect(mapping.split('\n').filter((l) => l.includes('critic.model_name_or_path'))).toHaveLength(1);
});

test('PPO prompts: every prompt as a message list, shuffled (30 × 16 = 480 of 4,000 are used); eval limited to 128', () => {
  const rows = jsonl(join(tmp, 'ppo-world_lora-openrlhf', 'ppo', 'train.jsonl'));
  const source = jsonl(join(packageRoot(), 'data/world/prompts.jsonl'));
  expect(sorted(rows)).toEqual(sorted(source.map((r) => ({ prompt: r.prompt }))));
  expect(jsonl(join(tmp, 'ppo-world_lora-openrlhf', 'ppo', 'eval.jsonl'))).toHaveLength(128);
});

test('the pipeline export wires each stage\'s engine output into the next, and GAtt synthesis into its fine-tune', () => {
  const out = join(tmp, 'pipeline-world_ppo-openrlhf');
  const ppo = readFileSync(join(out, 'ppo', 'train_ppo.sh'), 'utf8');
  expect(ppo).toContain(`POLICY=${join(out, 'sft', 'output', 'merged')}`);
  expect(ppo).toContain(`REWARD=${join(out, 'reward', 'output')}`);
  const runSh = readFileSync(join(out, 'run.sh'), 'utf8').trim().split('\n').filter((l) => !l.startsWith('#') && l !== 'set -euo pipefail');
  expect(runSh.map((l) => (l.startsWith('bash ') ? l.split('/').pop() : l.split(' --config')[0]))).toEqual([
    'train_sft.sh', 'train_reward.sh', 'train_ppo.sh', `node ${join(packageRoot(), 'dist', 'src', 'cli', 'main.js')} gatt synth`, 'train_gatt.sh',
  ]);
  expect(runSh[3]).toContain(`'model.path=${join(out, 'ppo', 'output', 'merged')}'`);
  expect(readFileSync(join(out, 'gatt', 'train_gatt.sh'), 'utf8')).toContain(`--data.dataset ${join(out, 'gatt', 'rlhf', 'synth', 'gatt_train.jsonl')}`);
  const dpo = readFileSync(join(tmp, 'pipeline-world_dpo-trl', 'dpo', 'train_dpo.py'), 'utf8');
  expect(dpo).toContain(`"model_name_or_path": "${join(tmp, 'pipeline-world_dpo-trl', 'sft', 'output', 'merged')}"`);
});

test('GAtt with data.mix trains on the mixed file `rlhf gatt synth` writes', async () => {
  const out = await exportCase('gatt-mix', 'configs/gatt/world.yaml', 'openrlhf', ['data.mix=[data/world/sft.jsonl]', 'data.mix_ratio=1']);
  const script = readFileSync(join(out, 'gatt', 'train_gatt.sh'), 'utf8');
  expect(script).toMatch(/--data\.dataset \S*\/synth\/mix_train\.jsonl/);
  expect(script).not.toContain('gatt_train.jsonl');
  const plain = readFileSync(join(tmp, 'gatt-world-openrlhf', 'gatt', 'train_gatt.sh'), 'utf8');
  expect(plain).toMatch(/--data\.dataset \S*\/synth\/gatt_train\.jsonl/); // without data.mix: the dialogues
});

test('refused with a clear message: PPO to TRL, a pipeline with PPO to TRL, a pipeline with rounds, a DPO loss OpenRLHF lacks, a batch GPUs cannot split', async () => {
  await expect(planExport('configs/ppo/world_lora.yaml', [], 'trl').then((items) => writeExport(items, { engine: 'trl', gpus: 1, deepspeed: null, out: join(tmp, 'x1'), source: 'p' })))
    .rejects.toThrow('TRL has no PPO trainer any more');
  await expect(planExport('configs/pipeline/world_ppo.yaml', [], 'trl')).rejects.toThrow('stages.ppo is enabled, and TRL has no PPO trainer any more');
  // The iterative rounds (the default run) have no engine equivalent: refused, not exported as the stages around them.
  await expect(planExport('configs/pipeline/world.yaml', [], 'openrlhf')).rejects.toThrow('configs/pipeline/world.yaml: rounds.count is 2, and the iterative rounds');
  await expect(exportCase('x2', 'configs/dpo/world_lora.yaml', 'openrlhf', ['dpo.loss_type=[hinge]', 'dpo.loss_weights=null'])).rejects.toThrow(
    'dpo.loss_type hinge has no OpenRLHF equivalent',
  );
  await expect(exportCase('x3', 'configs/sft/world_lora.yaml', 'trl', [], 3)).rejects.toThrow('8 examples per step cannot be split evenly over --gpus 3');
  // Llama 2's combined reward (two reward models) has no OpenRLHF equivalent.
  await expect(exportCase('x4', 'configs/ppo/world_safety_lora.yaml', 'openrlhf')).rejects.toThrow('model.reward_model names two reward models');
});

async function rlhf(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (err += t), debug: false };
  const log = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (out += a.join(' ') + '\n'));
  try {
    return { code: await run(argv, io), out, err };
  } finally {
    log.mockRestore();
  }
}

test('rlhf export on the command line: --gpus splits the batch, --deepspeed zero3 writes the DeepSpeed and accelerate configs; errors exit 2', async () => {
  const trl = join(tmp, 'cli-trl');
  const r = await rlhf(['export', '--config', 'sft/world_lora', '--to', 'trl', '--out', trl, '--gpus', '2', '--deepspeed', 'zero3', 'train.steps=10']);
  expect(r).toMatchObject({ code: 0 });
  expect(r.out).toContain(`sft: accelerate launch --config_file ${join(trl, 'accelerate_config.yaml')} ${join(trl, 'sft', 'train_sft.py')}`);
  const script = readFileSync(join(trl, 'sft', 'train_sft.py'), 'utf8');
  expect(script).toContain('"max_steps": 10,');
  expect(script).toContain('"per_device_train_batch_size": 4,');
  expect(JSON.parse(readFileSync(join(trl, 'ds_config.json'), 'utf8')).zero_optimization.stage).toBe(3);
  const acc = readFileSync(join(trl, 'accelerate_config.yaml'), 'utf8');
  expect(acc).toContain(`deepspeed_config_file: ${join(trl, 'ds_config.json')}`);
  expect(acc).toContain('num_processes: 2');

  const open = join(tmp, 'cli-openrlhf');
  expect((await rlhf(['export', '--config', 'sft/world_lora', '--to', 'openrlhf', '--out', open, '--gpus', '4', '--deepspeed', 'zero3'])).code).toBe(0);
  const sh = readFileSync(join(open, 'sft', 'train_sft.sh'), 'utf8');
  for (const line of ['deepspeed --num_gpus 4 --module openrlhf.cli.train_sft', '--ds.zero_stage 3', '--train.batch_size 8', '--train.micro_batch_size 2']) expect(sh).toContain(line);

  const bad = await rlhf(['export', '--config', 'ppo/world_lora', '--to', 'trl', '--out', join(tmp, 'cli-bad')]);
  expect(bad.code).toBe(2);
  expect(bad.err).toContain('TRL has no PPO trainer any more');
  expect(existsSync(join(tmp, 'cli-bad', 'ppo'))).toBe(false);
}, 60_000);

test('SFT rows that are not dialogues: prompt/completion trains the completion, text every token (as rlhf-kit does)', async () => {
  const pc = join(tmp, 'pc.jsonl');
  writeFileSync(pc, ['{"prompt":"Add 1 and 2.","completion":" 3."}', '{"prompt":"Add 2 and 2.","completion":" 4."}'].join('\n') + '\n');
  const text = join(tmp, 'text.jsonl');
  writeFileSync(text, ['{"text":"The sky is blue."}', '{"text":"Grass is green."}'].join('\n') + '\n');
  const trlPc = readFileSync(join(await exportCase('sft-pc', 'configs/sft/world_lora.yaml', 'trl', [`data.train=${pc}`, 'data.eval=null']), 'sft', 'train_sft.py'), 'utf8');
  expect(trlPc).toContain('"completion_only_loss": True,');
  expect(trlPc).not.toContain('assistant_only_loss');
  expect(trlPc).not.toContain('chat_template_path');
  const openText = readFileSync(join(await exportCase('sft-text', 'configs/sft/world_lora.yaml', 'openrlhf', [`data.train=${text}`, 'data.eval=null']), 'sft', 'train_sft.sh'), 'utf8');
  expect(openText).toContain('--model.pretrain_mode_enable');
  expect(openText).toContain('--data.input_key text');
  expect(openText).not.toContain('--data.apply_chat_template');
  expect(jsonl(join(tmp, 'sft-text', 'sft', 'train.jsonl'))).toHaveLength(2);
});
