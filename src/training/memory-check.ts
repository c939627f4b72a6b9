/**
 * "Fail before, not during": compare a run's estimated peak memory ({@link estimatePeakMemory}) with
 * what this process can have — the wasm heap's cap (wasm backend only) and the machine's available
 * RAM — and refuse the run, before any weight is loaded, with the estimate, the limits and the keys
 * that shrink it. `RLHF_MEMORY_CHECK=off` skips the refusal (the estimate is still logged).
 */
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { UserError } from '../errors.js';
import { formatBytes } from '../model/describe.js';
import type { LlamaConfig } from '../model/config.js';
import { lossChunkRows } from './chunked-loss.js';
import { WASM_HEAP_MAX_BYTES, estimatePeakMemory, loraShortModules, type FrozenDtype, type MemoryEstimate, type MemoryEstimateInput, type Trained } from './memory.js';

export interface MemoryLimits {
  /** The wasm heap's cap, or null off wasm. */
  heapBytes: number | null;
  /** RAM this process may still use (available memory + what it holds now). */
  ramBytes: number;
}

/** Linux's MemAvailable (what can be allocated without swapping), else free memory. */
export function availableRamBytes(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return freemem();
}

export function memoryLimits(backend: string): MemoryLimits {
  return {
    heapBytes: backend === 'wasm' ? WASM_HEAP_MAX_BYTES : null,
    ramBytes: availableRamBytes() + process.memoryUsage().rss,
  };
}

/** A config key users can change to shrink the run, with its current value. */
export interface MemoryKnob {
  key: string;
  value: unknown;
  /** What to set it to (shown as the suggestion); omitted = lower it. */
  suggest?: unknown;
}

export interface FitVerdict {
  fits: boolean;
  /** One line for the log: estimate vs limits. */
  summary: string;
  /** Why it does not fit (empty when it fits). */
  reasons: string[];
}

export function judgeFit(estimate: MemoryEstimate, limits: MemoryLimits): FitVerdict {
  const reasons: string[] = [];
  if (limits.heapBytes !== null && estimate.heapBytes > limits.heapBytes) {
    reasons.push(`its tensors need about ${formatBytes(estimate.heapBytes)} on the wasm heap, which tfjs-backend-wasm caps at ${formatBytes(limits.heapBytes)}`);
  }
  if (estimate.totalBytes > limits.ramBytes) {
    reasons.push(`the process needs about ${formatBytes(estimate.totalBytes)} and ${formatBytes(limits.ramBytes)} of RAM is available`);
  }
  const heap = limits.heapBytes !== null ? ` (wasm heap ${formatBytes(estimate.heapBytes)} of ${formatBytes(limits.heapBytes)})` : '';
  const summary = `estimated peak memory ${formatBytes(estimate.totalBytes)}${heap}; RAM available ${formatBytes(limits.ramBytes)}`;
  return { fits: reasons.length === 0, summary, reasons };
}

/**
 * Log the estimate; throw a UserError naming it, the limits and `knobs` when the run cannot fit
 * (unless RLHF_MEMORY_CHECK=off).
 */
export function checkMemoryFits(
  stage: string,
  estimate: MemoryEstimate,
  limits: MemoryLimits,
  knobs: readonly MemoryKnob[],
  log: (m: string) => void,
): void {
  const verdict = judgeFit(estimate, limits);
  log(`${stage}: ${verdict.summary}`);
  if (verdict.fits) return;
  if (process.env['RLHF_MEMORY_CHECK'] === 'off') {
    log(`${stage}: warning: ${verdict.reasons.join('; ')} (RLHF_MEMORY_CHECK=off: starting anyway)`);
    return;
  }
  const biggest = [...estimate.items].sort((a, b) => b.bytes - a.bytes).slice(0, 4)
    .map((i) => `${i.what} ${formatBytes(i.bytes)}`).join(', ');
  const change = knobs.map((k) => (k.suggest !== undefined ? `${k.key}: ${String(k.suggest)} (now ${String(k.value)})` : `a lower ${k.key} (now ${String(k.value)})`));
  throw new UserError(
    `${stage}: this run will not fit in memory: ${verdict.reasons.join('; ')}.\n` +
      `  estimated peak: ${formatBytes(estimate.totalBytes)} — ${biggest}\n` +
      `  to fit, change: ${change.join(', ')}\n` +
      `  (the estimate is printed by \`rlhf env --model DIR\` too; RLHF_MEMORY_CHECK=off starts anyway)`,
  );
}

