/**
 * Frozen bfloat16 weights (src/model/frozen.ts, `model.frozen_dtype: bfloat16`): float32 → bf16
 * rounding against hand-computed bits (round to nearest, ties to even, as torch), a model loaded with
 * bf16 frozen weights computing exactly what float32 with those rounded weights computes (logits and
 * LoRA gradients), close to the float32 model, with its projection weights off the tensor heap.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { injectLora, trainableVariables } from '../../src/lora/inject.js';
import { llamaConfig } from '../../src/model/config.js';
import { bf16BitsToFloat32, toBf16Bits, type FrozenWeight } from '../../src/model/frozen.js';
import { isFreezable, loadHfModel, saveHfModel } from '../../src/model/io/hf.js';
import { initLlama, type LlamaModel } from '../../src/model/llama.js';
import { maskedCrossEntropySum, shiftLabels } from '../../src/training/loss.js';
import { chunkedCrossEntropySum } from '../../src/training/chunked-loss.js';

function bitsOf(u32: number): Float32Array {
  return new Float32Array(new Uint32Array([u32]).buffer);
}

describe('toBf16Bits: round to nearest, ties to even', () => {
  test.each([
    [0x3f800000, 0x3f80, '1.0 exactly'],
    [0x3f807fff, 0x3f80, 'just below half an ulp: down'],
    [0x3f808000, 0x3f80, 'a tie, lower neighbour even: down'],
    [0x3f808001, 0x3f81, 'just above half: up'],
    [0x3f818000, 0x3f82, 'a tie, lower neighbour odd: up to even'],
    [0xc0200000, 0xc020, '-2.5 exactly'],
    [0xbf80c000, 0xbf81, '-1.00585938: above half, away from zero'],
    [0x7f7fffff, 0x7f80, 'largest float32 rounds to +inf (as torch)'],
    [0x7f800000, 0x7f80, '+inf'],
    [0x80000000, 0x8000, '-0'],
    [0x00000001, 0x0000, 'smallest subnormal: to 0'],
  ])('float32 bits %i → bfloat16 bits %i (%s)', (f32, bf16) => {
    expect(toBf16Bits(bitsOf(f32))[0]).toBe(bf16);
  });

  test('NaN stays NaN (quiet)', () => {
    const b = toBf16Bits(bitsOf(0x7f800001))[0]!;
    expect(Number.isNaN(bf16BitsToFloat32(new Uint16Array([b]))[0])).toBe(true);
  });

  test('upcast is exact: bf16 → float32 → bf16 is the identity on finite values', () => {
    const all = new Uint16Array(0x7f80).map((_, i) => i); // every non-negative finite bf16
    expect(toBf16Bits(bf16BitsToFloat32(all))).toEqual(all);
  });
});

const cfg = llamaConfig({ vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: false });
const IDS = [[3, 9, 27, 1, 44, 5, 60, 2], [7, 7, 12, 30, 0, 19, 8, 50]];

describe.each(['cpu', 'wasm'] as const)('model.frozen_dtype: bfloat16 (%s)', (backend) => {
  let dir: string;
  beforeAll(async () => {
    await initEngine({ backend });
    dir = mkdtempSync(join(tmpdir(), 'frozen-'));
    const m = initLlama(cfg, new Rng(5));
    saveHfModel(m, dir);
    m.dispose();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The float32 model with every freezable weight rounded to bfloat16 by hand. */
  function roundedReference(): LlamaModel {
    const m = loadHfModel(dir);
    for (const [name, v] of m.params) {
      if (!isFreezable(name)) continue;
      v.assign(tf.tensor(bf16BitsToFloat32(toBf16Bits(v.dataSync() as Float32Array)), v.shape));
    }
    return m;
  }

  function logitsOf(m: LlamaModel): Float32Array {
    return tf.tidy(() => m.forward({ inputIds: tf.tensor2d(IDS, undefined, 'int32') }).logits.dataSync() as Float32Array);
  }

  test('logits equal float32 on bf16-rounded weights, and are close to float32; projections are off the heap', () => {
    const before = tf.memory().numBytes;
    const frozen = loadHfModel(dir, { frozenDtype: 'bfloat16' });
    const heapBytes = tf.memory().numBytes - before;
    // Only the norms stay tensors: 2 per layer + the final one, hidden floats each.
    expect(heapBytes).toBe(4 * cfg.hidden_size * (2 * cfg.num_hidden_layers + 1));
    expect(frozen.numParameters()).toBe(loadHfModelParams());
    const ref = roundedReference();
    const full = loadHfModel(dir);
    const a = logitsOf(frozen);
    const b = logitsOf(ref);
    const c = logitsOf(full);
    let same = 0;
    let close = 0;
    let scale = 0;
    for (let i = 0; i < a.length; i++) {
      same = Math.max(same, Math.abs(a[i]! - b[i]!));
      close = Math.max(close, Math.abs(a[i]! - c[i]!));
      scale = Math.max(scale, Math.abs(c[i]!));
    }
    expect(same).toBeLessThan(1e-5);
    expect(close / scale).toBeLessThan(2e-2); // bf16 keeps 8 significant bits
    expect(close).toBeGreaterThan(0); // the rounding is real
    [frozen, ref, full].forEach((m) => m.dispose());
  });

  test('a bfloat16 file is frozen from its bits: the same weights as freezing its float32 source', () => {
    const bf16Dir = mkdtempSync(join(tmpdir(), 'frozen-bf16-'));
    try {
      const src = loadHfModel(dir);
      saveHfModel(src, bf16Dir, { dtype: 'BF16' });
      src.dispose();
      const fromF32 = loadHfModel(dir, { frozenDtype: 'bfloat16' });
      const fromBf16 = loadHfModel(bf16Dir, { frozenDtype: 'bfloat16' });
      expect([...fromBf16.frozen.keys()]).toEqual([...fromF32.frozen.keys()]);
      for (const [name, w] of fromF32.frozen) expect((fromBf16.frozen.get(name) as FrozenWeight).bits).toEqual((w as FrozenWeight).bits);
      [fromF32, fromBf16].forEach((m) => m.dispose());
    } finally {
      rmSync(bf16Dir, { recursive: true, force: true });
    }
  });

  function loadHfModelParams(): number {
    const m = loadHfModel(dir);
    const n = m.numParameters();
    m.dispose();
    return n;
  }

  test('LoRA gradients (with checkpointing and the chunked loss) equal those on bf16-rounded float32 weights', () => {
    const grads = (m: LlamaModel, checkpoint: boolean): Float32Array[] => {
      const rng = new Rng(1);
      tf.tidy(() => void injectLora(m, { targetModules: 'all-linear', r: 4, alpha: 8, dropout: 0, rng }));
      const init = new Rng(2);
      for (const [name, v] of trainableVariables(m)) if (name.includes('lora_B')) v.assign(tf.tensor(init.fillNormal(new Float32Array(v.size), 0.1), v.shape));
      m.gradientCheckpointing = checkpoint;
      const vars = [...trainableVariables(m).values()];
      const labels = tf.tensor2d(shiftLabels(IDS), undefined, 'int32');
      const before = tf.memory().numTensors;
      const { value, grads: g } = tf.variableGrads(() => {
        const { hidden } = m.hiddenStates({ inputIds: tf.tensor2d(IDS, undefined, 'int32'), training: true });
        return chunkedCrossEntropySum(hidden, m.lmHeadWeight()!, labels, 5).sum;
      }, vars);
      const out = vars.map((v) => g[v.name]!.dataSync() as Float32Array);
      tf.dispose([value, ...Object.values(g)]);
      expect(tf.memory().numTensors).toBe(before);
      labels.dispose();
      return out;
    };
    const frozen = loadHfModel(dir, { frozenDtype: 'bfloat16' });
    const ref = roundedReference();
    const a = grads(frozen, true);
    const b = grads(ref, false);
    a.forEach((g, i) => {
      let d = 0;
      for (let j = 0; j < g.length; j++) d = Math.max(d, Math.abs(g[j]! - b[i]![j]!));
      expect(d).toBeLessThan(1e-5);
    });
    expect(a.every((g) => g.some((x) => x !== 0))).toBe(true);
    // The unchunked loss through forward() gives the same value on the frozen model.
    const lossOf = (m: LlamaModel) => tf.tidy(() => maskedCrossEntropySum(m.forward({ inputIds: tf.tensor2d(IDS, undefined, 'int32') }).logits, tf.tensor2d(shiftLabels(IDS), undefined, 'int32')).sum.dataSync()[0]!);
    expect(Math.abs(lossOf(frozen) - lossOf(ref))).toBeLessThan(1e-4);
    frozen.dispose();
    ref.dispose();
  });
});
