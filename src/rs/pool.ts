/** Step 3's other side: the previous round's pool (pool.jsonl), re-scored by this round's reward model. */
import { readJsonl } from '../data/index.js';
import { promptKey, readExcludedPrompts, withoutExcluded } from '../data/prompts.js';
import { UserError } from '../errors.js';
import { resolveDataPath } from '../paths.js';
import type { RsConfig } from './config.js';
import type { ReplyScorer } from './sampling.js';
import type { PoolEntry } from './select.js';

/** The previous round's pool, every reply re-scored by this round's reward model (their old rewards came from another one). */
export async function readPool(
  file: string,
  score: ReplyScorer,
  cfg: RsConfig,
  log: (m: string) => void,
): Promise<Map<string, PoolEntry>> {
  const rows: PoolEntry[] = [];
  for await (const r of readJsonl(file)) {
    if (r.error !== undefined) throw new UserError(`rs.pool: ${file} line ${r.row}: ${r.error}`);
    const v = r.value as Partial<PoolEntry>;
    if (!Array.isArray(v.prompt) || typeof v.reply !== 'string') {
      throw new UserError(`rs.pool: ${file} line ${r.row}: expected {prompt: messages, reply: text, ...} (a pool.jsonl written by rlhf rs)`);
    }
    rows.push({ prompt: v.prompt, reply: v.reply, reward: 0, origin: typeof v.origin === 'string' ? v.origin : file });
  }
  // The exclusion guard holds for the pool too: a pool from an older run without it cannot leak held-out prompts.
  const excluded = await readExcludedPrompts(cfg.data.exclude.map(resolveDataPath));
  const { kept, dropped } = withoutExcluded(rows, (e) => e.prompt, excluded);
  if (dropped > 0) log(`rs: ${dropped} pool prompts are in data.exclude; dropped from the pool`);
  const rewards = await score(kept.map((e) => e.prompt), kept.map((e) => e.reply));
  const pool = new Map<string, PoolEntry>();
  kept.forEach((e, i) => pool.set(promptKey(e.prompt), { ...e, reward: rewards[i]! }));
  log(`rs: pool of ${pool.size} best replies from ${file}, re-scored by this round's reward model`);
  return pool;
}
