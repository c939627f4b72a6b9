/**
 * The pretrain recipe end to end on a tiny corpus and a tiny model (cpu backend, the deterministic
 * reference): pinned loss curve, no leaked tensors, an HF folder that loads, and a resumed run that
 * equals the uninterrupted one.
 */
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadConfig } from '../../src/config/index.js';
import { initEngine } from '../../src/engine/index.js';
import { loadHfModel } from '../../src/model/index.js';
import { pretrainConfigSchema } from '../../src/pretrain/config.js';
import { runPretrain, type PretrainRunOptions } from '../../src/pretrain/recipe.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { readMetricsJsonl } from '../../src/tracking/index.js';
import { checkpointSteps, StageStopped } from '../../src/training/run.js';
import { StopSignal } from '../../src/training/stop-signal.js';

/** Recorded from the first run of this test (cpu backend); a change means the recipe's math changed. */
const EXPECTED_LOSSES = [
  5.646856, 5.648052, 5.533407, 5.351688, 5.162786, 4.983112, 4.81883, 4.7627, 4.68751, 4.642183,
];
const EXPECTED_EVAL_LOSS = { 5: 4.997171, 10: 4.641283 };

let root: string;
let configFile: string;

/** 40 documents of three sums each: a corpus with enough structure to learn in a few steps. */
function tinyCorpus(): string {
  const docs: string[] = [];
  for (let d = 0; d < 40; d++) {
    const sums = [0, 1, 2].map((k) => {
      const a = (d * 3 + k) % 10;
      const b = (d * 7 + k) % 10;
      return `${a} plus ${b} is ${a + b}.`;
    });
    docs.push(sums.join(' '));
  }
  return docs.join('\n\n') + '\n';
}

const TINY_CONFIG = `# tiny pretrain test config
stage: pretrain
engine: { backend: cpu, seed: 3 }
tracking: { enabled: false }
tokenizer: { vocab_size: 300 }
model: { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 2 }
data: { seq_len: 16, eval_documents: 4 }
optim: { lr: 0.01 }
schedule: { type: cosine, warmup_steps: 2 }
train: { steps: 10, batch_size: 4, eval_every: 5 }
checkpoint: { every_steps: 5, keep_last: 2 }
`;

function load(outputDir: string, overrides: string[] = []) {
  return loadConfig(configFile, [`output_dir=${outputDir}`, `data.corpus=[${join(root, 'corpus.txt')}]`, ...overrides], {
    stage: 'pretrain',
    schema: pretrainConfigSchema,
  });
}

/** A StopSignal on a fake process, and a hook that "sends" SIGINT after step `at`. */
function stopAfter(at: number): Pick<PretrainRunOptions, 'stopSignal' | 'onStep'> {
  const proc = new EventEmitter();
  const stopSignal = new StopSignal(proc as unknown as ConstructorParameters<typeof StopSignal>[0], () => undefined, () => undefined);
  return { stopSignal, onStep: (step) => void (step === at && proc.emit('SIGINT')) };
}

