/**
 * Bad input, table-driven: every case runs the real CLI (`run(argv, io)` from src/cli/main.ts)
 * in-process on a broken config, dataset, checkpoint or tokenizer, and checks what a user sees:
 * a non-zero exit, a message naming the file / row / key, no stack trace, no hang, and nothing
 * half-written left behind.
 *
 * Fixtures are generated here (a tiny model, a LoRA adapter, a tokenizer copied from
 * test/fixtures/tokenizers) into a temp folder; each case gets its own copy to break.
 */
import * as tf from '@tensorflow/tfjs-core';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { commonSections, registerStageSchema } from '../../src/config/index.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { injectLora, loraAdapters } from '../../src/lora/inject.js';
import { saveAdapter } from '../../src/lora/peft-io.js';
import { llamaConfig } from '../../src/model/config.js';
import { saveHfModel } from '../../src/model/io/hf.js';
import { readSafetensors, writeSafetensors } from '../../src/model/io/safetensors.js';
import { initLlama } from '../../src/model/llama.js';
import { STACK_FRAME, mutateSafetensors, runCli, safetensorsBytes } from './harness.js';

// A stage schema made of the shared sections, for `rlhf validate` cases (stage schemas register
// themselves when their command is imported; this one exists only in this test).
registerStageSchema(
  'reliability',
  z
    .strictObject({
      ...commonSections(),
      data: z.strictObject({ path: z.string().min(1).describe('Training file.') }).describe('Data.'),
    })
    .describe('A stage for the reliability tests.'),
);

const TOKENIZER_FIXTURE = join(process.cwd(), 'test/fixtures/tokenizers/byte-level-bpe');

let root: string;
let pristine: string;

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  root = mkdtempSync(join(tmpdir(), 'rlhf-bad-input-'));
  pristine = join(root, 'pristine');
  const model = initLlama(
    llamaConfig({ vocab_size: 340, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 }),
    new Rng(1),
  );
  saveHfModel(model, join(pristine, 'model'));
  for (const f of readdirSync(TOKENIZER_FIXTURE)) cpSync(join(TOKENIZER_FIXTURE, f), join(pristine, 'model', f));
  cpSync(TOKENIZER_FIXTURE, join(pristine, 'tokenizer'), { recursive: true });
  injectLora(model, { targetModules: ['q_proj', 'v_proj'], r: 2, alpha: 4, rng: new Rng(2) });
  const rng = new Rng(3);
  for (const a of loraAdapters(model).values()) tf.tidy(() => a.B.assign(tf.tensor(rng.fillNormal(new Float32Array(a.B.size), 0.1), a.B.shape)));
  saveAdapter(model, join(pristine, 'adapter'));
  model.dispose();
  writeFileSync(join(pristine, 'corpus.txt'), 'the quick brown fox jumps over the lazy dog\n'.repeat(20));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------

interface Case {
  area: 'config' | 'data' | 'checkpoint' | 'tokenizer' | 'cli';
  name: string;
  /** Break something in `dir` (a fresh copy of the fixtures); return the argv of the command. */
  setup: (dir: string) => string[];
  /** Fragments the output must contain: the file, the row, the key, the reason. */
  expect: Array<string | RegExp | ((dir: string) => string)>;
  /** Paths (relative to `dir`) that must not exist after the failure: outputs never half-written. */
  absent?: string[];
  /** Exit code (default 2: a user error). */
  code?: number;
}

const at = (rel: string) => (dir: string) => join(dir, rel);

