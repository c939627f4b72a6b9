/**
 * Llama, computed as Hugging Face's `LlamaForCausalLM` does (eager attention, float32):
 *
 *   h = embed(ids)
 *   for each layer:  h = h + o_proj(attn(rope(q(norm(h))), rope(k(norm(h))), v(norm(h))))
 *                    h = h + down(silu(gate(norm(h))) · up(norm(h)))
 *   logits = lm_head(norm(h))          (lm_head = embed when tie_word_embeddings)
 *
 * Every weight is a `tf.Variable` in `params`, keyed by its HF tensor name. Every projection goes
 * through `linear(moduleName, x)`, the single hook LoRA plugs into (`adapters`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { isRecordingGradients } from '../engine/backprop.js';
import { heapHasRoomFor } from '../engine/heap-budget.js';
import { canWriteInPlace, copyAxis2InPlace } from '../engine/inplace.js';
import type { Rng } from '../engine/rng.js';
import type { LinearAdapter } from './adapter.js';
import { checkpointedLayer, tensorsWithin } from './checkpointing.js';
import { frozenMatMulT, frozenMatMulTConcat, type Frozen } from './frozen.js';
import { causalLmArchitecture, headDim, ropeSettings, sequenceClassificationArchitecture, type LlamaConfig } from './config.js';
import { hasQkNorm, slidingWindow } from './families.js';
import { ropeInvFreqFor } from './rope.js';
import { ScalarHead } from './heads.js';
import { ropeAppendJs, rmsNormJs } from './inference.js';
import { KVCache, type KVStore, type LayerKV } from './kvcache.js';
import {
  applyRope,
  attentionBias,
  positionsFromMaskRow,
  rmsNorm,
  ropeTables,
  ropeTablesFor,
  rotateHalfMatrix,
  softmaxLastAxis,
  swiglu,
  type PositionGrid,
} from './layers.js';
import { newVariable } from './variables.js';
import { EMBED, FINAL_NORM, LM_HEAD, SCORE, layerLinearModules, llamaParamShapes, type HeadChoice } from './names.js';

export interface ForwardInput {
  inputIds: tf.Tensor2D /* [B, T] int32 */;
  /** [B, pastLen + T]: 1 = token, 0 = padding. Omitted: every position is a token. */
  attentionMask?: tf.Tensor2D;
  /** [B, T]. Omitted: cumsum(mask) − 1 (clamped at 0), or pastLen + arange(T) without a mask. */
  positionIds?: tf.Tensor2D;
  /**
   * [B, T] int32: which packed example each position belongs to (1, 2, …; 0 = padding). Attention
   * stays inside a segment (block-diagonal causal mask); pass positionIds restarting per segment too.
   * Training/scoring forwards only (no cache).
   */
  segmentIds?: tf.Tensor2D;
  /** Keys/values of earlier positions. When given, the result carries the extended cache. */
  cache?: KVCache;
  /** Read by adapters (LoRA dropout); the base model itself has no dropout (attention_dropout = 0). */
  training?: boolean;
  /** Compute logits for the last N positions only (0 = all), like HF's `logits_to_keep`. */
  logitsToKeep?: number;
}

/** What every layer's attention shares within one forward (built once). */
interface AttentionContext {
  /** Query tables carry attention's 1/√hd, so scores need no separate scaling op. Null when every layer has a fused q|k|v. */
  ropeQ: { cos: tf.Tensor; sin: tf.Tensor } | null /* [B, T, nh·hd] */;
  ropeK: { cos: tf.Tensor; sin: tf.Tensor } | null /* [B, T, nkv·hd] */;
  /** The same for a fused q|k|v output (v passes through): built when some layer has one. */
  ropeQKV: { cos: tf.Tensor; sin: tf.Tensor } | null /* [B, T, (nh + 2·nkv)·hd] */;
  rotateHalf: tf.Tensor2D | null /* [hd, hd] */;
  bias: tf.Tensor /* [B, nkv, groups·T, S or the cache capacity] */;
  /** Preallocated cache buffers the new keys/values go into (positions pastLen … pastLen + T − 1). */
  append: KVStore | null;
  pastLen: number;
  positions: PositionGrid;
  /** RoPE and the cache write of a fused q|k|v done in JS (`ropeAppendJs`): inference into a preallocated cache. */
  jsRope: boolean;
}

function disposeInferenceWeights(weights: Map<string, InferenceLinear>): void {
  for (const w of weights.values()) tf.dispose([...(w.weight instanceof tf.Tensor ? [w.weight] : []), ...(w.bias ? [w.bias] : [])]);
}

