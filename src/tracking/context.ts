import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import type { RunContext } from './types.js';

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    // No passwd entry (some containers): fall back to the environment, as Python's getpass does.
    return process.env.USER ?? process.env.USERNAME ?? process.env.LOGNAME ?? 'unknown';
  }
}

/** The real clock, random run ids, the OS user and the running script, with any field overridden. */
export function defaultRunContext(overrides: Partial<RunContext> = {}): RunContext {
  return {
    clock: overrides.clock ?? (() => Date.now()),
    newRunId: overrides.newRunId ?? (() => randomUUID().replace(/-/g, '')),
    user: overrides.user ?? currentUser(),
    sourceName: overrides.sourceName ?? process.argv[1] ?? 'rlhf',
  };
}
