import { EventEmitter } from 'node:events';
import { StopSignal } from '../../src/training/stop-signal.js';

describe('StopSignal', () => {
  test('first signal sets the flag and exit code, second exits at once; dispose removes handlers', () => {
    const target = new EventEmitter();
    const exits: number[] = [];
    const stop = new StopSignal(target, (c) => exits.push(c), () => {});
    expect(stop.requested).toBe(false);
    expect(stop.exitCode).toBe(0);
    target.emit('SIGTERM');
    expect(stop.requested).toBe(true);
    expect(stop.exitCode).toBe(143);
    expect(exits).toEqual([]);
    target.emit('SIGINT');
    expect(exits).toEqual([130]);
    stop.dispose();
    expect(target.listenerCount('SIGINT') + target.listenerCount('SIGTERM')).toBe(0);
  });
  test('SIGINT gives 130', () => {
    const target = new EventEmitter();
    const stop = new StopSignal(target, () => {}, () => {});
    target.emit('SIGINT');
    expect(stop.exitCode).toBe(130);
    stop.dispose();
  });
});
