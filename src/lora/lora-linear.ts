import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../engine/rng.js';
import { canWriteInPlace, float32Storage } from '../engine/inplace.js';
import type { LinearAdapter } from '../model/adapter.js';

/**
 * One LoRA adapter on a linear projection W [out, in], as PEFT's `lora.Linear`:
 *   y = x·Wᵀ + scaling · (dropout(x) · Aᵀ) · Bᵀ,   A [r, in], B [out, r]
 * A is kaiming-uniform (`kaiming_uniform_(a=√5)` → U(±1/√in)), B is zero, so a fresh adapter
 * leaves the model unchanged. scaling = alpha / r, or alpha / √r with rsLoRA.
 */
export interface LoraLinearOptions {
  inDim: number;
  outDim: number;
  rank: number;
  alpha: number;
  dropout?: number;
  useRslora?: boolean;
  /** Draws A at construction. */
  rng: Rng;
  /** Draws dropout masks (default: `rng`); share one so a checkpoint can save its state. */
  dropoutRng?: Rng;
  /** Whether the host model is in training mode (dropout is active only then). */
  isTraining?: () => boolean;
}

export function loraScaling(alpha: number, rank: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

/**
 * Bound of torch's `kaiming_uniform_(w, a=√5)` for fan-in `fanIn`:
 * gain = √(2 / (1 + a²)) = √(1/3), bound = √3 · gain / √fanIn = 1 / √fanIn.
 */
export function kaimingUniformBound(fanIn: number): number {
  const gain = Math.sqrt(2 / (1 + 5));
  return Math.sqrt(3) * (gain / Math.sqrt(fanIn));
}

export class LoraLinear implements LinearAdapter {
  readonly A: tf.Variable; // [r, in]
  readonly B: tf.Variable; // [out, r]
  readonly inDim: number;
  readonly outDim: number;
  readonly rank: number;
  readonly alpha: number;
  readonly dropout: number;
  readonly useRslora: boolean;
  readonly scaling: number;
  /** True while scaling·B·A is folded into the base weight: `apply` must then add nothing. */
  merged = false;
  private readonly dropoutRng: Rng;
  private readonly isTraining: () => boolean;

  constructor(opts: LoraLinearOptions) {
    if (!(opts.rank >= 1) || !Number.isInteger(opts.rank)) throw new Error(`LoraLinear: rank must be a positive integer, got ${opts.rank}`);
    const dropout = opts.dropout ?? 0;
    if (!(dropout >= 0 && dropout < 1)) throw new Error(`LoraLinear: dropout must be in [0, 1), got ${dropout}`);
    this.inDim = opts.inDim;
    this.outDim = opts.outDim;
    this.rank = opts.rank;
    this.alpha = opts.alpha;
    this.dropout = dropout;
    this.useRslora = opts.useRslora ?? false;
    this.scaling = loraScaling(opts.alpha, opts.rank, this.useRslora);
    this.dropoutRng = opts.dropoutRng ?? opts.rng;
    this.isTraining = opts.isTraining ?? (() => false);
    const bound = kaimingUniformBound(opts.inDim);
    const a = opts.rng.fillUniform(new Float32Array(opts.rank * opts.inDim), -bound, bound);
    // tidy frees the initial values; the variables keep their own reference to the data.
    this.A = tf.tidy(() => tf.variable(tf.tensor2d(a, [opts.rank, opts.inDim]), true));
    this.B = tf.tidy(() => tf.variable(tf.zeros([opts.outDim, opts.rank]), true));
  }

  /** baseOut [..., out] + scaling · dropout(x) [..., in] · Aᵀ · Bᵀ. */
  apply(x: tf.Tensor, baseOut: tf.Tensor): tf.Tensor {
    if (this.merged) return baseOut;
    return tf.tidy(() => {
      const flat = tf.reshape(this.maybeDropout(x), [-1, this.inDim]); // [N, in]
      // Scale the rank-r side ([N, r]), not the output ([N, out]): the backward pass then saves
      // and differentiates a tensor out/r times smaller.
      const down = tf.mul(tf.matMul(flat, this.A, false, true), this.scaling); // [N, r]
      const up = tf.matMul(down, this.B, false, true); // [N, out]
      return tf.add(baseOut, tf.reshape(up, baseOut.shape));
    });
  }

  /** Outside training (no dropout) `apply` adds x · deltaWeightᵀ; nothing while merged. */
  inferenceDelta(): tf.Tensor2D | null {
    return this.merged ? null : this.deltaWeight();
  }

  /** scaling · B · A [out, in]: what merging adds to the base weight. */
  deltaWeight(): tf.Tensor2D {
    return tf.tidy(() => tf.mul(tf.matMul(this.B, this.A), this.scaling) as tf.Tensor2D);
  }

  variables(): tf.Variable[] {
    return [this.A, this.B];
  }

  dispose(): void {
    this.A.dispose();
    this.B.dispose();
  }

  private maybeDropout(x: tf.Tensor): tf.Tensor {
    if (this.dropout === 0 || !this.isTraining()) return x;
    // Inverted dropout like torch.nn.Dropout: keep with probability 1−p, scale kept values by 1/(1−p).
    const keep = 1 - this.dropout;
    if (!canWriteInPlace()) return tf.mul(x, tf.tensor(this.dropoutRng.fillDropoutMask(new Float32Array(x.size), keep, 1 / keep), x.shape));
    // Drawn straight into a fresh tensor's storage (the wasm heap): no JS copy to move in.
    const mask = tf.zeros(x.shape, 'float32');
    const { array, base } = float32Storage(mask, true);
    this.dropoutRng.fillDropoutMask(array.subarray(base, base + x.size), keep, 1 / keep);
    return tf.mul(x, mask);
  }
}
