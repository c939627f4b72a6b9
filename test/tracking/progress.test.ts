import { ConsoleProgress, formatDuration, formatMetrics, formatMetricValue, progressLine } from '../../src/tracking/progress.js';

class CaptureStream {
  text = '';
  constructor(readonly isTTY: boolean, readonly columns = 200) {}
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

describe('progress formatting', () => {
  it('formats metric values, durations and a whole line', () => {
    expect([0.53214, 12.3456, 3e-4, 123456, 0, -2.5, NaN].map(formatMetricValue))
      .toEqual(['0.5321', '12.35', '3.00e-4', '1.23e+5', '0', '-2.5', 'NaN']);
    expect([4_000, 214_000, 3_723_000, -1].map(formatDuration)).toEqual(['4s', '3m34s', '1h02m03s', '?']);
    expect(formatMetrics({ lr: 3e-4, loss: 2.5, kl: 0.01 }, ['loss', 'kl', 'missing'])).toBe('loss=2.5 kl=0.01');
    expect(progressLine({ label: '[ppo] ', step: 30, total: 120, elapsedMs: 60_000, stepsDone: 30, metrics: 'kl=0.01' }))
      .toBe('[ppo] step 30/120 (25.0%) | kl=0.01 | 0.50 it/s | elapsed 1m00s | ETA 3m00s');
  });
});

describe('ConsoleProgress', () => {
  it('not a TTY: a plain line every N steps (and at the end), none in between', () => {
    const stream = new CaptureStream(false);
    let now = 0;
    const progress = new ConsoleProgress({ total: 100, label: 'sft', stream, everySteps: 25, everyMs: 1e9, clock: () => now });
    for (let step = 1; step <= 100; step++) {
      now = step * 100;
      progress.update(step, { loss: 3 - step / 100 });
    }
    progress.stop();
    expect(stream.text.split('\n')).toEqual([
      '[sft] step 1/100 (1.0%) | loss=2.99 | 10.00 it/s | elapsed 0s | ETA 10s',
      '[sft] step 26/100 (26.0%) | loss=2.74 | 10.00 it/s | elapsed 3s | ETA 7s',
      '[sft] step 51/100 (51.0%) | loss=2.49 | 10.00 it/s | elapsed 5s | ETA 5s',
      '[sft] step 76/100 (76.0%) | loss=2.24 | 10.00 it/s | elapsed 8s | ETA 2s',
      '[sft] step 100/100 (100.0%) | loss=2 | 10.00 it/s | elapsed 10s | ETA 0s',
      '',
    ]);
  });

  it('not a TTY: also prints when the time interval passes; stop prints a last unprinted step', () => {
    const stream = new CaptureStream(false);
    let now = 0;
    const progress = new ConsoleProgress({ total: 1000, stream, everySteps: 500, everyMs: 60_000, clock: () => now });
    progress.update(1);
    now = 59_000;
    progress.update(2);
    now = 61_000;
    progress.update(3);
    now = 62_000;
    progress.update(4);
    progress.stop();
    expect(stream.text.split('\n').map((l) => l.split(' | ')[0])).toEqual(['step 1/1000 (0.1%)', 'step 3/1000 (0.3%)', 'step 4/1000 (0.4%)', '']);
  });

  it('TTY: draws a cli-progress bar with the latest metrics and stops cleanly', () => {
    const stream = new CaptureStream(true);
    const progress = new ConsoleProgress({ total: 10, label: 'rm', stream });
    for (let step = 1; step <= 10; step++) progress.update(step, { acc: step / 10 });
    progress.stop();
    expect(stream.text).toContain('[rm] ');
    expect(stream.text).toContain('10/10 100% | ETA 0s | acc=1');
    expect(stream.text).toMatch(/\n$/);
  });
});