/** Heuristics for errors that mean the engine ran out of memory (wasm heap, typed arrays, V8). */
export function isOutOfMemoryError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const m = e.message;
  return (
    (typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError) ||
    /Aborted\(|memory access out of bounds|Cannot enlarge memory|Out of memory|Array buffer allocation failed|Invalid typed array length|could not allocate|OOM/i.test(m)
  );
}

/** What the CLI prints instead of a raw wasm abort. */
export function outOfMemoryMessage(e: Error): string {
  return (
    `error: the tensor engine ran out of memory (${e.message.split('\n')[0]}).\n` +
    `The wasm backend keeps every tensor on one heap of at most ${formatBytes(WASM_HEAP_MAX_BYTES)}. ` +
    `Lower train.batch_size or data.max_length, or set train.gradient_checkpointing: true and model.frozen_dtype: bfloat16; ` +
    '`rlhf env --model DIR` estimates what fits.'
  );
}

/** The keys every training stage can turn to shrink a run (those its config has). */
export function trainingKnobs(opts: { batchSize: number; maxLengthKey: string; maxLength: number; gradientCheckpointing: boolean | null; frozenDtype?: string | null }): MemoryKnob[] {
  const knobs: MemoryKnob[] = [
    { key: 'train.batch_size', value: opts.batchSize },
    { key: opts.maxLengthKey, value: opts.maxLength },
  ];
  if (opts.gradientCheckpointing === false) knobs.push({ key: 'train.gradient_checkpointing', value: false, suggest: true });
  if (opts.frozenDtype === 'float32') knobs.push({ key: 'model.frozen_dtype', value: 'float32', suggest: 'bfloat16' });
  return knobs;
}

/** A training run's shape as its config gives it: what both the estimate and the suggested knobs read. */
export interface TrainingRunShape {
  config: LlamaConfig;
  /** `train.batch_size`. */
  batchSize: number;
  /** Sequences per batch row: 2 where chosen and rejected go side by side (DPO, reward). Default 1. */
  sequencesPerRow?: number;
  /** The config key of the sequence length (`data.max_length`, `data.seq_len`) and its value. */
  maxLengthKey: string;
  maxLength: number;
  /** The LoRA section when adapters train; null = every weight trains. */
  lora: { r: number; target_modules: string[] | string; dropout: number } | null;
  /** `train.gradient_checkpointing`; `auto` is resolved by {@link checkTrainingMemory}. */
  gradientCheckpointing: boolean | 'auto';
  /** `model.frozen_dtype`, where the stage has that key (suggested under LoRA). */
  frozenDtype?: FrozenDtype;
  lossChunkRows: MemoryEstimateInput['lossChunkRows'];
  /** Further frozen float32 weights beside the model on the heap (a reference copy, …). */
  extraHeap?: { bytes: number; label: string };
  /** Stage keys that shrink the run, after the common ones. */
  extraKnobs?: readonly MemoryKnob[];
}

/**
 * Refuse, before anything loads, a training run that cannot fit ({@link checkMemoryFits} with the
 * stage's knobs), and resolve `train.gradient_checkpointing: auto`: off when the run fits without
 * it, on when only checkpointing makes it fit (logged with both estimates). Returns whether the
 * run checkpoints.
 */
