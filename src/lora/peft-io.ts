import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { readJsonFile } from '../json-file.js';
import { readSafetensors, writeSafetensors, type NamedTensor } from '../model/io/safetensors.js';
import { ALL_LINEAR, injectLora, loraAdapters, loraSettings, trainableVariables, unloadLora, type LoraHost } from './inject.js';

/**
 * LoRA adapters in PEFT's folder format:
 * - `adapter_config.json`: LoraConfig fields (`peft_type: "LORA"`, `r`, `lora_alpha`, …), sorted keys;
 * - `adapter_model.safetensors`: `base_model.model.<module>.lora_A.weight` [r, in],
 *   `base_model.model.<module>.lora_B.weight` [out, r], and each `modules_to_save` parameter under
 *   its own name (`base_model.model.score.weight`), as `get_peft_model_state_dict` writes them.
 */
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
export const PEFT_PREFIX = 'base_model.model.';

export type PeftTaskType = 'CAUSAL_LM' | 'SEQ_CLS';

/** The fields of PEFT's `adapter_config.json` this toolkit reads and writes. */
export interface AdapterConfig {
  peft_type: 'LORA';
  task_type: PeftTaskType;
  base_model_name_or_path: string | null;
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[] | string;
  modules_to_save: string[] | null;
  use_rslora: boolean;
  bias: 'none';
  fan_in_fan_out: false;
  inference_mode: boolean;
  [key: string]: unknown;
}

/** Adapter (and modules_to_save) tensors under PEFT key names, copied off the device. */
export function adapterStateDict(model: LoraHost): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [name, v] of trainableVariables(model)) {
    out.set(PEFT_PREFIX + name, { shape: v.shape.slice(), data: (v.dataSync() as Float32Array).slice() });
  }
  return out;
}

/** The `adapter_config.json` object for the model's adapters. */
export function adapterConfig(
  model: LoraHost,
  opts: { baseModelNameOrPath?: string | null; taskType?: PeftTaskType; inferenceMode?: boolean } = {},
): AdapterConfig {
  const s = loraSettings(model);
  if (!s) throw new Error('adapterConfig: the model has no LoRA adapters');
  const cfg: AdapterConfig = {
    alpha_pattern: {},
    base_model_name_or_path: opts.baseModelNameOrPath ?? null,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: opts.inferenceMode ?? true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: s.alpha,
    lora_dropout: s.dropout,
    modules_to_save: s.modulesToSave.length > 0 ? [...s.modulesToSave] : null,
    peft_type: 'LORA',
    r: s.r,
    rank_pattern: {},
    revision: null,
    target_modules: typeof s.targetModules === 'string' ? s.targetModules : [...s.targetModules].sort(),
    task_type: opts.taskType ?? 'CAUSAL_LM',
    use_dora: false,
    use_rslora: s.useRslora,
  };
  return cfg;
}

/**
 * Write `adapter_config.json` + `adapter_model.safetensors` into `dir` (created if needed).
 * PEFT saves with `inference_mode: true`; so do we unless told otherwise.
 */
export function saveAdapter(
  model: LoraHost,
  dir: string,
  opts: { baseModelNameOrPath?: string | null; taskType?: PeftTaskType; inferenceMode?: boolean } = {},
): void {
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), adapterStateDict(model), { metadata: { format: 'pt' } });
  writeFileSync(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(adapterConfig(model, opts), null, 2) + '\n');
}

