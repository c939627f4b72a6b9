/**
 * `rlhf export --config FILE --to trl|openrlhf --out DIR [--gpus N] [--deepspeed zero2|zero3] [k=v ...]`:
 * the same stage (or whole pipeline) as scripts for TRL or OpenRLHF, with the data converted
 * next to them and MAPPING.md naming every key's equivalent and the gaps.
 *
 * The CLI is where the export meets the stages: it reads each stage's config (one stage, or every
 * enabled stage of a pipeline as the pipeline resolves it, wired engine output → input) into the
 * engine-independent specs of src/export, which writes the files.
 */
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { findConfig, loadConfig, resolvedConfigYaml, type ResolvedConfig } from '../config/index.js';
import { dpoConfigSchema, type DpoConfig } from '../dpo/config.js';
import { UserError } from '../errors.js';
import { packagePath } from '../paths.js';
import { shQuote } from '../export/args.js';
import { absoluteDataPath, preferenceRows, promptRows, readRows, rowLayout, seededHoldOut, seededSubset, sftRows, type Row } from '../export/data.js';
import { writeExport, type ExportItem } from '../export/export.js';
import { dpoSpec, gattSpec, gattTrainFile, ppoSpec, rewardSpec, rsSpec, sftSpec, type DataReaders, type StageSpec } from '../export/spec.js';
import { DEEPSPEED_STAGES, ENGINES, engineLabel, type DeepSpeedStage, type Engine } from '../export/versions.js';
import { gattConfigSchema, type GattConfig } from '../gatt/config.js';
import { pipelineConfigSchema, type PipelineConfig, type PipelineStage } from '../pipeline/config.js';
import { resolveStageConfig, runOverrides } from '../pipeline/runner.js';
import { resolvePackagePath } from '../pipeline/wiring.js';
import { ppoConfigSchema, type PpoConfig } from '../ppo/config.js';
import { rewardConfigSchema, type RewardConfig } from '../reward/config.js';
import { rsConfigSchema, type RsConfig } from '../rs/config.js';
import { sftConfigSchema, type SftConfig } from '../sft/config.js';

const warn = (message: string) => void process.stderr.write(`export: ${message}\n`);

const readers: DataReaders = {
  async sft(path, key, loss, onBad) {
    const file = absoluteDataPath(path);
    const rows = sftRows(await readRows(path, key), loss, file, { onBad, warn });
    rowLayout(rows, file);
    return rows;
  },
  async preferences(paths, key, margin, onBad) {
    const all: Row[] = [];
    for (const p of paths) all.push(...preferenceRows(await readRows(p, key), margin, absoluteDataPath(p), { onBad, warn }));
    rowLayout(all, paths.join(' + '));
    return all;
  },
  async prompts(path, key) {
    return promptRows(await readRows(path, key), absoluteDataPath(path));
  },
};

/** The spec of one resolved stage config. */
export async function stageSpecOf(resolved: ResolvedConfig, file: string): Promise<StageSpec> {
  switch (resolved.stage) {
    case 'sft':
      return sftSpec(resolved.config as SftConfig, file, readers, seededHoldOut);
    case 'reward':
      return rewardSpec(resolved.config as RewardConfig, file, readers, seededSubset, seededHoldOut);
    case 'dpo':
      return dpoSpec(resolved.config as DpoConfig, file, readers, seededSubset, seededHoldOut);
    case 'ppo':
      return ppoSpec(resolved.config as PpoConfig, file, readers);
    case 'rs':
      return rsSpec(resolved.config as RsConfig, file);
    case 'gatt':
      return gattSpec(resolved.config as GattConfig, file);
    default:
      throw new UserError(`${file}: stage ${resolved.stage} cannot be exported; rlhf export takes sft, reward, ppo, dpo, rs, gatt and pipeline configs`);
  }
}

const SCHEMAS = { sft: sftConfigSchema, reward: rewardConfigSchema, ppo: ppoConfigSchema, dpo: dpoConfigSchema, rs: rsConfigSchema, gatt: gattConfigSchema } as const;

/** Export items for a config file: one stage, or every enabled stage of a pipeline. */
export async function planExport(file: string, overrides: readonly string[], engine: Engine): Promise<ExportItem[]> {
  const resolved = loadConfig(file, overrides);
  if (resolved.stage === 'pipeline') return planPipeline(loadConfig(file, overrides, { stage: 'pipeline', schema: pipelineConfigSchema }), file, engine);
  if (!(resolved.stage in SCHEMAS)) {
    throw new UserError(`${file}: stage ${resolved.stage} cannot be exported; rlhf export takes sft, reward, ppo, dpo, rs, gatt and pipeline configs`);
  }
  const spec = await stageSpecOf(resolved, file);
  return [{ name: resolved.stage, spec }];
}

