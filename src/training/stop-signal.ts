/**
 * Graceful stop on SIGINT/SIGTERM: the first signal sets `requested`; the training loop checks it
 * after each step, writes a checkpoint and exits with `exitCode` (130 for SIGINT, 143 for SIGTERM,
 * the shell's 128 + signal number). A second signal exits at once.
 */
export type StopSignalName = 'SIGINT' | 'SIGTERM';

export const SIGNAL_EXIT_CODES: Record<StopSignalName, number> = { SIGINT: 130, SIGTERM: 143 };

interface SignalTarget {
  on(event: StopSignalName, listener: () => void): unknown;
  off(event: StopSignalName, listener: () => void): unknown;
}

export class StopSignal {
  requested = false;
  signal: StopSignalName | null = null;
  private readonly listeners = new Map<StopSignalName, () => void>();

  /** `target` and `exit` are injectable so tests need not signal the test runner itself. */
  constructor(
    private readonly target: SignalTarget = process,
    private readonly exit: (code: number) => void = (code) => process.exit(code),
    private readonly log: (msg: string) => void = (msg) => process.stderr.write(msg + '\n'),
  ) {
    for (const name of ['SIGINT', 'SIGTERM'] as const) {
      const listener = (): void => this.onSignal(name);
      this.listeners.set(name, listener);
      this.target.on(name, listener);
    }
  }

  /** Exit code for the received signal (0 when none). */
  get exitCode(): number {
    return this.signal ? SIGNAL_EXIT_CODES[this.signal] : 0;
  }

  private onSignal(name: StopSignalName): void {
    if (this.requested) {
      this.log(`${name} again: exiting now without a checkpoint`);
      this.exit(SIGNAL_EXIT_CODES[name]);
      return;
    }
    this.requested = true;
    this.signal = name;
    this.log(`${name}: finishing the current step, then writing a checkpoint (send again to exit at once)`);
  }

  /**
   * Whether a stop was requested, after letting pending signals in. Node runs signal handlers from
   * the event loop, which a training loop that only awaits already-settled promises never reaches:
   * `requested` alone stays false until training ends. Check `await stop.poll()` after each step.
   */
  async poll(): Promise<boolean> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    return this.requested;
  }

  /** Remove the handlers (at the end of training, so the default behaviour returns). */
  dispose(): void {
    for (const [name, listener] of this.listeners) this.target.off(name, listener);
    this.listeners.clear();
  }
}
