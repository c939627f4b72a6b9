import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import type { LinearAdapter } from '../model/adapter.js';
import { LoraLinear } from './lora-linear.js';

/**
 * Putting LoRA adapters on a model (PEFT's `get_peft_model` for LoRA), merging them into the base
 * weights, switching them off, and listing what trains. Works on anything with the LlamaModel
 * adapter contract ({@link LoraHost}).
 */

/** The projections LoRA may target; `all-linear` means all of them (never `lm_head`, as in PEFT). */
export const LORA_TARGET_NAMES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export const ALL_LINEAR = 'all-linear';

/** What LoRA needs from a model (LlamaModel has it). */
export interface LoraHost {
  readonly params: Map<string, tf.Variable>;
  readonly adapters: Map<string, LinearAdapter>;
  /** Frozen weights kept outside `params` (bfloat16; only their shapes are read here). */
  readonly frozen?: ReadonlyMap<string, { shape: number[] }>;
  adaptersEnabled: boolean;
  /** Set by the model's forward from `training`; LoRA dropout reads it. */
  training: boolean;
  linearModuleNames(): string[];
}

export interface LoraSettings {
  /** Short names (`q_proj`), full module names, `all-linear`, or one regex string matched against whole module names (PEFT). */
  targetModules: string[] | string;
  r: number;
  alpha: number;
  dropout: number;
  useRslora: boolean;
  /** Modules trained in full and saved with the adapter, e.g. `score`. */
  modulesToSave: string[];
}

export interface InjectLoraOptions {
  targetModules: string[] | string;
  r: number;
  alpha: number;
  dropout?: number;
  useRslora?: boolean;
  modulesToSave?: string[];
  /** Draws the A matrices. */
  rng: Rng;
  /** Draws dropout masks (default `rng`): keep it the recipe's RNG so checkpoints restore it. */
  dropoutRng?: Rng;
}

interface LoraRecord {
  settings: LoraSettings;
  adapters: Map<string, LoraLinear>;
  /** `trainable` flags of the base parameters before injection, restored on unload. */
  savedTrainable: Map<string, boolean>;
}

const records = new WeakMap<LoraHost, LoraRecord>();

/**
 * Full names of the modules `targetModules` selects, in model order. Each short or full name
 * must match some module (a typo would silently train nothing); the error lists the valid names.
 */
export function resolveTargetModules(model: LoraHost, targetModules: string[] | string): string[] {
  const modules = model.linearModuleNames();
  if (targetModules === ALL_LINEAR) return modules;
  if (typeof targetModules === 'string') {
    const re = new RegExp(`^(?:${targetModules})$`);
    const hit = modules.filter((m) => re.test(m));
    if (hit.length === 0) throw new UserError(`lora target_modules: regex "${targetModules}" matches no linear layer of the model`);
    return hit;
  }
  if (targetModules.length === 0) throw new UserError(`lora target_modules: empty; use some of ${LORA_TARGET_NAMES.join(', ')} or "${ALL_LINEAR}"`);
  const matches = (m: string, t: string): boolean => m === t || m.endsWith(`.${t}`);
  const unknown = targetModules.filter((t) => !modules.some((m) => matches(m, t)));
  if (unknown.length > 0) {
    throw new UserError(
      `lora target_modules: ${unknown.map((t) => `"${t}"`).join(', ')} match no linear layer of the model; ` +
        `valid: ${LORA_TARGET_NAMES.join(', ')} or "${ALL_LINEAR}"`,
    );
  }
  return modules.filter((m) => targetModules.some((t) => matches(m, t)));
}

/** Parameter names belonging to `modulesToSave` (module path or its last segment, e.g. `score`). */
function modulesToSaveParams(model: LoraHost, modulesToSave: string[]): string[] {
  const names = [...model.params.keys()];
  const belongs = (p: string, m: string): boolean => p.startsWith(`${m}.`) || p.includes(`.${m}.`);
  const missing = modulesToSave.filter((m) => !names.some((p) => belongs(p, m)));
  if (missing.length > 0) throw new UserError(`lora modules_to_save: ${missing.map((m) => `"${m}"`).join(', ')} not found in the model`);
  return names.filter((p) => modulesToSave.some((m) => belongs(p, m)));
}

/**
 * Add a LoRA adapter to every targeted projection and freeze the base weights (PEFT marks only
 * LoRA and `modules_to_save` parameters trainable). Returns the adapters by module name.
 */
