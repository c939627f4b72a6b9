/** GAtt's measurement: instruction adherence by turn of a model on held-out dialogue seeds, and adherence.json. */
import { resolveDataPath } from '../paths.js';
import type { GattConfig } from './config.js';
import type { AdherenceTable } from './evaluate.js';
import { loadInstructionSet, type InstructionCheckers } from './instructions.js';
import { modelAdherence } from './model-eval.js';
import { readDialogueSeeds, splitSeeds } from './seeds.js';

export const ADHERENCE_FILE = 'adherence.json';

export async function adherenceOf(
  cfg: GattConfig,
  checkers: InstructionCheckers,
  input: { modelDir: string; tokenizerDir: string },
  adapterDir: string | null,
  fullModelDir: string | null = null,
): Promise<AdherenceTable> {
  const all = await readDialogueSeeds(resolveDataPath(cfg.data.dialogues));
  // With no held-out seeds the evaluation reuses training seeds (the instruction is still only in turn 1).
  const held = cfg.data.held_out > 0 ? splitSeeds(all, cfg.data.held_out).eval : all;
  return modelAdherence({
    modelDir: fullModelDir ?? input.modelDir,
    adapterDir,
    tokenizerDir: input.tokenizerDir,
    template: cfg.tokenizer.template,
    seeds: held,
    instructions: loadInstructionSet(resolveDataPath(cfg.data.instructions), checkers),
    cases: cfg.gatt.eval_cases,
    turns: cfg.gatt.eval_turns,
    maxNewTokens: cfg.gatt.max_new_tokens,
    batchSize: cfg.gatt.batch_size,
    contextTokens: cfg.gatt.context_tokens,
  });
}

/** adherence.json: percentages per family and overall at every turn. */
export function summary(table: AdherenceTable): Record<string, unknown> {
  const pct = (cells: { followed: number; count: number }[]) => cells.map((c) => (c.count === 0 ? null : (100 * c.followed) / c.count));
  return {
    turns: table.turns,
    dialogues: table.all[0]?.count ?? 0,
    all: pct(table.all),
    by_family: Object.fromEntries(Object.entries(table.byFamily).map(([f, cells]) => [f, pct(cells)])),
  };
}

