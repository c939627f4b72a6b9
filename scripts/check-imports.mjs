#!/usr/bin/env node
/**
 * The import-boundary lint of the house rules (docs: /ARCHITECTURE.md "Rules of the house"):
 *
 *   - a shared block (config, data, engine, model, lora, tokenizer, training, generation, tracking,
 *     report, export, the files at src/ top level) never imports a stage, cli/ or pipeline/;
 *   - a stage (pretrain, sft, reward, ppo, gatt, rs, dpo) never imports another stage;
 *   - nothing but cli/, pipeline/ and world/ itself imports src/world (a judge reaches a stage as an
 *     optional evaluator passed in by the pipeline or the CLI);
 *   - nothing outside cli/ imports cli/.
 *
 * Zero dependencies on purpose: the project's TypeScript 7 is the native compiler, without the JS
 * compiler API that typescript-eslint loads, and import statements are simple enough to read with a
 * comment-aware scan. Relative specifiers only (`../sft/recipe.js`); package imports are not rules here.
 *
 *   node scripts/check-imports.mjs [ROOT]     exit 0 when clean, 1 with one line per violation
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const STAGES = ['pretrain', 'sft', 'reward', 'ppo', 'gatt', 'rs', 'dpo'];
/** Layers that wire stages together; they may import stages and the world. */
export const WIRING = ['cli', 'pipeline'];
export const WORLD = 'world';

/**
 * Imports that break a rule and are known, each with the reason and when it goes; `file` and
 * `target` are paths from the repository root. Keep this list empty: an entry is a debt.
 */
export const KNOWN_EXCEPTIONS = [];

/** The layer of a file under src/: its first folder ('' for the files at the top of src/). */
export function layerOf(srcRelative) {
  const parts = srcRelative.split(/[\\/]/);
  return parts.length > 1 ? parts[0] : '';
}

/** Why `from` (a layer) may not import `to` (a layer), or null when it may. */
export function ruleBroken(from, to) {
  if (from === to) return null;
  if (to === 'cli') return 'nothing outside cli/ imports cli/';
  if (WIRING.includes(from)) return null;
  if (to === WORLD) return from === WORLD ? null : `${from ? from + '/' : 'src/'} is not wiring: only cli/ and pipeline/ import world/ (pass a judge in as an evaluator)`;
  if (STAGES.includes(to)) {
    if (STAGES.includes(from)) return `a stage never imports another stage (move what ${from}/ and ${to}/ share into a shared block)`;
    if (from === WORLD) return 'world/ is data and its judge: it never imports a stage';
    return `shared block ${from || 'src/'} never imports a stage`;
  }
  if (WIRING.includes(to)) return `${from || 'src/'} never imports ${to}/ (only cli/ wires stages together)`;
  return null;
}

/** Blank out comments and the insides of template literals' text, keeping line numbers. */
function stripComments(text) {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end === -1 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === "'" || c === '"' || c === '`') {
      // Copy a string whole, so `//` inside it is not taken for a comment.
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Every module specifier of `import … from`, `export … from`, `import '…'` and `import('…')`, with its line. */
export function importsOf(text) {
  const code = stripComments(text);
  const found = [];
  const patterns = [
    /\b(?:import|export)\s[^;'"`]*?\sfrom\s*(['"])([^'"]+)\1/g,
    /\bimport\s*(['"])([^'"]+)\1/g,
    /\bimport\s*\(\s*(['"])([^'"]+)\1\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of code.matchAll(re)) {
      found.push({ specifier: m[2], line: code.slice(0, m.index).split('\n').length });
    }
  }
  return found.sort((a, b) => a.line - b.line);
}

function tsFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** All violations under `<root>/src`, as `src/a/b.ts:LINE imports src/c/d.js: why`. */
export function checkImports(root) {
  const src = resolve(root, 'src');
  const problems = [];
  for (const file of tsFiles(src).sort()) {
    const from = layerOf(relative(src, file));
    for (const { specifier, line } of importsOf(readFileSync(file, 'utf8'))) {
      if (!specifier.startsWith('.')) continue;
      const target = relative(src, resolve(dirname(file), specifier));
      if (target.startsWith('..')) continue; // outside src/
      const why = ruleBroken(from, layerOf(target));
      const fileRel = relative(root, file).split(sep).join('/');
      const known = KNOWN_EXCEPTIONS.some((x) => x.file === fileRel && x.target === `src/${target.split(sep).join('/')}`);
      if (why && !known) problems.push(`${relative(root, file).split(sep).join('/')}:${line} imports src/${target.split(sep).join('/')}: ${why}`);
    }
  }
  return problems;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
  const problems = checkImports(root);
  for (const p of problems) console.log(p);
  console.log(problems.length === 0 ? 'import boundaries: ok' : `import boundaries: ${problems.length} violation(s)`);
  process.exit(problems.length === 0 ? 0 : 1);
}
