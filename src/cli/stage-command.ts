/** What every stage command (`rlhf sft | dpo | rs | ppo | reward | gatt | pretrain`) takes: a config and key=value overrides. */
import type { Argv, CommandModule } from 'yargs';
import type { z } from 'zod';
import { findConfig, loadConfig, schemaHelpText, type ResolvedConfig } from '../config/index.js';

export interface StageArgs {
  config: string;
  overrides: string[];
}

/**
 * `--config` (a file, or a shipped config name such as `example`), the `key=value` overrides and, as
 * the help's epilogue, the stage's schema: every key with its default and help. `more` adds the
 * command's own options. A parent command with subcommands cannot demand --config (yargs would
 * demand it of the subcommands too): `config: { demandOption: false }` or `{ global: false }`, and
 * its handler checks.
 */
export function stageOptions<A>(
  y: Argv,
  schema: z.ZodType,
  example: string,
  opts: { config?: { demandOption?: boolean; global?: boolean }; more?: (y: Argv) => Argv } = {},
): Argv<A> {
  const withConfig = y.option('config', {
    type: 'string',
    ...(opts.config ?? { demandOption: true }),
    describe: `Config file, or a shipped config name (e.g. ${example})`,
  });
  return (opts.more ? opts.more(withConfig) : withConfig)
    .positional('overrides', { type: 'string', array: true, default: [], describe: 'key.sub=value to set, ~key to delete' })
    .epilogue(schemaHelpText(schema)) as unknown as Argv<A>;
}

/** The command's config file (or shipped name) with its overrides, validated against the stage's schema. */
export function loadStageConfig<S extends z.ZodType>(args: { config: string; overrides: readonly unknown[] }, stage: string, schema: S): ResolvedConfig<z.output<S>> {
  return loadConfig(findConfig(args.config), args.overrides.map(String), { stage, schema });
}

/**
 * A whole stage command, `rlhf <stage> --config FILE [k=v ...]`: load and validate the config, run
 * the stage, print the summary line `run` returns.
 */
export function stageCommand<S extends z.ZodType>(
  stage: string,
  schema: S,
  opts: { describe: string; example: string; run: (resolved: ResolvedConfig<z.output<S>>) => Promise<string> },
): CommandModule<object, StageArgs> {
  return {
    command: `${stage} [overrides..]`,
    describe: opts.describe,
    builder: (y: Argv) => stageOptions<StageArgs>(y, schema, opts.example),
    handler: async (args) => {
      console.log(await opts.run(loadStageConfig(args, stage, schema)));
    },
  };
}
