import yargs, { type CommandModule } from 'yargs';

/**
 * Parse `argv` with one command module registered, as `rlhf` would; parse failures and errors are
 * thrown (main.ts turns them into exit 2). Returns the lines the command printed with console.log.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function runCommand(command: CommandModule<any, any>, argv: string[]): Promise<string[]> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    await yargs(argv)
      .command(command)
      .strict()
      .exitProcess(false)
      .fail((message, error) => {
        throw error ?? new Error(message);
      })
      .parseAsync();
  } finally {
    console.log = log;
  }
  return lines;
}