const quiet: PretrainRunOptions = { log: () => undefined, progress: null };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'pretrain-recipe-'));
  writeFileSync(join(root, 'corpus.txt'), tinyCorpus());
  configFile = join(root, 'tiny.yaml');
  writeFileSync(configFile, TINY_CONFIG);
  await initEngine({ backend: 'cpu' });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('runPretrain', () => {
  let uninterrupted: Awaited<ReturnType<typeof runPretrain>>;

  test('pinned loss curve, decreasing loss, no tensor leak', async () => {
    const before = tf.memory().numTensors;
    uninterrupted = await runPretrain(load(join(root, 'full')), quiet);
    expect(tf.memory().numTensors).toBe(before);

    const losses = uninterrupted.losses.map((l) => l.loss);
    expect(uninterrupted.losses.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    losses.forEach((loss, i) => expect(loss).toBeCloseTo(EXPECTED_LOSSES[i]!, 4));
    expect(losses[9]!).toBeLessThan(losses[0]! - 0.5);
    for (let i = 3; i < losses.length; i++) expect(losses[i]!).toBeLessThan(losses[i - 1]!);

    expect(uninterrupted.evalLosses.map((e) => e.step)).toEqual([5, 10]);
    expect(uninterrupted.evalLosses[0]!.loss).toBeCloseTo(EXPECTED_EVAL_LOSS[5], 4);
    expect(uninterrupted.evalLosses[1]!.loss).toBeCloseTo(EXPECTED_EVAL_LOSS[10], 4);
    expect(uninterrupted.totalSteps).toBe(10);
    expect(uninterrupted.startStep).toBe(0);

    const metrics = readMetricsJsonl(join(uninterrupted.runDir, 'metrics.jsonl'));
    expect(metrics.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(metrics[4]!['eval/loss']).toBeCloseTo(EXPECTED_EVAL_LOSS[5], 4);
    expect(metrics[0]!['train/lr']).toBe(0); // warmup starts at 0, as in HF
    expect(metrics[1]!['train/lr']).toBeCloseTo(0.005, 10);
    expect(checkpointSteps(uninterrupted.runDir)).toEqual([5, 10]);
    expect(existsSync(join(uninterrupted.runDir, 'config.resolved.yaml'))).toBe(true);
  });

  test('final/ is an HF folder: loads, has the tokenizer with the llama2 chat template, reproduces the eval loss', async () => {
    const dir = uninterrupted.finalDir;
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
      expect(existsSync(join(dir, f))).toBe(true);
    }
    const tokenizerConfig = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as { chat_template: string };
    expect(tokenizerConfig.chat_template).toContain('[INST]');
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    // The tiny corpus runs out of pairs seen twice before vocab_size 300.
    expect(config).toMatchObject({ vocab_size: 280, hidden_size: 16, num_hidden_layers: 2, bos_token_id: 1, eos_token_id: 2, pad_token_id: 0 });
    const tokenizer = await loadTokenizer(dir);
    expect(tokenizer.vocabSize).toBe(280);

    const model = loadHfModel(dir);
    expect(model.numParameters()).toBe(uninterrupted.numParameters);
    // Same weights as the last checkpoint.
    const ckpt = loadHfModel(join(uninterrupted.runDir, 'checkpoints', 'step_10'));
    for (const [name, v] of model.params) {
      expect(Array.from(v.dataSync())).toEqual(Array.from(ckpt.param(name).dataSync()));
    }
    model.dispose();
    ckpt.dispose();
  });

  test('stopped after step 5 and resumed, the loss curve and final weights equal the uninterrupted run', async () => {
    const dir = join(root, 'resumed');
    const first = runPretrain(load(dir), { ...quiet, ...stopAfter(5) });
    await expect(first).rejects.toThrow(StageStopped);
    await expect(first).rejects.toMatchObject({ exitCode: 130 });
    expect(checkpointSteps(dir)).toEqual([5]);
    expect(existsSync(join(dir, 'final'))).toBe(false);

    const before = tf.memory().numTensors;
    const second = await runPretrain(load(dir), quiet);
    expect(tf.memory().numTensors).toBe(before);
    expect(second.startStep).toBe(5);
    expect(second.losses.map((l) => l.step)).toEqual([6, 7, 8, 9, 10]);

    const full = readMetricsJsonl(join(uninterrupted.runDir, 'metrics.jsonl'));
    const resumed = readMetricsJsonl(join(dir, 'metrics.jsonl'));
    expect(resumed.map((m) => m.step)).toEqual(full.map((m) => m.step));
    resumed.forEach((m, i) => {
      expect(Math.abs(m['train/loss']! - full[i]!['train/loss']!)).toBeLessThanOrEqual(1e-5);
      expect(m['train/lr']).toBe(full[i]!['train/lr']);
    });
    expect(Math.abs(second.evalLosses[0]!.loss - uninterrupted.evalLosses[1]!.loss)).toBeLessThanOrEqual(1e-5);

    const a = loadHfModel(uninterrupted.finalDir);
    const b = loadHfModel(second.finalDir);
    for (const [name, v] of a.params) {
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(v, b.param(name)))).dataSync()[0]!);
      expect(diff).toBeLessThanOrEqual(1e-6);
    }
    a.dispose();
    b.dispose();
  });

  test('a corpus too small for one batch is a user error naming the keys to change', async () => {
    await expect(runPretrain(load(join(root, 'small'), ['train.batch_size=500']), quiet)).rejects.toThrow(
      /data\.corpus: only \d+ training rows .* fewer than train\.batch_size 500/,
    );
  });
});
