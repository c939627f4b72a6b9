import { ConfigError, formatProblem, parseYamlSource, resolveConfig } from '../../src/config/index.js';
import { sftConfigSchema } from '../../src/sft/config.js';

function problemsOf(text: string): string[] {
  try {
    resolveConfig(parseYamlSource(text, 'configs/sft/x.yaml'), [], { stage: 'sft', schema: sftConfigSchema });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map(formatProblem);
    throw e;
  }
  return [];
}

describe('sft config: contradictory options', () => {
  it('save_merged with full fine-tuning and early stopping without eval data are both reported, located', () => {
    const text = [
      'stage: sft', //                 1
      'lora:', //                      2
      '  enabled: false', //           3
      'data:', //                      4
      '  eval: null', //               5
      'sft:', //                       6
      '  save_merged: true', //        7
      '  early_stopping_patience: 2', // 8
      '',
    ].join('\n');
    expect(problemsOf(text)).toEqual([
      'configs/sft/x.yaml:7:16 sft.save_merged: needs lora.enabled: true (full fine-tuning already writes the whole model to final/)',
      'configs/sft/x.yaml:8:28 sft.early_stopping_patience: needs evaluation data: set data.eval to a file or data.eval_split > 0',
    ]);
  });

  it('the same options are fine when they agree', () => {
    expect(problemsOf(['stage: sft', 'sft:', '  save_merged: true', '  early_stopping_patience: 2', ''].join('\n'))).toEqual([]);
  });
});
