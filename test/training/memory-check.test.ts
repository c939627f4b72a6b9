/**
 * checkTrainingMemory (the check sft, dpo, rs and pretrain share) against the calls each recipe made
 * before it: estimatePeakMemory + checkMemoryFits + trainingKnobs written out by hand. Same estimate
 * line, same refusal.
 */
import { isUserError } from '../../src/errors.js';
import { llamaConfig } from '../../src/model/config.js';
import { estimatePeakMemory, float32WeightBytes, loraShortModules } from '../../src/training/memory.js';
import { checkMemoryFits, checkTrainingMemory, memoryLimits, trainingKnobs, type MemoryKnob } from '../../src/training/memory-check.js';

// TinyLlama-1.1B's shape: its float32 weights alone exceed the wasm heap cap, so wasm refuses.
const tinyllama = llamaConfig({
  vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32,
  num_key_value_heads: 4, tie_word_embeddings: false, rms_norm_eps: 1e-5,
});
const lora = { r: 8, target_modules: ['q_proj', 'v_proj'], dropout: 0.05 };

/** The machine's free RAM is read anew by each check: its figure is masked. */
const maskRam = (s: string) => s.replace(/RAM available [\d.]+ \w+/g, 'RAM available N').replace(/and [\d.]+ \w+ of RAM is available/g, 'and N of RAM is available');

/** The log lines and the error message (or null) of a check. */
function outcome(check: (log: (m: string) => void) => void): { logs: string[]; error: string | null } {
  const logs: string[] = [];
  try {
    check((m) => void logs.push(maskRam(m)));
    return { logs, error: null };
  } catch (e) {
    expect(isUserError(e)).toBe(true);
    return { logs, error: maskRam((e as Error).message) };
  }
}

describe('checkTrainingMemory', () => {
  const saved = process.env['RLHF_MEMORY_CHECK'];
  beforeAll(() => void delete process.env['RLHF_MEMORY_CHECK']);
  afterAll(() => {
    if (saved !== undefined) process.env['RLHF_MEMORY_CHECK'] = saved;
  });

  test("DPO's form: pairs side by side, a frozen reference copy on the heap, its own key to suggest", () => {
    const extra: MemoryKnob[] = [{ key: 'dpo.precompute_ref_log_probs', value: false, suggest: true }];
    const before = outcome((log) => checkMemoryFits('dpo', estimatePeakMemory({
      config: tinyllama, batchSize: 2 * 4, seqLen: 256, trained: { kind: 'full' }, gradientCheckpointing: false, lossChunkRows: null,
      extraHeapBytes: estimatePeakMemory({ config: tinyllama, batchSize: 1, seqLen: 1, trained: { kind: 'none' }, lossChunkRows: 'none' }).items.find((i) => i.what.startsWith('weights'))!.bytes,
      extraLabel: 'the frozen reference copy',
    }), memoryLimits('wasm'), [...trainingKnobs({ batchSize: 4, maxLengthKey: 'data.max_length', maxLength: 256, gradientCheckpointing: false }), ...extra], log));
    const after = outcome((log) => checkTrainingMemory('dpo', 'wasm', {
      config: tinyllama, batchSize: 4, sequencesPerRow: 2, maxLengthKey: 'data.max_length', maxLength: 256, lora: null,
      gradientCheckpointing: false, lossChunkRows: null, extraHeap: { bytes: float32WeightBytes(tinyllama), label: 'the frozen reference copy' }, extraKnobs: extra,
    }, log));
    expect(before.error).toContain('dpo.precompute_ref_log_probs: true (now false)');
    expect(before.error).toContain('the frozen reference copy');
    expect(after).toEqual(before);
  });

  test("SFT's form under LoRA: model.frozen_dtype estimated and suggested", () => {
    const before = outcome((log) => checkMemoryFits('sft', estimatePeakMemory({
      config: tinyllama, batchSize: 4, seqLen: 512,
      trained: { kind: 'lora', rank: lora.r, modules: loraShortModules(tinyllama, lora.target_modules), dropout: lora.dropout },
      gradientCheckpointing: false, frozenDtype: 'float32', lossChunkRows: 1024,
    }), memoryLimits('wasm'), trainingKnobs({ batchSize: 4, maxLengthKey: 'data.max_length', maxLength: 512, gradientCheckpointing: false, frozenDtype: 'float32' }), log));
    const after = outcome((log) => checkTrainingMemory('sft', 'wasm', {
      config: tinyllama, batchSize: 4, maxLengthKey: 'data.max_length', maxLength: 512, lora, gradientCheckpointing: false, frozenDtype: 'float32', lossChunkRows: 1024,
    }, log));
    expect(before.error).toContain('model.frozen_dtype: bfloat16 (now float32)');
    expect(after).toEqual(before);
  });

  test("pretrain's form: every weight trains, data.seq_len is the length key, nothing frozen to suggest", () => {
    const before = outcome((log) => checkMemoryFits('pretrain', estimatePeakMemory({
      config: tinyllama, batchSize: 2, seqLen: 128, trained: { kind: 'full' }, gradientCheckpointing: true, lossChunkRows: null,
    }), memoryLimits('wasm'), trainingKnobs({ batchSize: 2, maxLengthKey: 'data.seq_len', maxLength: 128, gradientCheckpointing: true }), log));
    const after = outcome((log) => checkTrainingMemory('pretrain', 'wasm', {
      config: tinyllama, batchSize: 2, maxLengthKey: 'data.seq_len', maxLength: 128, lora: null, gradientCheckpointing: true, lossChunkRows: null,
    }, log));
    expect(before.error).toContain('a lower data.seq_len (now 128)');
    expect(before.error).not.toContain('model.frozen_dtype');
    expect(after).toEqual(before);
  });
});
