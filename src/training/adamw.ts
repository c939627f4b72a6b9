import * as tf from '@tensorflow/tfjs-core';

/**
 * AdamW exactly as `torch.optim.AdamW` (single-tensor path) computes it:
 *
 *   p ← p · (1 − lr·wd)                       decoupled weight decay, before the Adam step
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)     ε outside the square root
 *
 * The optimizer owns its moments (one pair of non-trainable variables per parameter, allocated up
 * front so a training step allocates nothing that outlives it).
 */
export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Which parameters get weight decay; default {@link decaysByDefault}. */
  decay?: (name: string) => boolean;
}

/**
 * The Hugging Face Trainer rule: no weight decay on biases and normalisation weights
 * (`*.bias`, `*norm*.weight` — Llama's `input_layernorm`, `post_attention_layernorm`, `model.norm`).
 */
export function decaysByDefault(name: string): boolean {
  const parts = name.toLowerCase().split('.');
  if (parts[parts.length - 1] === 'bias') return false;
  const module = parts[parts.length - 2] ?? '';
  return !module.includes('norm');
}

interface Slot {
  param: tf.Variable;
  m: tf.Variable;
  v: tf.Variable;
  decay: boolean;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Completed updates (torch keeps one per parameter; ours move together). */
  stepCount = 0;
  private readonly slots = new Map<string, Slot>();

  constructor(params: Map<string, tf.Variable>, opts: AdamWOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    const decay = opts.decay ?? decaysByDefault;
    for (const [name, param] of params) {
      this.slots.set(name, {
        param,
        m: tf.tidy(() => tf.variable(tf.zerosLike(param), false)),
        v: tf.tidy(() => tf.variable(tf.zerosLike(param), false)),
        decay: decay(name),
      });
    }
  }

  /** Names of the parameters that receive weight decay (for logging / tests). */
  decayedNames(): string[] {
    return [...this.slots].filter(([, s]) => s.decay).map(([n]) => n);
  }

  /**
   * One update with learning rate `lr`. `grads` is keyed like the params map; a parameter without
   * a gradient is left untouched (as torch skips `grad is None`). Does not dispose `grads`.
   */
  step(grads: Map<string, tf.Tensor>, lr: number): void {
    for (const name of grads.keys()) {
      if (!this.slots.has(name)) throw new Error(`AdamW.step: gradient for unknown parameter "${name}"`);
    }
    const t = this.stepCount + 1;
    const stepSize = lr / (1 - this.beta1 ** t);
    const bc2Sqrt = Math.sqrt(1 - this.beta2 ** t);
    for (const [name, slot] of this.slots) {
      const g = grads.get(name);
      if (g === undefined) continue;
      tf.tidy(() => {
        const m = tf.add(tf.mul(slot.m, this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(slot.v, this.beta2), tf.mul(tf.mul(g, g), 1 - this.beta2));
        const denom = tf.add(tf.div(tf.sqrt(v), bc2Sqrt), this.eps);
        const wd = slot.decay ? lr * this.weightDecay : 0;
        const decayed = wd !== 0 ? tf.mul(slot.param, 1 - wd) : slot.param;
        slot.param.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), stepSize)));
        slot.m.assign(m);
        slot.v.assign(v);
      });
    }
    this.stepCount = t;
  }

  /**
   * Optimizer state as flat tensors for `optimizer.safetensors`: `exp_avg.<name>`,
   * `exp_avg_sq.<name>` (torch's state names) and `step` ([1]).
   */
  exportState(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, slot] of this.slots) {
      out.set(`exp_avg.${name}`, { shape: slot.m.shape.slice(), data: (slot.m.dataSync() as Float32Array).slice() });
      out.set(`exp_avg_sq.${name}`, { shape: slot.v.shape.slice(), data: (slot.v.dataSync() as Float32Array).slice() });
    }
    out.set('step', { shape: [1], data: new Float32Array([this.stepCount]) });
    return out;
  }

  /** Restore what {@link exportState} wrote; every parameter's moments must be present with its shape. */
  importState(state: Map<string, { shape: number[]; data: Float32Array }>): void {
    const problems: string[] = [];
    for (const [name, slot] of this.slots) {
      for (const [key, target] of [[`exp_avg.${name}`, slot.m], [`exp_avg_sq.${name}`, slot.v]] as const) {
        const entry = state.get(key);
        if (!entry) problems.push(`missing ${key}`);
        else if (entry.data.length !== target.size) {
          problems.push(`${key} has shape [${entry.shape}], expected [${target.shape}]`);
        }
      }
    }
    const step = state.get('step');
    if (!step || step.data.length !== 1) problems.push('missing step');
    if (problems.length > 0) throw new Error(`AdamW.importState: ${problems.join('; ')}`);
    tf.tidy(() => {
      for (const [name, slot] of this.slots) {
        slot.m.assign(tf.tensor(state.get(`exp_avg.${name}`)!.data, slot.m.shape));
        slot.v.assign(tf.tensor(state.get(`exp_avg_sq.${name}`)!.data, slot.v.shape));
      }
    });
    this.stepCount = step!.data[0]!;
  }

  dispose(): void {
    for (const slot of this.slots.values()) {
      slot.m.dispose();
      slot.v.dispose();
    }
    this.slots.clear();
  }
}
