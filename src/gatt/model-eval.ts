/**
 * Adherence of a model folder (optionally with a LoRA adapter): the glue between model files and
 * `evaluateAdherence`, shared by `rlhf gatt eval` and the recipe's before/after measurement.
 * Answers are greedy, so the table depends on the model alone.
 */
import { loadAdapter, unloadLora } from '../lora/index.js';
import { loadHfModel } from '../model/index.js';
import { loadTokenizer, type TemplateName } from '../tokenizer/index.js';
import { buildEvalCases, evaluateAdherence, type AdherenceTable } from './evaluate.js';
import type { InstructionSet } from './instructions.js';
import { modelReplySampler } from './sampler.js';
import type { DialogueSeed } from './synthesize.js';

export interface ModelAdherenceOptions {
  modelDir: string;
  adapterDir?: string | null;
  /** Folder with tokenizer.json; default: the model folder. */
  tokenizerDir?: string | null;
  template: TemplateName | 'auto';
  seeds: readonly DialogueSeed[];
  instructions: InstructionSet;
  cases: number;
  turns: number;
  maxNewTokens: number;
  batchSize: number;
  /** Longest prompt; null = max_position_embeddings − maxNewTokens. */
  contextTokens?: number | null;
}

export async function modelAdherence(opts: ModelAdherenceOptions): Promise<AdherenceTable> {
  const tokenizer = await loadTokenizer(opts.tokenizerDir ?? opts.modelDir);
  const template: TemplateName = opts.template === 'auto' ? (tokenizer.chatTemplate !== undefined ? 'tokenizer' : 'llama2') : opts.template;
  const model = loadHfModel(opts.modelDir);
  try {
    if (opts.adapterDir) loadAdapter(model, opts.adapterDir);
    const sampler = modelReplySampler(model, tokenizer, {
      template,
      maxNewTokens: opts.maxNewTokens,
      temperature: 0,
      batchSize: opts.batchSize,
      ...(opts.contextTokens ? { maxPromptTokens: opts.contextTokens } : {}),
    });
    const cases = buildEvalCases(opts.seeds, opts.instructions, { cases: opts.cases, turns: opts.turns, mode: 'single' });
    return await evaluateAdherence(sampler, cases, opts.instructions, opts.turns);
  } finally {
    unloadLora(model, { merge: false }); // adapters are not released by model.dispose()
    model.dispose();
  }
}
