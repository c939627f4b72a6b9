import type { CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { writeWorld } from '../world/generate.js';

interface SynthArgs {
  out: string;
  seed: number;
  scale: number;
}

/** `rlhf data synth --out data/world --seed 0`: regenerate the bundled assistant world. */
export const synthCommand: CommandModule<object, SynthArgs> = {
  command: 'synth',
  describe: 'Generate the bundled assistant world (corpus, SFT, preferences, prompts, GAtt seeds) from a seed',
  builder: (y) =>
    y
      .option('out', { type: 'string', default: 'data/world', describe: 'output folder' })
      .option('seed', { type: 'number', default: 0, describe: 'random seed; the same seed gives byte-identical files' })
      .option('scale', { type: 'number', default: 1, describe: 'multiplies every row count and the corpus size (1 = the shipped data)' }),
  handler: (args) => {
    if (!Number.isInteger(args.seed) || args.seed < 0) throw new UserError(`--seed must be a non-negative integer, got ${args.seed}`);
    if (!(args.scale > 0)) throw new UserError(`--scale must be positive, got ${args.scale}`);
    const written = writeWorld(args.out, { seed: args.seed, scale: args.scale });
    for (const { file, bytes } of written) console.log(`${(bytes / 1e6).toFixed(2).padStart(6)} MB  ${args.out}/${file}`);
  },
};
