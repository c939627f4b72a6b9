/**
 * Hub ids (`HuggingFaceTB/SmolLM2-135M-Instruct`, optionally `@revision`) resolved in the local
 * Hugging Face cache, as `huggingface_hub` lays it out — never downloaded:
 *   <cache>/models--<org>--<name>/refs/<revision>     a file holding a commit hash (`main` by default)
 *   <cache>/models--<org>--<name>/snapshots/<commit>/ the files of that commit (links into blobs/)
 * The cache is HF_HUB_CACHE, else the legacy HUGGINGFACE_HUB_CACHE, else HF_HOME/hub, else
 * XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (huggingface_hub's own order).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { UserError } from '../errors.js';

/** `org/name` or `org/name@revision`: one slash, no leading `.` or `/` (those are paths). */
const HUB_ID = /^([A-Za-z0-9][\w.-]*)\/([A-Za-z0-9][\w.-]*)(?:@([\w./-]+))?$/;

/** The hub cache folder for these environment variables. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, 'hub');
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'huggingface', 'hub');
  return join(homedir(), '.cache', 'huggingface', 'hub');
}

/** Whether `path` reads as a hub id rather than a path. */
export function looksLikeHubId(path: string): boolean {
  return !isAbsolute(path) && HUB_ID.test(path);
}

/**
 * A model folder for `path`: the path itself when it exists; for a hub id, its snapshot folder in
 * the local cache (an error saying where it looked and how to fetch it when absent); anything else
 * unchanged (the loader then reports the missing folder).
 */
export function resolveModelPath(path: string, env: NodeJS.ProcessEnv = process.env): string {
  if (existsSync(path) || !looksLikeHubId(path)) return path;
  const [, org, name, revision = 'main'] = HUB_ID.exec(path)!;
  const cache = hubCacheDir(env);
  const repo = join(cache, `models--${org}--${name}`);
  const fetch = `fetch it with \`hf download ${org}/${name}${revision === 'main' ? '' : ` --revision ${revision}`}\` (or \`huggingface-cli download\`), or give a local folder`;
  if (!isDir(repo)) {
    throw new UserError(`model "${path}": not a local folder, and not in the Hugging Face cache (looked for ${repo}); ${fetch}`);
  }
  // A commit hash names its snapshot directly; a branch or tag name goes through refs/.
  let commit = revision;
  const ref = join(repo, 'refs', revision);
  if (existsSync(ref)) commit = readFileSync(ref, 'utf8').trim();
  const snapshot = join(repo, 'snapshots', commit);
  if (!isDir(snapshot)) {
    throw new UserError(`model "${path}": the Hugging Face cache has ${repo} but no snapshot for revision "${revision}" (looked for ${snapshot}); ${fetch}`);
  }
  return snapshot;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
