import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import {
  ConfigError,
  commonSections,
  formatProblem,
  loadConfig,
  parseYamlSource,
  registerStageSchema,
  resolveConfig,
  writeResolvedConfig,
} from '../../src/config/index.js';

// A demo stage, registered here only (stage schemas belong to the stage issues).
const demoSchema = z
  .strictObject({
    ...commonSections({ optim: { lr: 1e-3 } }),
    data: z
      .strictObject({
        path: z.string().describe('training file'),
        max_len: z.number().int().min(8).default(64).describe('tokens per example'),
      })
      .describe('data'),
  })
  .describe('a demo stage for tests');
registerStageSchema('demo', demoSchema);
const demo = { stage: 'demo', schema: demoSchema };

function source(text: string) {
  return parseYamlSource(text, 'configs/demo/x.yaml');
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map(formatProblem);
    throw e;
  }
  throw new Error('expected a ConfigError');
}

const THREE_MISTAKES = [
  'stage: demo', //                     line 1
  'data:', //                           line 2
  '  path: train.jsonl', //             line 3
  '  max_len: long', //                 line 4: wrong type
  'optim:', //                          line 5
  '  lr: -0.001', //                    line 6: negative lr
  '  weight_decai: 0.1', //             line 7: unknown key
  '',
].join('\n');

