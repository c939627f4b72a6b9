/**
 * Peak memory of a run, estimated from shapes alone before any weight is loaded ("fail before, not
 * during"). A pure function of the model config, the micro-batch, the sequence length, what is
 * trained (LoRA or full), AdamW, the dtype frozen weights are kept in and gradient checkpointing.
 *
 * Two budgets matter: the wasm heap, which tfjs-backend-wasm caps at 4 GiB − 64 KiB for every tensor
 * it holds, and the machine's RAM for the whole process. The counts below follow what this code base
 * keeps alive (see `engine/backprop.ts`: saved activations share data, shape-only gradients save
 * nothing), per token and layer, in float32:
 *   norms       3·H twice (input, x·rsqrt, output)
 *   attention   q (regrouped queries) + 2·kv (keys, values) + nh·S (softmax probabilities) + q (merged heads)
 *   MLP         3·I (gate, up, swiglu output)
 *   LoRA        per adapted projection with dropout: its dropout mask and dropped input (2·in)
 * With gradient checkpointing only each layer's input [tokens, H] is kept, plus one layer's worth
 * during its recompute. The loss holds [tokens, vocab] a few times, or [chunk rows, vocab] when chunked.
 * The constants were checked against measured peak RSS (docs/engine.md, "Memory").
 */
import { headDim, type LlamaConfig } from '../model/config.js';
import { WASM_HEAP_MAX_BYTES } from '../engine/heap-budget.js';
import { resolveTargetModules } from '../lora/inject.js';
import { layerLinearModules, llamaParamShapes } from '../model/names.js';

export { WASM_HEAP_MAX_BYTES } from '../engine/heap-budget.js';

/** Node, tfjs, the wasm module, code and the tokenized data: measured RSS of a stage before its model loads. */
export const PROCESS_BASELINE_BYTES = 260 * 2 ** 20;

/** The wasm allocator's slack over the live bytes at peak (fragmentation of freed blocks). */
const HEAP_SLACK = 1.05;

export type FrozenDtype = 'float32' | 'bfloat16';

export type Trained =
  | { kind: 'none' }
  | { kind: 'full' }
  | { kind: 'lora'; rank: number; /** short names (q_proj, …) of the adapted projections */ modules: readonly string[]; dropout: number };

export interface MemoryEstimateInput {
  config: LlamaConfig;
  /** Rows per micro-batch. */
  batchSize: number;
  /** Tokens per row. */
  seqLen: number;
  trained: Trained;
  /** How frozen weights are kept (bfloat16: off the wasm heap, 2 bytes a weight). Default float32. */
  frozenDtype?: FrozenDtype;
  gradientCheckpointing?: boolean;
  /** Inference loads (`loadHfModel` `frozenFloat32`): the frozen float32 weights are mapped from the file, off the wasm heap. */
  frozenFloat32?: boolean;
  /** Rows of logits per loss chunk; null = [tokens, vocab] at once; 'none' = no LM loss (scalar head). */
  lossChunkRows?: number | null | 'none';
  /** More frozen float32 weights held beside the model on the heap (PPO's reward model, …), in bytes. */
  extraHeapBytes?: number;
  /** What those extra items are called in the breakdown. */
  extraLabel?: string;
}

export interface MemoryItem {
  what: string;
  bytes: number;
  where: 'heap' | 'host';
  /** Only while the weights load (not at the training peak). */
  loadOnly?: boolean;
}

export interface MemoryEstimate {
  /** Peak bytes on the wasm heap (the tensors), slack included. */
  heapBytes: number;
  /** Peak bytes outside it (JS/native: off-heap weights, the weight being read, node itself). */
  hostBytes: number;
  /** Peak resident memory of the process: the larger of loading and training (heap + host). */
  totalBytes: number;
  items: MemoryItem[];
}

