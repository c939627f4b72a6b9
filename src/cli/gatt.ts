/**
 * `rlhf gatt --config FILE [k=v ...]`: Ghost Attention (synthesise, fine-tune, measure).
 * `rlhf gatt synth --config FILE [k=v ...]`: write the synthesised dataset only.
 * `rlhf gatt eval --model DIR [--adapter DIR] [--turns 1,2,4,6,20]`: instruction adherence by turn.
 */
import { writeFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { initEngine, type BackendName } from '../engine/index.js';
import { UserError } from '../errors.js';
import { gattConfigSchema } from '../gatt/config.js';
import { formatAdherenceTable } from '../gatt/evaluate.js';
import { loadInstructionSet } from '../gatt/instructions.js';
import { modelAdherence } from '../gatt/model-eval.js';
import { runGatt, runGattSynthesis, summary } from '../gatt/recipe.js';
import { readDialogueSeeds, splitSeeds } from '../gatt/seeds.js';
import { packagePath } from '../paths.js';
import { gattWiring } from '../pipeline/stage-deps.js';
import type { TemplateName } from '../tokenizer/index.js';
import { loadStageConfig, stageOptions, type StageArgs } from './stage-command.js';

type ConfigArgs = StageArgs;

// The parent `gatt` command cannot demand --config (yargs would demand it of `gatt eval` too); its handler checks.
const configOptions = (y: Argv, demand = true) => stageOptions<ConfigArgs>(y, gattConfigSchema, 'gatt/world', { config: { demandOption: demand } });

const load = (args: ConfigArgs) => loadStageConfig(args, 'gatt', gattConfigSchema);

const synthCommand: CommandModule<object, ConfigArgs> = {
  command: 'synth [overrides..]',
  describe: 'Synthesise the GAtt dataset (multi-turn dialogues, instruction in the first turn, loss on the last)',
  builder: configOptions,
  handler: async (args) => {
    const result = await runGattSynthesis(load(args), gattWiring);
    const s = result.stats;
    console.log(
      `gatt synth: ${s.rows} rows from ${s.dialogues} dialogues (${s.answers} answers; followed ${(100 * s.followRate).toFixed(1)}%, ` +
        `repaired ${(100 * s.repairRate).toFixed(1)}%)${result.fresh ? '' : ' (reused)'}\noutput: ${result.path}` +
        (result.trainPath !== result.path ? `\nfine-tuning rows (with data.mix): ${result.trainPath}` : ''),
    );
  },
};

interface EvalArgs {
  model: string;
  adapter?: string;
  tokenizer?: string;
  turns: string;
  cases: number;
  dialogues: string;
  'held-out': number;
  instructions: string;
  template: TemplateName | 'auto';
  'max-new-tokens': number;
  'batch-size': number;
  'context-tokens'?: number;
  json?: string;
  backend: BackendName;
}

/** "1,2,4,6,20" → [1, 2, 4, 6, 20] */
export function parseTurns(text: string): number[] {
  const turns = text.split(',').map((t) => Number(t.trim()));
  if (turns.length === 0 || turns.some((t) => !Number.isInteger(t) || t < 1)) {
    throw new UserError(`--turns ${text}: expected a comma-separated list of turn numbers ≥ 1, e.g. 1,2,4,6,20`);
  }
  return turns;
}

const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'Instruction adherence by turn: the instruction as the system message of turn 1 only, held-out user turns, greedy answers fed back',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'model folder (config.json, model.safetensors, tokenizer.json)' })
      .option('adapter', { type: 'string', describe: 'LoRA adapter folder (PEFT) to apply to the model' })
      .option('tokenizer', { type: 'string', describe: 'folder with tokenizer.json (default: the model folder)' })
      .option('turns', { type: 'string', default: '1,2,4,6,20', describe: 'turns shown in the table; dialogues run to the largest' })
      .option('cases', { type: 'number', default: 70, describe: 'evaluation dialogues (cycling through every single instruction, long then short form)' })
      .option('dialogues', { type: 'string', default: packagePath('data', 'world', 'dialogues.jsonl'), describe: 'dialogue seeds (JSONL, Arrow or Parquet; user_turns or messages)' })
      .option('held-out', { type: 'number', default: 50, describe: 'use the last N seeds (those GAtt synthesis holds out); 0 = all' })
      .option('instructions', { type: 'string', default: packagePath('data', 'world', 'gatt_instructions.json'), describe: 'instruction families file' })
      .option('template', {
        choices: ['auto', 'tokenizer', 'llama2', 'chatml'] as const,
        default: 'auto' as const,
        describe: "chat template; auto = the tokenizer's own when it has one, else llama2",
      })
      .option('max-new-tokens', { type: 'number', default: 48, describe: 'longest answer in tokens' })
      .option('batch-size', { type: 'number', default: 32, describe: 'dialogues generated together' })
      .option('context-tokens', { type: 'number', describe: "longest prompt; older exchanges are dropped (default: max_position_embeddings − max-new-tokens)" })
      .option('json', { type: 'string', describe: 'also write the per-turn adherence to this JSON file' })
      .option('backend', { choices: ['auto', 'wasm', 'cpu', 'tensorflow'] as const, default: 'auto' as const, describe: 'TF.js backend' }) as unknown as Argv<EvalArgs>,
  handler: async (args) => {
    const show = parseTurns(args.turns);
    await initEngine({ backend: args.backend });
    const seeds = await readDialogueSeeds(args.dialogues);
    const table = await modelAdherence({
      modelDir: args.model,
      adapterDir: args.adapter ?? null,
      tokenizerDir: args.tokenizer ?? null,
      template: args.template,
      seeds: args['held-out'] > 0 ? splitSeeds(seeds, args['held-out']).eval : seeds,
      instructions: loadInstructionSet(args.instructions, gattWiring.checkers),
      cases: args.cases,
      turns: Math.max(...show),
      maxNewTokens: args['max-new-tokens'],
      batchSize: args['batch-size'],
      contextTokens: args['context-tokens'] ?? null,
    });
    console.log(formatAdherenceTable(table, show));
    if (args.json !== undefined) writeFileSync(args.json, JSON.stringify(summary(table), null, 2) + '\n');
  },
};

export const gattCommand: CommandModule<object, ConfigArgs> = {
  command: 'gatt [overrides..]',
  describe: 'Ghost Attention: synthesise multi-turn data that keeps a system instruction alive, fine-tune on the last turns (gatt synth | gatt eval)',
  builder: (y: Argv) => configOptions(y.command(synthCommand).command(evalCommand as unknown as CommandModule<object, ConfigArgs>), false),
  handler: async (args) => {
    if (args.config === undefined) throw new UserError('rlhf gatt: --config is required (e.g. --config gatt/world); see rlhf gatt --help');
    const result = await runGatt(load(args), gattWiring);
    const last = result.sft.losses[result.sft.losses.length - 1];
    console.log(`gatt done: ${result.synth.stats.rows} synthesised rows, ${result.sft.steps} steps` + (last ? `, final loss ${last.loss.toFixed(4)}` : '') + `\noutput: ${result.sft.finalDir}`);
  },
};
