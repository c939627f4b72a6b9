/**
 * `rlhf pairs sample --model DIR [--model-b DIR] --out FILE`: two replies per prompt from the latest
 * model(s), written as unlabelled preference rows (`label: null`) for any annotation tool, or for
 * `rlhf world annotate` on the bundled world. See src/generation/pairs.ts for the row format.
 */
import type { Argv, CommandModule } from 'yargs';
import { samplingPrompts } from '../data/prompts.js';
import { writeRowsAtomic } from '../data/write-atomic.js';
import { initEngine, type BackendName } from '../engine/index.js';
import { UserError } from '../errors.js';
import { samplePairs, type PairSide } from '../generation/pairs.js';
import { packagePath, resolveDataPath } from '../paths.js';
import type { TemplateName } from '../tokenizer/index.js';

interface SampleArgs {
  model: string;
  adapter?: string;
  'model-b'?: string;
  'adapter-b'?: string;
  temperature: number;
  'temperature-b'?: number;
  'top-p': number;
  prompts: string;
  exclude: string[];
  limit?: number;
  out: string;
  'max-new-tokens': number;
  'batch-size': number;
  seed: number;
  template: TemplateName | 'auto';
  backend: BackendName;
}

const sampleCommand: CommandModule<object, SampleArgs> = {
  command: 'sample',
  describe: 'Two replies per prompt from one or two models (or temperatures), as unlabelled preference rows (label: null)',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'model folder of reply A (config.json, model.safetensors, tokenizer.json)' })
      .option('adapter', { type: 'string', describe: 'LoRA adapter folder (PEFT) applied to --model' })
      .option('model-b', { type: 'string', describe: 'model folder of reply B (default: --model)' })
      .option('adapter-b', { type: 'string', describe: 'LoRA adapter for --model-b (default: --adapter when --model-b is not given)' })
      .option('temperature', { type: 'number', default: 1, describe: 'sampling temperature of reply A' })
      .option('temperature-b', { type: 'number', describe: 'sampling temperature of reply B (default: --temperature)' })
      .option('top-p', { type: 'number', default: 1, describe: 'nucleus sampling of both replies (1 = off)' })
      .option('prompts', { type: 'string', default: packagePath('data', 'world', 'prompts.jsonl'), describe: 'prompts file (TRL prompt-only rows)' })
      .option('exclude', {
        type: 'string',
        array: true,
        default: [packagePath('data', 'world', 'prompts_eval.jsonl')],
        describe: 'prompt files never sampled (default: the world\'s held-out evaluation prompts); --exclude none: no exclusion',
      })
      .option('limit', { type: 'number', describe: 'sample the first N prompts left after exclusion (default: all)' })
      .option('out', { type: 'string', demandOption: true, describe: 'where to write the pairs (.jsonl, .arrow or .parquet)' })
      .option('max-new-tokens', { type: 'number', default: 48, describe: 'longest reply in tokens' })
      .option('batch-size', { type: 'number', default: 32, describe: 'prompts generated together' })
      .option('seed', { type: 'number', default: 0, describe: 'seed of the sampling (reply B draws from its own stream)' })
      .option('template', {
        choices: ['auto', 'tokenizer', 'llama2', 'chatml'] as const,
        default: 'auto' as const,
        describe: "chat template; auto = the tokenizer's own when it has one, else llama2",
      })
      .option('backend', { choices: ['auto', 'wasm', 'cpu', 'tensorflow'] as const, default: 'auto' as const, describe: 'TF.js backend' }) as unknown as Argv<SampleArgs>,
  handler: async (args) => {
    const tempB = args['temperature-b'] ?? args.temperature;
    for (const [key, t] of [['--temperature', args.temperature], ['--temperature-b', tempB]] as const) {
      if (!(t > 0)) throw new UserError(`${key} ${t}: must be > 0 (two greedy replies from one model would be the same reply)`);
    }
    if (args.limit !== undefined && !(Number.isInteger(args.limit) && args.limit > 0)) throw new UserError(`--limit ${args.limit}: must be a positive integer`);
    await initEngine({ backend: args.backend });
    const exclude = args.exclude.length === 1 && args.exclude[0] === 'none' ? [] : args.exclude.map(String).map(resolveDataPath);
    const log = (m: string) => void process.stderr.write(`pairs: ${m}\n`);
    const prompts = (await samplingPrompts(resolveDataPath(args.prompts), exclude, log)).slice(0, args.limit);
    if (prompts.length === 0) throw new UserError(`${args.prompts}: no prompt left to sample`);
    const a: PairSide = { model: args.model, adapter: args.adapter ?? null, temperature: args.temperature, topP: args['top-p'] };
    const b: PairSide = {
      model: args['model-b'] ?? args.model,
      adapter: args['adapter-b'] ?? (args['model-b'] === undefined ? (args.adapter ?? null) : null),
      temperature: tempB,
      topP: args['top-p'],
    };
    const { rows, emptyDropped } = await samplePairs(
      prompts.map((p) => p.prompt),
      [a, b],
      { template: args.template, maxNewTokens: args['max-new-tokens'], batchSize: args['batch-size'], seed: args.seed },
    );
    if (emptyDropped > 0) log(`${emptyDropped} prompts got an empty reply on one side; no row for them`);
    const n = await writeRowsAtomic(args.out, rows as unknown as Record<string, unknown>[]);
    console.log(`pairs: ${n} unlabelled pairs (label: null) → ${args.out}`);
  },
};

export const pairsCommand: CommandModule = {
  command: 'pairs <command>',
  describe: 'Fresh preference pairs from the latest models, for annotation',
  builder: (y: Argv) => y.command(sampleCommand).demandCommand(1),
  handler: () => {},
};
