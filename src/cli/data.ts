import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { DATASET_KINDS, type DatasetKind } from '../data/schemas.js';
import { formatReport, validateDataset } from '../data/validate.js';
import { convertDataset } from '../data/convert.js';
import type { BadRowPolicy } from '../data/problems.js';
import { synthCommand } from './data-synth.js';

/** The slice of the tokenizer module `validate --tokenizer` needs (imported only when asked for). */
interface TokenizerModule {
  loadTokenizer(dir: string): Promise<{ encode(text: string, opts?: { addSpecialTokens?: boolean }): number[] }>;
}

interface ValidateArgs {
  file: string;
  kind: DatasetKind;
  tokenizer?: string;
}

export const dataValidateCommand: CommandModule<object, ValidateArgs> = {
  command: 'validate <file>',
  describe: 'Check every row of a dataset (JSONL, Arrow, Parquet); print counts, token lengths and all problems; exit 2 if any',
  builder: (y: Argv) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'dataset file (.jsonl, .arrow, .parquet)' })
      .option('kind', { choices: DATASET_KINDS, demandOption: true, describe: 'row schema: sft | preference | prompts' })
      .option('tokenizer', { type: 'string', describe: 'tokenizer folder (tokenizer.json); adds token-length statistics' }) as unknown as Argv<ValidateArgs>,
  handler: async (args) => {
    let encode: ((text: string) => number[]) | undefined;
    if (args.tokenizer) {
      // A variable specifier keeps the tokenizer (and its wasm/jinja deps) out of plain validation runs.
      const spec = '../tokenizer/index.js';
      const { loadTokenizer } = (await import(spec)) as TokenizerModule;
      const tokenizer = await loadTokenizer(args.tokenizer);
      encode = (text) => tokenizer.encode(text, { addSpecialTokens: false });
    }
    const report = await validateDataset(args.file, args.kind, { encode });
    console.log(formatReport(report));
    if (report.problems.length) throw new UserError(`${args.file}: ${report.problems.length} problem(s) in ${report.total - report.valid} row(s)`);
  },
};

interface ConvertArgs {
  input: string;
  output: string;
  kind?: DatasetKind;
  'on-bad-row': BadRowPolicy;
}

export const dataConvertCommand: CommandModule<object, ConvertArgs> = {
  command: 'convert <input> <output>',
  describe: 'Convert a dataset between JSONL, Arrow IPC (.arrow file, .arrows stream) and Parquet, by extension',
  builder: (y: Argv) =>
    y
      .positional('input', { type: 'string', demandOption: true })
      .positional('output', { type: 'string', demandOption: true })
      .option('kind', { choices: DATASET_KINDS, describe: 'also check rows against this schema' })
      .option('on-bad-row', { choices: ['error', 'skip'] as const, default: 'error' as const, describe: 'with --kind: stop on a bad row, or drop it (and say so)' }) as unknown as Argv<ConvertArgs>,
  handler: async (args) => {
    const n = await convertDataset(args.input, args.output, { kind: args.kind, onBadRow: args['on-bad-row'] });
    console.log(`wrote ${n} rows to ${args.output}`);
  },
};

/** `rlhf data validate | convert | synth` (synth, the bundled world's generator, is data-synth.ts). */
export const dataCommand: CommandModule = {
  command: 'data <command>',
  describe: 'Dataset tools: validate, convert, synth',
  builder: (y: Argv) => y.command(dataValidateCommand).command(dataConvertCommand).command(synthCommand).demandCommand(1),
  handler: () => {},
};
