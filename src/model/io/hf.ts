/**
 * Hugging Face model folders: `config.json` + `model.safetensors` (or shards listed in
 * `model.safetensors.index.json`'s `weight_map`) + `generation_config.json`.
 *
 * Loading checks every tensor name and shape against the config (from the safetensors headers, before
 * any weight is read) and reports missing, unexpected and mis-shaped tensors together in one error.
 * Saving writes a temporary sibling folder and renames it into place, so a crash never leaves a
 * half-written model; other files already in the folder (tokenizer.json, …) are carried over.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../errors.js';
import { isSequenceClassification, configToJson, eosTokenIds, parseLlamaConfig, type LlamaConfig } from '../config.js';
import { LlamaModel } from '../llama.js';
import { resolveModelPath } from '../hub.js';
import { newVariable } from '../variables.js';
import { FrozenFloat32Weight, FrozenWeight, type Frozen } from '../frozen.js';
import { MappedFile } from './mapped.js';
import { EMBED, LM_HEAD, SCORE, llamaParamShapes } from '../names.js';
import { forEachSafetensor, readSafetensorsHeader, writeSafetensors, type NamedTensor, type SafetensorsHeader, type WriteDtype } from './safetensors.js';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
export const GENERATION_CONFIG_FILE = 'generation_config.json';

/** Read and validate `config.json` of a model folder (or of a hub id's snapshot in the local HF cache). */
export function loadHfConfig(dir: string): LlamaConfig {
  const path = join(resolveModelPath(dir), CONFIG_FILE);
  return parseLlamaConfig(readJson(path), path);
}

export interface LoadOptions {
  /**
   * bfloat16: keep the embedding, LM head and every projection weight as frozen bfloat16 off the
   * tensor heap (`../frozen.ts`; for LoRA training and inference); norms, biases and heads stay float32
   * variables. Default float32: every weight a variable.
   */
  frozenDtype?: 'float32' | 'bfloat16';
  /**
   * For inference-only loads (nothing trains these weights): keep the same freezable weights frozen
   * off the tensor heap in float32, mapped from the safetensors file where the platform allows
   * (`./mapped.ts`: no copy at all, the page cache's pages), else read into JS memory. A model then
   * loads in about the time the file takes to read. Ignored under `frozenDtype: bfloat16`.
   */
  frozenFloat32?: boolean;
  /**
   * Frozen weights whose file values are kept as they are (float32 under `frozenFloat32`, bfloat16
   * bits of a BF16 file under either) are views of the file's mapping (`./mapped.ts`); false reads
   * them into JS memory instead. Default true.
   */
  mapFiles?: boolean;
}

/** The weights `frozenDtype: bfloat16` keeps frozen: embeddings, LM head, projection weights. */
export function isFreezable(name: string): boolean {
  return name === EMBED || name === LM_HEAD || /\.(self_attn|mlp)\.[a-z_]+_proj\.weight$/.test(name);
}

/**
 * The frozen tensors `wanted` of one safetensors file as views of its mapping, by name: BF16 ones as
 * their bits, F32 ones when `float32` (frozen in float32; a float32 weight frozen to bfloat16 is
 * rounded, so read). Empty where the file cannot be mapped; a tensor whose data is not aligned is
 * left out, to be read. The file stays mapped while any of them is unreleased.
 */
function mapFrozen(path: string, header: SafetensorsHeader, wanted: (name: string) => boolean, float32: boolean): Map<string, Frozen> {
  const out = new Map<string, Frozen>();
  const entries = header.entries.filter((e) => (e.dtype === 'BF16' || (float32 && e.dtype === 'F32')) && wanted(e.name));
  if (entries.length === 0) return out;
  const file = MappedFile.open(path);
  if (file === null) return out;
  for (const e of entries) {
    const at = header.dataStart + e.begin;
    const bytes = e.dtype === 'F32' ? 4 : 2;
    const count = (e.end - e.begin) / bytes;
    if (!file.canView(at, count, bytes)) continue;
    if (e.dtype === 'F32') {
      const view = file.float32View(at, count);
      out.set(e.name, new FrozenFloat32Weight(view.values, e.shape, view.release));
    } else {
      const view = file.uint16View(at, count);
      out.set(e.name, new FrozenWeight(view.values, e.shape, view.release));
    }
  }
  if (out.size === 0) file.unmap();
  return out;
}

/** Whether making a tensor copies its values (wasm: onto the heap), so read buffers can be reused. */
function copiesOnCreate(): boolean {
  return tf.getBackend() === 'wasm';
}