/**
 * A projection's weight as inference uses it: transposed, [in, out] (+ bias [out]), adapters folded
 * in. Row-major [in, out] is what sgemm streams fastest for the few-row products of decoding
 * (measured 20–30% over the [out, in] layout with a transposed operand at 16 rows).
 */
interface InferenceLinear {
  /** Frozen weights ([out, in] each, off the heap) are not copied: their products are written side by side. */
  weight: tf.Tensor | Frozen[];
  bias: tf.Tensor | null;
}

/** Projections run as one matmul under `withInferenceWeights`, by the key they are stored under. */
const QKV = ['q_proj', 'k_proj', 'v_proj'] as const;
const GATE_UP = ['gate_proj', 'up_proj'] as const;

export interface ForwardOutput {
  logits: tf.Tensor3D /* [B, T or logitsToKeep, V] */;
  hidden: tf.Tensor3D /* [B, T, H], after the final norm */;
  /** A new cache (the input cache is left as it was; dispose it when done). */
  cache?: KVCache;
}

export class LlamaModel {
  readonly config: LlamaConfig;
  readonly params: Map<string, tf.Variable>;
  readonly adapters = new Map<string, LinearAdapter>();
  adaptersEnabled = true;
  /** Set from `forward({training})` for adapters that behave differently in training. */
  training = false;
  /** Frozen weights kept off the tensor heap (`./frozen.ts`: bfloat16, or float32 mapped from the file), by HF name; not in `params`. */
  readonly frozen = new Map<string, Frozen>();
  /**
   * Whether `withInferenceWeights` may copy frozen float32 weights onto the heap where they fit. Off:
   * since the few-row GEMM reads a transposed weight as fast as its copy, decoding straight from the
   * mapping was faster (135M shape, 82 vs 69-71 tok/s, two A/B pairs) and skips the copies' fresh memory.
   */
  copyFrozenForInference = false;
  /** Recompute each decoder layer in the backward pass instead of keeping its activations (training forwards only). */
  gradientCheckpointing = false;
  /** The RNG adapters draw dropout from: checkpointed recomputes replay it. */
  checkpointRng: Rng | null = null;
  /** The reward/value head when the checkpoint has `score.weight` (its variable is also in `params`). */
  scoreHead: ScalarHead | null;

  private readonly invFreq: Float32Array;
  /** Qwen3: per-head RMSNorm of queries and keys before RoPE (`self_attn.q_norm` / `k_norm`). */
  private readonly qkNorm: boolean;
  /** Mistral: keys older than this many positions are masked (null: full causal attention). */
  private readonly window: number | null;
  /** Set by `withInferenceWeights` for its duration. */
  private inference: Map<string, InferenceLinear> | null = null;
  /** Whether `withInferenceWeights` copies the frozen weights at the first decode step. */
  private decodeCopies = false;
  /** RMSNorm weights as plain arrays, for `rmsNormJs` under `withInferenceWeights`. */
  private inferenceNorms = new Map<string, Float32Array>();

  constructor(config: LlamaConfig, params: Map<string, tf.Variable>) {
    this.config = config;
    this.params = params;
    this.invFreq = ropeInvFreqFor(headDim(config), ropeSettings(config));
    this.qkNorm = hasQkNorm(config);
    this.window = slidingWindow(config);
    const score = params.get(SCORE);
    this.scoreHead = score ? new ScalarHead(score) : null;
  }

  /** Whether `forward` can produce logits (false for a score-only backbone). */
  get hasLmHead(): boolean {
    return this.config.tie_word_embeddings || this.params.has(LM_HEAD) || this.frozen.has(LM_HEAD);
  }

  /** Which heads the checkpoint holds (what `saveHfModel` writes). */
  heads(): HeadChoice {
    return { lmHead: this.params.has(LM_HEAD) || this.frozen.has(LM_HEAD), score: this.params.has(SCORE) };
  }

