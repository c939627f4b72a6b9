import { renameDeprecatedKeys } from '../../src/config/deprecated.js';

test('an old key moves to its new place with a warning naming both and the file', () => {
  const cfg: Record<string, unknown> = { sft: { max_nonfinite_steps: 2, save_merged: true } };
  const warnings = renameDeprecatedKeys(cfg, 'my.yaml');
  expect(cfg).toEqual({ sft: { save_merged: true }, train: { max_nonfinite: 2 } });
  expect(warnings).toEqual(['my.yaml: sft.max_nonfinite_steps is deprecated, use train.max_nonfinite (read as train.max_nonfinite=2)']);
});

test('when both spellings are set the new key wins and the old one is dropped', () => {
  const cfg: Record<string, unknown> = { dpo: { max_nonfinite_steps: 9 }, train: { max_nonfinite: 3 } };
  const warnings = renameDeprecatedKeys(cfg, 'c.yaml');
  expect(cfg).toEqual({ dpo: {}, train: { max_nonfinite: 3 } });
  expect(warnings[0]).toContain('both are set; train.max_nonfinite is used');
});

test('a config without old keys is left alone and warns nothing', () => {
  const cfg: Record<string, unknown> = { train: { steps: 4 }, sft: 'not a section' };
  expect(renameDeprecatedKeys(cfg, 'c.yaml')).toEqual([]);
  expect(cfg).toEqual({ train: { steps: 4 }, sft: 'not a section' });
});
