/** `rlhf ls [STAGE]`: the stages and shipped configs; with a stage, that stage's config keys. */
import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import {
  closestMatch,
  listShippedConfigs,
  registeredStages,
  schemaHelpText,
  schemaMarkdownTable,
  stageSchema,
} from '../config/index.js';
import type { CliIo } from './main.js';

interface LsArgs {
  stage?: string;
  markdown: boolean;
}

function table(rows: [string, string][]): string[] {
  if (rows.length === 0) return ['  (none yet)'];
  const width = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `  ${a.padEnd(width)}  ${b}`.trimEnd());
}

/** Stages with schemas, then shipped configs with the first line of their header comment. */
export function listing(): string {
  const stages = registeredStages().map((s): [string, string] => [s, stageSchema(s)?.description ?? '']);
  const configs = listShippedConfigs().map((c): [string, string] => [c.name, c.summary]);
  return [
    'Stages (rlhf <stage> --config FILE [key=value ...]):',
    ...table(stages),
    '',
    'Shipped configs (rlhf cp NAME DEST to start your own):',
    ...table(configs),
  ].join('\n');
}

export function lsCommand(io: CliIo): CommandModule<object, LsArgs> {
  return {
    command: 'ls [stage]',
    describe: 'List stages and shipped configs; with a stage, its config keys',
    builder: (y: Argv) =>
      y
        .positional('stage', { type: 'string', describe: 'Show this stage\'s keys, types, defaults and help' })
        .option('markdown', { type: 'boolean', default: false, describe: 'Print the keys as a Markdown table' }),
    handler: (args) => {
      if (args.stage === undefined) return io.out(listing());
      const schema = stageSchema(args.stage);
      if (schema === undefined) {
        const guess = closestMatch(args.stage, registeredStages());
        const hint = guess === undefined ? '' : ` (did you mean ${guess}?)`;
        throw new UserError(`unknown stage '${args.stage}'${hint}; 'rlhf ls' lists the stages`);
      }
      io.out(args.markdown ? schemaMarkdownTable(schema) : schemaHelpText(schema, `Keys of stage '${args.stage}':`));
    },
  };
}
