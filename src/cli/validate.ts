/** `rlhf validate CONFIG [k=v ...]`: check a config against its stage's schema, listing every problem. */
import type { Argv, CommandModule } from 'yargs';
import { findConfig, loadConfig, registeredStages, resolvedConfigYaml, stageSchema } from '../config/index.js';
import type { CliIo } from './main.js';

interface ValidateArgs {
  config: string;
  overrides: string[];
  print: boolean;
}

function stagesEpilogue(): string {
  const stages = registeredStages();
  if (stages.length === 0) return 'No stage schemas are registered yet.';
  const width = Math.max(...stages.map((s) => s.length));
  const lines = stages.map((s) => `  ${s.padEnd(width)}  ${stageSchema(s)?.description ?? ''}`.trimEnd());
  return ['Stages (the config names one with `stage:` at the top):', ...lines, "Keys of a stage: 'rlhf ls STAGE'."].join('\n');
}

export function validateCommand(io: CliIo): CommandModule<object, ValidateArgs> {
  return {
    command: 'validate <config> [overrides..]',
    describe: 'Check a config and key=value overrides against its stage schema; report every problem',
    builder: (y: Argv) =>
      y
        .positional('config', { type: 'string', demandOption: true, describe: 'Config file, or a shipped config name (rlhf ls)' })
        .positional('overrides', { type: 'string', array: true, default: [], describe: 'key.sub=value to set, ~key to delete' })
        .option('print', { type: 'boolean', default: false, describe: 'Print the resolved config (defaults filled in)' })
        .epilogue(stagesEpilogue()),
    handler: (args) => {
      const file = findConfig(args.config);
      const resolved = loadConfig(file, args.overrides.map(String));
      io.out(args.print ? resolvedConfigYaml(resolved) : `${file}: valid ${resolved.stage} config`);
    },
  };
}