export function injectLora(model: LoraHost, opts: InjectLoraOptions): Map<string, LoraLinear> {
  if (records.has(model) || model.adapters.size > 0) throw new Error('injectLora: the model already has adapters');
  const settings: LoraSettings = {
    targetModules: opts.targetModules,
    r: opts.r,
    alpha: opts.alpha,
    dropout: opts.dropout ?? 0,
    useRslora: opts.useRslora ?? false,
    modulesToSave: opts.modulesToSave ?? [],
  };
  const targets = resolveTargetModules(model, settings.targetModules);
  const keepTrainable = new Set(modulesToSaveParams(model, settings.modulesToSave));
  const adapters = new Map<string, LoraLinear>();
  for (const name of targets) {
    const w = model.params.get(`${name}.weight`) ?? model.frozen?.get(`${name}.weight`);
    if (!w) throw new Error(`injectLora: the model has no weight for ${name}`);
    const [outDim, inDim] = w.shape as [number, number];
    const adapter = new LoraLinear({
      inDim,
      outDim,
      rank: settings.r,
      alpha: settings.alpha,
      dropout: settings.dropout,
      useRslora: settings.useRslora,
      rng: opts.rng,
      dropoutRng: opts.dropoutRng ?? opts.rng,
      isTraining: () => model.training,
    });
    adapters.set(name, adapter);
    model.adapters.set(name, adapter);
  }
  const savedTrainable = new Map<string, boolean>();
  for (const [name, v] of model.params) {
    savedTrainable.set(name, v.trainable);
    v.trainable = keepTrainable.has(name);
  }
  records.set(model, { settings, adapters, savedTrainable });
  return adapters;
}

/** The model's LoRA settings, or null when it has none. */
export function loraSettings(model: LoraHost): LoraSettings | null {
  return records.get(model)?.settings ?? null;
}

/** The model's LoRA adapters by module name (empty when it has none). */
export function loraAdapters(model: LoraHost): Map<string, LoraLinear> {
  return records.get(model)?.adapters ?? new Map();
}

/**
 * What an optimizer should update: every adapter's A and B, keyed `<module>.lora_A.weight` /
 * `<module>.lora_B.weight` (PEFT's names without the `base_model.model.` prefix), plus the
 * `modules_to_save` parameters under their own names.
 */
export function trainableVariables(model: LoraHost): Map<string, tf.Variable> {
  const rec = records.get(model);
  if (!rec) throw new Error('trainableVariables: the model has no LoRA adapters (injectLora first)');
  const out = new Map<string, tf.Variable>();
  for (const [name, a] of rec.adapters) {
    out.set(`${name}.lora_A.weight`, a.A);
    out.set(`${name}.lora_B.weight`, a.B);
  }
  for (const name of modulesToSaveParams(model, rec.settings.modulesToSave)) out.set(name, model.params.get(name)!);
  return out;
}

/** Fold every adapter into its base weight: W ← W + scaling·B·A (adapters then add nothing). */
export function mergeLora(model: LoraHost): void {
  for (const [name, a] of loraAdapters(model)) {
    if (a.merged) continue;
    const w = model.params.get(`${name}.weight`)!;
    tf.tidy(() => w.assign(tf.add(w, a.deltaWeight())));
    a.merged = true;
  }
}

/** Undo {@link mergeLora}: W ← W − scaling·B·A. */
export function unmergeLora(model: LoraHost): void {
  for (const [name, a] of loraAdapters(model)) {
    if (!a.merged) continue;
    const w = model.params.get(`${name}.weight`)!;
    tf.tidy(() => w.assign(tf.sub(w, a.deltaWeight())));
    a.merged = false;
  }
}

/**
 * Remove the adapters (disposing them) and restore the base parameters' trainable flags; with
 * `merge`, fold them in first (PEFT's `merge_and_unload`), else the base model is as it was.
 */
export function unloadLora(model: LoraHost, opts: { merge: boolean }): void {
  const rec = records.get(model);
  if (!rec) return;
  if (opts.merge) mergeLora(model);
  else unmergeLora(model);
  for (const [name, a] of rec.adapters) {
    model.adapters.delete(name);
    a.dispose();
  }
  for (const [name, trainable] of rec.savedTrainable) {
    const v = model.params.get(name);
    if (v) v.trainable = trainable;
  }
  records.delete(model);
}

/**
 * Run `fn` on the base model (adapters off) — PPO's frozen reference without a second copy.
 * Refuses while merged: the base weights then hold the adapters.
 */
export function withAdaptersDisabled<T>(model: LoraHost, fn: () => T): T {
  if ([...loraAdapters(model).values()].some((a) => a.merged)) {
    throw new Error('withAdaptersDisabled: adapters are merged into the weights; unmergeLora first');
  }
  const was = model.adaptersEnabled;
  model.adaptersEnabled = false;
  try {
    return fn();
  } finally {
    model.adaptersEnabled = was;
  }
}
