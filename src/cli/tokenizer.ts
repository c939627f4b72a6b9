import type { Argv, CommandModule } from 'yargs';
import { trainTokenizer } from '../tokenizer/train.js';

interface TrainArgs {
  corpus: string[];
  'vocab-size': number;
  out: string;
  'min-pair-count': number;
}

export const tokenizerTrainCommand: CommandModule<object, TrainArgs> = {
  command: 'train',
  describe: 'Train a byte-level BPE tokenizer on text files; write tokenizer.json + tokenizer_config.json',
  builder: (y: Argv) =>
    y
      .option('corpus', { type: 'string', array: true, demandOption: true, describe: 'UTF-8 text file(s) to train on' })
      .option('vocab-size', { type: 'number', demandOption: true, describe: 'vocabulary size, special tokens included (>= 261)' })
      .option('out', { type: 'string', demandOption: true, describe: 'output folder' })
      .option('min-pair-count', { type: 'number', default: 2, describe: 'never merge a pair seen fewer times' }) as unknown as Argv<TrainArgs>,
  handler: async (args) => {
    const start = performance.now();
    const result = await trainTokenizer({
      corpusFiles: args.corpus,
      vocabSize: args['vocab-size'],
      outDir: args.out,
      minPairCount: args['min-pair-count'],
    });
    const seconds = (performance.now() - start) / 1000;
    console.log(
      `wrote ${args.out}/tokenizer.json: vocabulary ${result.vocabSize} (${result.numMerges} merges) from ` +
        `${(result.corpusBytes / 1e6).toFixed(1)} MB, ${result.uniqueWords} unique words, in ${seconds.toFixed(1)} s`,
    );
    if (result.vocabSize < args['vocab-size']) {
      console.log(`note: stopped below --vocab-size ${args['vocab-size']}: no pair left seen ${args['min-pair-count']}+ times`);
    }
  },
};

/** `rlhf tokenizer train`. */
export const tokenizerCommand: CommandModule = {
  command: 'tokenizer <command>',
  describe: 'Tokenizer tools: train',
  builder: (y: Argv) => y.command(tokenizerTrainCommand).demandCommand(1),
  handler: () => {},
};
