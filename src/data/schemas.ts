import { z } from 'zod';

/**
 * Row schemas in TRL's column conventions, and the checks zod cannot express (turn order).
 * A row's form is chosen from the columns it has, then checked against that form alone, so a
 * problem reads "messages[2].role: ..." rather than a union's "no variant matched".
 */

export const ROLES = ['system', 'user', 'assistant'] as const;
export type Role = (typeof ROLES)[number];

/** Llama 2's four preference-strength levels, strongest first. */
export const STRENGTHS = ['significantly_better', 'better', 'slightly_better', 'negligibly_better'] as const;
export type Strength = (typeof STRENGTHS)[number];

export type DatasetKind = 'sft' | 'preference' | 'prompts';
export const DATASET_KINDS: readonly DatasetKind[] = ['sft', 'preference', 'prompts'];

export interface Message {
  role: Role;
  content: string;
}
export type SftRow = { messages: Message[] } | { prompt: string; completion: string } | { text: string };
export interface PreferenceRow {
  /** Absent in TRL's "implicit prompt" form, where chosen and rejected hold the whole dialogue. */
  prompt?: string | Message[];
  chosen: string | Message[];
  rejected: string | Message[];
  margin?: number;
  strength?: Strength;
}
/** TRL's prompt-only forms: a string, or a conversation (`prompt` or `messages`) ending on a user turn. */
export type PromptRow = { prompt: string | Message[] } | { messages: Message[] };
export type RowOf<K extends DatasetKind> = K extends 'sft' ? SftRow : K extends 'preference' ? PreferenceRow : PromptRow;

/** One reason a row is rejected: a field path (`messages[1].content`, '' = the row) and why. */
export interface FieldIssue {
  field: string;
  reason: string;
}
export type RowCheck<T> = { ok: true; row: T } | { ok: false; issues: FieldIssue[] };

// --- zod schemas ---------------------------------------------------------------------------------

/** zod's message for a wrong type, or "missing" when the key is absent. */
const typeError = (expected: string) => (iss: { input?: unknown }) =>
  iss.input === undefined ? `missing (expected ${expected})` : `expected ${expected}, got ${describe(iss.input)}`;
const enumError = (what: string, options: readonly string[]) => (iss: { input?: unknown }) =>
  iss.input === undefined ? `missing (expected ${options.join(' | ')})` : `unknown ${what} ${JSON.stringify(iss.input)} (expected ${options.join(' | ')})`;

const nonEmptyText = z.string({ error: typeError('a string') }).refine((s) => s.trim().length > 0, { message: 'must not be empty' });
export const messageSchema = z.looseObject({
  role: z.enum(ROLES, { error: enumError('role', ROLES) }),
  content: nonEmptyText,
});
const messagesSchema = z.array(messageSchema).min(1, { message: 'must hold at least one message' });
const textOrMessages = z.union([nonEmptyText, messagesSchema], {
  message: 'must be a non-empty string or a list of {role, content} messages',
});
// Objects are loose: extra columns (ids, sources, metadata) pass through untouched, so validating
// or converting a file never drops a user's data.
/** Optional columns come back from Arrow / Parquet as null when a row lacks them. */
const optional = <T extends z.ZodType>(t: T) => t.nullish().transform((v) => v ?? undefined);

export const sftMessagesSchema = z.looseObject({ messages: messagesSchema });
export const sftPromptCompletionSchema = z.looseObject({ prompt: nonEmptyText, completion: nonEmptyText });
export const sftTextSchema = z.looseObject({ text: nonEmptyText });
export const preferenceSchema = z.looseObject({
  prompt: optional(textOrMessages),
  chosen: textOrMessages,
  rejected: textOrMessages,
  margin: optional(z.number({ error: typeError('a number') }).refine(Number.isFinite, { message: 'must be a finite number' })),
  strength: optional(z.enum(STRENGTHS, { error: enumError('strength', STRENGTHS) })),
});
export const promptSchema = z.looseObject({ prompt: textOrMessages });
export const promptMessagesSchema = z.looseObject({ messages: messagesSchema });

// --- checking a row ------------------------------------------------------------------------------

/** Check one raw row (a parsed JSON object or an Arrow row) against the schema of `kind`. */
export function checkRow<K extends DatasetKind>(kind: K, value: unknown): RowCheck<RowOf<K>> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return fail('', `a row must be an object with named columns, got ${describe(value)}`);
  }
  // A null column is an absent column: Arrow and Parquet tables hold null where a row lacks a key.
  const row: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) row[k] = v;
  const has = (k: string) => k in row;
  const found = Object.keys(row).join(', ') || 'none';
  switch (kind) {
    case 'sft':
      if (has('messages')) return parse(sftMessagesSchema, row, (r) => checkDialogue(r.messages, 'messages', 'assistant')) as RowCheck<RowOf<K>>;
      if (has('prompt') || has('completion')) return parse(sftPromptCompletionSchema, row) as RowCheck<RowOf<K>>;
      if (has('text')) return parse(sftTextSchema, row) as RowCheck<RowOf<K>>;
      return fail('', `no SFT columns: expected "messages", "prompt" + "completion", or "text" (found: ${found})`) as RowCheck<RowOf<K>>;
    case 'preference':
      // `label: null` marks a pair nobody has labelled yet (rlhf pairs sample): its chosen/rejected are sampling order, not a preference.
      if ((value as Record<string, unknown>).label === null) {
        return fail('label', 'null: an unlabelled pair (rlhf pairs sample writes these); label it first (rlhf world annotate, or an annotation tool)') as RowCheck<RowOf<K>>;
      }
      if (!has('chosen') && !has('rejected')) {
        return fail('', `no preference columns: expected "chosen" and "rejected" (found: ${found})`) as RowCheck<RowOf<K>>;
      }
      return parse(preferenceSchema, row, checkPreference) as RowCheck<RowOf<K>>;
    case 'prompts':
      if (has('messages')) return parse(promptMessagesSchema, row, (r) => checkDialogue(r.messages, 'messages', 'user')) as RowCheck<RowOf<K>>;
      if (has('prompt')) {
        return parse(promptSchema, row, (r) => (Array.isArray(r.prompt) ? checkDialogue(r.prompt, 'prompt', 'user') : [])) as RowCheck<RowOf<K>>;
      }
      return fail('', `no prompt columns: expected "prompt" or "messages" (found: ${found})`) as RowCheck<RowOf<K>>;
  }
  return fail('', `unknown dataset kind "${String(kind)}"`);
}