/** Load a Llama-family model (causal LM, or a backbone with a `score` head) from an HF folder or a cached hub id. */
export function loadHfModel(dirOrHubId: string, opts: LoadOptions = {}): LlamaModel {
  const dir = resolveModelPath(dirOrHubId);
  const config = loadHfConfig(dir);
  const files = weightFiles(dir);

  // Names and shapes from the headers only: nothing is allocated until the checkpoint is known good.
  const found = new Map<string, { shape: number[]; file: string }>();
  const headers = new Map<string, SafetensorsHeader>();
  const duplicates: string[] = [];
  for (const file of new Set(files.values())) {
    const header = readSafetensorsHeader(join(dir, file));
    headers.set(file, header);
    for (const e of header.entries) {
      const prev = found.get(e.name);
      if (prev) duplicates.push(`${e.name} is in both ${prev.file} and ${file}`);
      found.set(e.name, { shape: e.shape, file });
    }
  }
  const isSeqCls = isSequenceClassification(config);
  const expected = llamaParamShapes(config, {
    lmHead: !config.tie_word_embeddings && !isSeqCls,
    score: isSeqCls || found.has(SCORE),
  });
  const ignorable = (name: string) =>
    name.endsWith('rotary_emb.inv_freq') || (name === LM_HEAD && config.tie_word_embeddings);
  checkTensors(dir, expected, found, ignorable, files, duplicates);

  const params = new Map<string, tf.Variable>();
  const frozen = new Map<string, Frozen>();
  const freezeBf16 = opts.frozenDtype === 'bfloat16';
  const freezeF32 = !freezeBf16 && opts.frozenFloat32 === true;
  const freeze = (name: string) => (freezeBf16 || freezeF32) && isFreezable(name);
  try {
    for (const file of new Set(files.values())) {
      const path = join(dir, file);
      const mapped = opts.mapFiles !== false ? mapFrozen(path, headers.get(file)!, (name) => expected.has(name) && freeze(name), freezeF32) : new Map<string, Frozen>();
      for (const [name, w] of mapped) frozen.set(name, w);
      // One tensor at a time: JS holds one tensor's bytes while it is copied onto the tensor heap.
      // A bfloat16 file's frozen weights are kept as their bits: no float32 decode, no second copy.
      forEachSafetensor(path, (name, t, raw) => {
        if (raw.bits !== null) frozen.set(name, new FrozenWeight(raw.bits, t.shape));
        else if (freezeBf16 && isFreezable(name)) frozen.set(name, FrozenWeight.fromFloat32(t.data, t.shape));
        // The read buffer may be reused for the next tensor: a frozen weight keeps a copy of its own.
        else if (freezeF32 && isFreezable(name)) frozen.set(name, new FrozenFloat32Weight(t.data.slice(), t.shape));
        else params.set(name, newVariable(t.data, t.shape));
      }, (name) => expected.has(name) && !mapped.has(name), freeze, copiesOnCreate());
    }
  } catch (e) {
    for (const v of params.values()) v.dispose();
    for (const w of frozen.values()) w.release();
    throw e;
  }
  // Keep HF module order in `params` (the order of `llamaParamShapes`).
  const ordered = new Map<string, tf.Variable>();
  for (const name of expected.keys()) if (params.has(name)) ordered.set(name, params.get(name)!);
  const model = new LlamaModel(config, ordered);
  for (const name of expected.keys()) if (frozen.has(name)) model.frozen.set(name, frozen.get(name)!);
  return model;
}

export interface SaveOptions {
  /** Weight dtype on disk (default F32, which round-trips bit-exactly). */
  dtype?: WriteDtype;
  /** Split weights into shards of at most this many bytes, with an index file. Default: one file. */
  maxShardBytes?: number;
  /** Extra keys for generation_config.json (e.g. temperature, top_p). */
  generationConfig?: Record<string, unknown>;
}

