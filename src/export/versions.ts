/**
 * The engine releases the generated files are written for. Argument names come from these
 * releases' own sources (TRL's `SFTConfig` / `RewardConfig` / `DPOConfig` / `ModelConfig`,
 * OpenRLHF's `openrlhf/cli/train_*.py`); every generated file names them in its header.
 */
export const TRL_VERSION = '1.9.0';
export const OPENRLHF_VERSION = '0.11.0';

export type Engine = 'trl' | 'openrlhf';
export const ENGINES: readonly Engine[] = ['trl', 'openrlhf'];

export type DeepSpeedStage = 'zero2' | 'zero3';
export const DEEPSPEED_STAGES: readonly DeepSpeedStage[] = ['zero2', 'zero3'];

/** One line naming the engine release a file was generated for. */
export function engineLabel(engine: Engine): string {
  return engine === 'trl' ? `TRL ${TRL_VERSION} (transformers Trainer, PEFT)` : `OpenRLHF ${OPENRLHF_VERSION} (DeepSpeed, Ray + vLLM for PPO)`;
}