const F32 = 4;

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** In and out widths of each projection of a layer, by short name. */
function projectionDims(cfg: LlamaConfig): Record<string, { in: number; out: number }> {
  const h = cfg.hidden_size;
  const q = cfg.num_attention_heads * headDim(cfg);
  const kv = cfg.num_key_value_heads * headDim(cfg);
  const m = cfg.intermediate_size;
  return {
    q_proj: { in: h, out: q },
    k_proj: { in: h, out: kv },
    v_proj: { in: h, out: kv },
    o_proj: { in: q, out: h },
    gate_proj: { in: h, out: m },
    up_proj: { in: h, out: m },
    down_proj: { in: m, out: h },
  };
}

/** Floats autograd keeps per token for one decoder layer (see the header). */
export function savedFloatsPerTokenLayer(cfg: LlamaConfig, seqLen: number, trained: Trained): number {
  const h = cfg.hidden_size;
  const q = cfg.num_attention_heads * headDim(cfg);
  const kv = cfg.num_key_value_heads * headDim(cfg);
  let n = 6 * h + 2 * q + 2 * kv + cfg.num_attention_heads * seqLen + 3 * cfg.intermediate_size;
  if (trained.kind === 'lora' && trained.dropout > 0) {
    const dims = projectionDims(cfg);
    for (const m of trained.modules) n += 2 * (dims[m]?.in ?? 0);
  }
  if (trained.kind === 'lora') n += trained.rank * trained.modules.length; // each adapter's [tokens, r] intermediate
  return n;
}

/** Weights of the model by tensor, float32 count. */
function parameterCount(cfg: LlamaConfig): { total: number; largest: number } {
  let total = 0;
  let largest = 0;
  for (const shape of llamaParamShapes(cfg, { lmHead: !cfg.tie_word_embeddings, score: false }).values()) {
    total += numel(shape);
    largest = Math.max(largest, numel(shape));
  }
  return { total, largest };
}

/** Trainable LoRA weights: r·(in + out) per adapted projection and layer. */
export function loraParameterCount(cfg: LlamaConfig, rank: number, modules: readonly string[]): number {
  const dims = projectionDims(cfg);
  let per = 0;
  for (const m of modules) {
    const d = dims[m];
    if (d) per += rank * (d.in + d.out);
  }
  return per * cfg.num_hidden_layers;
}

/** The peak-memory estimate of one training (or inference) micro-step. */
/** The model's weights as float32 (a frozen copy beside the model, a reward model held on the heap). */
export function float32WeightBytes(cfg: LlamaConfig): number {
  return F32 * parameterCount(cfg).total;
}

