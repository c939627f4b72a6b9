/**
 * A schema's keys as documentation: a Markdown table for the READMEs and plain text for
 * `--help`, both read from the schema so they never drift from the code.
 */
import type { z } from 'zod';
import { schemaKeys, typeLabel } from './schema-walk.js';

export interface KeyDoc {
  key: string;
  type: string;
  /** The default as YAML would show it; undefined when the key is required. */
  default: string | undefined;
  description: string;
}

/** A default value the way a user would write it in YAML: `0.0003`, `[0.9, 0.95]`, `null`, `cosine`. */
export function formatDefault(value: unknown): string {
  if (typeof value === 'string') return value === '' ? '""' : value;
  if (value === undefined) return '';
  return JSON.stringify(value).replaceAll(',', ', ');
}

/** One entry per leaf key (sections are flattened into dotted keys). */
export function schemaKeyDocs(schema: z.ZodType, prefix: string[] = []): KeyDoc[] {
  return schemaKeys(schema)
    .filter((k) => !k.isSection)
    .map((k) => ({
      key: [...prefix, ...k.path].join('.'),
      type: typeLabel(k.schema),
      default: k.peeled.default === undefined ? undefined : formatDefault(k.peeled.default.value),
      description: k.peeled.description ?? '',
    }));
}

const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

/** | key | type | default | description | — one row per leaf key. */
export function schemaMarkdownTable(schema: z.ZodType, prefix: string[] = []): string {
  const rows = schemaKeyDocs(schema, prefix).map((d) => {
    const def = d.default === undefined ? '*required*' : `\`${cell(d.default)}\``;
    return `| \`${d.key}\` | ${cell(d.type)} | ${def} | ${cell(d.description)} |`;
  });
  return ['| key | type | default | description |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** Plain-text key list for a command's `--help` epilogue. */
export function schemaHelpText(schema: z.ZodType, title = 'Config keys (override any with key=value):'): string {
  const lines = [title];
  for (const d of schemaKeyDocs(schema)) {
    const def = d.default === undefined ? 'required' : `default ${d.default}`;
    lines.push(`  ${d.key}  (${d.type}; ${def})`);
    if (d.description !== '') lines.push(`      ${d.description}`);
  }
  return lines.join('\n');
}

/**
 * Replace the text between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` in a document
 * (the markers stay). Throws when the markers are missing, so a renamed block is noticed.
 */
export function replaceGeneratedBlock(text: string, name: string, content: string): string {
  const open = `<!-- generated:${name} -->`;
  const close = `<!-- /generated:${name} -->`;
  const start = text.indexOf(open);
  const end = text.indexOf(close);
  if (start < 0 || end < start) throw new Error(`generated block '${name}' not found (markers ${open} … ${close})`);
  return `${text.slice(0, start + open.length)}\n${content}\n${text.slice(end)}`;
}
