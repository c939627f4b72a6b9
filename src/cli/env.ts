/**
 * `rlhf env [--backend NAME] [--model DIR] [--json]`: the TF.js backend this machine gets, its
 * versions and patches; with `--model`, the model's parameter count and a memory estimate.
 */
import type { Argv, CommandModule } from 'yargs';
import { describeMatMulPath, initEngine, type BackendName, type EngineInfo } from '../engine/index.js';
import { describeModel, formatBytes } from '../model/describe.js';
import { memoryLimits, typicalRunFits } from '../training/memory-check.js';
import { loadHfConfig } from '../model/io/hf.js';

interface EnvArgs {
  backend: BackendName;
  json: boolean;
  model?: string;
}

export function formatEngineInfo(info: EngineInfo): string {
  const lines = [
    `backend:   ${info.backend}${info.requested !== info.backend ? ` (asked: ${info.requested})` : ''}`,
    `threads:   ${info.threads ?? 'managed by libtensorflow'}`,
    `simd:      ${info.simd === null ? 'n/a' : info.simd ? 'yes' : 'no'}`,
    ...(info.matmul !== null ? [`matmul:    ${describeMatMulPath(info.matmul)}`] : []),
    `backprop:  ${info.leanBackprop ? 'lean (gradients and saved activations freed as the backward pass goes)' : 'stock tfjs tape walk (RLHF_LEAN_BACKPROP=off)'}`,
    'versions:',
    ...Object.entries(info.versions).map(([k, v]) => `  ${k.padEnd(26)} ${v}`),
    'patched kernels:',
    ...(info.patchedKernels.length === 0 ? ['  (none on this backend)'] :
      info.patchedKernels.map((k) => `  ${k.name.padEnd(26)} ${k.reason}`)),
    'patched gradients:',
    ...info.patchedGradients.map((k) => `  ${k.name.padEnd(26)} ${k.reason}`),
  ];
  if (info.backend === 'wasm' && info.matmul?.path === 'blas') {
    lines.push(`note:      matmuls run on ${info.matmul.threads ?? 'the BLAS default number of'} BLAS thread(s) (RLHF_BLAS_THREADS); other wasm kernels run one thread under Node`);
  } else if (info.backend === 'wasm') {
    lines.push("note:      wasm runs one thread under Node; for multi-threaded matmuls build rlhf-kit's own GEMM with a C compiler (`npm run install` in the rlhf-kit folder) or install OpenBLAS (apt-get install libopenblas0-pthread), or use @tensorflow/tfjs-node(-gpu)");
  }
  return lines.join('\n');
}

export const envCommand: CommandModule<object, EnvArgs> = {
  command: 'env',
  describe: 'Show the TF.js backend, versions, threads, SIMD and patched kernels',
  builder: (y: Argv) => y
    .option('backend', {
      choices: ['auto', 'wasm', 'cpu', 'tensorflow'] as const,
      default: 'auto' as BackendName,
      describe: 'Backend to initialise (as engine.backend in a config)',
    })
    .option('model', { type: 'string', describe: 'An HF model folder, or a hub id in the local HF cache: also print its family, RoPE, parameter count and a memory estimate' })
    .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object' }) as Argv<EnvArgs>,
  handler: async (args) => {
    // Read the model's config first: a bad folder fails before the engine starts.
    const model = args.model === undefined ? null : describeModel(loadHfConfig(args.model));
    const info = await initEngine({ backend: args.backend });
    const limits = memoryLimits(info.backend);
    const fits = args.model === undefined ? null : typicalRunFits(loadHfConfig(args.model), limits);
    if (args.json) {
      const memory = fits === null ? undefined : { limits, runs: fits.map((f) => ({ run: f.run, peakBytes: f.estimate.totalBytes, heapBytes: f.estimate.heapBytes, fits: f.fits })) };
      console.log(JSON.stringify(model === null ? info : { ...info, model, memory }, null, 2));
      return;
    }
    console.log(formatEngineInfo(info));
    if (model !== null) console.log([`model:     ${args.model}`, ...model.lines.map((l) => `  ${l}`)].join('\n'));
    if (fits !== null) {
      const heap = limits.heapBytes === null ? '' : `wasm heap cap ${formatBytes(limits.heapBytes)}, `;
      console.log(`memory:    estimated peak of typical runs (${heap}RAM available ${formatBytes(limits.ramBytes)}):`);
      for (const f of fits) {
        const where = limits.heapBytes === null ? '' : ` (heap ${formatBytes(f.estimate.heapBytes)})`;
        console.log(`  ${f.run.padEnd(48)} ${formatBytes(f.estimate.totalBytes).padStart(9)}${where}  ${f.fits ? 'fits' : 'does not fit'}`);
      }
    }
  },
};
