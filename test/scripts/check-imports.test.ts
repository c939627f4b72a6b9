/**
 * The import-boundary lint (scripts/check-imports.mjs), run as CI runs it: on the real tree, on a
 * copy of it with one deliberate stage → stage import added, and on small trees for each rule.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { packagePath } from '../../src/paths.js';

const SCRIPT = packagePath('scripts', 'check-imports.mjs');
let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'check-imports-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function lint(dir?: string): { code: number; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, ...(dir ? [dir] : [])], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout + r.stderr };
}

/** A tree of `src/` files: path → source text. */
function tree(files: Record<string, string>): string {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test('the real tree keeps the rules', () => {
  const r = lint();
  expect(r.out).toContain('import boundaries: ok');
  expect(r.code).toBe(0);
});

test('a deliberate stage → stage import added to the real tree fails the lint, naming the file, line and rule', () => {
  cpSync(packagePath('src'), join(root, 'src'), { recursive: true });
  appendFileSync(join(root, 'src', 'gatt', 'recipe.ts'), "\nimport { runSft } from '../sft/recipe.js';\nvoid runSft;\n");
  const r = lint(root);
  expect(r.code).toBe(1);
  expect(r.out.trim().split('\n')).toEqual([
    expect.stringMatching(/^src\/gatt\/recipe\.ts:\d+ imports src\/sft\/recipe\.js: a stage never imports another stage \(move what gatt\/ and sft\/ share into a shared block\)$/),
    'import boundaries: 1 violation(s)',
  ]);
});

test('each rule, and what stays allowed', () => {
  tree({
    'src/sft/a.ts': [
      "import { x } from '../training/run.js';", // stage → shared block: allowed
      "export { y } from '../reward/b.js';", // stage → stage (re-export)
      "const w = await import('../world/judge.js');", // stage → world (dynamic)
      "import type { T } from '../ppo/types.js';", // stage → stage (type only still counts)
      "// import { no } from '../reward/c.js';  a comment is not an import",
      "/* import '../gatt/d.js'; */",
      "const s = 'import from \"../reward/e.js\"';", // a string is not an import
    ].join('\n'),
    'src/training/run.ts': "import '../sft/a.js';\n", // shared block → stage
    'src/report/r.ts': "import { main } from '../cli/main.js';\n", // anything → cli
    'src/model/m.ts': "import { runner } from '../pipeline/runner.js';\n", // shared block → pipeline
    'src/world/w.ts': "import { c } from '../sft/config.js';\nimport { e } from '../errors.js';\n", // world → stage; world → shared: allowed
    'src/cli/main.ts': "import { runSft } from '../sft/recipe.js';\nimport { judge } from '../world/judge.js';\nimport { r } from '../pipeline/runner.js';\n",
    'src/pipeline/runner.ts': "import { runGatt } from '../gatt/recipe.js';\nimport { check } from '../world/checkers.js';\n",
    'src/errors.ts': "import { z } from 'zod';\n", // packages: no rule
  });
  const r = lint(root);
  expect(r.code).toBe(1);
  expect(r.out.trim().split('\n')).toEqual([
    'src/model/m.ts:1 imports src/pipeline/runner.js: model never imports pipeline/ (only cli/ wires stages together)',
    'src/report/r.ts:1 imports src/cli/main.js: nothing outside cli/ imports cli/',
    'src/sft/a.ts:2 imports src/reward/b.js: a stage never imports another stage (move what sft/ and reward/ share into a shared block)',
    'src/sft/a.ts:3 imports src/world/judge.js: sft/ is not wiring: only cli/ and pipeline/ import world/ (pass a judge in as an evaluator)',
    'src/sft/a.ts:4 imports src/ppo/types.js: a stage never imports another stage (move what sft/ and ppo/ share into a shared block)',
    'src/training/run.ts:1 imports src/sft/a.js: shared block training never imports a stage',
    'src/world/w.ts:1 imports src/sft/config.js: world/ is data and its judge: it never imports a stage',
    'import boundaries: 7 violation(s)',
  ]);
});
