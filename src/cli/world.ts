/**
 * `rlhf world eval --model DIR [--adapter DIR] --prompts FILE`: the judge's score of greedy answers.
 * `rlhf world annotate --pairs FILE --out FILE [--noise P]`: label unlabelled pairs with the gold judge.
 */
import type { Argv, CommandModule } from 'yargs';
import { initEngine, type BackendName } from '../engine/index.js';
import { loadAdapter } from '../lora/index.js';
import { loadHfModel } from '../model/index.js';
import { readAllRecords } from '../data/index.js';
import { writeRowsAtomic } from '../data/write-atomic.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { packagePath } from '../paths.js';
import { loadTokenizer, pickTemplate, type TemplateName } from '../tokenizer/index.js';
import { annotatePairs } from '../world/annotate.js';
import { formatWorldScore, judgeResponses, readPromptsFile } from '../world/evaluate.js';
import { judgeSafetyResponses } from '../world/safety-eval.js';
import { greedyChatGenerator } from '../world/greedy.js';

interface WorldEvalArgs {
  model: string;
  adapter?: string;
  prompts: string;
  limit?: number;
  template: TemplateName | 'auto';
  'max-new-tokens': number;
  'batch-size': number;
  backend: BackendName;
}

const evalCommand: CommandModule<object, WorldEvalArgs> = {
  command: 'eval',
  describe: 'Mean judge score of greedy answers to a prompts file, overall and per task family',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'model folder (config.json, model.safetensors, tokenizer.json)' })
      .option('adapter', { type: 'string', describe: 'LoRA adapter folder (PEFT) to apply to the model' })
      .option('prompts', { type: 'string', default: packagePath('data', 'world', 'prompts_eval.jsonl'), describe: 'JSONL prompts file' })
      .option('limit', { type: 'number', describe: 'judge only the first N prompts' })
      .option('template', {
        choices: ['auto', 'tokenizer', 'llama2', 'chatml'] as const,
        default: 'auto' as const,
        describe: "chat template; auto = the tokenizer's own when it has one, else llama2",
      })
      .option('max-new-tokens', { type: 'number', default: 48, describe: 'longest reply in tokens' })
      .option('batch-size', { type: 'number', default: 16, describe: 'prompts generated together' })
      .option('backend', { choices: ['auto', 'wasm', 'cpu', 'tensorflow'] as const, default: 'auto' as const, describe: 'TF.js backend' }) as unknown as Argv<WorldEvalArgs>,
  handler: async (args) => {
    await initEngine({ backend: args.backend });
    const tokenizer = await loadTokenizer(args.model);
    const model = loadHfModel(args.model, { frozenFloat32: true }); // inference only: weights mapped from the file
    try {
      if (args.adapter !== undefined) loadAdapter(model, args.adapter);
      const template = pickTemplate(args.template as TemplateName | 'auto', tokenizer);
      const generator = greedyChatGenerator(model, tokenizer, { template, maxNewTokens: args['max-new-tokens'], batchSize: args['batch-size'] });
      const prompts = readPromptsFile(args.prompts, args.limit);
      const replies = await generator(prompts);
      console.log(formatWorldScore(judgeResponses(prompts, replies)));
      const safety = judgeSafetyResponses(prompts, replies); // safety prompts (prompts_safety*.jsonl): Llama 2 §4's rates
      if (safety.harmful_count > 0) console.log(`violation rate: ${safety.violation_rate!.toFixed(4)} over ${safety.harmful_count} harmful prompts`);
      if (safety.borderline_count > 0) console.log(`false-refusal rate: ${safety.false_refusal_rate!.toFixed(4)} over ${safety.borderline_count} borderline prompts`);
    } finally {
      model.dispose();
    }
  },
};

interface AnnotateArgs {
  pairs: string;
  out: string;
  noise: number;
  seed: number;
}

const annotateCommand: CommandModule<object, AnnotateArgs> = {
  command: 'annotate',
  describe: "Label unlabelled pairs (rlhf pairs sample) with the world's gold judge: the preferred reply, the Llama 2 strength level from the score gap",
  builder: (y: Argv) =>
    y
      .option('pairs', { type: 'string', demandOption: true, describe: 'unlabelled pairs (prompt, chosen = reply A, rejected = reply B, label: null)' })
      .option('out', { type: 'string', demandOption: true, describe: 'where to write the labelled pairs (.jsonl, .arrow or .parquet)' })
      .option('noise', { type: 'number', default: 0, describe: 'probability that the annotator prefers the worse reply (seeded), in [0, 0.5]' })
      .option('seed', { type: 'number', default: 0, describe: "seed of the annotator's noise" }) as unknown as Argv<AnnotateArgs>,
  handler: async (args) => {
    const { rows, errors } = await readAllRecords(args.pairs);
    if (errors.length > 0) throw new UserError(`${args.pairs}: row ${errors[0]!.row}: ${errors[0]!.error}`);
    const objects = rows.map((r) => {
      if (r.value === null || typeof r.value !== 'object' || Array.isArray(r.value)) throw new UserError(`${args.pairs}: row ${r.row}: not an object`);
      return { row: r.row, value: r.value as Record<string, unknown> };
    });
    const { rows: labelled, stats } = annotatePairs(objects, { noise: args.noise, rng: new Rng(args.seed), where: args.pairs });
    if (labelled.length === 0) throw new UserError(`${args.pairs}: no pair left to write (${stats.ties} of ${stats.pairs} are ties under the judge)`);
    await writeRowsAtomic(args.out, labelled);
    const levels = Object.entries(stats.byStrength).map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(
      `world annotate: ${stats.labelled} of ${stats.pairs} pairs labelled (${levels}); ${stats.ties} ties dropped; ` +
        `${stats.flipped} labelled against the judge (noise ${args.noise})\noutput: ${args.out}`,
    );
  },
};

export const worldCommand: CommandModule = {
  command: 'world <command>',
  describe: 'The bundled assistant world: evaluate a model or label pairs with the gold judge',
  builder: (y: Argv) => y.command(evalCommand).command(annotateCommand).demandCommand(1),
  handler: () => {},
};
