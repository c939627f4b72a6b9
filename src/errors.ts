/**
 * Errors a user can cause (bad config, bad data row, missing file, shape mismatch).
 * The CLI prints `message` alone — no stack trace — and exits with `exitCode` (2 by default).
 * Put the file / row / key in the message: it is all the user sees.
 */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UserError';
    this.exitCode = options.exitCode ?? 2;
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