/** Save a model as an HF folder (config.json, model.safetensors, generation_config.json). */
export function saveHfModel(model: LlamaModel, dir: string, opts: SaveOptions = {}): void {
  const dtype = opts.dtype ?? 'F32';
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}-${Date.now()}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    // Carry over files we do not write (tokenizer, adapter, reward stats), dropping stale weights.
    if (existsSync(dir)) {
      for (const f of readdirSync(dir)) {
        if (isOwnedFile(f)) continue;
        cpSync(join(dir, f), join(tmp, f), { recursive: true });
      }
    }
    const config = { ...configToJson(model.config), torch_dtype: dtype === 'BF16' ? 'bfloat16' : 'float32' };
    writeFileSync(join(tmp, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
    writeWeights(model, tmp, dtype, opts.maxShardBytes);
    writeFileSync(join(tmp, GENERATION_CONFIG_FILE), JSON.stringify(generationConfig(model.config, opts.generationConfig), null, 2) + '\n');
    replaceDir(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------

function isOwnedFile(f: string): boolean {
  return (
    f === CONFIG_FILE ||
    f === GENERATION_CONFIG_FILE ||
    f === INDEX_FILE ||
    f === WEIGHTS_FILE ||
    /^model-\d+-of-\d+\.safetensors$/.test(f)
  );
}

/** Swap `tmp` into `dir`: rename the old folder away first so `dir` is never half-written. */
function replaceDir(tmp: string, dir: string): void {
  if (!existsSync(dir)) {
    mkdirSync(dirname(dir), { recursive: true });
    renameSync(tmp, dir);
    return;
  }
  const old = join(dirname(dir), `.${basename(dir)}.old-${process.pid}-${Date.now()}`);
  renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

function writeWeights(model: LlamaModel, dir: string, dtype: WriteDtype, maxShardBytes?: number): void {
  const bytesPer = dtype === 'F32' ? 4 : 2;
  const shards: Map<string, NamedTensor>[] = [new Map()];
  let shardBytes = 0;
  for (const [name, v] of model.params) {
    const bytes = v.size * bytesPer;
    if (maxShardBytes !== undefined && shardBytes > 0 && shardBytes + bytes > maxShardBytes) {
      shards.push(new Map());
      shardBytes = 0;
    }
    shards[shards.length - 1]!.set(name, { shape: v.shape, data: v.dataSync() as Float32Array });
    shardBytes += bytes;
  }
  const metadata = { format: 'pt' };
  if (shards.length === 1) {
    writeSafetensors(join(dir, WEIGHTS_FILE), shards[0]!, { dtype, metadata });
    return;
  }
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((shard, i) => {
    const file = `model-${pad5(i + 1)}-of-${pad5(shards.length)}.safetensors`;
    writeSafetensors(join(dir, file), shard, { dtype, metadata });
    for (const [name, t] of shard) {
      weightMap[name] = file;
      total += t.data.length * bytesPer;
    }
  });
  const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)));
  writeFileSync(join(dir, INDEX_FILE), JSON.stringify({ metadata: { total_size: total }, weight_map: sorted }, null, 2) + '\n');
}

function pad5(n: number): string {
  return String(n).padStart(5, '0');
}

function generationConfig(cfg: LlamaConfig, extra?: Record<string, unknown>): Record<string, unknown> {
  const eos = eosTokenIds(cfg);
  const out: Record<string, unknown> = { _from_model_config: true };
  if (cfg.bos_token_id !== null) out.bos_token_id = cfg.bos_token_id;
  if (eos.length > 0) out.eos_token_id = eos.length === 1 ? eos[0] : eos;
  if (cfg.pad_token_id !== null) out.pad_token_id = cfg.pad_token_id;
  return { ...out, ...extra };
}

/** weight file of each tensor name (single file: every name → model.safetensors). */
function weightFiles(dir: string): Map<string, string> {
  const single = join(dir, WEIGHTS_FILE);
  const index = join(dir, INDEX_FILE);
  const files = new Map<string, string>();
  if (existsSync(index)) {
    const json = readJson(index) as { weight_map?: unknown };
    const map = json?.weight_map;
    if (typeof map !== 'object' || map === null) throw new UserError(`${index}: missing "weight_map" object`);
    for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
      if (typeof file !== 'string' || file.includes('/') || file.includes('\\')) {
        throw new UserError(`${index}: weight_map["${name}"] must be a file name in the same folder`);
      }
      if (!existsSync(join(dir, file))) throw new UserError(`${index}: shard ${file} (for "${name}") does not exist`);
      files.set(name, file);
    }
    return files;
  }
  if (existsSync(single)) {
    for (const e of readSafetensorsHeader(single).entries) files.set(e.name, WEIGHTS_FILE);
    return files;
  }
  if (!existsSync(join(dir, CONFIG_FILE))) throw new UserError(`${dir}: not a model folder (no ${CONFIG_FILE})`);
  throw new UserError(`${dir}: no ${WEIGHTS_FILE} or ${INDEX_FILE} (only safetensors weights are supported)`);
}

function checkTensors(
  dir: string,
  expected: Map<string, number[]>,
  found: Map<string, { shape: number[]; file: string }>,
  ignorable: (name: string) => boolean,
  weightMap: Map<string, string>,
  duplicates: string[],
): void {
  const missing: string[] = [];
  const unexpected: string[] = [];
  const misShaped: string[] = [...duplicates];
  for (const [name, shape] of expected) {
    const f = found.get(name);
    if (!f) missing.push(name);
    else if (f.shape.length !== shape.length || f.shape.some((d, i) => d !== shape[i])) {
      misShaped.push(`${name} is [${f.shape.join(', ')}] in ${f.file}, expected [${shape.join(', ')}]`);
    }
  }
  for (const [name, f] of found) {
    if (!expected.has(name) && !ignorable(name)) unexpected.push(`${name} (in ${f.file})`);
    if (weightMap.get(name) !== undefined && weightMap.get(name) !== f.file) {
      misShaped.push(`${name} is listed in ${INDEX_FILE} for ${weightMap.get(name)} but found in ${f.file}`);
    }
  }
  if (missing.length + unexpected.length + misShaped.length === 0) return;
  const parts: string[] = [];
  if (missing.length) parts.push(`missing tensors (${missing.length}): ${missing.join(', ')}`);
  if (unexpected.length) parts.push(`unexpected tensors (${unexpected.length}): ${unexpected.join(', ')}`);
  if (misShaped.length) parts.push(`mis-shaped tensors (${misShaped.length}): ${misShaped.join('; ')}`);
  throw new UserError(`checkpoint ${dir} does not match its ${CONFIG_FILE}:\n  ${parts.join('\n  ')}`);
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: invalid JSON (${(e as Error).message})`, { cause: e });
  }
}