export function checkTrainingMemory(stage: string, backend: string, shape: TrainingRunShape, log: (m: string) => void): boolean {
  const { config, lora } = shape;
  const estimateWith = (gradientCheckpointing: boolean): MemoryEstimate => estimatePeakMemory({
    config,
    batchSize: (shape.sequencesPerRow ?? 1) * shape.batchSize,
    seqLen: shape.maxLength,
    trained: lora ? { kind: 'lora', rank: lora.r, modules: loraShortModules(config, lora.target_modules), dropout: lora.dropout } : { kind: 'full' },
    gradientCheckpointing,
    lossChunkRows: shape.lossChunkRows,
    ...(shape.frozenDtype !== undefined ? { frozenDtype: shape.frozenDtype } : {}),
    ...(shape.extraHeap ? { extraHeapBytes: shape.extraHeap.bytes, extraLabel: shape.extraHeap.label } : {}),
  });
  const limits = memoryLimits(backend);
  let checkpointing = shape.gradientCheckpointing === true;
  let estimate = estimateWith(checkpointing);
  if (shape.gradientCheckpointing === 'auto' && !judgeFit(estimate, limits).fits) {
    const without = estimate;
    // On even when it does not make the run fit: the refusal below then shows the smallest estimate.
    checkpointing = true;
    estimate = estimateWith(true);
    if (judgeFit(estimate, limits).fits) {
      log(`${stage}: train.gradient_checkpointing auto → on: without it the run needs ${formatBytes(without.totalBytes)}` +
        `${limits.heapBytes !== null ? ` (wasm heap ${formatBytes(without.heapBytes)})` : ''}, which does not fit`);
    }
  }
  const knobs = trainingKnobs({
    batchSize: shape.batchSize,
    maxLengthKey: shape.maxLengthKey,
    maxLength: shape.maxLength,
    gradientCheckpointing: checkpointing,
    frozenDtype: lora ? (shape.frozenDtype ?? null) : null,
  });
  checkMemoryFits(stage, estimate, limits, [...knobs, ...(shape.extraKnobs ?? [])], log);
  return checkpointing;
}

/** Typical runs of a model and whether each fits here: what `rlhf env --model DIR` prints. */
export function typicalRunFits(config: LlamaConfig, limits: MemoryLimits): { run: string; estimate: MemoryEstimate; fits: boolean }[] {
  const lora: Trained = { kind: 'lora', rank: 16, modules: loraShortModules(config, 'all-linear'), dropout: 0.05 };
  const chunk = lossChunkRows(config.vocab_size);
  const runs: { run: string; input: MemoryEstimateInput }[] = [
    { run: 'LoRA SFT r=16 all-linear, batch 1 × 256', input: { config, batchSize: 1, seqLen: 256, trained: lora, lossChunkRows: chunk } },
    { run: 'LoRA SFT r=16 all-linear, batch 4 × 256', input: { config, batchSize: 4, seqLen: 256, trained: lora, lossChunkRows: chunk } },
    { run: 'the same + train.gradient_checkpointing', input: { config, batchSize: 4, seqLen: 256, trained: lora, lossChunkRows: chunk, gradientCheckpointing: true } },
    { run: 'the same + model.frozen_dtype: bfloat16', input: { config, batchSize: 4, seqLen: 256, trained: lora, lossChunkRows: chunk, gradientCheckpointing: true, frozenDtype: 'bfloat16' } },
    { run: 'LoRA SFT, batch 1 × 512 + checkpointing', input: { config, batchSize: 1, seqLen: 512, trained: lora, lossChunkRows: chunk, gradientCheckpointing: true } },
    { run: 'the same + model.frozen_dtype: bfloat16', input: { config, batchSize: 1, seqLen: 512, trained: lora, lossChunkRows: chunk, gradientCheckpointing: true, frozenDtype: 'bfloat16' } },
    { run: 'full fine-tuning, batch 1 × 256 + checkpointing', input: { config, batchSize: 1, seqLen: 256, trained: { kind: 'full' }, lossChunkRows: chunk, gradientCheckpointing: true } },
    { run: 'generation, batch 8 × 96 tokens', input: { config, batchSize: 8, seqLen: 96, trained: { kind: 'none' }, lossChunkRows: 8 } },
  ];
  return runs.map(({ run, input }) => {
    const estimate = estimatePeakMemory(input);
    return { run, estimate, fits: judgeFit(estimate, limits).fits };
  });
}
