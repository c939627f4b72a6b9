/**
 * `rlhf export`: turn stage specs into an export folder.
 *
 *   <out>/MAPPING.md                 every key → argument, and the gaps
 *   <out>/accelerate_config.yaml     (TRL) accelerate launch config; ds_config.json with --deepspeed
 *   <out>/run.sh                     every stage in order (a pipeline: output → input)
 *   <out>/<stage>/train_<stage>.py | .sh, train.jsonl, eval.jsonl, chat_template.jinja
 *   <out>/<stage>/output/            where the engine writes the model (output/merged after LoRA)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeJsonl } from '../data/index.js';
import { UserError } from '../errors.js';
import { CHATML_CHAT_TEMPLATE, LLAMA2_CHAT_TEMPLATE } from '../tokenizer/templates.js';
import { shQuote } from './args.js';
import { handedOn, type StageContext } from './context.js';
import { seededShuffle, type Row } from './data.js';
import { ACCELERATE_CONFIG, DEEPSPEED_CONFIG, accelerateConfig, deepspeedConfig } from './launch.js';
import { epochPlan, batchLayout } from './layout.js';
import { mappingMarkdown, type StageMapping } from './mapping.js';
import { openrlhfScript } from './openrlhf.js';
import type { DataSource, StageSpec } from './spec.js';
import { markGeneration, withoutGenerationMarkers } from './template.js';
import { trlScript, type GeneratedScript } from './trl.js';
import { engineLabel, type DeepSpeedStage, type Engine } from './versions.js';

export interface ExportOptions {
  engine: Engine;
  gpus: number;
  deepspeed: DeepSpeedStage | null;
  /** The export folder (made absolute). */
  out: string;
  /** What the export was made from (named in MAPPING.md and run.sh). */
  source: string;
}

/** One stage to export, with its place in a pipeline. */
export interface ExportItem {
  /** Folder and script name: sft, reward, ppo, dpo, rs, gatt. */
  name: string;
  spec: StageSpec;
  /** The model trained from, when it is an earlier exported stage's output (pipeline wiring). */
  modelFrom?: string;
  /** PPO: the reward model, when it is an earlier exported stage's output. */
  rewardFrom?: string;
  /** A later stage reads this one's model: after LoRA, also write the merged model. */
  handsOn?: boolean;
  /** rlhf-kit commands that must run first (GAtt synthesis on the engine's model). */
  before?: string[];
  /** Where GAtt / RS rows come from at run time, overriding the spec's (pipeline). */
  runtimeData?: { file: string; madeBy: string };
  /** Extra files written into the stage's folder (the resolved config its rlhf-kit command reads). */
  files?: { name: string; text: string }[];
}

export interface ExportResult {
  files: string[];
  /** Each stage's folder and the model it hands on. */
  stages: { name: string; dir: string; output: string; command: string }[];
}

const TITLES: Record<string, string> = {
  sft: 'supervised fine-tuning',
  reward: 'reward model',
  ppo: 'PPO',
  dpo: 'DPO',
  rs: 'rejection sampling (the fine-tune: SFT on the kept answers)',
  gatt: "Ghost Attention (the fine-tune: SFT on each dialogue's last answer)",
};

/** The chat template a stage's config asks for, or undefined for "the tokenizer's own" (it has one). */
function configuredTemplate(spec: StageSpec): string | undefined {
  const t = spec.model.template;
  if (t === 'llama2') return LLAMA2_CHAT_TEMPLATE;
  if (t === 'chatml') return CHATML_CHAT_TEMPLATE;
  const dir = spec.model.tokenizer ?? spec.model.path;
  const cfgPath = join(dir, 'tokenizer_config.json');
  const own = existsSync(cfgPath) ? readTemplate(cfgPath) : undefined;
  if (own !== undefined) return own;
  if (t === 'tokenizer' && existsSync(cfgPath)) throw new UserError(`${cfgPath}: no chat_template (tokenizer.template=tokenizer); set tokenizer.template=llama2 or chatml`);
  // auto with no template of its own: rlhf-kit falls back to Llama 2, so the engines must be told.
  return existsSync(dir) ? LLAMA2_CHAT_TEMPLATE : undefined;
}