/** This rlhf-kit's own CLI by absolute path, so run.sh works from any folder without `rlhf` on PATH. */
function rlhfCli(): string {
  return `node ${shQuote(packagePath('dist', 'src', 'cli', 'main.js'))}`;
}

async function planPipeline(resolved: ResolvedConfig<PipelineConfig>, file: string, engine: Engine): Promise<ExportItem[]> {
  const cfg = resolved.config;
  const on = (s: PipelineStage) => cfg.stages[s].enabled;
  if (on('pretrain')) {
    throw new UserError(`${file}: stages.pretrain is enabled; pretraining has no export: run it here (rlhf pretrain) and point base_model at its final/, or set stages.pretrain.enabled=false`);
  }
  // Refused rather than exporting the stages around the rounds as if they were the whole run.
  if (cfg.rounds.count > 0) {
    throw new UserError(
      `${file}: rounds.count is ${cfg.rounds.count}, and the iterative rounds (pairs sampled from the latest policy and labelled, the reward model ` +
        'retrained, rejection sampling, PPO, each round) have no TRL / OpenRLHF equivalent to export; export a pipeline without rounds ' +
        '(configs/pipeline/world_ppo.yaml), or one round\'s stage as it ran: rlhf export --config runs/<name>/round_<k>/<stage>/config.resolved.yaml',
    );
  }
  if (engine === 'trl' && on('ppo')) {
    throw new UserError(
      `${file}: stages.ppo is enabled, and TRL has no PPO trainer any more (TRL moved PPOTrainer to trl.experimental and then removed it); ` +
        'export this pipeline with --to openrlhf, or turn PPO off (stages.ppo.enabled=false; DPO is configs/pipeline/world_dpo.yaml)',
    );
  }
  const runDir = resolve(cfg.output_dir);
  const resolveStage = (stage: PipelineStage) => resolveStageConfig(stage, cfg, SCHEMAS[stage as keyof typeof SCHEMAS], runOverrides(cfg, runDir, stage), file);
  const spec = async (stage: PipelineStage) => stageSpecOf(resolveStage(stage), cfg.stages[stage].config ?? `${file} (stages.${stage})`);
  const items: ExportItem[] = [];
  const byName = new Map<string, ExportItem>();
  const add = (item: ExportItem) => {
    items.push(item);
    byName.set(item.name, item);
  };
  // Where each stage's model will be once its engine script has run (see writeExport).
  const exportedModel = (name: string): string => `\u0001${name}`;

  if (on('sft')) add({ name: 'sft', spec: await spec('sft'), modelFrom: resolvePackagePath(cfg.base_model) });
  const sftModel = () => {
    if (!byName.has('sft')) throw new UserError(`${file}: the exported stages after SFT need stages.sft enabled (the export wires SFT's output into them)`);
    byName.get('sft')!.handsOn = true;
    return exportedModel('sft');
  };
  if (on('reward')) add({ name: 'reward', spec: await spec('reward'), modelFrom: sftModel() });
  if (on('ppo')) {
    if (!byName.has('reward')) throw new UserError(`${file}: stages.ppo needs stages.reward enabled (the export wires its reward model into PPO)`);
    byName.get('reward')!.handsOn = true;
    add({ name: 'ppo', spec: await spec('ppo'), modelFrom: sftModel(), rewardFrom: exportedModel('reward') });
  }
  if (on('dpo')) add({ name: 'dpo', spec: await spec('dpo'), modelFrom: sftModel() });
  if (on('gatt')) {
    const from = on('ppo') ? 'ppo' : on('dpo') ? 'dpo' : null;
    if (from === null) throw new UserError(`${file}: stages.gatt needs stages.ppo or stages.dpo enabled (GAtt starts from the aligned model)`);
    byName.get(from)!.handsOn = true;
    // GAtt's synthesis is rlhf-kit's: run on the engine's aligned model, from the stage's config as
    // the pipeline resolves it (written next to the script), into the export's gatt/rlhf/.
    const resolved = resolveStage('gatt');
    const synthDir = '\u0002gatt';
    const configFile = '\u0003gatt/gatt.resolved.yaml';
    const synth = [`${rlhfCli()} gatt synth --config`, ...[configFile, `model.path=${exportedModel(from)}`, `output_dir=${synthDir}`].map(shQuote)].join(' ');
    const gattSpecified = await stageSpecOf(resolved, cfg.stages.gatt.config ?? `${file} (stages.gatt)`);
    add({
      name: 'gatt',
      spec: gattSpecified,
      modelFrom: exportedModel(from),
      before: [synth],
      runtimeData: { file: join(synthDir, 'synth', gattTrainFile(resolved.config as GattConfig)), madeBy: synth },
      files: [{ name: 'gatt.resolved.yaml', text: resolvedConfigYaml(resolved) }],
    });
  }
  if (items.length === 0) throw new UserError(`${file}: no stage to export (sft, reward, ppo, dpo and gatt are all disabled)`);
  return items;
}

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
