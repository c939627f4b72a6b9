import { join } from 'node:path';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { initEngine } from '../../src/engine/index.js';
import { loadHfModel, parseLlamaConfig, saveHfModel } from '../../src/model/index.js';
import { readRopeSettings, ropeInvFreqFor } from '../../src/model/rope.js';
import { ropeInvFreq } from '../../src/model/layers.js';
import { maxLogitDiff, transformers5Logits, TRANSFORMERS5_DIR } from '../helpers/transformers5.js';

const FIX = TRANSFORMERS5_DIR;
const sizes = { vocab_size: 8, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2 };
const llama3 = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 };

describe('RoPE settings from both config spellings', () => {
  it('transformers 4.x (rope_theta + rope_scaling) and 5.x (rope_parameters) read the same', () => {
    const v4 = readRopeSettings({ rope_theta: 500000, rope_scaling: llama3 }, []);
    const v5 = readRopeSettings({ rope_parameters: { ...llama3, rope_theta: 500000 } }, []);
    expect(v4).toEqual(v5);
    expect(v5).toEqual({ type: 'llama3', theta: 500000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 });
    // The old `type` key spelling.
    expect(readRopeSettings({ rope_scaling: { type: 'linear', factor: 2 } }, [])).toEqual({ type: 'linear', theta: 10000, factor: 2 });
  });

  it('a transformers 5 rope_theta is honoured (it used to be ignored, leaving θ = 10000)', () => {
    const cfg = parseLlamaConfig({ ...sizes, rope_parameters: { rope_type: 'default', rope_theta: 500000 } }, 'config.json');
    expect(cfg.rope_theta).toBe(500000);
  });

  it('other RoPE types and contradictions are refused by name', () => {
    expect(() => parseLlamaConfig({ ...sizes, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'c.json')).toThrow(
      'c.json: rope_scaling: RoPE type "yarn" is not supported (supported: default, linear, llama3)',
    );
    expect(() => parseLlamaConfig({ ...sizes, rope_theta: 10000, rope_parameters: { rope_type: 'default', rope_theta: 500000 } }, 'c.json')).toThrow(
      'rope_theta (10000) contradicts rope_parameters.rope_theta (500000)',
    );
    expect(() => parseLlamaConfig({ ...sizes, rope_scaling: { rope_type: 'llama3', factor: 8 } }, 'c.json')).toThrow(
      'rope_scaling.low_freq_factor must be a positive number for RoPE type "llama3"',
    );
  });

  it('llama3 inverse frequencies by hand: high ones kept, low ones divided by factor, the middle blended', () => {
    const base = ropeInvFreq(8, 500000); // wavelengths 6.3, 167, 4439, 118k
    const scaled = ropeInvFreqFor(8, { type: 'llama3', theta: 500000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 1024 });
    // low_freq_wavelen = 1024, high_freq_wavelen = 256
    expect(scaled[0]).toBeCloseTo(base[0]!, 12); // 6.3 < 256: kept
    expect(scaled[1]).toBeCloseTo(base[1]!, 12); // 167 < 256: kept
    expect(scaled[2]).toBeCloseTo(base[2]! / 8, 9); // 4439 > 1024: divided
    expect(scaled[3]).toBeCloseTo(base[3]! / 8, 9);
    const mid = ropeInvFreqFor(2, { type: 'llama3', theta: 1, factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 });
    // f = 1, wavelen 2π ∈ [4, 16]: smooth = (16/2π − 1)/3; f' = (1 − smooth)/4 + smooth
    const smooth = (16 / (2 * Math.PI) - 1) / 3;
    expect(mid[0]).toBeCloseTo((1 - smooth) / 4 + smooth, 6);
  });
});

describe('RoPE against transformers 5 checkpoints', () => {
  let dir: string;
  beforeAll(async () => {
    await initEngine({ backend: 'wasm' });
    dir = mkdtempSync(join(tmpdir(), 'rope-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const ref = transformers5Logits('llama_llama3');
  const maxDiff = (folder: string): number => maxLogitDiff(folder, ref);

  it('the llama3 checkpoint rewritten in the 4.x spelling gives the same logits', () => {
    const v4 = join(dir, 'v4');
    cpSync(join(FIX, 'llama_llama3'), v4, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(v4, 'config.json'), 'utf8'));
    const { rope_theta, ...scaling } = cfg.rope_parameters;
    delete cfg.rope_parameters;
    writeFileSync(join(v4, 'config.json'), JSON.stringify({ ...cfg, rope_theta, rope_scaling: scaling }));
    expect(maxDiff(v4)).toBeLessThan(1e-4);
  });

  it('a deliberately wrong variant (llama3 scaling ignored) fails the reference', () => {
    const wrong = join(dir, 'wrong');
    cpSync(join(FIX, 'llama_llama3'), wrong, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(wrong, 'config.json'), 'utf8'));
    cfg.rope_parameters = { rope_type: 'default', rope_theta: cfg.rope_parameters.rope_theta };
    writeFileSync(join(wrong, 'config.json'), JSON.stringify(cfg));
    expect(maxDiff(wrong)).toBeGreaterThan(1e-2);
  });

  it('what we save keeps both spellings consistent and loads back to the same logits', () => {
    const model = loadHfModel(join(FIX, 'llama_llama3'));
    const out = join(dir, 'saved');
    saveHfModel(model, out);
    model.dispose();
    const saved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(saved.rope_theta).toBe(500000);
    expect(saved.rope_scaling.rope_type).toBe('llama3');
    expect(saved.rope_parameters.rope_theta).toBe(500000);
    expect(maxDiff(out)).toBeLessThan(1e-4);
  });
});