function readTemplate(path: string): string | undefined {
  const json = JSON.parse(readFileSync(path, 'utf8')) as { chat_template?: string | { name: string; template: string }[] };
  const t = json.chat_template;
  if (t === undefined || t === null) return undefined;
  return typeof t === 'string' ? t : (t.find((x) => x.name === 'default') ?? t[0])?.template;
}

/**
 * The template file a stage needs: TRL's assistant-only loss needs generation markers (refused
 * when the template is unknown); otherwise a file only when the config picks a template the
 * tokenizer may not carry.
 */
function stageTemplate(engine: Engine, spec: StageSpec): string | null {
  const needsMarkers = engine === 'trl' && spec.kind === 'sft' && spec.rows === 'messages' && spec.loss === 'assistant';
  const template = configuredTemplate(spec);
  if (needsMarkers) {
    if (template === undefined) {
      throw new UserError(
        `${spec.configFile}: the chat template of ${spec.model.tokenizer ?? spec.model.path} cannot be read (the folder does not exist yet), ` +
          "and TRL's assistant_only_loss needs it with {% generation %} markers: train the stage that writes it first, or set tokenizer.template=llama2 or chatml",
      );
    }
    return markGeneration(template, `${spec.configFile}: tokenizer.template`);
  }
  if (spec.model.template === 'llama2' || spec.model.template === 'chatml') return withoutGenerationMarkers(template!);
  return null;
}

function rowsOf(source: DataSource | null): Row[] | null {
  return source !== null && 'rows' in source ? source.rows : null;
}

async function writeRows(path: string, rows: readonly Row[]): Promise<void> {
  await writeJsonl(path, rows);
}

function trainSource(spec: StageSpec) {
  return spec.kind === 'ppo' ? spec.prompts : spec.train;
}

function evalSource(spec: StageSpec) {
  return spec.kind === 'ppo' ? spec.evalPrompts : spec.eval;
}

/** OpenRLHF caps a run with `max_samples` (the first rows): shuffle first when the cap cuts the data. */
function openrlhfOrder(spec: StageSpec, rows: Row[], gpus: number): Row[] {
  if (spec.kind === 'ppo') return spec.common.steps * spec.rolloutBatchSize < rows.length ? seededShuffle(rows, spec.common.seed) : rows;
  if (spec.common.epochs !== null) return rows;
  const l = batchLayout(spec.common.batchSize, spec.common.gradAccum, gpus);
  return epochPlan(spec.common.steps, l.global, rows.length).truncates ? seededShuffle(rows, spec.common.seed) : rows;
}

function stageCommand(engine: Engine, ctx: StageContext, file: string): string {
  if (engine === 'openrlhf') return `bash ${shQuote(join(ctx.dir, file))}`;
  return `accelerate launch --config_file ${shQuote(join(ctx.root, ACCELERATE_CONFIG))} ${shQuote(join(ctx.dir, file))}`;
}

