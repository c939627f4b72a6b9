import type { CommandModule } from 'yargs';

/**
 * Every `rlhf` command, one module each (src/cli/<name>.ts). A command is listed here only once
 * its stage or tool exists — never a "not implemented" placeholder.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [];
