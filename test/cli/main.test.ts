import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { commonSections, registerStageSchema } from '../../src/config/index.js';
import { reportError, run, type CliIo } from '../../src/cli/main.js';

// A demo stage for these tests only (real stage schemas come with their stages).
registerStageSchema(
  'demo',
  z
    .strictObject({
      ...commonSections(),
      data: z.strictObject({ path: z.string().describe('Training file.') }).describe('Data.'),
    })
    .describe('A demo stage for tests.'),
);

interface Captured {
  code: number;
  out: string;
  err: string;
}

async function rlhf(...argv: string[]): Promise<Captured> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += t + '\n'), err: (t) => void (err += t + '\n'), debug: false };
  const code = await run(argv, io);
  return { code, out, err };
}

const dir = mkdtempSync(join(tmpdir(), 'rlhf-cli-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('rlhf validate', () => {
  it('prints three located errors for three mistakes and exits 2', async () => {
    const bad = file(
      'bad.yaml',
      ['# three mistakes', 'stage: demo', 'data: {path: a.jsonl}', 'train:', '  steps: ten', 'optim:', '  lr: -1', '  bettas: [0.9, 0.95]', ''].join('\n'),
    );
    const r = await rlhf('validate', bad);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe(
      [
        `${bad}:5:10 train.steps: expected number, received string`,
        `${bad}:7:7 optim.lr: must be > 0, received -1`,
        `${bad}:8:3 optim.bettas: unknown key (did you mean optim.betas?)`,
        `3 problems in ${bad}`,
        '',
      ].join('\n'),
    );
  });

  it('accepts a valid config with overrides, and prints the resolved config', async () => {
    const good = file('good.yaml', 'stage: demo\ndata: {path: a.jsonl}\n');
    expect(await rlhf('validate', good, 'optim.lr=1e-4')).toEqual({ code: 0, out: `${good}: valid demo config\n`, err: '' });
    const printed = await rlhf('validate', good, 'run.name=r2', '--print');
    expect(printed.code).toBe(0);
    expect(printed.out).toContain('\nstage: demo\nrun:\n  name: r2\noutput_dir: runs/r2/demo\n');
  });

  it('names a bad override', async () => {
    const good = file('good2.yaml', 'stage: demo\ndata: {path: a.jsonl}\n');
    const r = await rlhf('validate', good, 'engine.backend=webgl');
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe("override 'engine.backend=webgl' engine.backend: expected auto | wasm | cpu | tensorflow, received \"webgl\"");
  });

  it('lists the registered stages in its --help', async () => {
    const r = await rlhf('validate', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\n {2}demo +A demo stage for tests\.\n/);
  });
});

describe('rlhf ls', () => {
  it('lists stages and shipped configs', async () => {
    const r = await rlhf('ls');
    expect(r.code).toBe(0);
    // Other stages register themselves as they land; the demo stage must be among them.
    expect(r.out).toMatch(/^Stages \(rlhf <stage> --config FILE \[key=value \.\.\.\]\):\n(.*\n)*? {2}demo +A demo stage for tests\.\n(.*\n)*\nShipped configs/);
  });

  it("prints a stage's keys from its schema, and suggests a stage for a typo", async () => {
    const keys = await rlhf('ls', 'demo');
    expect(keys.out).toContain("Keys of stage 'demo':\n  run.name  (string; default default)\n");
    expect(keys.out).toContain('  data.path  (string; required)\n      Training file.\n');
    const md = await rlhf('ls', 'demo', '--markdown');
    expect(md.out).toContain('| `optim.lr` | number > 0 | `0.0003` | Peak learning rate (reached after warmup). |');
    const typo = await rlhf('ls', 'dmeo');
    expect(typo).toEqual({ code: 2, out: '', err: "unknown stage 'dmeo' (did you mean demo?); 'rlhf ls' lists the stages\n" });
  });
});

describe('rlhf cp', () => {
  it('copies a config, refuses to overwrite without --force, copies into a folder', async () => {
    const src = file('src.yaml', '# mine\nstage: demo\n');
    const dest = join(dir, 'copies', 'a.yaml');
    expect(await rlhf('cp', src, dest)).toEqual({ code: 0, out: `copied ${src} to ${dest}\n`, err: '' });
    expect(readFileSync(dest, 'utf8')).toBe('# mine\nstage: demo\n');
    expect(await rlhf('cp', src, dest)).toEqual({ code: 2, out: '', err: `${dest}: already exists (use --force to overwrite)\n` });
    expect((await rlhf('cp', src, dest, '--force')).code).toBe(0);
    mkdirSync(join(dir, 'folder'));
    expect((await rlhf('cp', src, join(dir, 'folder'))).code).toBe(0);
    expect(existsSync(join(dir, 'folder', 'src.yaml'))).toBe(true);
  });

  it('explains an unknown config name', async () => {
    const r = await rlhf('cp', 'no/such_config', join(dir, 'x.yaml'));
    expect(r.code).toBe(2);
    expect(r.err).toContain("no/such_config: no such file, nor a shipped config of that name");
  });
});

describe('rlhf', () => {
  it('shows help for --help and exits 0', async () => {
    const r = await rlhf('--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('rlhf validate <config> [overrides..]');
    expect(r.out).toContain('rlhf cp <config> <dest>');
  });

  it('exits 2 on usage mistakes, with a suggestion', async () => {
    const r = await rlhf('validat', 'x.yaml');
    expect(r.code).toBe(2);
    expect(r.err).toBe("Did you mean validate?\nRun 'rlhf --help' for the commands and their options.\n");
    expect((await rlhf()).err).toContain('Name a command.');
    expect((await rlhf('ls', '--bogus')).err).toContain('Unknown argument: bogus');
  });

  it('reports an unexpected error with a hint, and its stack under RLHF_DEBUG', () => {
    const lines: string[] = [];
    const io = (debug: boolean): CliIo => ({ out: () => undefined, err: (t) => void lines.push(t), debug });
    expect(reportError(new TypeError('x is undefined'), io(false))).toBe(1);
    expect(lines[0]).toBe('error: x is undefined\n(unexpected; rerun with RLHF_DEBUG=1 to see the stack trace)');
    expect(reportError(new TypeError('x is undefined'), io(true))).toBe(1);
    expect(lines[1]).toMatch(/^TypeError: x is undefined\n\s+at /);
  });
});
