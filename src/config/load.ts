/**
 * Load a config: YAML (with positions) → `key=value` overrides → schema defaults → `${...}`
 * interpolation → zod validation. Every problem found on the way is collected and thrown at
 * once as a `ConfigError`, each located at its file:line:col or at the override that caused it.
 */
import type { z } from 'zod';
import { ConfigError, dottedKey, type ConfigProblem } from './problems.js';
import { readYamlSource, type YamlSource } from './yaml-source.js';
import { renameDeprecatedKeys } from './deprecated.js';
import { applyOverrides, overrideOrigin } from './overrides.js';
import { fillDefaults } from './defaults.js';
import { interpolate, type KeyProblem } from './interpolate.js';
import { issueToProblems } from './zod-issues.js';
import { registeredStages, stageSchema } from './registry.js';
import { closestMatch } from './suggest.js';

export interface ResolvedConfig<T = unknown> {
  stage: string;
  /** Validated config: defaults filled, overrides applied, references resolved. */
  config: T;
  /** The file it came from, as given. */
  file: string;
  overrides: string[];
}

/** What a stage command expects: its stage name and schema (omit to pick the schema from `stage:`). */
export interface ExpectedStage<S extends z.ZodType> {
  stage: string;
  schema: S;
}

export function loadConfig<S extends z.ZodType>(
  file: string,
  overrides: readonly string[],
  expect: ExpectedStage<S>,
): ResolvedConfig<z.output<S>>;
export function loadConfig(file: string, overrides?: readonly string[]): ResolvedConfig;
export function loadConfig(
  file: string,
  overrides: readonly string[] = [],
  expect?: ExpectedStage<z.ZodType>,
): ResolvedConfig {
  return resolve(readYamlSource(file), overrides, expect);
}

export function resolveConfig<S extends z.ZodType>(
  source: YamlSource,
  overrides: readonly string[],
  expect: ExpectedStage<S>,
): ResolvedConfig<z.output<S>>;
export function resolveConfig(source: YamlSource, overrides?: readonly string[]): ResolvedConfig;
export function resolveConfig(
  source: YamlSource,
  overrides: readonly string[] = [],
  expect?: ExpectedStage<z.ZodType>,
): ResolvedConfig {
  return resolve(source, overrides, expect);
}

function resolve(source: YamlSource, overrides: readonly string[], expect: ExpectedStage<z.ZodType> | undefined): ResolvedConfig {
  const { file } = source;
  const isMapping = source.data !== null && typeof source.data === 'object' && !Array.isArray(source.data);
  if (!isMapping && source.data !== null) {
    throw new ConfigError([{ where: source.locate([]), key: '', message: 'a config is a mapping of keys (key: value)' }], file);
  }
  const applied = applyOverrides(source.data, overrides);
  const locate = (p: KeyProblem): ConfigProblem => ({
    where: overrideOrigin(applied.origins, p.path) ?? source.locate(p.path, { key: p.atKey === true }),
    key: dottedKey(p.path),
    message: p.message,
  });

  // Renamed keys: the old spelling still works, with a warning.
  for (const w of renameDeprecatedKeys(applied.data, file ?? 'config')) process.stderr.write(`warning: ${w}\n`);

  // 1. Which stage, hence which schema.
  const { stage, ...body } = applied.data;
  const picked = pickSchema(stage, expect);
  if ('problem' in picked) {
    throw new ConfigError([...applied.problems, locate({ path: ['stage'], message: picked.problem })], file);
  }
  const stageName = stage as string;

  // 2. Defaults first, so references can reach keys the file leaves out; then references.
  const filled = fillDefaults(picked.schema, body) as Record<string, unknown>;
  const interpolated = interpolate({ stage: stageName, ...filled });
  const { stage: _stage, ...resolved } = interpolated.value;

  // 3. Validate; a key whose reference failed is already reported, so its type error is noise.
  const parsed = picked.schema.safeParse(resolved);
  const zodProblems = parsed.success
    ? []
    : parsed.error.issues
        .flatMap((issue) => issueToProblems(issue, picked.schema, resolved))
        .filter((p) => !interpolated.failed.has(dottedKey(p.path)));
  const problems = [...applied.problems, ...[...interpolated.problems, ...zodProblems].map(locate)];
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems, file);
  return { stage: stageName, config: parsed.data, file, overrides: [...overrides] };
}

function pickSchema(
  stage: unknown,
  expect: ExpectedStage<z.ZodType> | undefined,
): { schema: z.ZodType } | { problem: string } {
  const known = expect === undefined ? registeredStages() : [expect.stage];
  const example = `stage: ${known[0] ?? 'sft'}`;
  if (stage === undefined) return { problem: `missing: every config names its stage at the top (${example})` };
  if (typeof stage !== 'string') return { problem: `expected a stage name, received ${JSON.stringify(stage)}` };
  if (expect !== undefined) {
    if (stage !== expect.stage) {
      return { problem: `this is a '${stage}' config; this command needs 'stage: ${expect.stage}'` };
    }
    return { schema: expect.schema };
  }
  const schema = stageSchema(stage);
  if (schema !== undefined) return { schema };
  const guess = closestMatch(stage, known);
  const hint = guess === undefined ? '' : ` (did you mean ${guess}?)`;
  const list = known.length === 0 ? 'no stage schemas are registered' : `known stages: ${known.join(', ')}`;
  return { problem: `unknown stage '${stage}'${hint}; ${list}` };
}
