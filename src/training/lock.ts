/**
 * One run per stage folder. Two runs started into the same `output_dir` would interleave their
 * metrics.jsonl rows and checkpoints (and one would clear the other's on a fresh start), so a run
 * holds an exclusive lock file in the folder from before it reads, clears or trims anything there
 * until it closes.
 *
 *   <output_dir>/.rlhf.lock   {"pid": 1234, "host": "box", "started": "2026-…Z", "stage": "sft", "proc_start": "…"}
 *
 * - Taken atomically: the holder's record is written to a private file that is hard-linked to the
 *   lock name (link fails if the name exists), so nobody ever reads a half-written lock.
 * - A lock whose holder is gone (kill -9, power loss) is stale and taken over: same host, and the
 *   pid no longer exists or now belongs to a process that started at another time (pid reuse,
 *   checked through /proc where there is one). A lock from another host cannot be checked and is
 *   never taken over; the message says which file to delete.
 * - Re-entrant within one process (GAtt holds its folder and runs the SFT recipe in it): a count
 *   per folder; the file goes when the last holder releases, or when the process exits.
 */
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';

export const LOCK_FILE = '.rlhf.lock';

/** What a lock file records about its holder. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the holder took the lock. */
  started: string;
  stage: string;
  /** The holder process's start time as the kernel counts it (/proc/<pid>/stat field 22); null without /proc. */
  proc_start: string | null;
}

export interface RunLock {
  /** The lock file's path. */
  readonly path: string;
  /** Give the lock back (the file is removed when this process's last holder of the folder releases it). */
  release(): void;
}

/** Folders this process holds: absolute dir → how many holders and the record written. */
const held = new Map<string, { count: number; holder: LockHolder }>();
let exitHookInstalled = false;
let tmpCounter = 0;

/**
 * Take the lock on `dir` (made if missing) for `stage`, or throw a UserError naming the holder.
 * Nothing else in the folder is read or written.
 */
export function acquireRunLock(dir: string, stage: string): RunLock {
  let abs = resolve(dir);
  try {
    mkdirSync(abs, { recursive: true });
    abs = realpathSync(abs); // one key per folder, however it is spelled
  } catch (e) {
    throw new UserError(`output_dir ${abs}: cannot write there (${(e as Error).message}); choose another output_dir`);
  }
  const path = join(abs, LOCK_FILE);
  const mine = held.get(abs);
  if (mine) {
    mine.count++;
    return lockHandle(abs, path);
  }
  const holder: LockHolder = {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
    stage,
    proc_start: processStartTime(process.pid),
  };
  // Retried after a stale lock was moved out of the way, or a lock vanished while being read.
  for (let attempt = 0; attempt < 3; attempt++) {
    if (tryCreate(abs, path, holder)) {
      held.set(abs, { count: 1, holder });
      installExitHook();
      return lockHandle(abs, path);
    }
    const current = readHolder(path);
    if (current === 'gone') continue; // released between our attempt and the read: try again
    if (current !== 'unreadable' && !isStale(current)) throw heldError(abs, path, current);
    if (!moveStaleAside(path, current)) continue;
  }
  const now = readHolder(path);
  throw now === 'gone' || now === 'unreadable'
    ? new UserError(`output_dir ${abs}: could not take ${path} (another run keeps taking it); try again`)
    : heldError(abs, path, now);
}

/** The holder recorded in `dir`'s lock, or null when the folder is not locked (for messages and tests). */
export function readRunLock(dir: string): LockHolder | null {
  const h = readHolder(join(resolve(dir), LOCK_FILE));
  return h === 'gone' || h === 'unreadable' ? null : h;
}

function lockHandle(abs: string, path: string): RunLock {
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      const entry = held.get(abs);
      if (!entry) return;
      if (--entry.count > 0) return;
      held.delete(abs);
      removeIfOurs(path, entry.holder);
    },
  };
}

/** Write the record to a private file and link it to the lock name; false when the name exists. */
function tryCreate(abs: string, path: string, holder: LockHolder): boolean {
  const tmp = join(abs, `${LOCK_FILE}.${process.pid}.${++tmpCounter}.tmp`);
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify(holder) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new UserError(`output_dir ${abs}: cannot write there (${(e as Error).message}); choose another output_dir`);
  }
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new UserError(`output_dir ${abs}: cannot create ${path} (${(e as Error).message}); choose another output_dir`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

function readHolder(path: string): LockHolder | 'gone' | 'unreadable' {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : 'unreadable';
  }
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid !== 'number' || typeof h.host !== 'string') return 'unreadable';
    return {
      pid: h.pid,
      host: h.host,
      started: String(h.started ?? 'unknown'),
      stage: String(h.stage ?? 'unknown'),
      proc_start: typeof h.proc_start === 'string' ? h.proc_start : null,
    };
  } catch {
    return 'unreadable';
  }
}

/** The holder is known to be gone: same host, and its pid is free or now names another process. */
export function isStale(h: LockHolder): boolean {
  if (h.host !== hostname()) return false;
  // Our own pid in a lock this process does not hold (those are re-entered before this): an earlier process with this pid.
  if (h.pid === process.pid) return true;
  if (!pidAlive(h.pid)) return true;
  const start = processStartTime(h.pid);
  return h.proc_start !== null && start !== null && start !== h.proc_start;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by another user
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); null where there is no /proc. */
function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null; // fields 3… → index 0 is field 3, so field 22 is index 19
  } catch {
    return null;
  }
}

/**
 * Move a stale lock out of the way, atomically: rename it to a private name, then check it is the
 * record judged stale (another run may have taken the name over in between; its lock is put back).
 */
function moveStaleAside(path: string, stale: LockHolder | 'unreadable'): boolean {
  const aside = `${path}.stale.${process.pid}.${++tmpCounter}`;
  try {
    renameSync(path, aside);
  } catch {
    return false; // someone else moved it first
  }
  const moved = readHolder(aside);
  const same =
    stale === 'unreadable' ? moved === 'unreadable' : moved !== 'gone' && moved !== 'unreadable' && moved.pid === stale.pid && moved.started === stale.started;
  if (!same) {
    try {
      linkSync(aside, path); // a live lock taken in between: put it back (fails only if yet another run holds the name)
    } catch {
      /* the name is held again either way */
    }
  }
  rmSync(aside, { force: true });
  return true;
}

function removeIfOurs(path: string, holder: LockHolder): void {
  const current = readHolder(path);
  if (current !== 'gone' && current !== 'unreadable' && current.pid === holder.pid && current.started === holder.started) {
    rmSync(path, { force: true });
  }
}

function heldError(abs: string, path: string, h: LockHolder): UserError {
  const where = h.host === hostname() ? `pid ${h.pid} on this host (${h.host})` : `pid ${h.pid} on host ${h.host}`;
  return new UserError(
    `output_dir ${abs}: another run is working in this folder: ${h.stage} run by ${where}, started ${h.started}. ` +
      `Wait for it to end or choose another output_dir` +
      (h.host === hostname() ? '.' : `; if that run is gone, delete ${path}.`),
  );
}

/** A process that exits without closing its runs (process.exit after a signal) leaves no lock behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [dir, entry] of held) removeIfOurs(join(dir, LOCK_FILE), entry.holder);
    held.clear();
  });
}