function write(dir: string, rel: string, text: string | Uint8Array): string {
  const path = join(dir, rel);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

const jsonl = (...rows: unknown[]) => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';
const dialogue = (...turns: Array<[string, string]>) => ({ messages: turns.map(([role, content]) => ({ role, content })) });
const GOOD_ROW = dialogue(['user', 'hi'], ['assistant', 'hello']);

/** `rlhf validate` on a config file written into the case folder. */
const validate = (yaml: string, ...overrides: string[]) => (dir: string) => ['validate', write(dir, 'cfg.yaml', yaml), ...overrides];
const BASE_YAML = 'stage: reliability\ndata:\n  path: train.jsonl\n';

/** `rlhf data validate FILE --kind KIND` on a file written into the case folder. */
const dataValidate = (name: string, text: string | Uint8Array, kind = 'sft') => (dir: string) => ['data', 'validate', write(dir, name, text), '--kind', kind];

/** `rlhf merge-lora` of the (possibly broken) model and adapter copies into `merged/`. */
const merge = (dir: string) => ['merge-lora', '--model', join(dir, 'model'), '--adapter', join(dir, 'adapter'), '--out', join(dir, 'merged'), '--backend', 'cpu'];
const MODEL_ST = 'model/model.safetensors';
/** `rlhf generate` with the (possibly broken) model copy. */
const generate = (dir: string, ...more: string[]) => ['generate', '--model', join(dir, 'model'), '--prompt', 'hello', '--max-new-tokens', '2', '--backend', 'cpu', ...more];
const ADAPTER_ST = 'adapter/adapter_model.safetensors';

/** Break the model weights with `mutate`, then merge. */
const mergeWith = (file: string, mutate: Parameters<typeof mutateSafetensors>[1]) => (dir: string) => {
  mutateSafetensors(join(dir, file), mutate);
  return merge(dir);
};
type Entry = { dtype: string; shape: number[]; data_offsets: [number, number] };
/** Tensor entries of a parsed header, sorted by offset (metadata left out). */
const entries = (h: Record<string, unknown>) =>
  Object.entries(h)
    .filter(([k]) => k !== '__metadata__')
    .map(([k, v]) => [k, v as Entry] as const)
    .sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);

/** `rlhf data validate --tokenizer DIR` (loads the tokenizer before reading the data). */
const withTokenizer = (breakIt: (tokDir: string) => void) => (dir: string) => {
  breakIt(join(dir, 'tokenizer'));
  return ['data', 'validate', write(dir, 'ok.jsonl', jsonl(GOOD_ROW)), '--kind', 'sft', '--tokenizer', join(dir, 'tokenizer')];
};
const editJson = (path: string, edit: (j: Record<string, unknown>) => void) => {
  const j = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  edit(j);
  writeFileSync(path, JSON.stringify(j));
};

/**
 * `rlhf sft` on a small valid setup (model + tokenizer + 4 dialogues) with `yaml` lines added or
 * replacing the defaults below; everything fails before training, so nothing may appear in run/.
 */
const sft = (yaml: Record<string, string>, ...overrides: string[]) => (dir: string) => {
  write(dir, 'train.jsonl', jsonl(GOOD_ROW, GOOD_ROW, GOOD_ROW, GOOD_ROW));
  const lines: Record<string, string> = {
    stage: 'sft',
    engine: '{backend: cpu}',
    tracking: '{enabled: false}',
    output_dir: join(dir, 'run'),
    model: `{path: ${join(dir, 'model')}}`,
    data: `{train: ${join(dir, 'train.jsonl')}, eval: null, max_length: 32}`,
    train: '{steps: 2, batch_size: 2}',
    ...yaml,
  };
  const cfg = write(dir, 'sft.yaml', Object.entries(lines).map(([k, v]) => `${k}: ${v}`).join('\n') + '\n');
  return ['sft', '--config', cfg, ...overrides];
};

