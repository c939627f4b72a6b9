import type { CommandModule } from 'yargs';
import { dataCommand } from './data.js';
import { dpoCommand } from './dpo.js';
import { envCommand } from './env.js';
import { exportCommand } from './export.js';
import { gattCommand } from './gatt.js';
import { generateCommand } from './generate.js';
import { mergeLoraCommand } from './merge-lora.js';
import { pairsCommand } from './pairs.js';
import { pipelineCommand } from './pipeline.js';
import { pretrainCommand } from './pretrain.js';
import { ppoCommand } from './ppo.js';
import { rewardCommand } from './reward.js';
import { rsCommand } from './rs.js';
import { sftCommand } from './sft.js';
import { tokenizerCommand } from './tokenizer.js';
import { worldCommand } from './world.js';

/**
 * Every `rlhf` command, one module each (src/cli/<name>.ts). A command is listed here only once
 * its stage or tool exists — never a "not implemented" placeholder.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [dataCommand, dpoCommand, envCommand, exportCommand, gattCommand, generateCommand, mergeLoraCommand, pairsCommand, pipelineCommand, ppoCommand, pretrainCommand, rewardCommand, rsCommand, sftCommand, tokenizerCommand, worldCommand];
