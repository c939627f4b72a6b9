import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findConfig, headerSummary, listShippedConfigs } from '../../src/config/index.js';

function shippedTree(): string {
  const root = mkdtempSync(join(tmpdir(), 'rlhf-configs-'));
  mkdirSync(join(root, 'sft'));
  mkdirSync(join(root, 'reward'));
  writeFileSync(join(root, 'sft', 'tiny_lora.yaml'), '# LoRA SFT of the tiny model.\n# Needs: pretrain.\nstage: sft\n');
  writeFileSync(join(root, 'reward', 'tiny.yaml'), '\n#\n#   Reward model on pairs\nstage: reward\n');
  writeFileSync(join(root, 'sft', 'tiny.yaml'), 'stage: sft # no header\n');
  writeFileSync(join(root, 'sft', 'notes.txt'), 'not a config');
  return root;
}

describe('shipped configs', () => {
  it('reads the first header line', () => {
    expect(headerSummary('# One.\n# Two.\nstage: sft\n')).toBe('One.');
    expect(headerSummary('stage: sft\n# later\n')).toBe('');
  });

  it('lists YAML files by name with their header summary, sorted', () => {
    const root = shippedTree();
    expect(listShippedConfigs(root).map(({ name, summary }) => [name, summary])).toEqual([
      ['reward/tiny', 'Reward model on pairs'],
      ['sft/tiny', ''],
      ['sft/tiny_lora', 'LoRA SFT of the tiny model.'],
    ]);
    expect(listShippedConfigs(join(root, 'absent'))).toEqual([]);
  });

  it('finds a config by path, name, name.yaml or unique file name', () => {
    const root = shippedTree();
    const lora = join(root, 'sft', 'tiny_lora.yaml');
    expect(findConfig(lora, root)).toBe(lora);
    expect(findConfig('sft/tiny_lora', root)).toBe(lora);
    expect(findConfig('sft/tiny_lora.yaml', root)).toBe(lora);
    expect(findConfig('tiny_lora', root)).toBe(lora);
    expect(() => findConfig('tiny', root)).toThrow('tiny: several shipped configs have this name: reward/tiny, sft/tiny');
    expect(() => findConfig('sft/tiny_lor', root)).toThrow(
      "sft/tiny_lor: no such file, nor a shipped config of that name (did you mean sft/tiny_lora?); 'rlhf ls' lists them",
    );
  });
});