describe('resolveConfig', () => {
  it('reports all three mistakes at once, each located, in file order', () => {
    expect(problemsOf(() => resolveConfig(source(THREE_MISTAKES)))).toEqual([
      'configs/demo/x.yaml:4:12 data.max_len: expected number, received string',
      'configs/demo/x.yaml:6:7 optim.lr: must be > 0, received -0.001',
      'configs/demo/x.yaml:7:3 optim.weight_decai: unknown key (did you mean optim.weight_decay?)',
    ]);
  });

  it('ends the message with a count naming the file', () => {
    try {
      resolveConfig(source(THREE_MISTAKES));
      throw new Error('unreachable');
    } catch (e) {
      expect((e as ConfigError).exitCode).toBe(2);
      expect((e as Error).message.split('\n').pop()).toBe('3 problems in configs/demo/x.yaml');
    }
  });

  it('fills every default from the schema and resolves the default output_dir', () => {
    const r = resolveConfig(source('stage: demo\ndata: {path: a.jsonl}\n'));
    expect(r.stage).toBe('demo');
    expect(r.config).toEqual({
      run: { name: 'default' },
      output_dir: 'runs/default/demo',
      engine: { backend: 'auto', threads: 1, seed: 0 },
      tracking: { uri: 'mlruns', experiment: 'Default', run_name: 'default', enabled: true },
      checkpoint: { every_steps: 500, keep_last: 3 },
      optim: { lr: 1e-3, betas: [0.9, 0.95], eps: 1e-8, weight_decay: 0.1, grad_clip: 1, grad_accum: 1 },
      schedule: { type: 'cosine', warmup_steps: 0 },
      train: { steps: 1000, epochs: null, batch_size: 8, resume: 'auto', eval_every: 100, seed: null, gradient_checkpointing: 'auto', max_nonfinite: 5 },
      data: { path: 'a.jsonl', max_len: 64 },
    });
  });

  it('applies overrides and names the override in its problems', () => {
    const text = 'stage: demo\ndata: {path: a.jsonl}\noptim:\n  lr: 0.01\n';
    const ok = resolveConfig(source(text), ['optim.lr=3e-4', 'run.name=exp1', 'optim.betas=[0.8, 0.9]', '~optim.lr'], demo);
    expect(ok.config.optim.lr).toBe(1e-3); // deleted → back to the default
    expect(ok.config.optim.betas).toEqual([0.8, 0.9]);
    expect(ok.config.output_dir).toBe('runs/exp1/demo');
    expect(problemsOf(() => resolveConfig(source(text), ['optim.lr=fast', 'optim.lrr=1', 'train.steps=1.5']))).toEqual([
      "override 'optim.lr=fast' optim.lr: expected number, received string",
      "override 'optim.lrr=1' optim.lrr: unknown key (did you mean optim.lr?)",
      "override 'train.steps=1.5' train.steps: expected integer, received 1.5",
    ]);
  });

  it('suggests keys from other sections and enum values', () => {
    const text = 'stage: demo\ndata: {path: a.jsonl}\ntrain:\n  lr: 0.1\nengine:\n  backend: wasn\n';
    expect(problemsOf(() => resolveConfig(source(text)))).toEqual([
      'configs/demo/x.yaml:4:3 train.lr: unknown key (did you mean optim.lr?)',
      'configs/demo/x.yaml:6:12 engine.backend: expected auto | wasm | cpu | tensorflow, received "wasn" (did you mean wasm?)',
    ]);
  });

  it('reports a missing required key at its section', () => {
    expect(problemsOf(() => resolveConfig(source('stage: demo\ndata:\n  max_len: 32\n')))).toEqual([
      'configs/demo/x.yaml:2:1 data.path: missing (expected string)',
    ]);
  });

  it('interpolates references, keeping the type of a whole-value reference', () => {
    const text = 'stage: demo\nrun: {name: r1}\ndata: {path: "${output_dir}/train.jsonl", max_len: "${train.batch_size}"}\ntrain: {batch_size: 16}\n';
    const r = resolveConfig(source(text), [], demo);
    expect(r.config.data).toEqual({ path: 'runs/r1/demo/train.jsonl', max_len: 16 });
  });

  it('locates a bad reference once, without a follow-up type error', () => {
    const text = 'stage: demo\ndata: {path: a, max_len: "${train.batch_sise}"}\n';
    expect(problemsOf(() => resolveConfig(source(text)))).toEqual([
      'configs/demo/x.yaml:2:26 data.max_len: unknown reference ${train.batch_sise} (did you mean ${train.batch_size}?)',
    ]);
  });

  it('requires the stage key and checks it against the command', () => {
    expect(problemsOf(() => resolveConfig(source('data: {path: a}\n')))).toEqual([
      'configs/demo/x.yaml:1:1 stage: missing: every config names its stage at the top (stage: demo)',
    ]);
    expect(problemsOf(() => resolveConfig(source('stage: dmeo\n')))).toEqual([
      "configs/demo/x.yaml:1:8 stage: unknown stage 'dmeo' (did you mean demo?); known stages: demo",
    ]);
    const other = z.strictObject({});
    expect(problemsOf(() => resolveConfig(source('stage: demo\n'), [], { stage: 'other', schema: other }))).toEqual([
      "configs/demo/x.yaml:1:8 stage: this is a 'demo' config; this command needs 'stage: other'",
    ]);
  });

  it('reports YAML syntax errors with their position', () => {
    expect(problemsOf(() => source('stage: demo\noptim:\n  lr: 1\n  lr: 2\n'))).toEqual([
      'configs/demo/x.yaml:4:3 Map keys must be unique',
    ]);
  });
});

describe('loadConfig and writeResolvedConfig', () => {
  it('writes a resolved config that loads back to the same values', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rlhf-config-'));
    const file = join(dir, 'x.yaml');
    writeFileSync(file, 'stage: demo\ndata:\n  path: "$${HOME}/a.jsonl"\n');
    const first = loadConfig(file, ['train.steps=20'], demo);
    expect(first.config.data.path).toBe('${HOME}/a.jsonl'); // `$${` writes a literal `${`
    const out = join(dir, 'run', 'config.resolved.yaml');
    writeResolvedConfig(out, first);
    const text = readFileSync(out, 'utf8');
    expect(text.split('\n').slice(0, 4)).toEqual([
      '# Resolved config: defaults filled in, overrides applied, ${...} references resolved.',
      `# source: ${file}`,
      '# overrides: train.steps=20',
      '',
    ]);
    const again = loadConfig(out, [], demo);
    expect(again.config).toEqual(first.config);
  });

  it('names a missing file', () => {
    expect(() => loadConfig('no/such.yaml')).toThrow('no/such.yaml: cannot read config: no such file');
  });
});