export function estimatePeakMemory(input: MemoryEstimateInput): MemoryEstimate {
  const cfg = input.config;
  const tokens = input.batchSize * input.seqLen;
  const h = cfg.hidden_size;
  const layers = cfg.num_hidden_layers;
  const frozenDtype = input.frozenDtype ?? 'float32';
  const checkpointing = input.gradientCheckpointing ?? false;
  const training = input.trained.kind !== 'none';
  const items: MemoryItem[] = [];
  const add = (what: string, bytes: number, where: MemoryItem['where'] = 'heap', loadOnly = false) => {
    if (bytes > 0) items.push({ what, bytes: Math.round(bytes), where, ...(loadOnly ? { loadOnly } : {}) });
  };

  const params = parameterCount(cfg);
  // Frozen weights: float32 on the heap, or bfloat16 off it (read one projection at a time as float32).
  const offHeap = frozenDtype === 'bfloat16' && input.trained.kind !== 'full';
  const mapped = !offHeap && !training && input.frozenFloat32 === true;
  if (offHeap) {
    add('frozen weights (bfloat16, off the wasm heap)', 2 * params.total, 'host');
    add('one weight read as float32 (twice: product and its gradient)', 2 * F32 * params.largest);
  } else if (mapped) {
    add('weights (float32, mapped from the file, off the wasm heap)', F32 * params.total, 'host');
  } else {
    add('weights (float32)', F32 * params.total);
  }
  // Loading reads one tensor at a time: its bytes in JS while it is copied in (a float32 file's
  // weight frozen to bfloat16: the decode and the bfloat16 copy, 6 bytes a weight).
  add('largest tensor while loading', (offHeap ? 1.5 : 1) * F32 * params.largest, 'host', true);
  if (input.extraHeapBytes) add(input.extraLabel ?? 'other models', input.extraHeapBytes);

  // Trainable state: gradients, their accumulated sum and AdamW's two moments (+ LoRA's own weights).
  if (input.trained.kind === 'full') {
    add('gradients + accumulated gradients + AdamW moments', 4 * F32 * params.total);
  } else if (input.trained.kind === 'lora') {
    const n = loraParameterCount(cfg, input.trained.rank, input.trained.modules);
    add('LoRA weights, gradients and AdamW moments', 5 * F32 * n);
  }

  const perLayer = savedFloatsPerTokenLayer(cfg, input.seqLen, input.trained) * tokens * F32;
  if (training) {
    if (checkpointing) {
      add(`layer inputs kept for recompute (${layers} × [tokens, hidden])`, layers * tokens * h * F32);
      add('one layer recomputed in the backward pass', perLayer);
    } else {
      add(`activations kept for the backward pass (${layers} layers)`, layers * perLayer);
    }
    // The backward pass of one layer: its gradients flowing (about one layer's worth) and the residual gradient.
    add('backward pass of one layer', perLayer + 2 * tokens * h * F32);
  } else {
    // Decoding uses transposed, fused copies of the weights when they fit (`withInferenceWeights`).
    if (!offHeap && 2 * F32 * params.total <= 0.75 * WASM_HEAP_MAX_BYTES) add('inference copies of the weights', F32 * params.total);
    add('one layer\'s activations', perLayer / 2);
    add('KV cache', 2 * layers * cfg.num_key_value_heads * headDim(cfg) * tokens * F32);
  }

  const chunk = input.lossChunkRows ?? null;
  if (chunk !== 'none') {
    const rows = chunk === null ? tokens : Math.min(tokens, chunk);
    // Unchunked: logits, softmax, its product with dy and the gather gradient ~ 4 copies when training.
    const copies = training ? (chunk === null ? 4 : 3) : 2;
    add(`logits (${copies} × [${rows}, ${cfg.vocab_size}])`, copies * rows * cfg.vocab_size * F32);
    if (training && chunk !== null) add('hidden-state gradient of the loss', tokens * h * F32);
  }

  const sum = (keep: (i: MemoryItem) => boolean) => items.filter(keep).reduce((s, i) => s + i.bytes, 0);
  const heapBytes = Math.round(sum((i) => i.where === 'heap') * HEAP_SLACK);
  add('node, tfjs and the data', PROCESS_BASELINE_BYTES, 'host');
  const hostBytes = sum((i) => i.where === 'host' && !i.loadOnly);
  // Loading: the weights on the heap so far plus the tensor being read; training: everything else.
  const loading = (offHeap || mapped ? 0 : F32 * params.total) + sum((i) => i.loadOnly === true) + hostBytes;
  return { heapBytes, hostBytes, totalBytes: Math.max(heapBytes + hostBytes, loading), items };
}

/** Short names (q_proj, …) of the projections `targetModules` selects in layer 0 (as injectLora resolves them). */
export function loraShortModules(cfg: LlamaConfig, targetModules: string[] | string): string[] {
  const host = {
    params: new Map(),
    adapters: new Map(),
    adaptersEnabled: true,
    training: false,
    linearModuleNames: () => Array.from({ length: cfg.num_hidden_layers }, (_, i) => layerLinearModules(i)).flat(),
  };
  const prefix = 'model.layers.0.';
  return resolveTargetModules(host, targetModules)
    .filter((m) => m.startsWith(prefix))
    .map((m) => m.slice(m.lastIndexOf('.') + 1));
}