/**
 * Turn order: an optional leading system message, then user and assistant alternating from a user
 * turn, ending on `lastRole` ('user' for a generation prompt, 'assistant' for a training dialogue).
 */
export function checkDialogue(messages: readonly Message[], field: string, lastRole: 'user' | 'assistant' | 'any', firstRole: Role = 'user'): FieldIssue[] {
  const issues: FieldIssue[] = [];
  let expected: Role = firstRole;
  messages.forEach((m, i) => {
    if (i === 0 && m.role === 'system' && firstRole === 'user') return;
    if (m.role !== expected) {
      const why = m.role === 'system' ? 'a system message may only come first' : `expected ${expected === 'user' ? 'a user' : 'an assistant'} turn (roles alternate user/assistant after an optional system message)`;
      issues.push({ field: `${field}[${i}].role`, reason: `"${m.role}": ${why}` });
      if (m.role === 'system') return; // judge the next turn as if this one were not there
    }
    expected = m.role === 'user' ? 'assistant' : 'user';
  });
  const last = messages[messages.length - 1];
  if (issues.length === 0 && last && lastRole !== 'any' && last.role !== lastRole) {
    issues.push({ field, reason: `must end on ${lastRole === 'assistant' ? 'an assistant' : 'a user'} turn, ends on "${last.role}"` });
  }
  return issues;
}

/** TRL's preference forms: all strings, or all message lists (explicit or implicit prompt). */
function checkPreference(r: PreferenceRow): FieldIssue[] {
  const isList = (v: unknown) => Array.isArray(v);
  if (isList(r.chosen) !== isList(r.rejected)) {
    return [{ field: 'rejected', reason: 'chosen and rejected must both be strings or both message lists' }];
  }
  if (r.prompt !== undefined && isList(r.prompt) !== isList(r.chosen)) {
    return [{ field: 'prompt', reason: 'prompt must be a message list exactly when chosen and rejected are' }];
  }
  if (!isList(r.chosen)) return [];
  const chosen = r.chosen as Message[];
  const rejected = r.rejected as Message[];
  if (Array.isArray(r.prompt)) {
    // Explicit prompt: the prompt ends on a user turn and the answers continue it.
    const issues = checkDialogue(r.prompt, 'prompt', 'user');
    if (issues.length) return issues;
    return [...checkDialogue(chosen, 'chosen', 'assistant', 'assistant'), ...checkDialogue(rejected, 'rejected', 'assistant', 'assistant')];
  }
  return [...checkDialogue(chosen, 'chosen', 'assistant'), ...checkDialogue(rejected, 'rejected', 'assistant')];
}

function parse<T>(schema: z.ZodType<T>, row: unknown, semantic?: (r: T) => FieldIssue[]): RowCheck<T> {
  const result = schema.safeParse(row);
  if (!result.success) {
    return { ok: false, issues: result.error.issues.flatMap((i) => toFieldIssues(i, row)) };
  }
  const issues = semantic ? semantic(result.data) : [];
  return issues.length ? { ok: false, issues } : { ok: true, row: result.data };
}

/**
 * A failed string-or-messages union reports the branch that matches the value's type, so a bad role
 * inside `chosen` reads `chosen[1].role: ...` rather than "no union variant matched".
 */
function toFieldIssues(issue: z.core.$ZodIssue, row: unknown, prefix: readonly PropertyKey[] = []): FieldIssue[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union' && issue.errors.length === 2) {
    const value = path.reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown> | undefined)?.[k], row);
    const branch = typeof value === 'string' ? issue.errors[0] : Array.isArray(value) ? issue.errors[1] : undefined;
    if (branch) return branch.flatMap((i) => toFieldIssues(i, row, path));
    if (value === undefined || value === null) return [{ field: formatPath(path), reason: `missing (${issue.message})` }];
  }
  return [{ field: formatPath(path), reason: issue.message }];
}

function fail(field: string, reason: string): { ok: false; issues: FieldIssue[] } {
  return { ok: false, issues: [{ field, reason }] };
}

/** ['messages', 2, 'role'] -> 'messages[2].role' */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${String(k)}` : String(k)), '');
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}
