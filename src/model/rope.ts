/**
 * RoPE settings as Hugging Face reads them, from either spelling of config.json:
 * - transformers 4.x: top-level `rope_theta` and `rope_scaling` ({rope_type | type, factor, ...});
 * - transformers 5.x: `rope_parameters` ({rope_type, rope_theta, factor, ...}), no top-level keys.
 * Both read to the same settings. Scaling types other than `default`, `linear` and `llama3` change
 * the maths in ways not implemented here and are refused by name, never ignored.
 * Inverse frequencies follow transformers' modeling_rope_utils (`_compute_default_rope_parameters`,
 * `_compute_linear_scaling_rope_parameters`, `_compute_llama3_parameters`); attention_factor is 1
 * for all three.
 */
import { ropeInvFreq } from './layers.js';

export type RopeType = 'default' | 'linear' | 'llama3';

export interface RopeSettings {
  type: RopeType;
  theta: number;
  /** linear and llama3. */
  factor?: number;
  /** llama3 only. */
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
}

export const SUPPORTED_ROPE_TYPES: readonly RopeType[] = ['default', 'linear', 'llama3'];

type Raw = Record<string, unknown>;

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Read the RoPE settings of a raw config.json object; problems (unknown type, missing or bad
 * parameters, contradicting spellings) are pushed to `problems` and null is returned.
 */
export function readRopeSettings(raw: Raw, problems: string[]): RopeSettings | null {
  const params = raw.rope_parameters;
  const scaling = raw.rope_scaling;
  if (params !== undefined && params !== null && !isObject(params)) {
    problems.push('rope_parameters must be an object');
    return null;
  }
  if (scaling !== undefined && scaling !== null && !isObject(scaling)) {
    problems.push('rope_scaling must be an object or null');
    return null;
  }
  let source: Raw;
  let where: string;
  let theta: unknown;
  if (isObject(params)) {
    source = params;
    where = 'rope_parameters';
    theta = params.rope_theta ?? raw.rope_theta ?? 10000;
    if (raw.rope_theta !== undefined && params.rope_theta !== undefined && raw.rope_theta !== params.rope_theta) {
      problems.push(`rope_theta (${String(raw.rope_theta)}) contradicts rope_parameters.rope_theta (${String(params.rope_theta)})`);
      return null;
    }
    if (isObject(scaling) && ropeTypeOf(scaling) !== ropeTypeOf(params)) {
      problems.push(`rope_scaling (${ropeTypeOf(scaling)}) contradicts rope_parameters (${ropeTypeOf(params)})`);
      return null;
    }
  } else {
    source = isObject(scaling) ? scaling : {};
    where = 'rope_scaling';
    theta = raw.rope_theta ?? 10000;
  }
  if (typeof theta !== 'number' || !(theta > 0)) {
    problems.push(`rope_theta must be a positive number (got ${JSON.stringify(theta)})`);
    return null;
  }
  const named = ropeTypeOf(source);
  if (!(SUPPORTED_ROPE_TYPES as readonly string[]).includes(named)) {
    problems.push(`${where}: RoPE type "${named}" is not supported (supported: ${SUPPORTED_ROPE_TYPES.join(', ')})`);
    return null;
  }
  const type = named as RopeType;
  const num = (key: string): number | undefined => {
    const v = source[key];
    if (typeof v !== 'number' || !(v > 0)) {
      problems.push(`${where}.${key} must be a positive number for RoPE type "${type}" (got ${JSON.stringify(v)})`);
      return undefined;
    }
    return v;
  };
  if (type === 'default') return { type, theta };
  if (type === 'linear') {
    const factor = num('factor');
    return factor === undefined ? null : { type, theta, factor };
  }
  const factor = num('factor');
  const lowFreqFactor = num('low_freq_factor');
  const highFreqFactor = num('high_freq_factor');
  const originalMaxPositionEmbeddings = num('original_max_position_embeddings');
  if (factor === undefined || lowFreqFactor === undefined || highFreqFactor === undefined || originalMaxPositionEmbeddings === undefined) return null;
  if (highFreqFactor <= lowFreqFactor) {
    problems.push(`${where}: high_freq_factor (${highFreqFactor}) must be greater than low_freq_factor (${lowFreqFactor})`);
    return null;
  }
  return { type, theta, factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings };
}

/** `rope_type`, or the old `type` spelling; absent means default. */
function ropeTypeOf(o: Raw): string {
  const t = o.rope_type ?? o.type ?? 'default';
  return String(t);
}

/** Inverse frequencies [headDim / 2] as transformers computes them for these settings (float32). */
export function ropeInvFreqFor(headDim: number, rope: RopeSettings): Float32Array {
  const base = ropeInvFreq(headDim, rope.theta);
  if (rope.type === 'default') return base;
  if (rope.type === 'linear') return base.map((f) => f / rope.factor!);
  // llama3: long wavelengths divided by `factor`, short ones kept, a smooth blend in between.
  const factor = rope.factor!;
  const low = rope.lowFreqFactor!;
  const high = rope.highFreqFactor!;
  const oldLen = rope.originalMaxPositionEmbeddings!;
  const lowFreqWavelen = oldLen / low;
  const highFreqWavelen = oldLen / high;
  return base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    const scaled = wavelen > lowFreqWavelen ? f / factor : f;
    const isMedium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    if (!isMedium) return scaled;
    const smooth = (oldLen / wavelen - low) / (high - low);
    return (1 - smooth) * (scaled / factor) + smooth * scaled;
  });
}

/** A one-word name for `rlhf env` and errors: "default (θ 10000)", "llama3 (θ 500000, factor 8)". */
export function describeRope(rope: RopeSettings): string {
  return rope.factor === undefined ? `${rope.type} (θ ${rope.theta})` : `${rope.type} (θ ${rope.theta}, factor ${rope.factor})`;
}