/** Read and check `adapter_config.json`; problems name the file and the key. */
export function readAdapterConfig(dir: string): AdapterConfig {
  const path = join(dir, ADAPTER_CONFIG_FILE);
  if (!existsSync(path)) throw new UserError(`${path}: not found (a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors)`);
  const raw = readJsonFile(path) as Record<string, unknown>;
  const problems: string[] = [];
  const want = (key: string, ok: boolean, what: string): void => {
    if (!ok) problems.push(`"${key}" must be ${what} (got ${JSON.stringify(raw[key])})`);
  };
  want('peft_type', raw.peft_type === 'LORA', '"LORA"');
  want('r', Number.isInteger(raw.r) && (raw.r as number) >= 1, 'a positive integer');
  want('lora_alpha', typeof raw.lora_alpha === 'number', 'a number');
  const dropout = raw.lora_dropout ?? 0;
  want('lora_dropout', typeof dropout === 'number' && dropout >= 0 && dropout < 1, 'a number in [0, 1)');
  const tm = raw.target_modules;
  want('target_modules', typeof tm === 'string' || (Array.isArray(tm) && tm.length > 0 && tm.every((t) => typeof t === 'string')), `a list of module names or "${ALL_LINEAR}"`);
  const mts = raw.modules_to_save ?? null;
  want('modules_to_save', mts === null || (Array.isArray(mts) && mts.every((t) => typeof t === 'string')), 'null or a list of module names');
  want('bias', (raw.bias ?? 'none') === 'none', '"none" (bias training is not supported)');
  want('fan_in_fan_out', (raw.fan_in_fan_out ?? false) === false, 'false');
  want('use_dora', (raw.use_dora ?? false) === false, 'false (DoRA is not supported)');
  for (const key of ['rank_pattern', 'alpha_pattern'] as const) {
    const v = raw[key];
    want(key, v === undefined || v === null || (typeof v === 'object' && Object.keys(v).length === 0), 'empty (per-module ranks are not supported)');
  }
  const task = raw.task_type ?? 'CAUSAL_LM';
  want('task_type', task === 'CAUSAL_LM' || task === 'SEQ_CLS', '"CAUSAL_LM" or "SEQ_CLS"');
  if (problems.length > 0) throw new UserError(`${path}: ${problems.join('; ')}`);
  return {
    ...raw,
    peft_type: 'LORA',
    task_type: task as PeftTaskType,
    base_model_name_or_path: (raw.base_model_name_or_path as string | null | undefined) ?? null,
    r: raw.r as number,
    lora_alpha: raw.lora_alpha as number,
    lora_dropout: dropout as number,
    target_modules: tm as string[] | string,
    modules_to_save: mts as string[] | null,
    use_rslora: raw.use_rslora === true,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: raw.inference_mode !== false,
  };
}

/**
 * Copy adapter tensors (PEFT key names) into the model's adapters and modules_to_save. Missing,
 * unexpected and mis-shaped tensors are reported together in one error naming `source`.
 */
export function loadAdapterWeights(model: LoraHost, tensors: Map<string, NamedTensor>, source: string): void {
  const targets = trainableVariables(model);
  const problems: string[] = [];
  for (const [name, v] of targets) {
    const t = tensors.get(PEFT_PREFIX + name);
    if (!t) problems.push(`missing ${PEFT_PREFIX + name}`);
    else if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
      problems.push(`${PEFT_PREFIX + name} has shape [${t.shape}], expected [${v.shape}]`);
    }
  }
  for (const key of tensors.keys()) {
    if (!key.startsWith(PEFT_PREFIX) || !targets.has(key.slice(PEFT_PREFIX.length))) problems.push(`unexpected ${key}`);
  }
  if (problems.length > 0) throw new UserError(`${source}: adapter does not fit the model: ${problems.join('; ')}`);
  tf.tidy(() => {
    for (const [name, v] of targets) {
      const t = tensors.get(PEFT_PREFIX + name)!;
      v.assign(tf.tensor(t.data, t.shape));
    }
  });
}

/**
 * Put the PEFT adapter in `dir` on `model`: inject with its config, then load its weights.
 * `dropoutRng` draws dropout masks if training continues. On any error the model is left bare.
 */
export function loadAdapter(model: LoraHost, dir: string, opts: { dropoutRng?: Rng } = {}): AdapterConfig {
  const cfg = readAdapterConfig(dir);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(weightsPath)) {
    const bin = existsSync(join(dir, 'adapter_model.bin')) ? ' (adapter_model.bin is a pickle; convert it to safetensors)' : '';
    throw new UserError(`${weightsPath}: not found${bin}`);
  }
  const { tensors } = readSafetensors(weightsPath);
  // PEFT adds the classification head to modules_to_save for SEQ_CLS adapters by itself.
  const modulesToSave = [...(cfg.modules_to_save ?? [])];
  if (cfg.task_type === 'SEQ_CLS' && !modulesToSave.includes('score') && model.params.has('score.weight')) modulesToSave.push('score');
  // A's initial values are overwritten by the file: draw them from a throwaway RNG, not the caller's.
  const initRng = new Rng(0);
  injectLora(model, {
    targetModules: cfg.target_modules,
    r: cfg.r,
    alpha: cfg.lora_alpha,
    dropout: cfg.lora_dropout,
    useRslora: cfg.use_rslora,
    modulesToSave,
    rng: initRng,
    dropoutRng: opts.dropoutRng ?? initRng,
  });
  try {
    loadAdapterWeights(model, tensors, weightsPath);
  } catch (e) {
    unloadLora(model, { merge: false });
    throw e;
  }
  return cfg;
}

/** Number of adapter parameters (A and B of every adapter), for logs. */
export function numLoraParameters(model: LoraHost): number {
  let n = 0;
  for (const a of loraAdapters(model).values()) n += a.A.size + a.B.size;
  return n;
}
