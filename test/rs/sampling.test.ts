import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message } from '../../src/data/schemas.js';
import { SAMPLES_FILE, chunkRng, promptsPerChunk, sampleAndScore, type ReplySampler, type ReplyScorer } from '../../src/rs/sampling.js';

/**
 * Sampling and scoring with a stub sampler (reply = prompt text + a number drawn from the chunk's
 * random source) and a stub scorer (reward = that number), so every kept sample is known in advance.
 */

let dir: string;
beforeAll(() => void (dir = mkdtempSync(join(tmpdir(), 'rs-sampling-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const prompts = Array.from({ length: 5 }, (_, i) => ({ key: `p${i}`, prompt: [{ role: 'user' as const, content: `Q${i}?` }] as Message[] }));

const stubSampler: ReplySampler = (ps, k, rng) => {
  const replies: string[] = [];
  for (const p of ps) for (let j = 0; j < k; j++) replies.push(`${p[0]!.content} ${rng.int(100)}`);
  return { replies, finished: replies.map(() => true) };
};
const stubScorer: ReplyScorer = (_ps, replies) => replies.map((r) => Number(r.split(' ')[1]));

const options = (sub: string, extra: Partial<Parameters<typeof sampleAndScore>[0]> = {}) => ({
  dir: join(dir, sub),
  prompts,
  k: 3,
  batchSize: 6, // 2 prompts per chunk → chunks {0,1}, {2,3}, {4}
  seed: 7,
  settings: { policy: 'stub' },
  sample: stubSampler,
  score: stubScorer,
  ...extra,
});

/** What the stub draws for prompt i: chunk ⌊i/2⌋'s random source, in prompt-major order. */
function expectedNumbers(): number[][] {
  const out: number[][] = [];
  for (let c = 0; c < 3; c++) {
    const rng = chunkRng(7, c);
    for (let i = c * 2; i < Math.min(5, c * 2 + 2); i++) out.push([rng.int(100), rng.int(100), rng.int(100)]);
  }
  return out;
}

describe('sampleAndScore', () => {
  test('chunks of ⌊batch/K⌋ prompts, K samples each, rewards beside their replies', async () => {
    expect(promptsPerChunk(6, 3)).toBe(2);
    expect(promptsPerChunk(4, 8)).toBe(1);
    const chunks: number[] = [];
    const r = await sampleAndScore(options('plain', { onChunk: (done) => void chunks.push(done) }));
    expect(r.complete).toBe(true);
    if (!r.complete) return;
    expect(chunks).toEqual([1, 2, 3]);
    const nums = expectedNumbers();
    expect(r.prompts.map((p) => p.rewards)).toEqual(nums);
    expect(r.prompts.map((p) => p.replies)).toEqual(nums.map((ns, i) => ns.map((n) => `Q${i}? ${n}`)));
    expect(r.prompts.map((p) => p.index)).toEqual([0, 1, 2, 3, 4]);
    // Chunks have their own random sources: chunk 0 and chunk 1 draw different numbers.
    expect(nums[0]).not.toEqual(nums[2]);
  });

  test('a stop after chunk 1 keeps it; the resumed run draws exactly the uninterrupted samples', async () => {
    let calls = 0;
    const first = await sampleAndScore(options('resume', { shouldStop: async () => ++calls >= 1 }));
    expect(first).toEqual({ complete: false, chunksDone: 1, chunks: 3 });
    expect(readFileSync(join(dir, 'resume', SAMPLES_FILE), 'utf8').trim().split('\n')).toHaveLength(2);

    const sampled: number[] = [];
    const counting: ReplySampler = (ps, k, rng) => {
      sampled.push(ps.length);
      return stubSampler(ps, k, rng);
    };
    const rest = await sampleAndScore(options('resume', { sample: counting }));
    expect(sampled).toEqual([2, 1]); // chunk 0 was not drawn again
    expect(rest.complete && rest.reused).toBe(1);
    const plain = await sampleAndScore(options('plain'));
    expect(rest.complete && rest.prompts).toEqual(plain.complete && plain.prompts);
    expect(readFileSync(join(dir, 'resume', SAMPLES_FILE), 'utf8')).toBe(readFileSync(join(dir, 'plain', SAMPLES_FILE), 'utf8'));
  });

  test('a torn last line and a partial chunk are dropped and drawn again', async () => {
    await sampleAndScore(options('torn'));
    const file = join(dir, 'torn', SAMPLES_FILE);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    // Keep chunk 0 whole, half of chunk 1, and a torn line.
    writeFileSync(file, lines.slice(0, 3).join('\n') + '\n');
    appendFileSync(file, '{"chunk":1,"ind');
    const again = await sampleAndScore(options('torn'));
    expect(again.complete && again.reused).toBe(1);
    const plain = await sampleAndScore(options('plain'));
    expect(again.complete && again.prompts).toEqual(plain.complete && plain.prompts);
    expect(readFileSync(file, 'utf8')).toBe(readFileSync(join(dir, 'plain', SAMPLES_FILE), 'utf8'));
  });

  test('changed settings (another temperature, K or prompt list) draw everything again', async () => {
    await sampleAndScore(options('changed'));
    const drawn: number[] = [];
    const counting: ReplySampler = (ps, k, rng) => {
      drawn.push(ps.length);
      return stubSampler(ps, k, rng);
    };
    const r = await sampleAndScore(options('changed', { settings: { policy: 'stub', temperature: 0.5 }, sample: counting }));
    expect(drawn).toEqual([2, 2, 1]);
    expect(r.complete && r.reused).toBe(0);
    drawn.length = 0;
    await sampleAndScore(options('changed', { settings: { policy: 'stub', temperature: 0.5 }, sample: counting, prompts: prompts.slice(0, 4) }));
    expect(drawn).toEqual([2, 2]);
  });

  test('a scorer that returns the wrong count is an error', async () => {
    const short: ReplyScorer = (ps) => ps.slice(1).map(() => 0);
    await expect(sampleAndScore(options('short', { score: short }))).rejects.toThrow('chunk 0: 6 replies and 5 rewards for 6 samples');
  });
});