  /** Every decoder projection (q/k/v/o/gate/up/down of every layer): the LoRA targets. */
  linearModuleNames(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.config.num_hidden_layers; i++) out.push(...layerLinearModules(i));
    return out;
  }

  /** Total number of scalar weights (tied embeddings counted once). */
  numParameters(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    for (const w of this.frozen.values()) n += w.size;
    return n;
  }

  param(name: string): tf.Variable {
    const p = this.params.get(name);
    if (!p) throw new Error(`LlamaModel: no parameter "${name}"${this.frozen.has(name) ? ` (it is frozen in ${this.frozen.get(name)!.dtype}, off the tensor heap)` : ''}`);
    return p;
  }

  /**
   * Run `fn` with inference weights: every projection and the LM head as a transposed copy [in, out],
   * q|k|v and gate|up of each layer concatenated into one weight each (one matmul instead of three
   * and two: the small products of decoding are dominated by per-call cost), and every enabled
   * adapter that can (`inferenceDelta`) folded into its weight. A projection whose adapter cannot be
   * folded keeps the ordinary path (and so does its q|k|v or gate|up group).
   * Forwards inside `fn` use them unless they record gradients or run in training mode (then the
   * variables and adapters are used as always). The weights are copies made at the start, so `fn`
   * must not change variables or adapters; they are released at the end (generation wraps its
   * loop in this). Nested calls share the outer call's weights.
   */
  withInferenceWeights<T>(fn: () => T): T {
    // Frozen bfloat16 weights stay off the heap: no float32 copies of them (the plain path upcasts per use);
    // nor are copies made that would crowd the wasm heap (a 0.5B model's copies need 2 GiB more).
    // Frozen float32 weights (off the heap) are used where they lie; with copyFrozenForInference and
    // a heap that could hold the whole model twice, as a heap-loaded one would be, they are copied too
    // at the first decode step (one new position), so the prompt's forward, the first token, is not
    // held up by the copies' fresh memory.
    const frozen = [...this.frozen.values()];
    const offHeap = frozen.reduce((n, w) => n + w.size, 0);
    if (this.inference !== null || frozen.some((w) => w.dtype === 'bfloat16')) return fn();
    const copyFrozen = (offHeap === 0 || this.copyFrozenForInference) && heapHasRoomFor(4 * (this.numParameters() + offHeap));
    if (!copyFrozen && (offHeap === 0 || !heapHasRoomFor(4 * (this.numParameters() - offHeap)))) return fn();
    this.inference = this.buildInferenceWeights(copyFrozen && offHeap === 0);
    this.decodeCopies = copyFrozen && offHeap > 0;
    for (const [name, v] of this.params) if (name.endsWith('norm.weight')) this.inferenceNorms.set(name, v.dataSync() as Float32Array);
    try {
      return fn();
    } finally {
      disposeInferenceWeights(this.inference);
      this.inference = null;
      this.decodeCopies = false;
      this.inferenceNorms.clear();
    }
  }

  /** The inference weight stored under `key`, when inference weights are in use for this forward. */
  private inferenceLinear(key: string): InferenceLinear | undefined {
    if (this.inference === null || this.training || isRecordingGradients()) return undefined;
    return this.inference.get(key);
  }

  /** Whether this forward may run the JS decode pieces (`./inference.ts`): inference weights in use, storage reachable. */
  private jsInference(): boolean {
    return this.inference !== null && !this.training && !isRecordingGradients() && canWriteInPlace();
  }

  /** RMSNorm with the weight `name` (in JS under inference weights, else TF.js ops). */
  private norm(name: string, x: tf.Tensor): tf.Tensor {
    const w = this.jsInference() ? this.inferenceNorms.get(name) : undefined;
    return w ? rmsNormJs(x, w, this.config.rms_norm_eps) : rmsNorm(x, this.param(name), this.config.rms_norm_eps);
  }

  private buildInferenceWeights(copyFrozen: boolean): Map<string, InferenceLinear> {
    const out = new Map<string, InferenceLinear>();
    tf.tidy(() => {
      // A weight by name: a variable, a frozen weight as it is, or (copyFrozen) a copy of it on the heap.
      const weight = (name: string): tf.Tensor | Frozen => {
        const f = this.frozen.get(name);
        return f === undefined ? this.param(name) : copyFrozen ? f.materialize() : f;
      };
      // A module's weight with its adapter folded in; null when the adapter cannot be folded.
      const effective = (module: string): { w: tf.Tensor | Frozen; b: tf.Tensor | undefined } | null => {
        const w = weight(`${module}.weight`);
        const b = this.params.get(`${module}.bias`);
        const adapter = this.adaptersEnabled ? this.adapters.get(module) : undefined;
        if (adapter === undefined) return { w, b };
        if (adapter.inferenceDelta === undefined || !(w instanceof tf.Tensor)) return null;
        const delta = adapter.inferenceDelta();
        return { w: delta === null ? w : tf.add(w, delta), b };
      };
      // [out, in] weights side by side along out, stored transposed: [in, Σ out].
      const keep = (key: string, weights: (tf.Tensor | Frozen)[], bias: tf.Tensor | null) => {
        const frozen = weights.filter((w): w is Frozen => !(w instanceof tf.Tensor));
        if (frozen.length === weights.length) return void out.set(key, { weight: frozen, bias: bias === null ? null : tf.keep(bias) });
        if (frozen.length > 0) return; // a group half frozen keeps the ordinary path
        const w = weights.length === 1 ? weights[0]! as tf.Tensor : tf.concat(weights as tf.Tensor[]);
        out.set(key, { weight: tf.keep(tf.transpose(w)), bias: bias === null ? null : tf.keep(bias) });
      };
      // One group at a time (its own tidy): heap copies of frozen weights are freed as soon as used.
      const group = (key: string, modules: string[]) => tf.tidy(() => {
        const parts = modules.map(effective);
        if (parts.some((x) => x === null)) return;
        const ws = parts.map((x) => x!);
        const bias = ws.some((x) => x.b !== undefined)
          ? tf.concat(ws.map((x) => x.b ?? tf.zeros([x.w.shape[0]!])))
          : null;
        keep(key, ws.map((x) => x.w), bias);
      });
      for (let i = 0; i < this.config.num_hidden_layers; i++) {
        const p = `model.layers.${i}`;
        group(`${p}.self_attn.qkv`, QKV.map((m) => `${p}.self_attn.${m}`));
        group(`${p}.self_attn.o_proj`, [`${p}.self_attn.o_proj`]);
        group(`${p}.mlp.gate_up`, GATE_UP.map((m) => `${p}.mlp.${m}`));
        group(`${p}.mlp.down_proj`, [`${p}.mlp.down_proj`]);
      }
      // As lmHead(): tied embeddings first (no adapter there), else lm_head's own weight.
      if (this.config.tie_word_embeddings) keep('lm_head', [weight(EMBED)], null);
      else if (this.params.has(LM_HEAD) || this.frozen.has(LM_HEAD)) group('lm_head', ['lm_head']);
    });
    return out;
  }

  /** x · Wᵀ (+ bias), then the module's adapter if one is registered and enabled. x: [..., in] → [..., out]. */
  linear(moduleName: string, x: tf.Tensor): tf.Tensor {
    const folded = this.inferenceLinear(moduleName);
    if (folded) return this.inferenceMatMul(folded, x);
    return tf.tidy(() => {
      const frozen = this.frozen.get(`${moduleName}.weight`);
      // [..., in] · [out, in]ᵀ as one broadcast matmul: the kernels fold the leading axes into rows
      // (and the BatchMatMul gradient patch sums dW over them), so no reshapes around it.
      let out: tf.Tensor = frozen
        ? frozenMatMulT(x, frozen)
        : tf.matMul(x, this.param(`${moduleName}.weight`), false, true); // [..., out]
      const bias = this.params.get(`${moduleName}.bias`);
      if (bias) out = tf.add(out, bias);
      const adapter = this.adaptersEnabled ? this.adapters.get(moduleName) : undefined;
      return adapter ? adapter.apply(x, out) : out;
    });
  }

  /** x · Wᵀ (+ bias) with an inference weight (stored as Wᵀ). */
  private inferenceMatMul(w: InferenceLinear, x: tf.Tensor): tf.Tensor {
    const product = (): tf.Tensor => (w.weight instanceof tf.Tensor ? tf.matMul(x, w.weight) : frozenMatMulTConcat(x, w.weight));
    if (w.bias === null) return product();
    return tf.tidy(() => tf.add(product(), w.bias!));
  }

  /** Logits, final hidden states and (when a cache was given) the extended cache. */
  forward(input: ForwardInput): ForwardOutput {
    if (!this.hasLmHead) throw new Error('LlamaModel.forward: this model has no LM head (use hiddenStates and scoreHead)');
    const keep = input.logitsToKeep ?? 0;
    const run = this.run(input);
    const logits = tf.tidy(() => {
      const [b, t, h] = run.hidden.shape;
      const last = keep > 0 && keep < t ? tf.slice(run.hidden, [0, t - keep, 0], [b, keep, h]) : run.hidden;
      return this.lmHead(last) as tf.Tensor3D;
    });
    return { logits, hidden: run.hidden, ...(run.cache ? { cache: run.cache } : {}) };
  }

  /** Final-normed hidden states without the LM head (reward / value models). */
  hiddenStates(input: ForwardInput): { hidden: tf.Tensor3D; cache?: KVCache } {
    return this.run(input);
  }

  /** The LM head's weight [V, H] (the embedding when tied) for losses computed from hidden states; null when an adapter sits on it. */
  lmHeadWeight(): tf.Tensor | null {
    if (this.adapters.has('lm_head')) return null;
    const name = this.config.tie_word_embeddings ? EMBED : LM_HEAD;
    const frozen = this.frozen.get(name);
    if (frozen) return frozen.materialize(); // a float32 copy for this forward (the caller's tidy frees it)
    return this.params.get(name) ?? null;
  }

  /** Release every weight (and adapters are the caller's); a mapped file is unmapped with its last weight. */
  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    for (const w of this.frozen.values()) w.release();
  }

  // -------------------------------------------------------------------------------------------

  private run(input: ForwardInput): { hidden: tf.Tensor3D; cache?: KVCache } {
    this.training = input.training ?? false;
    const cfg = this.config;
    const [b, t] = input.inputIds.shape;
    const pastLen = input.cache?.length ?? 0;
    if (this.decodeCopies && t === 1 && !this.training && !isRecordingGradients()) {
      disposeInferenceWeights(this.inference!);
      this.inference = this.buildInferenceWeights(true);
      this.decodeCopies = false;
    }
    if (input.attentionMask && input.attentionMask.shape[1] !== pastLen + t) {
      throw new Error(
        `LlamaModel.forward: attentionMask has ${input.attentionMask.shape[1]} columns, expected pastLen + T = ${pastLen + t}`,
      );
    }
    const nh = cfg.num_attention_heads;
    const nkv = cfg.num_key_value_heads;
    const hd = headDim(cfg);
    // A preallocated cache: the buffers this forward writes its keys/values into (outside the tidy).
    if (input.cache?.isPreallocated && isRecordingGradients()) {
      throw new Error('LlamaModel.forward: a preallocated KV cache is written in place and cannot record gradients');
    }
    if (input.segmentIds && input.cache) throw new Error('LlamaModel.forward: segmentIds (packed rows) cannot be used with a KV cache');
    const append = input.cache?.isPreallocated ? input.cache.appendBuffers(t, cfg.num_hidden_layers, [b, nkv, hd]) : null;
    let result: { hidden: tf.Tensor3D; kv: tf.Tensor4D[] };
    try {
      result = tf.tidy(() => {
        const positions = positionGrid(input, b, t, pastLen);
        let fusedQkv = 0;
        for (let i = 0; i < cfg.num_hidden_layers; i++) if (this.inferenceLinear(`model.layers.${i}.self_attn.qkv`)) fusedQkv++;
        const jsRope = append !== null && this.jsInference();
        const scale = 1 / Math.sqrt(hd);
        const ctx: AttentionContext = {
          ropeQ: fusedQkv < cfg.num_hidden_layers ? ropeTables(positions, this.invFreq, nh, scale) : null,
          ropeK: fusedQkv < cfg.num_hidden_layers ? ropeTables(positions, this.invFreq, nkv) : null,
          ropeQKV: fusedQkv > 0 && !jsRope
            ? ropeTablesFor(positions, this.invFreq, [{ heads: nh, scale }, { heads: nkv }, { heads: nkv, identity: true }])
            : null,
          // Only the TF.js RoPE uses it: not built when every layer rotates in JS.
          rotateHalf: fusedQkv < cfg.num_hidden_layers || !jsRope ? rotateHalfMatrix(hd) : null,
          bias: attentionBias(input.attentionMask ?? null, b, t, pastLen, nkv, nh / nkv, append?.capacity, this.window, input.segmentIds?.dataSync() ?? null),
          append,
          pastLen,
          positions,
          jsRope,
        };

        const frozenEmbed = this.frozen.get(EMBED);
        let h = tf.reshape(
          frozenEmbed ? frozenEmbed.gatherRows(input.inputIds.dataSync()) : tf.gather(this.param(EMBED), tf.reshape(input.inputIds, [-1])),
          [b, t, cfg.hidden_size],
        );
        const newKV: tf.Tensor4D[] = [];
        const checkpoint = this.gradientCheckpointing && this.training && !input.cache && isRecordingGradients();
        for (let i = 0; i < cfg.num_hidden_layers; i++) {
          // One tidy per layer: its intermediates go when the layer ends (what backprop needs is saved
          // on the tape separately), so the forward never holds every layer's temporaries at once.
          const layer = checkpoint
            ? { h: this.checkpointedDecoderLayer(i, h, ctx), k: null, v: null }
            : tf.tidy(() => this.decoderLayer(i, h, ctx, input.cache?.layers[i]));
          // With a preallocated cache, layer.k/v are the cache's own buffers: nothing to collect or free.
          if (!append && layer.k !== null) {
            if (input.cache) newKV.push(layer.k, layer.v);
            else tf.dispose([layer.k, layer.v]);
          }
          h.dispose(); // made in this tidy; the tape keeps its own copy where backprop needs it
          h = layer.h;
        }
        const hidden = this.norm(FINAL_NORM, h) as tf.Tensor3D;
        return { hidden, kv: input.cache && !append ? newKV : [] };
      });
    } catch (e) {
      if (append) KVCache.release(append);
      throw e;
    }
    if (!input.cache) return { hidden: result.hidden };
    if (append) return { hidden: result.hidden, cache: KVCache.extendedBy(input.cache, append, t) };
    const layers: LayerKV[] = [];
    for (let i = 0; i < result.kv.length; i += 2) layers.push({ k: result.kv[i]!, v: result.kv[i + 1]! });
    return { hidden: result.hidden, cache: new KVCache(layers, pastLen + t) };
  }

  /** Decoder layer i: h + attn(norm(h)), then + mlp(norm(·)); with the layer's keys/values. */
  private decoderLayer(i: number, h: tf.Tensor, ctx: AttentionContext, past: LayerKV | undefined): { h: tf.Tensor; k: tf.Tensor4D; v: tf.Tensor4D } {
    const p = `model.layers.${i}`;
    const normed = this.norm(`${p}.input_layernorm.weight`, h);
    const attn = this.attention(p, i, normed, ctx, past);
    const mid = tf.add(h, attn.out);
    const normed2 = this.norm(`${p}.post_attention_layernorm.weight`, mid);
    return { h: tf.add(mid, this.mlp(p, normed2)), k: attn.k, v: attn.v };
  }

  /** `decoderLayer` under gradient checkpointing (`./checkpointing.ts`): recomputed in the backward pass. */
  private checkpointedDecoderLayer(i: number, h: tf.Tensor, ctx: AttentionContext): tf.Tensor {
    // Every tensor of the context (RoPE tables, masks) is saved with the op and rebuilt for the recompute.
    const context = tensorsWithin(ctx);
    const layer = (x: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
      const out = this.decoderLayer(i, x, context.rebuild(saved), undefined);
      tf.dispose([out.k, out.v]);
      return out.h;
    });
    const prefix = `model.layers.${i}.`;
    const variables = [...this.params].filter(([name]) => name.startsWith(prefix)).map(([, v]) => v);
    for (const [name, adapter] of this.adapters) if (name.startsWith(prefix)) variables.push(...(adapter.variables?.() ?? []));
    return checkpointedLayer(layer, h, context.tensors, variables, this.checkpointRng);
  }

  /** Self-attention of one layer. Returns the output [B, T, H] and the full keys/values [B, nkv, S, hd]. */
  private attention(
    p: string,
    layerIndex: number,
    x: tf.Tensor /* [B, T, H] */,
    ctx: AttentionContext,
    past: LayerKV | undefined,
  ): { out: tf.Tensor; k: tf.Tensor4D; v: tf.Tensor4D } {
    const cfg = this.config;
    const [b, t] = x.shape as [number, number, number];
    const hd = headDim(cfg);
    const nh = cfg.num_attention_heads;
    const nkv = cfg.num_key_value_heads;
    // [B, T, n·hd] → [B, n, T, hd]; with one position (decoding) that is a plain reshape, no copy.
    const heads = (y: tf.Tensor, n: number) =>
      t === 1 ? tf.reshape(y, [b, n, 1, hd]) : tf.transpose(tf.reshape(y, [b, t, n, hd]), [0, 2, 1, 3]);

    let qr: tf.Tensor;
    let kr: tf.Tensor;
    let vr: tf.Tensor;
    const qkv = this.inferenceLinear(`${p}.self_attn.qkv`);
    if (qkv && ctx.jsRope && ctx.append) {
      // Inference into a preallocated cache: RoPE in JS, keys/values straight into the buffers.
      const buffers = ctx.append.layers[layerIndex]!;
      const rotatedQ = ropeAppendJs(this.inferenceMatMul(qkv, x), { queryHeads: nh, kvHeads: nkv, headDim: hd },
        ctx.positions, this.invFreq, 1 / Math.sqrt(hd), buffers, ctx.pastLen, this.qkNormWeightsJs(p));
      return this.attend(p, heads(rotatedQ, nh), buffers.k, buffers.v, ctx, b, t);
    }
    if (qkv && ctx.ropeQKV) {
      let fused = this.inferenceMatMul(qkv, x); // [B, T, (nh + 2·nkv)·hd]
      if (this.qkNorm) {
        const [q0, k0, v0] = tf.split(fused, [nh * hd, nkv * hd, nkv * hd], -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
        fused = tf.concat([this.headNorm(`${p}.self_attn.q_norm.weight`, q0), this.headNorm(`${p}.self_attn.k_norm.weight`, k0), v0], -1);
      }
      const rotated = applyRope(fused, ctx.ropeQKV.cos, ctx.ropeQKV.sin, ctx.rotateHalf!);
      [qr, kr, vr] = tf.split(rotated, [nh * hd, nkv * hd, nkv * hd], -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
    } else {
      let q0 = this.linear(`${p}.self_attn.q_proj`, x); // [B, T, nh·hd]
      let k0 = this.linear(`${p}.self_attn.k_proj`, x); // [B, T, nkv·hd]
      if (this.qkNorm) {
        q0 = this.headNorm(`${p}.self_attn.q_norm.weight`, q0);
        k0 = this.headNorm(`${p}.self_attn.k_norm.weight`, k0);
      }
      qr = applyRope(q0, ctx.ropeQ!.cos, ctx.ropeQ!.sin, ctx.rotateHalf!);
      kr = applyRope(k0, ctx.ropeK!.cos, ctx.ropeK!.sin, ctx.rotateHalf!);
      vr = this.linear(`${p}.self_attn.v_proj`, x);
    }
    const q = heads(qr, nh);
    let k = heads(kr, nkv) as tf.Tensor4D;
    let v = heads(vr, nkv) as tf.Tensor4D;
    if (ctx.append) {
      // Preallocated cache: write the new positions into its buffers and attend over all of them.
      const buffers = ctx.append.layers[layerIndex]!;
      copyAxis2InPlace(buffers.k, ctx.pastLen, k, 0, t);
      copyAxis2InPlace(buffers.v, ctx.pastLen, v, 0, t);
      k = buffers.k;
      v = buffers.v;
    } else if (past) {
      k = tf.concat([past.k, k], 2);
      v = tf.concat([past.v, v], 2);
    }

    return this.attend(p, q, k, v, ctx, b, t);
  }

  /** RMSNorm of every head of x [B, T, n·hd] over its hd values, with the weight `name` [hd] (Qwen3's q_norm / k_norm). */
  private headNorm(name: string, x: tf.Tensor): tf.Tensor {
    const w = this.jsInference() ? this.inferenceNorms.get(name) : undefined;
    if (w) return rmsNormJs(x, w, this.config.rms_norm_eps); // rows of hd: one per head
    const hd = headDim(this.config);
    const shape = x.shape;
    return tf.reshape(rmsNorm(tf.reshape(x, [...shape.slice(0, -1), -1, hd]), this.param(name), this.config.rms_norm_eps), shape);
  }

  /** q_norm / k_norm weights as plain arrays for `ropeAppendJs` (Qwen3 under inference weights); undefined otherwise. */
  private qkNormWeightsJs(p: string): { q: Float32Array; k: Float32Array; eps: number } | undefined {
    if (!this.qkNorm) return undefined;
    const q = this.inferenceNorms.get(`${p}.self_attn.q_norm.weight`);
    const k = this.inferenceNorms.get(`${p}.self_attn.k_norm.weight`);
    if (!q || !k) throw new Error(`LlamaModel: no inference copy of ${p}.self_attn.q_norm/k_norm`);
    return { q, k, eps: this.config.rms_norm_eps };
  }

  /** Attention of queries q [B, nh, T, hd] over keys/values [B, nkv, S, hd], then o_proj. */
  private attend(
    p: string, q: tf.Tensor, k: tf.Tensor4D, v: tf.Tensor4D, ctx: AttentionContext, b: number, t: number,
  ): { out: tf.Tensor; k: tf.Tensor4D; v: tf.Tensor4D } {
    const cfg = this.config;
    const hd = headDim(cfg);
    const nh = cfg.num_attention_heads;
    const nkv = cfg.num_key_value_heads;
    const groups = nh / nkv;
    // GQA without repeating K/V: query head h uses KV head floor(h / groups), and heads of one group
    // are adjacent, so [B, nh, T, hd] regroups to [B, nkv, groups·T, hd] against [B, nkv, S, hd].
    const qg = tf.reshape(q, [b, nkv, groups * t, hd]);
    const scores = tf.matMul(qg, k, false, true); // [B, nkv, g·T, S], already scaled by 1/√hd (ropeQ)
    const probs = softmaxLastAxis(tf.add(scores, ctx.bias));
    const attnOut = tf.matMul(probs, v); // [B, nkv, g·T, hd] = [B, nh, T, hd]
    const merged = t === 1
      ? tf.reshape(attnOut, [b, 1, nh * hd])
      : tf.reshape(tf.transpose(tf.reshape(attnOut, [b, nh, t, hd]), [0, 2, 1, 3]), [b, t, nh * hd]);
    return { out: this.linear(`${p}.self_attn.o_proj`, merged), k, v };
  }

  private mlp(p: string, x: tf.Tensor): tf.Tensor {
    const gateUp = this.inferenceLinear(`${p}.mlp.gate_up`);
    let gate: tf.Tensor;
    let up: tf.Tensor;
    if (gateUp) {
      [gate, up] = tf.split(this.inferenceMatMul(gateUp, x), 2, -1) as [tf.Tensor, tf.Tensor];
    } else {
      gate = this.linear(`${p}.mlp.gate_proj`, x);
      up = this.linear(`${p}.mlp.up_proj`, x);
    }
    return this.linear(`${p}.mlp.down_proj`, swiglu(gate, up));
  }

  private lmHead(hidden: tf.Tensor): tf.Tensor {
    const folded = this.inferenceLinear('lm_head');
    if (folded) return this.inferenceMatMul(folded, hidden);
    if (this.config.tie_word_embeddings) {
      const [b, t, h] = hidden.shape as [number, number, number];
      const frozen = this.frozen.get(EMBED);
      const logits = frozen
        ? frozenMatMulT(tf.reshape(hidden, [b * t, h]), frozen)
        : tf.matMul(tf.reshape(hidden, [b * t, h]), this.param(EMBED), false, true);
      return tf.reshape(logits, [b, t, this.config.vocab_size]);
    }
    return this.linear('lm_head', hidden);
  }
}

/**
 * Position ids of the new tokens as plain numbers: the given ones; else, as HF derives them,
 * cumsum(mask) − 1 clamped at 0 over the last T columns; else pastLen + arange(T).
 */
function positionGrid(input: ForwardInput, b: number, t: number, pastLen: number): PositionGrid {
  if (input.positionIds) return { batch: b, len: t, values: input.positionIds.dataSync() };
  const values = new Int32Array(b * t);
  if (input.attentionMask) {
    const s = input.attentionMask.shape[1];
    const mask = input.attentionMask.dataSync();
    for (let r = 0; r < b; r++) {
      const row = positionsFromMaskRow(mask.subarray(r * s, (r + 1) * s));
      for (let i = 0; i < t; i++) values[r * t + i] = row[s - t + i]!;
    }
  } else {
    for (let r = 0; r < b; r++) for (let i = 0; i < t; i++) values[r * t + i] = pastLen + i;
  }
  return { batch: b, len: t, values };
}

/**
 * A freshly initialised model, as HF's `_init_weights` does it: every linear and embedding weight
 * N(0, initializer_range²) (biases and the padding row of the embedding zero), norms ones.
 * Weights are drawn from `rng` in HF module order, so the same seed gives the same model.
 */
export function initLlama(config: LlamaConfig, rng: Rng, heads?: Partial<HeadChoice>): LlamaModel {
  const choice: HeadChoice = {
    lmHead: heads?.lmHead ?? !config.tie_word_embeddings,
    score: heads?.score ?? false,
  };
  const std = config.initializer_range;
  const params = new Map<string, tf.Variable>();
  for (const [name, shape] of llamaParamShapes(config, choice)) {
    const size = shape.reduce((a, c) => a * c, 1);
    const data = new Float32Array(size);
    if (name.endsWith('norm.weight')) data.fill(1);
    else if (!name.endsWith('.bias')) rng.fillNormal(data, std);
    if (name === EMBED && config.pad_token_id !== null && config.pad_token_id < config.vocab_size) {
      data.fill(0, config.pad_token_id * config.hidden_size, (config.pad_token_id + 1) * config.hidden_size);
    }
    params.set(name, newVariable(data, shape));
  }
  const arch = choice.score && !choice.lmHead && !config.tie_word_embeddings ? sequenceClassificationArchitecture(config) : causalLmArchitecture(config);
  return new LlamaModel({ ...config, architectures: [arch] }, params);
}

/**
 * Give a model a fresh scalar head (e.g. a reward model started from an SFT model). With
 * `dropLmHead`, the untied `lm_head` is released, leaving a LlamaForSequenceClassification.
 */
export function attachScoreHead(model: LlamaModel, rng: Rng, opts: { dropLmHead?: boolean } = {}): ScalarHead {
  const head = ScalarHead.init(model.config.hidden_size, rng, model.config.initializer_range);
  model.params.get(SCORE)?.dispose();
  model.params.set(SCORE, head.weight);
  model.scoreHead = head;
  if (opts.dropLmHead) {
    model.params.get(LM_HEAD)?.dispose();
    model.params.delete(LM_HEAD);
    if (!model.config.tie_word_embeddings) model.config.architectures = [sequenceClassificationArchitecture(model.config)];
  }
  return head;
}
