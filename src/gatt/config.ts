/**
 * The `gatt` stage's config: Ghost Attention synthesis (the `gatt` section) followed by the SFT
 * recipe on the synthesised dialogues (the SFT sections: model, tokenizer, lora, sft, optim, …).
 * Every key has a default and a help text here.
 */
import { z } from 'zod';
import { registerStageSchema } from '../config/index.js';
import { sftCommonSections, sftLoraSection, sftSection, sftTokenizerSection } from '../config/fine-tune-sections.js';

const positiveInt = () => z.number().int().min(1);

export const gattModelSection = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .default('runs/${run.name}/sft/final/merged')
      .describe('The chat model (HF folder) that answers during synthesis and is then fine-tuned, e.g. the SFT stage\'s final/merged.'),
    adapter: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('A LoRA adapter (PEFT folder) on top of model.path; it is merged into <output_dir>/input_model/ first.'),
  })
  .prefault({})
  .describe('The chat model GAtt starts from.');

export const gattDataSection = z
  .strictObject({
    dialogues: z
      .string()
      .min(1)
      .default('data/world/dialogues.jsonl')
      .describe('Dialogue seeds: JSONL, Arrow or Parquet rows {"user_turns": [...]} or {"messages": [...]} (only user turns are used).'),
    held_out: z
      .number()
      .int()
      .min(0)
      .default(50)
      .describe('The last this many seeds are never synthesised: they are the held-out dialogues of the adherence evaluation.'),
    max_dialogues: positiveInt()
      .nullable()
      .default(null)
      .describe('Synthesise from at most this many seeds (the first ones); null = all but the held-out ones.'),
    instructions: z
      .string()
      .min(1)
      .default('data/world/gatt_instructions.json')
      .describe('Instruction families: {families, instructions: [{id, family, long, short, checker}]}.'),
    max_length: positiveInt()
      .default(256)
      .describe('Longest training dialogue in tokens; longer ones lose their oldest exchanges (never the system message or the last turn).'),
    eval_split: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('Synthesised rows held out (seeded) for eval loss during fine-tuning; 0 = none.'),
    eval_max_rows: positiveInt().nullable().default(200).describe('Evaluate on at most this many held-out rows; null = all.'),
    packing: z.boolean().default(false).describe('Pack several dialogues into each row of max_length tokens.'),
    mix: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Plain-answer rows (SFT format: messages, or prompt/completion) mixed into the fine-tuning with the synthesised dialogues, ' +
          "e.g. data/world/sft.jsonl or the rs stage's rs_train.jsonl, so the model keeps its single-answer quality (Llama 2 merged GAtt data into its SFT mix); [] = dialogues only.",
      ),
    mix_ratio: z
      .number()
      .min(0)
      .default(1)
      .describe('Mix rows per synthesised row (drawn seeded without replacement, the mix files cycled when they run out); 0 = none.'),
    mix_exclude: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Prompt files whose prompts never enter the mix (held-out evaluation prompts; same roles, text equal up to case and white space). ' +
          'The pipeline always adds its eval.prompts. [] = none.',
      ),
    mix_answers: z
      .enum(['given', 'model'])
      .default('given')
      .describe(
        "Whose answers the mix rows train on: given = the mix files' own; model = the starting model's greedy answers to the same prompts " +
          "(self-distillation: the fine-tuning keeps the model's own plain answers instead of pulling them toward the files' style). " +
          'With model a row may be a prompt alone (TRL prompt-only rows: {prompt}); mix plain prompts only: one that carries an ' +
          'instruction the model does not follow yet would teach it to ignore that instruction.',
      ),
  })
  .prefault({})
  .describe('Dialogue seeds, instructions and training rows.');

export const gattSection = z
  .strictObject({
    max_families: positiveInt()
      .default(2)
      .describe('An instruction combines 1..max_families families (uniform count), one instruction from each.'),
    short_form_prob: z.number().min(0).max(1).default(0.5).describe('Probability of the short form ("Persona: robot") instead of the long one.'),
    max_turns: positiveInt().default(20).describe('Seeds are cut to their first this many user turns.'),
    rows_per_dialogue: z
      .enum(['last', 'all'])
      .default('last')
      .describe("last: one training row per dialogue, trained on its last turn; all: one row per turn index (each trained on its own last turn)."),
    repair_with_world_rules: z
      .boolean()
      .default(true)
      .describe(
        "Rewrite a sampled answer that breaks the instruction with the world's rules (src/world/instructions.ts applyInstructions) " +
          '— the world\'s stand-in for a teacher that follows instructions; works for the world\'s instruction ids only. false: keep answers as sampled.',
      ),
    best_of: positiveInt()
      .default(1)
      .describe('Sample this many candidate answers per turn and keep the one gatt.reward_model scores highest (rejection sampling); 1 = off.'),
    reward_model: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe("Reward-model folder (the reward stage's final/: backbone + score.weight) that ranks the best_of candidates."),
    temperature: z.number().min(0).default(0.7).describe('Sampling temperature of the answers (0 = greedy).'),
    top_p: z.number().gt(0).max(1).default(1).describe('Nucleus sampling of the answers (1 = off).'),
    max_new_tokens: positiveInt().default(48).describe('Longest sampled answer in tokens.'),
    batch_size: positiveInt().default(32).describe('Dialogues answered together (one batched generate call per turn).'),
    context_tokens: positiveInt()
      .nullable()
      .default(null)
      .describe("Longest prompt when sampling and evaluating (oldest exchanges are dropped to fit); null = the model's max_position_embeddings − max_new_tokens."),
    evaluate: z
      .boolean()
      .default(true)
      .describe('After training, measure instruction adherence by turn before and after GAtt (adherence.json, printed table).'),
    eval_cases: positiveInt().default(70).describe('Held-out evaluation dialogues (instructions cycle through every single instruction, long and short form).'),
    eval_turns: positiveInt().default(20).describe('Turns per evaluation dialogue.'),
    eval_show_turns: z.array(positiveInt()).min(1).default([1, 2, 4, 6, 20]).describe('Turns shown in the printed adherence table.'),
  })
  .prefault({})
  .describe('Ghost Attention synthesis and evaluation.');

export const gattConfigSchema = z
  .strictObject({
    ...sftCommonSections(),
    model: gattModelSection,
    tokenizer: sftTokenizerSection,
    data: gattDataSection,
    lora: sftLoraSection,
    sft: sftSection,
    gatt: gattSection,
  })
  .describe('Ghost Attention: synthesise multi-turn dialogues that keep a system instruction alive, then fine-tune on their last turns.');

export type GattConfig = z.output<typeof gattConfigSchema>;

registerStageSchema('gatt', gattConfigSchema);