export async function writeExport(items: readonly ExportItem[], opts: ExportOptions): Promise<ExportResult> {
  const root = resolve(opts.out);
  const files: string[] = [];
  const write = (path: string, text: string, executable = false) => {
    writeFileSync(path, text);
    if (executable) chmodSync(path, 0o755);
    files.push(path);
  };
  const mappings: StageMapping[] = [];
  const stages: ExportResult['stages'] = [];
  const runLines: string[] = [];

  const wantsMerged = (item: ExportItem) => (item.spec.kind === 'reward' ? item.handsOn === true : item.spec.saveMerged || item.handsOn === true);
  const outputOf = (item: ExportItem) => join(root, item.name, 'output', ...(item.spec.lora !== null && wantsMerged(item) ? ['merged'] : []));
  // Plan placeholders: \u0001<stage> = that stage's exported model, \u0002<stage> = its rlhf-kit folder, \u0003<stage> = its folder.
  const fill = (s: string) =>
    s
      .replace(/\u0001([a-z]+)/g, (_, name: string) => {
        const from = items.find((i) => i.name === name);
        if (from === undefined) throw new Error(`export plan: no stage ${name}`);
        return outputOf(from);
      })
      .replace(/\u0002([a-z]+)/g, (_, name: string) => join(root, name, 'rlhf'))
      .replace(/\u0003([a-z]+)/g, (_, name: string) => join(root, name));

  // 1. Every stage's script, before anything is written: a refused stage leaves no half-written export.
  const prepared = items.map((item) => {
    const { spec } = item;
    const dir = join(root, item.name);
    const train = rowsOf(trainSource(spec));
    const evalRows = rowsOf(evalSource(spec));
    const specRuntime = spec.kind === 'sft' && 'runtime' in spec.train ? { file: spec.train.runtime, madeBy: spec.train.madeBy } : null;
    const runtimeData = item.runtimeData ? { file: fill(item.runtimeData.file), madeBy: fill(item.runtimeData.madeBy) } : specRuntime;
    const template = stageTemplate(opts.engine, spec);
    const lora = spec.lora !== null;
    const outputDir = join(dir, 'output');
    const ctx: StageContext = {
      name: item.name,
      dir,
      root,
      gpus: opts.gpus,
      deepspeed: opts.deepspeed,
      trainFile: train === null ? null : join(dir, 'train.jsonl'),
      evalFile: evalRows === null || evalRows.length === 0 ? null : join(dir, 'eval.jsonl'),
      runtimeData,
      templateFile: template === null ? null : join(dir, 'chat_template.jinja'),
      model: item.modelFrom !== undefined ? fill(item.modelFrom) : spec.model.path,
      rewardModel: spec.kind === 'ppo' ? (item.rewardFrom !== undefined ? fill(item.rewardFrom) : spec.rewardModel) : null,
      outputDir,
      mergedDir: lora && wantsMerged(item) ? join(outputDir, 'merged') : null,
      trainRows: train?.length ?? null,
    };
    let generated: GeneratedScript;
    try {
      generated = opts.engine === 'trl' ? trlScript(spec, ctx) : openrlhfScript(spec, ctx);
    } catch (e) {
      if (e instanceof UserError && items.length > 1) throw new UserError(`stage ${item.name}: ${e.message}`, { cause: e });
      throw e;
    }
    return { item, ctx, generated, template, train, evalRows };
  });

  // 2. Write them.
  for (const { item, ctx, generated, template, train, evalRows } of prepared) {
    const { spec } = item;
    const dir = ctx.dir;
    mkdirSync(dir, { recursive: true });
    if (train !== null) {
      await writeRows(ctx.trainFile!, opts.engine === 'openrlhf' ? openrlhfOrder(spec, train, opts.gpus) : train);
      files.push(ctx.trainFile!);
    }
    if (ctx.evalFile !== null) {
      await writeRows(ctx.evalFile, evalRows!);
      files.push(ctx.evalFile);
    }
    if (template !== null) write(ctx.templateFile!, template);
    for (const f of item.files ?? []) write(join(dir, f.name), f.text);
    write(join(dir, generated.file), generated.text, true);

    const command = stageCommand(opts.engine, ctx, generated.file);
    for (const b of item.before ?? []) runLines.push(fill(b));
    runLines.push(command);
    stages.push({ name: item.name, dir, output: handedOn(ctx), command });
    mappings.push({ name: item.name, title: TITLES[item.name] ?? item.name, configFile: spec.configFile, script: `${item.name}/${generated.file}`, rows: generated.args.mapping, notes: [...spec.gaps, ...generated.gaps] });
  }

  mkdirSync(root, { recursive: true });
  if (opts.engine === 'trl') {
    const ds = join(root, DEEPSPEED_CONFIG);
    if (opts.deepspeed !== null) write(ds, deepspeedConfig(opts.deepspeed));
    write(join(root, ACCELERATE_CONFIG), accelerateConfig(opts.gpus, opts.deepspeed, ds));
  }
  write(join(root, 'MAPPING.md'), mappingMarkdown(opts.engine, opts.source, mappings));
  const run = [
    '#!/usr/bin/env bash',
    `# Every exported stage in order, for ${engineLabel(opts.engine)}; generated by rlhf-kit \`rlhf export\` from ${opts.source}.`,
    '# Each stage reads the previous stage\'s output folder (see MAPPING.md).',
    'set -euo pipefail',
    ...runLines,
    '',
  ];
  write(join(root, 'run.sh'), run.join('\n'), true);
  return { files, stages };
}