const CASES: Case[] = [
  // --- configs ---------------------------------------------------------------------------------
  {
    area: 'config', name: 'wrong type (train.steps: ten)',
    setup: validate(BASE_YAML + 'train:\n  steps: ten\n'),
    expect: [/cfg\.yaml:5:10 train\.steps: expected number, received string/],
  },
  {
    area: 'config', name: 'unknown key with a did-you-mean',
    setup: validate(BASE_YAML + 'optim:\n  weight_decai: 0.1\n'),
    expect: [/cfg\.yaml:5:3 optim\.weight_decai: unknown key \(did you mean optim\.weight_decay\?\)/],
  },
  {
    area: 'config', name: 'negative learning rate',
    setup: validate(BASE_YAML + 'optim:\n  lr: -0.001\n'),
    expect: [/cfg\.yaml:5:7 optim\.lr: must be > 0, received -0\.001/],
  },
  {
    area: 'config', name: 'missing config file',
    setup: (dir) => ['validate', join(dir, 'nope.yaml')],
    expect: [at('nope.yaml'), 'no such file'],
  },
  {
    area: 'config', name: 'invalid YAML',
    setup: validate('stage: reliability\ndata: {path: [a.jsonl\n'),
    expect: [/cfg\.yaml:\d+:\d+/],
  },
  {
    area: 'config', name: 'interpolation of a missing key',
    setup: validate(BASE_YAML + 'output_dir: runs/${run.nmae}/x\n'),
    expect: [/cfg\.yaml:4:\d+ output_dir: .*run\.nmae/],
  },
  {
    area: 'config', name: 'unknown stage, with a did-you-mean',
    setup: validate('stage: reliabilty\n'),
    expect: [/cfg\.yaml:1:8 stage: unknown stage 'reliabilty' \(did you mean reliability\?\)/],
  },
  {
    area: 'config', name: 'no stage key',
    setup: validate('data:\n  path: a.jsonl\n'),
    expect: [/cfg\.yaml.* stage: missing/],
  },
  {
    area: 'config', name: 'a required key missing (data.path)',
    setup: validate('stage: reliability\ndata: {}\n'),
    expect: [/cfg\.yaml:\d+:\d+ data\.path/],
  },
  {
    area: 'config', name: 'a config that is a list, not a mapping',
    setup: validate('- stage: reliability\n'),
    expect: [/cfg\.yaml:1:1 .*mapping/],
  },
  {
    area: 'config', name: 'an override of an unknown key',
    setup: validate(BASE_YAML, 'optim.lrr=0.1'),
    expect: [/optim\.lrr=0\.1.*optim\.lrr: unknown key \(did you mean optim\.lr\?\)/s],
  },
  {
    area: 'config', name: 'an override with a value of the wrong type',
    setup: validate(BASE_YAML, 'train.batch_size=big'),
    expect: [/train\.batch_size=big.*train\.batch_size: expected number, received string/s],
  },
  {
    area: 'config', name: 'out-of-range values reported together (betas >= 1, keep_last 0)',
    setup: validate(BASE_YAML + 'optim:\n  betas: [0.9, 1.5]\ncheckpoint:\n  keep_last: 0\n'),
    expect: [/optim\.betas\.1/, /checkpoint\.keep_last/, /2 problems in .*cfg\.yaml/],
  },
  {
    area: 'config', name: 'rlhf sft given a config of another stage',
    setup: sft({ stage: 'reliability' }),
    expect: [/sft\.yaml:1:8 stage: this is a 'reliability' config; this command needs 'stage: sft'/],
    absent: ['run'],
  },
  {
    area: 'config', name: 'rlhf sft: model.path is not a model folder',
    setup: sft({ model: '{path: nowhere}' }),
    expect: [/model\.path: nowhere has no config\.json/],
    absent: ['run'],
  },
  {
    area: 'config', name: 'rlhf sft: data.train does not exist',
    setup: sft({ data: '{train: missing.jsonl, eval: null}' }),
    expect: [/missing\.jsonl: dataset file not found/],
    absent: ['run'],
  },
  {
    area: 'config', name: 'rlhf sft: contradictory options (eval_split holds out more rows than train has)',
    setup: sft({}, 'data.eval_split=10'),
    expect: [/data\.eval_split: 10 rows held out, but .*train\.jsonl has only 4/],
    absent: ['run'],
  },
  {
    area: 'config', name: 'rlhf sft: wrong type in an override (lora.r=four)',
    setup: sft({}, 'lora.r=four'),
    expect: [/lora\.r=four.*lora\.r: expected number, received string/s],
    absent: ['run'],
  },
  {
    area: 'config', name: 'rlhf sft: a tokenizer larger than the model\'s vocabulary',
    setup: sft({ tokenizer: `{path: ${join(process.cwd(), 'test/fixtures/tokenizers/llama-byte-fallback')}}` }),
    expect: [/tokenizer .*llama-byte-fallback has 361 tokens but model .*model only 340 embeddings/],
    absent: ['run'],
  },
  {
    area: 'config', name: 'rlhf sft: a bad row in the training data',
    setup: (dir) => {
      const argv = sft({})(dir);
      write(dir, 'train.jsonl', jsonl(GOOD_ROW, GOOD_ROW, dialogue(['user', 'hi'], ['bot', 'x'])));
      return argv;
    },
    expect: [/train\.jsonl: 1 bad row\(s\) of 3 \(data\.on_bad_row=error/, /train\.jsonl line 3: messages\[1\]\.role: unknown role "bot"/],
    absent: ['run'],
  },

  // --- data ------------------------------------------------------------------------------------
  {
    area: 'data', name: 'invalid JSON on one line',
    setup: dataValidate('d.jsonl', jsonl(GOOD_ROW, '{"messages": [', GOOD_ROW)),
    expect: [/d\.jsonl line 2: invalid JSON/],
  },
  {
    area: 'data', name: 'missing fields (no SFT column)',
    setup: dataValidate('d.jsonl', jsonl(GOOD_ROW, { question: 'hi' })),
    expect: [/d\.jsonl line 2: no SFT columns.*found: question/],
  },
  {
    area: 'data', name: 'prompt without completion',
    setup: dataValidate('d.jsonl', jsonl({ prompt: 'hi' })),
    expect: [/d\.jsonl line 1: completion: missing/],
  },
  {
    area: 'data', name: 'empty content string',
    setup: dataValidate('d.jsonl', jsonl(dialogue(['user', 'hi'], ['assistant', '   ']))),
    expect: [/d\.jsonl line 1: messages\[1\]\.content: must not be empty/],
  },
  {
    area: 'data', name: 'unknown role',
    setup: dataValidate('d.jsonl', jsonl(GOOD_ROW, GOOD_ROW, dialogue(['user', 'hi'], ['bot', 'yo']))),
    expect: [/d\.jsonl line 3: messages\[1\]\.role: unknown role "bot"/],
  },
  {
    area: 'data', name: 'dialogue ending on a user turn',
    setup: dataValidate('d.jsonl', jsonl(dialogue(['user', 'hi'], ['assistant', 'yo'], ['user', 'and?']))),
    expect: [/d\.jsonl line 1: messages: must end on an assistant turn/],
  },
  {
    area: 'data', name: 'two user turns in a row',
    setup: dataValidate('d.jsonl', jsonl(dialogue(['user', 'hi'], ['user', 'again'], ['assistant', 'yo']))),
    expect: [/d\.jsonl line 1: messages\[1\]\.role: "user": expected an assistant turn/],
  },
  {
    area: 'data', name: 'a row that is not an object',
    setup: dataValidate('d.jsonl', jsonl(GOOD_ROW, '[1, 2, 3]')),
    expect: [/d\.jsonl line 2: a row must be an object/],
  },
  {
    area: 'data', name: 'enormous row (over the 64 MiB line limit) is reported, not loaded',
    setup: (dir) => {
      const path = join(dir, 'd.jsonl');
      writeFileSync(path, jsonl(GOOD_ROW));
      // 65 MiB of one line, in 1 MiB appends (never one 65 MiB string in the test either).
      appendFileSync(path, '{"text": "');
      const mib = 'x'.repeat(1 << 20);
      for (let i = 0; i < 65; i++) appendFileSync(path, mib);
      appendFileSync(path, '"}\n' + JSON.stringify(GOOD_ROW) + '\n');
      return ['data', 'validate', path, '--kind', 'sft'];
    },
    expect: [/d\.jsonl line 2: line is 68157452 bytes, over the 67108864-byte limit/, /3 read, 2 valid, 1 bad/],
  },
  {
    area: 'data', name: 'invalid UTF-8',
    setup: dataValidate('d.jsonl', Buffer.concat([Buffer.from(jsonl(GOOD_ROW) + '{"text": "caf'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')])),
    expect: [/d\.jsonl line 2: invalid UTF-8 \(byte 15 of the line\)/],
  },
  {
    area: 'data', name: 'empty file',
    setup: dataValidate('d.jsonl', ''),
    expect: [/d\.jsonl: no rows \(the file is empty\)/],
  },
  {
    area: 'data', name: 'wrong kind (preference rows validated as sft)',
    setup: dataValidate('d.jsonl', jsonl({ prompt: 'q', chosen: 'a', rejected: 'b' })),
    expect: [/d\.jsonl line 1: completion: missing/],
  },
  {
    area: 'data', name: 'wrong kind (sft rows validated as preference)',
    setup: dataValidate('d.jsonl', jsonl(GOOD_ROW), 'preference'),
    expect: [/d\.jsonl line 1: no preference columns.*found: messages/],
  },
  {
    area: 'data', name: 'preference: chosen a string, rejected a message list',
    setup: dataValidate('d.jsonl', jsonl({ prompt: 'q', chosen: 'a', rejected: [{ role: 'assistant', content: 'b' }] }), 'preference'),
    expect: [/d\.jsonl line 1: rejected: chosen and rejected must both be/],
  },
  {
    area: 'data', name: 'preference: margin of the wrong type',
    setup: dataValidate('d.jsonl', jsonl({ prompt: 'q', chosen: 'a', rejected: 'b', margin: 'high' }), 'preference'),
    expect: [/d\.jsonl line 1: margin: expected a number/],
  },
  {
    area: 'data', name: 'prompts: a conversation ending on an assistant turn',
    setup: dataValidate('d.jsonl', jsonl({ prompt: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }), 'prompts'),
    expect: [/d\.jsonl line 1: prompt: must end on a user turn/],
  },
  {
    area: 'data', name: 'unknown file extension',
    setup: dataValidate('d.csv', 'a,b\n'),
    expect: [/d\.csv: unknown dataset extension "\.csv"/],
  },
  {
    area: 'data', name: 'missing dataset file',
    setup: (dir) => ['data', 'validate', join(dir, 'nope.jsonl'), '--kind', 'sft'],
    expect: [/nope\.jsonl: dataset file not found/],
  },
  {
    area: 'data', name: 'an .arrow file that is not Arrow',
    setup: dataValidate('d.arrow', 'this is not arrow\n'),
    expect: [/d\.arrow: not a readable Arrow IPC file/],
  },
  {
    area: 'data', name: 'a .parquet file that is not Parquet',
    setup: dataValidate('d.parquet', 'PAR1 but not really\n'),
    expect: [/d\.parquet/],
  },
  {
    area: 'data', name: 'convert stops on a bad row and writes no output',
    setup: (dir) => ['data', 'convert', write(dir, 'd.jsonl', jsonl(GOOD_ROW, '{oops')), join(dir, 'out.parquet')],
    expect: [/d\.jsonl line 2: invalid JSON/],
    absent: ['out.parquet'],
  },
  {
    area: 'data', name: 'convert --kind sft stops on a schema problem and writes no output',
    setup: (dir) => ['data', 'convert', write(dir, 'd.jsonl', jsonl(GOOD_ROW, dialogue(['user', 'x']))), join(dir, 'out.arrow'), '--kind', 'sft'],
    expect: [/d\.jsonl line 2: messages: must end on an assistant turn/],
    absent: ['out.arrow'],
  },

  // --- checkpoints (through merge-lora: load base model + adapter, write a merged folder) -------
  {
    area: 'checkpoint', name: 'truncated model.safetensors',
    setup: (dir) => {
      const path = join(dir, MODEL_ST);
      truncateSync(path, Math.floor(readFileSync(path).length / 2));
      return merge(dir);
    },
    expect: [at(MODEL_ST), /invalid safetensors file/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'file shorter than the 8-byte length',
    setup: (dir) => (writeFileSync(join(dir, MODEL_ST), Buffer.from([1, 2, 3])), merge(dir)),
    expect: [at(MODEL_ST), /file is 3 bytes, shorter than the 8-byte header length/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'header offsets past the end of the data',
    setup: mergeWith(MODEL_ST, ({ header }) => {
      const list = entries(header);
      const [name, last] = list[list.length - 1]!;
      last.data_offsets = [last.data_offsets[0] + 64, last.data_offsets[1] + 64];
      header[name] = last;
    }),
    expect: [at(MODEL_ST), /data_offsets \[\d+, \d+\] run past the end of the data/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'unknown dtype',
    setup: mergeWith(MODEL_ST, ({ header }) => {
      const [name, e] = entries(header)[0]!;
      header[name] = { ...e, dtype: 'Q4_K' };
    }),
    expect: [at(MODEL_ST), /unsupported dtype "Q4_K"/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'overlapping offsets',
    setup: mergeWith(MODEL_ST, ({ header }) => {
      // Two tensors of the same shape: point the second at the first one's bytes.
      const list = entries(header);
      const pair = list.find(([, a], i) => list.slice(i + 1).some(([, b]) => b.shape.join() === a.shape.join()))!;
      const other = list.find(([n, b]) => n !== pair[0] && b.shape.join() === pair[1].shape.join())!;
      header[other[0]] = { ...other[1], data_offsets: [...pair[1].data_offsets] };
    }),
    expect: [at(MODEL_ST), /overlaps the previous tensor/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'huge header length (2^53)',
    setup: (dir) => {
      writeFileSync(join(dir, MODEL_ST), safetensorsBytes({}, new Uint8Array(0), 2n ** 53n));
      return merge(dir);
    },
    expect: [at(MODEL_ST), /header length 9007199254740992 exceeds the 100000000-byte limit/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'header that is not JSON',
    setup: (dir) => {
      writeFileSync(join(dir, MODEL_ST), safetensorsBytes('{"a": nope}', new Uint8Array(0)));
      return merge(dir);
    },
    expect: [at(MODEL_ST), /header is not valid JSON/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'shape that disagrees with its byte span',
    setup: mergeWith(MODEL_ST, ({ header }) => {
      const [name, e] = entries(header)[0]!;
      header[name] = { ...e, shape: [e.shape[0]! * 2, ...e.shape.slice(1)] };
    }),
    expect: [at(MODEL_ST), /needs \d+ bytes but data_offsets span \d+/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'missing tensor',
    setup: (dir) => {
      const path = join(dir, MODEL_ST);
      const { tensors } = readSafetensors(path);
      tensors.delete('model.layers.1.mlp.down_proj.weight');
      writeSafetensors(path, tensors);
      return merge(dir);
    },
    expect: [at('model'), /missing tensors \(1\): model\.layers\.1\.mlp\.down_proj\.weight/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'config.json that disagrees with the weights',
    setup: (dir) => {
      editJson(join(dir, 'model/config.json'), (j) => (j.intermediate_size = 32));
      return merge(dir);
    },
    expect: [at('model'), /does not match its config\.json/, /model\.layers\.0\.mlp\.gate_proj\.weight is \[24, 16\] in model\.safetensors, expected \[32, 16\]/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'corrupt config.json',
    setup: (dir) => (writeFileSync(join(dir, 'model/config.json'), '{"hidden_size": 16,'), merge(dir)),
    expect: [at('model/config.json'), /invalid JSON/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'config.json with an impossible value',
    setup: (dir) => {
      editJson(join(dir, 'model/config.json'), (j) => (j.num_key_value_heads = 3));
      return merge(dir);
    },
    expect: [at('model/config.json'), /num_attention_heads \(4\) must be a multiple of num_key_value_heads \(3\)/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'not a model folder',
    setup: (dir) => (mkdirSync(join(dir, 'empty')), ['merge-lora', '--model', join(dir, 'empty'), '--adapter', join(dir, 'adapter'), '--out', join(dir, 'merged'), '--backend', 'cpu']),
    expect: [at('empty/config.json')],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'adapter tensor of the wrong shape',
    setup: (dir) => {
      const path = join(dir, ADAPTER_ST);
      const { tensors } = readSafetensors(path);
      const name = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';
      tensors.set(name, { shape: [3, 16], data: new Float32Array(48) });
      writeSafetensors(path, tensors);
      return merge(dir);
    },
    expect: [at(ADAPTER_ST), /adapter does not fit the model.*lora_A\.weight has shape \[3,16\], expected \[2,16\]/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'adapter missing a tensor',
    setup: (dir) => {
      const path = join(dir, ADAPTER_ST);
      const { tensors } = readSafetensors(path);
      tensors.delete('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight');
      writeSafetensors(path, tensors);
      return merge(dir);
    },
    expect: [at(ADAPTER_ST), /missing base_model\.model\.model\.layers\.1\.self_attn\.v_proj\.lora_B\.weight/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'adapter_config.json with r: 0 and an unknown peft_type',
    setup: (dir) => {
      editJson(join(dir, 'adapter/adapter_config.json'), (j) => Object.assign(j, { r: 0, peft_type: 'IA3' }));
      return merge(dir);
    },
    expect: [at('adapter/adapter_config.json'), /"peft_type" must be "LORA"/, /"r" must be a positive integer \(got 0\)/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: 'truncated adapter weights',
    setup: (dir) => {
      const path = join(dir, ADAPTER_ST);
      truncateSync(path, readFileSync(path).length - 10);
      return merge(dir);
    },
    expect: [at(ADAPTER_ST), /invalid safetensors file/],
    absent: ['merged'],
  },
  {
    area: 'checkpoint', name: '--out is the base model folder',
    setup: (dir) => ['merge-lora', '--model', join(dir, 'model'), '--adapter', join(dir, 'adapter'), '--out', join(dir, 'model'), '--backend', 'cpu'],
    expect: [/--out .*model is the base model folder/],
  },

  {
    area: 'checkpoint', name: 'generate: generation_config.json that is not JSON',
    setup: (dir) => (writeFileSync(join(dir, 'model/generation_config.json'), '{"temperature": 0.7,'), generate(dir)),
    expect: [at('model/generation_config.json'), /invalid JSON/],
  },
  {
    area: 'checkpoint', name: 'generate: a truncated model',
    setup: (dir) => (truncateSync(join(dir, MODEL_ST), 100), generate(dir)),
    expect: [at(MODEL_ST), /invalid safetensors file/],
  },
  {
    area: 'checkpoint', name: 'generate: an adapter folder without adapter_config.json',
    setup: (dir) => (rmSync(join(dir, 'adapter/adapter_config.json')), generate(dir, '--adapter', join(dir, 'adapter'))),
    expect: [at('adapter/adapter_config.json'), /not found/],
  },
  {
    area: 'cli', name: 'generate: a negative temperature',
    setup: (dir) => generate(dir, '--temperature', '-1'),
    expect: [/generate: temperature must be ≥ 0/],
  },
  {
    area: 'cli', name: 'generate: a negative --max-new-tokens',
    setup: (dir) => generate(dir, '--max-new-tokens', '-5'),
    expect: [/generate: max new tokens \(--max-new-tokens, generation.max_new_tokens\) must be a non-negative integer/],
  },

  // --- tokenizer files -------------------------------------------------------------------------
  {
    area: 'tokenizer', name: 'missing tokenizer.json',
    setup: withTokenizer((tok) => rmSync(join(tok, 'tokenizer.json'))),
    expect: [at('tokenizer/tokenizer.json'), /cannot read/],
  },
  {
    area: 'tokenizer', name: 'tokenizer.json that is not JSON',
    setup: withTokenizer((tok) => writeFileSync(join(tok, 'tokenizer.json'), '{"model": {')),
    expect: [at('tokenizer/tokenizer.json'), /invalid JSON/],
  },
  {
    area: 'tokenizer', name: 'unknown model type',
    setup: withTokenizer((tok) => editJson(join(tok, 'tokenizer.json'), (j) => ((j.model as Record<string, unknown>).type = 'WordPieceX'))),
    expect: [at('tokenizer/tokenizer.json'), /model\.type "WordPieceX" is not supported/],
  },
  {
    area: 'tokenizer', name: 'special token not in the vocabulary',
    setup: withTokenizer((tok) => editJson(join(tok, 'tokenizer_config.json'), (j) => (j.eos_token = '<|eos_missing|>'))),
    expect: [at('tokenizer/tokenizer_config.json'), /eos_token '<\|eos_missing\|>' is not in the vocabulary/],
  },
  {
    area: 'tokenizer', name: 'tokenizer_config.json that is not JSON',
    setup: withTokenizer((tok) => writeFileSync(join(tok, 'tokenizer_config.json'), 'eos_token: </s>')),
    expect: [at('tokenizer/tokenizer_config.json'), /invalid JSON/],
  },
  {
    area: 'tokenizer', name: 'tokenizer train: missing corpus file',
    setup: (dir) => ['tokenizer', 'train', '--corpus', join(dir, 'nope.txt'), '--vocab-size', '300', '--out', join(dir, 'tok')],
    expect: [at('nope.txt'), /cannot read corpus file/],
    absent: ['tok'],
  },
  {
    area: 'tokenizer', name: 'tokenizer train: vocabulary too small',
    setup: (dir) => ['tokenizer', 'train', '--corpus', join(dir, 'corpus.txt'), '--vocab-size', '12', '--out', join(dir, 'tok')],
    expect: [/--vocab-size must be an integer >= \d+/],
    absent: ['tok'],
  },
  {
    area: 'tokenizer', name: 'tokenizer train: --out under a regular file',
    setup: (dir) => ['tokenizer', 'train', '--corpus', join(dir, 'corpus.txt'), '--vocab-size', '300', '--out', join(dir, 'corpus.txt', 'tok')],
    expect: [at('corpus.txt/tok'), /corpus\.txt is a file, not a folder/],
  },

  // --- command line ----------------------------------------------------------------------------
  {
    area: 'cli', name: 'unknown command with a suggestion',
    setup: () => ['valdate', 'x.yaml'],
    expect: [/Did you mean validate\?/],
  },
  {
    area: 'cli', name: 'invalid choice for --backend',
    setup: () => ['env', '--backend', 'cuda'],
    expect: [/backend.*cuda/s],
  },
  {
    area: 'cli', name: 'missing required option',
    setup: (dir) => ['merge-lora', '--model', join(dir, 'model'), '--out', join(dir, 'merged')],
    expect: [/Missing required argument: adapter/],
    absent: ['merged'],
  },
];

// ---------------------------------------------------------------------------------------------

/** Temp and partial files anywhere below `dir` (atomic writers' leftovers). */
function leftovers(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) => /(^|\/)\.([^/]*\.)?(tmp|old)-|\.tmp$|\.write-probe-/.test(p));
}

let caseNo = 0;
describe.each(['config', 'data', 'checkpoint', 'tokenizer', 'cli'] as const)('bad input: %s', (area) => {
  test.each(CASES.filter((c) => c.area === area).map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const dir = join(root, `case-${++caseNo}`);
    cpSync(pristine, dir, { recursive: true });
    const argv = c.setup(dir);
    const r = await runCli(argv);

    expect(r.hung).toBe(false);
    expect(r.code).toBe(c.code ?? 2);
    for (const want of c.expect) {
      const w = typeof want === 'function' ? want(dir) : want;
      if (typeof w === 'string') expect(r.output).toContain(w);
      else expect(r.output).toMatch(w);
    }
    expect(r.output).not.toMatch(STACK_FRAME);
    expect(r.output).not.toContain('unexpected; rerun');
    for (const rel of c.absent ?? []) expect(existsSync(join(dir, rel)) ? rel : null).toBeNull();
    expect(leftovers(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);
});

test('the table has at least 40 cases, each area covered', () => {
  expect(CASES.length).toBeGreaterThanOrEqual(40);
  for (const area of ['config', 'data', 'checkpoint', 'tokenizer']) expect(CASES.filter((c) => c.area === area).length).toBeGreaterThanOrEqual(4);
});
