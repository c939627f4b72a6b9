/** `rlhf cp CONFIG DEST`: copy a shipped config (by name or path) to edit as your own. */
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { findConfig } from '../config/index.js';
import type { CliIo } from './main.js';

interface CpArgs {
  config: string;
  dest: string;
  force: boolean;
}

/** Where `rlhf cp` writes: into DEST when it is a folder (or ends with /), else DEST itself. */
export function copyTarget(source: string, dest: string): string {
  const isFolder = /[/\\]$/.test(dest) || (existsSync(dest) && statSync(dest).isDirectory());
  return isFolder ? join(dest, basename(source)) : dest;
}

export function cpCommand(io: CliIo): CommandModule<object, CpArgs> {
  return {
    command: 'cp <config> <dest>',
    describe: 'Copy a shipped config (name from rlhf ls, or a path) to DEST',
    builder: (y: Argv) =>
      y
        .positional('config', { type: 'string', demandOption: true, describe: 'Shipped config name (e.g. sft/tiny_lora) or path' })
        .positional('dest', { type: 'string', demandOption: true, describe: 'File or folder to copy to' })
        .option('force', { type: 'boolean', default: false, describe: 'Overwrite DEST if it exists' }),
    handler: (args) => {
      const source = findConfig(args.config);
      const target = copyTarget(source, args.dest);
      if (existsSync(target) && !args.force) {
        throw new UserError(`${target}: already exists (use --force to overwrite)`);
      }
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(source, target);
      const shown = relative(process.cwd(), source); // shipped configs: configs/sft/x.yaml, not /usr/lib/…
      io.out(`copied ${shown.startsWith('..') ? source : shown} to ${target}`);
    },
  };
}
