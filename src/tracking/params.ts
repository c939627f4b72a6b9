/**
 * Turning configs into MLflow params and keeping keys/values inside MLflow's limits, so a logged
 * run never fails validation on an MLflow server and never writes outside its run folder.
 */

/** MLflow's limits (mlflow/utils/validation.py): MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH, MAX_ENTITY_KEY_LENGTH. */
export const MAX_PARAM_VALUE_LENGTH = 6000;
export const MAX_TAG_VALUE_LENGTH = 8000;
export const MAX_KEY_LENGTH = 250;

export type ParamValue = string | number | boolean | null;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) &&
    Object.getPrototypeOf(value) === Object.prototype;
}

/**
 * `{optim: {lr: 3e-4, betas: [0.9, 0.95]}}` → `{'optim.lr': '0.0003', 'optim.betas': '[0.9,0.95]'}`.
 * Nested objects become dotted keys; arrays and other objects are JSON; `undefined` is dropped.
 */
export function flattenParams(config: Record<string, unknown>, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    const name = prefix === '' ? key : `${prefix}.${key}`;
    if (value === undefined) continue;
    if (isPlainObject(value) && Object.keys(value).length > 0) Object.assign(out, flattenParams(value, name));
    else out[name] = paramText(value);
  }
  return out;
}

/** The text of one param value. */
export function paramText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return 'null';
  return JSON.stringify(value) ?? String(value);
}

/** Cut to at most `max` Unicode code points (MLflow counts Python `len`), never splitting a surrogate pair. */
export function truncateCodePoints(text: string, max: number): string {
  if (text.length <= max) return text;
  const points = [...text];
  return points.length <= max ? text : points.slice(0, max).join('');
}

const KEY_CHAR = /[\p{L}\p{N}_\-. /]/u;

/**
 * A metric/param/tag key MLflow accepts and that stays inside the run folder: characters outside
 * `[\w\-. /]` become `_`, and the path is normalised (no empty, `.` or `..` segments, no leading `/`).
 * `objective/kl` stays `objective/kl` (a subfolder in the file store, as in MLflow).
 */
export function sanitizeKey(key: string): string {
  let cleaned = '';
  for (const ch of key) cleaned += KEY_CHAR.test(ch) ? ch : '_';
  const segments = cleaned.split('/').filter((s) => s !== '').map((s) => (/^\.+$/.test(s) ? s.replace(/\./g, '_') : s));
  const joined = segments.join('/');
  return truncateCodePoints(joined === '' ? '_' : joined, MAX_KEY_LENGTH);
}
