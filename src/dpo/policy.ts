/** DPO's policy: the model folder (with model.adapter merged in), and the base an adapter records. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { ADAPTER_CONFIG_FILE, loadAdapter, unloadLora } from '../lora/index.js';
import { loadHfModel, type LlamaModel } from '../model/index.js';
import { ADAPTER_BASE_DIR } from '../training/fine-tune.js';
import { FINAL_DIR } from '../training/run.js';
import type { DpoConfig } from './config.js';

/** The model folder, with `adapterDir` (a PEFT adapter) merged into its weights when given. */
export function loadMergedModel(modelDir: string, adapterDir: string | null): LlamaModel {
  const model = loadHfModel(modelDir);
  try {
    if (adapterDir !== null) {
      loadAdapter(model, adapterDir);
      unloadLora(model, { merge: true });
    }
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

export function checkModelFolder(dir: string, key: string): void {
  if (existsSync(join(dir, 'config.json'))) return;
  if (existsSync(join(dir, ADAPTER_CONFIG_FILE))) {
    throw new UserError(`model.path: ${key} is a LoRA adapter folder; set model.path to its base model and model.adapter to this folder`);
  }
  throw new UserError(`model.path: ${key} has no config.json (an HF model folder is needed; run the SFT stage first?)`);
}

/** The base an adapter records: model.path, or final/base when model.adapter was merged into it. */
export function adapterBase(cfg: DpoConfig, modelDir: string): string {
  return cfg.model.adapter === null ? modelDir : join(resolve(cfg.output_dir), FINAL_DIR, ADAPTER_BASE_DIR);
}
