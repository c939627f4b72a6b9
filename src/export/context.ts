/** Where one exported stage's files, data and outputs live (all absolute), as the generators need them. */
import type { DeepSpeedStage } from './versions.js';

export interface StageContext {
  /** Script file name stem and folder name: sft, reward, ppo, dpo, rs, gatt. */
  name: string;
  /** This stage's export folder. */
  dir: string;
  /** The export's root folder (shared launcher configs live there). */
  root: string;
  gpus: number;
  deepspeed: DeepSpeedStage | null;
  /** The converted training / eval data, written next to the script; null when the rows are made at run time. */
  trainFile: string | null;
  evalFile: string | null;
  /** Our file the rows come from at run time (RS samples, GAtt dialogues) and the rlhf-kit command that writes it. */
  runtimeData: { file: string; madeBy: string } | null;
  /** A chat template written for this stage (with generation markers where the loss needs them); null = the tokenizer's own. */
  templateFile: string | null;
  /** The model trained from (an earlier engine stage's output in a pipeline export). */
  model: string;
  /** PPO: the reward model. */
  rewardModel: string | null;
  /** Where the engine writes the trained model (adapter or full). */
  outputDir: string;
  /** Where the merged model goes after a LoRA run (null: not written). */
  mergedDir: string | null;
  /** Rows in the training file (OpenRLHF counts epochs, not steps). */
  trainRows: number | null;
}

/** The model folder a stage hands on: the merged one after LoRA, else the output itself. */
export function handedOn(ctx: StageContext): string {
  return ctx.mergedDir ?? ctx.outputDir;
}
