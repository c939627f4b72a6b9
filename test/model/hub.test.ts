/**
 * Hub ids resolved in a local Hugging Face cache laid out as huggingface_hub writes it
 * (models--org--name/refs/main → snapshots/<commit>/, files linked into blobs/); nothing downloaded.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hubCacheDir, resolveModelPath } from '../../src/model/hub.js';
import { loadHfModel } from '../../src/model/index.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { initEngine } from '../../src/engine/index.js';

const COMMIT = '0123456789abcdef0123456789abcdef01234567';
let cache: string;
let savedEnv: NodeJS.ProcessEnv;

/** A cache holding `org/tiny` (a qwen3 checkpoint + a Qwen tokenizer) at refs/main and a `v1` tag. */
function makeCache(): string {
  const root = mkdtempSync(join(tmpdir(), 'hf-cache-'));
  const repo = join(root, 'models--org--tiny');
  const snap = join(repo, 'snapshots', COMMIT);
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  mkdirSync(snap, { recursive: true });
  mkdirSync(join(repo, 'refs'));
  const sources = [join('test', 'fixtures', 'transformers5', 'qwen3'), join('test', 'fixtures', 'tokenizers-families', 'qwen2')];
  let n = 0;
  for (const dir of sources) {
    for (const f of readdirSync(dir)) {
      if (f === 'expected.json') continue;
      const blob = join(repo, 'blobs', `blob${n++}`);
      copyFileSync(join(dir, f), blob);
      symlinkSync(join('..', '..', 'blobs', `blob${n - 1}`), join(snap, f)); // relative links, as huggingface_hub makes them
    }
  }
  writeFileSync(join(repo, 'refs', 'main'), COMMIT);
  writeFileSync(join(repo, 'refs', 'v1'), `${COMMIT}\n`);
  return root;
}

beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
  cache = makeCache();
  savedEnv = { ...process.env };
  process.env.HF_HUB_CACHE = cache;
});
afterAll(() => {
  process.env = savedEnv;
  rmSync(cache, { recursive: true, force: true });
});

describe('hub cache location', () => {
  it('follows huggingface_hub: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME, ~/.cache', () => {
    expect(hubCacheDir({ HF_HUB_CACHE: '/a', HF_HOME: '/b' })).toBe('/a');
    expect(hubCacheDir({ HUGGINGFACE_HUB_CACHE: '/c', HF_HOME: '/b' })).toBe('/c');
    expect(hubCacheDir({ HF_HOME: '/b', XDG_CACHE_HOME: '/x' })).toBe('/b/hub');
    expect(hubCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/huggingface/hub');
    expect(hubCacheDir({ HOME: '/h' })).toMatch(/\.cache\/huggingface\/hub$/);
  });
});

describe('resolveModelPath', () => {
  const snapshot = () => join(cache, 'models--org--tiny', 'snapshots', COMMIT);

  it('a hub id goes through refs/main to its snapshot; a tag and a commit hash work too', () => {
    expect(resolveModelPath('org/tiny')).toBe(snapshot());
    expect(resolveModelPath('org/tiny@v1')).toBe(snapshot());
    expect(resolveModelPath(`org/tiny@${COMMIT}`)).toBe(snapshot());
    // HF_HOME is honoured when HF_HUB_CACHE is not set.
    const home = join(cache, '..');
    expect(() => resolveModelPath('org/tiny', { HF_HOME: home })).toThrow(join(home, 'hub', 'models--org--tiny'));
  });

  it('local paths win and are returned unchanged; paths that are not hub ids are left to the loader', () => {
    const local = join('test', 'fixtures', 'transformers5', 'qwen3');
    expect(resolveModelPath(local)).toBe(local);
    expect(resolveModelPath('/no/such/dir')).toBe('/no/such/dir');
    expect(resolveModelPath('./org/tiny')).toBe('./org/tiny');
  });

  it('a missing id says where it looked and how to fetch it; a missing revision too', () => {
    expect(() => resolveModelPath('Org/absent-1B')).toThrow(
      `model "Org/absent-1B": not a local folder, and not in the Hugging Face cache (looked for ${join(cache, 'models--Org--absent-1B')}); fetch it with \`hf download Org/absent-1B\``,
    );
    expect(() => resolveModelPath('org/tiny@dev')).toThrow(/no snapshot for revision "dev".*hf download org\/tiny --revision dev/);
  });
});

describe('loading by hub id', () => {
  it('model and tokenizer load from the cached snapshot', async () => {
    const model = loadHfModel('org/tiny');
    try {
      expect(model.config.model_type).toBe('qwen3');
      expect(model.params.has('model.layers.0.self_attn.q_norm.weight')).toBe(true);
    } finally {
      model.dispose();
    }
    const tok = await loadTokenizer('org/tiny');
    expect(tok.eosId).toBe(tok.tokenToId('<|im_end|>'));
  });

  it('rlhf env --model ORG/NAME names the family and the RoPE variant', async () => {
    const { run } = await import('../../src/cli/main.js');
    const printed: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => void printed.push(a.join(' '));
    const io = { out: (t: string) => void printed.push(t), err: (t: string) => void printed.push(t), debug: false };
    try {
      expect(await run(['env', '--backend', 'cpu', '--model', 'org/tiny'], io)).toBe(0);
    } finally {
      console.log = log;
    }
    expect(printed.join('\n')).toContain('family: qwen3 (Qwen3ForCausalLM), RoPE default (θ 1000000), q/k RMSNorm per head');
    expect(readFileSync(join(cache, 'models--org--tiny', 'refs', 'main'), 'utf8')).toBe(COMMIT); // nothing rewritten
  });
});
