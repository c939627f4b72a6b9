/**
 * PPO checkpoints: the policy adapter (PEFT files), the critic's trainable weights, AdamW's moments
 * and the trainer state — iteration, prompt cursor, RNG and KL controller — so a resumed run
 * continues exactly where the uninterrupted one would be.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Rng, RngState } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, adapterConfig, adapterStateDict, loadAdapterWeights } from '../lora/peft-io.js';
import type { LlamaModel } from '../model/llama.js';
import { readSafetensors, writeSafetensors, type NamedTensor } from '../model/io/safetensors.js';
import type { AdamW } from '../training/adamw.js';
import { loadCheckpoint, saveCheckpoint } from '../training/checkpoint.js';
import { resolveResume } from '../training/run.js';
import type { KlControllerState } from './kl.js';
import type { PromptCursor } from './prompts.js';
import { writeFileSync } from 'node:fs';

export const CRITIC_FILE = 'critic.safetensors';

export interface PpoProgress {
  iteration: number;
  cursor: PromptCursor;
  rngState: RngState;
  kl: KlControllerState;
  logHistory: Array<Record<string, number>>;
}

export interface PpoCheckpointModels {
  policy: LlamaModel;
  criticParams: Map<string, tf.Variable>;
  optimizer: AdamW;
}

const named = (vars: Map<string, tf.Variable>): Map<string, NamedTensor> =>
  new Map([...vars].map(([k, v]) => [k, { shape: v.shape.slice(), data: (v.dataSync() as Float32Array).slice() }]));

export function savePpoCheckpoint(runDir: string, m: PpoCheckpointModels, p: PpoProgress, opts: { maxSteps: number; keepLast: number | null }): string {
  return saveCheckpoint(
    runDir,
    {
      tensors: adapterStateDict(m.policy),
      tensorsFile: ADAPTER_WEIGHTS_FILE,
      optimizer: m.optimizer.exportState(),
      trainerState: {
        global_step: p.iteration,
        epoch: p.cursor.epoch,
        max_steps: opts.maxSteps,
        log_history: p.logHistory,
        rng_state: p.rngState,
        data_cursor: p.cursor,
        kl_controller: p.kl,
      },
      writeExtra: (dir) => {
        writeFileSync(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(adapterConfig(m.policy, { inferenceMode: false }), null, 2) + '\n');
        writeSafetensors(join(dir, CRITIC_FILE), named(m.criticParams));
      },
    },
    opts.keepLast !== null ? { keepLast: opts.keepLast } : {},
  );
}

/** The checkpoint `train.resume` points at: auto → newest in runDir (or none), never → none, else that path. */
export const resumeCheckpointPath = resolveResume;

/** Load a checkpoint into the live models, optimizer and RNG; returns the loop position. */
export function restorePpoCheckpoint(dir: string, m: PpoCheckpointModels, rng: Rng): PpoProgress {
  const { tensors, optimizer, trainerState: s } = loadCheckpoint(dir, { tensorsFile: ADAPTER_WEIGHTS_FILE });
  if (!tensors) throw new UserError(`${join(dir, ADAPTER_WEIGHTS_FILE)}: missing (not a PPO checkpoint)`);
  const cursor = s.data_cursor as PromptCursor | undefined;
  const kl = s.kl_controller as KlControllerState | undefined;
  if (!cursor || !kl || !s.rng_state) throw new UserError(`${dir}/trainer_state.json: not a PPO checkpoint (needs data_cursor, kl_controller, rng_state)`);
  loadAdapterWeights(m.policy, tensors, join(dir, ADAPTER_WEIGHTS_FILE));
  const critic = readSafetensors(join(dir, CRITIC_FILE)).tensors;
  const problems = [...m.criticParams.keys()].filter((k) => critic.get(k)?.data.length !== m.criticParams.get(k)!.size);
  if (problems.length > 0) throw new UserError(`${join(dir, CRITIC_FILE)}: missing or mis-shaped ${problems.join(', ')}`);
  tf.tidy(() => {
    for (const [k, v] of m.criticParams) v.assign(tf.tensor(critic.get(k)!.data, v.shape));
  });
  m.optimizer.importState(optimizer);
  rng.setState(s.rng_state as RngState);
  return {
    iteration: s.global_step,
    cursor,
    rngState: s.rng_state as RngState,
    kl,
    logHistory: s.log_history as Array<Record<string, number>>,
  };
}
