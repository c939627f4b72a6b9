#!/usr/bin/env node
/**
 * `rlhf` — the command-line entry. `run(argv, io)` does everything and returns the exit code, so
 * tests call it in-process; the last lines run it when this file is the program.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { UserError, isUserError } from '../errors.js';
import { isOutOfMemoryError, outOfMemoryMessage } from '../training/memory-check.js';
import { packagePath } from '../paths.js';
import { commands } from './commands.js';
import { validateCommand } from './validate.js';
import { lsCommand } from './ls.js';
import { cpCommand } from './cp.js';

/** Where a command's output goes: the terminal, or a test's buffer. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Print stack traces (RLHF_DEBUG=1). */
  debug: boolean;
}

export const processIo: CliIo = {
  out: (text) => void process.stdout.write(text.endsWith('\n') ? text : text + '\n'),
  err: (text) => void process.stderr.write(text.endsWith('\n') ? text : text + '\n'),
  debug: process.env.RLHF_DEBUG === '1',
};

/** Bad command-line usage (unknown command or option, missing argument). */
class UsageError extends UserError {}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

/** Run `rlhf` with `argv` (the arguments after the program name); resolves to the exit code. */
export async function run(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const cli = yargs([...argv])
    .scriptName('rlhf')
    .usage('rlhf <command> [options]\n\nFine-tune and align small language models with the Llama 2 recipe.')
    .command(validateCommand(io))
    .command(lsCommand(io))
    .command(cpCommand(io))
    .command(commands)
    .demandCommand(1, 'Name a command.')
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .version(packageVersion())
    .wrap(100)
    .exitProcess(false)
    // Usage mistakes become exceptions, reported below like every other user error.
    .fail((message, error) => {
      throw error ?? new UsageError(`${message}\nRun 'rlhf --help' for the commands and their options.`);
    });
  try {
    await cli.parseAsync([...argv], {}, (_error, _args, output) => {
      if (output !== '') io.out(output); // --help / --version text
    });
    return 0;
  } catch (e) {
    return reportError(e, io);
  }
}

/** Print an error the way users should see it; returns the exit code. */
export function reportError(e: unknown, io: CliIo): number {
  if (isUserError(e)) {
    io.err(io.debug && e.stack !== undefined ? e.stack : e.message);
    return e.exitCode;
  }
  const error = e instanceof Error ? e : new Error(String(e));
  if (io.debug) io.err(error.stack ?? error.message);
  else if (isOutOfMemoryError(error)) io.err(outOfMemoryMessage(error)); // never a bare wasm abort
  else io.err(`error: ${error.message}\n(unexpected; rerun with RLHF_DEBUG=1 to see the stack trace)`);
  return 1;
}

function isProgramEntry(): boolean {
  const invoked = process.argv[1];
  if (invoked === undefined) return false;
  try {
    return realpathSync(invoked) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isProgramEntry()) {
  // exitCode rather than exit(): lets pending writes (tracking, stdout) finish.
  process.exitCode = await run(process.argv.slice(2));
}
