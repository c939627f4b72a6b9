/**
 * Instruction adherence by turn (Llama 2 Table 30, in miniature). Each case gives an instruction
 * as the system message of turn 1 only, then user turns from held-out dialogue seeds; the model's
 * own answers are fed back. At every turn t each instruction's checker decides whether the answer
 * still follows it. A model without Ghost Attention tends to forget the instruction after a turn
 * or two; one with it should not.
 */
import type { Rng } from '../engine/rng.js';
import type { ChatMessage } from '../tokenizer/index.js';
import { findInstruction, follows, instructionText, sampleInstruction, type InstructionSet } from './instructions.js';
import type { DialogueSeed, ReplySampler } from './synthesize.js';

export interface EvalCase {
  instructionIds: string[];
  system: string;
  userTurns: string[];
}

export interface AdherenceCell {
  followed: number;
  count: number;
}

export interface AdherenceTable {
  turns: number;
  /** Per instruction family: at turn t (index t − 1), answers of cases with that family's instruction that follow it. */
  byFamily: Record<string, AdherenceCell[]>;
  /** Per turn: answers that follow every instruction of their case. */
  all: AdherenceCell[];
  /** replies[c][t − 1]: the answer of case c at turn t (for inspection). */
  replies: string[][];
}

/**
 * Evaluation cases: case c has `turns` user turns taken in order from the seeds, starting at seed
 * c and running on into the next seeds (so every case reaches the last turn), and an instruction:
 * `single` cycles through every instruction alone, long form then short form; `sampled` draws
 * combinations with `rng` as synthesis does.
 */
export function buildEvalCases(
  seeds: readonly DialogueSeed[],
  set: InstructionSet,
  opts: { cases: number; turns: number; mode: 'single' | 'sampled'; maxFamilies?: number; rng?: Rng },
): EvalCase[] {
  const pool = seeds.filter((s) => s.userTurns.length > 0);
  if (pool.length === 0) throw new Error('buildEvalCases: no dialogue seeds with user turns');
  const cases: EvalCase[] = [];
  for (let c = 0; c < opts.cases; c++) {
    const userTurns: string[] = [];
    for (let s = c; userTurns.length < opts.turns; s++) userTurns.push(...pool[s % pool.length]!.userTurns);
    let ids: string[];
    let form: 'long' | 'short';
    if (opts.mode === 'single') {
      ids = [set.instructions[c % set.instructions.length]!.id];
      form = Math.floor(c / set.instructions.length) % 2 === 0 ? 'long' : 'short';
    } else {
      if (!opts.rng) throw new Error("buildEvalCases: mode 'sampled' needs an rng");
      ({ ids, form } = sampleInstruction(opts.rng, set, { maxFamilies: opts.maxFamilies ?? 2, shortFormProb: 0.5 }));
    }
    cases.push({ instructionIds: ids, system: instructionText(set, ids, form), userTurns: userTurns.slice(0, opts.turns) });
  }
  return cases;
}

/** Run every case for `turns` turns, all cases of a turn in one sampler call, and tally adherence. */
export async function evaluateAdherence(sampler: ReplySampler, cases: readonly EvalCase[], set: InstructionSet, turns: number): Promise<AdherenceTable> {
  const histories: ChatMessage[][] = cases.map((c) => [{ role: 'system', content: c.system }]);
  const replies: string[][] = cases.map(() => []);
  const families = [...new Set(cases.flatMap((c) => c.instructionIds.map((id) => findInstruction(set, id).family)))];
  const byFamily: Record<string, AdherenceCell[]> = Object.fromEntries(
    set.families.filter((f) => families.includes(f)).map((f) => [f, newCells(turns)]),
  );
  const all = newCells(turns);

  for (let t = 0; t < turns; t++) {
    cases.forEach((c, i) => {
      if (c.userTurns.length < turns) throw new Error(`evaluateAdherence: case ${i} has ${c.userTurns.length} user turns, needs ${turns}`);
      histories[i]!.push({ role: 'user', content: c.userTurns[t]! });
    });
    const answers = await sampler(histories.map((h) => [...h]));
    cases.forEach((c, i) => {
      const answer = answers[i]!;
      replies[i]!.push(answer);
      histories[i]!.push({ role: 'assistant', content: answer });
      let followsEvery = true;
      for (const id of c.instructionIds) {
        const ok = follows(set, id, answer);
        tally(byFamily[findInstruction(set, id).family]![t]!, ok);
        followsEvery &&= ok;
      }
      tally(all[t]!, followsEvery);
    });
  }
  return { turns, byFamily, all, replies };
}

/** Adherence in percent at the chosen turns: one row per family, then "all". */
export function formatAdherenceTable(table: AdherenceTable, showTurns: readonly number[], title = 'instruction adherence (%) by turn'): string {
  const shown = showTurns.filter((t) => t >= 1 && t <= table.turns);
  const pct = (cell: AdherenceCell) => (cell.count === 0 ? '-' : ((100 * cell.followed) / cell.count).toFixed(1));
  const width = 10;
  const header = ['family'.padEnd(width), ...shown.map((t) => `t=${t}`.padStart(7))].join(' ');
  const row = (name: string, cells: AdherenceCell[]) => [name.padEnd(width), ...shown.map((t) => pct(cells[t - 1]!).padStart(7))].join(' ');
  const cases = table.all[0]?.count ?? 0;
  return [
    `${title} — ${cases} dialogues`,
    header,
    ...Object.entries(table.byFamily).map(([family, cells]) => row(family, cells)),
    row('all', table.all),
  ].join('\n');
}

/** Adherence fraction of one cell (0 when empty). */
export function adherence(cell: AdherenceCell): number {
  return cell.count === 0 ? 0 : cell.followed / cell.count;
}

function newCells(turns: number): AdherenceCell[] {
  return Array.from({ length: turns }, () => ({ followed: 0, count: 0 }));
}

function tally(cell: AdherenceCell, ok: boolean): void {
  cell.count += 1;
  if (ok) cell.followed += 1;
}
