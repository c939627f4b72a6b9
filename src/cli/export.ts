/**
 * `rlhf export --config FILE --to trl|openrlhf --out DIR [--gpus N] [--deepspeed zero2|zero3] [k=v ...]`:
 * the same stage (or whole pipeline) as scripts for TRL or OpenRLHF, with the data converted
 * next to them and MAPPING.md naming every key's equivalent and the gaps.
 */
import type { Argv, CommandModule } from 'yargs';
import { findConfig } from '../config/index.js';
import { UserError } from '../errors.js';
import { writeExport } from '../export/export.js';
import { planExport } from '../export/plan.js';
import { DEEPSPEED_STAGES, ENGINES, engineLabel, type DeepSpeedStage, type Engine } from '../export/versions.js';

interface ExportArgs {
  config: string;
  to: Engine;
  out: string;
  gpus: number;
  deepspeed?: DeepSpeedStage;
  overrides: string[];
}

export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export [overrides..]',
  describe: 'Write a stage or pipeline as TRL / OpenRLHF scripts with its data converted (outgrowing one machine)',
  builder: (y: Argv) =>
    y
      .option('config', { type: 'string', demandOption: true, describe: 'A sft, reward, ppo, dpo, rs, gatt or pipeline config (file or shipped name)' })
      .option('to', { choices: ENGINES, demandOption: true, describe: 'trl (TRL 1.x scripts, accelerate + DeepSpeed) or openrlhf (OpenRLHF command lines)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Export folder (created): scripts, converted data, MAPPING.md, run.sh' })
      .option('gpus', { type: 'number', default: 1, describe: 'GPUs to split each global batch over' })
      .option('deepspeed', { choices: DEEPSPEED_STAGES, describe: 'DeepSpeed ZeRO stage (TRL: writes ds_config.json; OpenRLHF: --ds.zero_stage, default 2)' })
      .positional('overrides', { type: 'string', array: true, default: [], describe: 'key.sub=value to set, ~key to delete (as the stage commands take them)' }) as unknown as Argv<ExportArgs>,
  handler: async (args) => {
    if (!Number.isInteger(args.gpus) || args.gpus < 1) throw new UserError(`--gpus ${args.gpus}: expected a whole number of GPUs, at least 1`);
    const file = findConfig(args.config);
    const items = await planExport(file, args.overrides.map(String), args.to);
    const result = await writeExport(items, { engine: args.to, gpus: args.gpus, deepspeed: args.deepspeed ?? null, out: args.out, source: file });
    console.log(`exported ${items.map((i) => i.name).join(', ')} for ${engineLabel(args.to)} → ${args.out}`);
    for (const s of result.stages) console.log(`  ${s.name}: ${s.command}\n    model → ${s.output}`);
    console.log(`all stages in order: bash ${args.out}/run.sh; every key and gap: ${args.out}/MAPPING.md`);
  },
};
