import { copyFileSync, existsSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { loadHfModel, saveHfModel } from '../model/io/hf.js';
import type { WriteDtype } from '../model/io/safetensors.js';
import { unloadLora } from './inject.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadAdapter, type AdapterConfig } from './peft-io.js';

/** Files of a model folder that `saveHfModel` writes itself; everything else (tokenizer, …) is copied over. */
const MODEL_FILES = /^(config\.json|generation_config\.json|model\.safetensors|model\.safetensors\.index\.json|model-\d+-of-\d+\.safetensors)$/;

/**
 * base model + PEFT adapter → a plain HF model folder with W + scaling·B·A in every adapted
 * projection (and the adapter's `modules_to_save` weights), like PEFT's `merge_and_unload()` then
 * `save_pretrained`. The base folder's other files (tokenizer.json, tokenizer_config.json, …) are
 * copied so the output is usable on its own.
 */
export function mergeAdapterFolder(
  baseDir: string,
  adapterDir: string,
  outDir: string,
  opts: { dtype?: WriteDtype } = {},
): { config: AdapterConfig; mergedModules: number } {
  if (existsSync(outDir) && realpathSync(outDir) === realpathSync(baseDir)) {
    throw new UserError(`--out ${outDir} is the base model folder; write the merged model somewhere else`);
  }
  if (resolve(outDir) === resolve(adapterDir)) throw new UserError(`--out ${outDir} is the adapter folder; write the merged model somewhere else`);
  const model = loadHfModel(baseDir);
  try {
    const config = loadAdapter(model, adapterDir);
    const mergedModules = model.adapters.size;
    unloadLora(model, { merge: true });
    mkdirSync(outDir, { recursive: true });
    for (const f of readdirSync(baseDir)) {
      const src = join(baseDir, f);
      if (MODEL_FILES.test(f) || f === ADAPTER_CONFIG_FILE || f === ADAPTER_WEIGHTS_FILE || !statSync(src).isFile()) continue;
      copyFileSync(src, join(outDir, f));
    }
    saveHfModel(model, outDir, opts.dtype ? { dtype: opts.dtype } : {});
    return { config, mergedModules };
  } finally {
    model.dispose();
  }
}
