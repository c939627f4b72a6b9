import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';

/**
 * A leaner `tf.engine().gradients` (what `tf.grad(s)`, `tf.valueAndGrad(s)` and `tf.variableGrads`
 * all call). tfjs-core 4.22's tape walk keeps every intermediate gradient, and every forward tensor
 * saved for the backward pass, until the whole gradient computation ends: a training step's memory
 * peaks at activations + all gradients. Here, walking the tape backward:
 *  - a node's output gradients are disposed as soon as its input gradients are computed (nothing
 *    later in the walk reads them: every consumer of a tensor comes after it on the tape);
 *  - its saved forward tensors are disposed right after its gradient ran (each node holds its own
 *    clones, so the data goes when its last consumer is done);
 *  - saved tensors of nodes that do not lie between xs and y (e.g. a frozen base under LoRA) are
 *    released before the walk starts.
 *  - kernels whose gradient reads only the *shapes* of its inputs (Add, Reshape, Sum, Slice, …)
 *    save a shape record instead of the tensor, so the forward pass does not pin those activations;
 *  - other saved tensors share their source's data instead of being copied (the wasm Identity copies).
 * Results, errors and the tape bookkeeping follow tfjs; under higher-order gradients (a gradient
 * taken inside another) nothing is released early, as tfjs needs the tape again.
 */

/** The engine internals the walk uses (tfjs-core 4.x `Engine`; not part of its public types). */
export interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, Tensor>;
  outputs: Tensor[];
  saved?: Tensor[];
  gradient?: (dys: Tensor[]) => Record<string, () => Tensor>;
}

type GradientsFn = (f: () => Tensor, xs: Tensor[], dy?: Tensor, allowNoGradients?: boolean) => { value: Tensor; grads: Tensor[] };

interface BackendInternals {
  incRef?: (dataId: object) => void;
}

interface EngineInternals {
  state: {
    activeTape: TapeNode[] | null;
    gradientDepth: number;
    tensorInfo: { get(dataId: object): { backend: BackendInternals } | undefined };
  };
  makeTensorFromTensorInfo(info: { dataId: object; shape: number[]; dtype: tf.DataType }, backend: BackendInternals): Tensor;
  getTensorsForGradient(kernelName: string, inputs: Record<string, Tensor>, outputs: Tensor[]): Tensor[];
  saveTensorsForBackwardMode(tensors: Tensor[]): Tensor[];
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T>(nameOrFn: string | (() => T), fn?: () => T): T;
  keep<T extends Tensor>(t: T): T;
  clone<T extends Tensor>(t: T): T;
  gradients: GradientsFn;
}

function engine(): EngineInternals {
  return tf.engine() as unknown as EngineInternals;
}

/**
 * The nodes on a path from some x to y, in tape order, each with only the inputs that depend on an
 * x (the gradient is asked for those inputs only).
 */
export function nodesBetween(tape: readonly TapeNode[], xs: readonly Tensor[], y: Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const reachable = new Set<number>(); // node ids with an input that depends on an x
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      reachable.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  }
  const toY = new Set([y.id]);
  const leads = new Set<number>(); // node ids with an output that leads to y
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    if (node.outputs.some((o) => toY.has(o.id))) {
      leads.add(node.id);
      for (const t of Object.values(node.inputs)) toY.add(t.id);
    }
  }
  const out: TapeNode[] = [];
  for (const node of tape) {
    if (!reachable.has(node.id) || !leads.has(node.id)) continue;
    const inputs: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(node.inputs)) if (fromX.has(t.id)) inputs[name] = t;
    out.push({ ...node, inputs });
  }
  return out;
}

function disposeSaved(node: TapeNode): void {
  for (const t of node.saved ?? []) t.dispose();
}

/**
 * Gradients by tensor id. One tensor object may stand for several ids (a gradient function can hand
 * its dy through as an input's gradient), so each object counts its entries and is disposed only
 * when it has none left and the caller does not own it.
 */
class GradientMap {
  private readonly byId = new Map<number, Tensor>();
  private readonly refs = new Map<Tensor, number>();
  constructor(private readonly owned: ReadonlySet<Tensor>) {}

  get(id: number): Tensor | undefined {
    return this.byId.get(id);
  }

  set(id: number, g: Tensor): void {
    this.delete(id, false);
    this.byId.set(id, g);
    this.refs.set(g, (this.refs.get(g) ?? 0) + 1);
  }

  /** Forget `id`; free its tensor when `free` and nothing else refers to it. */
  delete(id: number, free: boolean): void {
    const g = this.byId.get(id);
    if (g === undefined) return;
    this.byId.delete(id);
    const n = (this.refs.get(g) ?? 1) - 1;
    if (n > 0) {
      this.refs.set(g, n);
      return;
    }
    this.refs.delete(g);
    if (free) this.release(g);
  }

  /** Free a tensor that no entry holds (a summand, a dy nobody kept). */
  release(g: Tensor): void {
    if (!this.refs.has(g) && !this.owned.has(g)) g.dispose();
  }
}

/** Walk `path` backward from `grads` (seeded with y's gradient), accumulating into `grads`. */
function backprop(path: readonly TapeNode[], grads: GradientMap, keepIds: ReadonlySet<number>, releaseEarly: boolean): void {
  const eng = engine();
  for (let i = path.length - 1; i >= 0; i--) {
    const node = path[i]!;
    if (node.gradient == null) {
      throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
    }
    // An output off the path to y still needs a dy: zeros, which we own and free below.
    const zeros: Tensor[] = [];
    const dys = node.outputs.map((o) => {
      const g = grads.get(o.id);
      if (g !== undefined) return g;
      const z = tf.zeros(o.shape, o.dtype);
      zeros.push(z);
      return z;
    });
    const inputGrads = node.gradient(dys);
    for (const [name, x] of Object.entries(node.inputs)) {
      if (!(name in inputGrads)) {
        throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(inputGrads)}.`);
      }
      const dx = eng.tidy(() => inputGrads[name]!());
      if (dx.dtype !== 'float32') {
        throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`);
      }
      if (!tf.util.arraysEqual(dx.shape, x.shape)) {
        throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`);
      }
      const prev = grads.get(x.id);
      if (prev === undefined) {
        grads.set(x.id, dx);
      } else {
        grads.set(x.id, tf.add(prev, dx)); // drops prev's entry
        if (releaseEarly) {
          grads.release(prev);
          if (dx !== prev) grads.release(dx);
        }
      }
    }
    if (releaseEarly) {
      for (const o of node.outputs) if (!keepIds.has(o.id)) grads.delete(o.id, true);
      disposeSaved(node);
    }
    for (const z of zeros) grads.release(z);
  }
}

/** The xs of the gradient whose forward is running now (null outside one, or under the stock walk). */
let targets: ReadonlySet<Tensor> | null = null;

/**
 * What the innermost running gradient computation differentiates with respect to (its xs), while
 * its forward runs; null when unknown (no gradient, or the stock tfjs walk). Lets an op that hands
 * gradients to variables (gradient checkpointing) compute only the ones asked for.
 */
export function gradientTargets(): ReadonlySet<Tensor> | null {
  return targets;
}

/** Drop-in for tfjs-core's `Engine.gradients` (same arguments, results and errors). */
function leanGradients(this: EngineInternals, f: () => Tensor, xs: Tensor[], dy?: Tensor, allowNoGradients = false): { value: Tensor; grads: Tensor[] } {
  tf.util.assert(xs.length > 0, () => 'gradients() received an empty list of xs.');
  if (dy != null && dy.dtype !== 'float32') throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
  const outerTargets = targets;
  targets = new Set(xs);
  let y: Tensor;
  try {
    y = this.scopedRun(() => this.startTape(), () => this.endTape(), () => this.tidy('forward', f));
  } finally {
    targets = outerTargets;
  }
  tf.util.assert(y instanceof tf.Tensor, () => 'The result y returned by f() must be a tensor.');
  const tape = this.state.activeTape!;
  const path = nodesBetween(tape, xs, y);
  if (!allowNoGradients && path.length === 0 && xs.length > 0) {
    throw new Error('Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all operations that lead from x to y.');
  }
  // Outermost gradient: nobody will walk this tape again, so memory can go as soon as it is used.
  const releaseEarly = this.state.gradientDepth === 0;
  if (releaseEarly) {
    const onPath = new Set(path.map((n) => n.id));
    for (const node of tape) if (!onPath.has(node.id)) disposeSaved(node);
  }
  return this.tidy('backward', () => {
    const grads = new GradientMap(new Set(dy != null ? [dy] : []));
    grads.set(y.id, dy ?? tf.ones(y.shape));
    backprop(path, grads, new Set(xs.map((x) => x.id)), releaseEarly);
    const result = xs.map((x) => grads.get(x.id)!);
    if (this.state.gradientDepth === 0) {
      for (const node of tape) disposeSaved(node);
      this.state.activeTape = null;
    }
    return { value: y, grads: result };
  });
}

/**
 * Kernels (tfjs-core 4.22 gradients, and ours for StridedSlice) whose gradient function reads only
 * `shape`, `rank`, `size` or `dtype` of what it saved — never the values.
 */
export const SHAPE_ONLY_GRADIENTS: ReadonlySet<string> = new Set([
  'Add', 'Sub', 'AddN', 'Reshape', 'ExpandDims', 'Sum', 'Mean', 'Slice', 'StridedSlice', 'PadV2', 'Concat', 'Pack',
]);

/** What a shape-only gradient gets instead of a saved tensor: the metadata, no data to pin. */
class SavedShape {
  readonly size: number;
  readonly rank: number;
  readonly isDisposed = false;
  constructor(readonly shape: number[], readonly dtype: tf.DataType) {
    this.size = tf.util.sizeFromShape(shape);
    this.rank = shape.length;
  }

  dispose(): void {}
}

function leanTensorsForGradient(this: EngineInternals, kernelName: string, inputs: Record<string, Tensor>, outputs: Tensor[]): Tensor[] {
  const tensors = proto().getTensorsForGradient.call(this, kernelName, inputs, outputs);
  if (!SHAPE_ONLY_GRADIENTS.has(kernelName) || this.state.gradientDepth > 1) return tensors;
  return tensors.map((t) => new SavedShape(t.shape.slice(), t.dtype) as unknown as Tensor);
}

/**
 * What tfjs saves is `keep(clone(t))`, and wasm's Identity kernel copies the data: every saved
 * activation was a second copy. Immutable data can be shared instead — a new tensor on the same
 * data id, its backend ref count raised (what the cpu backend's Identity does anyway).
 */
function leanSaveTensors(this: EngineInternals, tensors: Tensor[]): Tensor[] {
  // Inside a gradient that is itself differentiated, the saved copy must stay linked to its source
  // on the outer tape (the stock clone records that link), so share only at depth 1.
  if (this.state.gradientDepth > 1) return proto().saveTensorsForBackwardMode.call(this, tensors);
  return tensors.map((t) => {
    if (t instanceof SavedShape) return t;
    const backend = this.state.tensorInfo.get(t.dataId)?.backend;
    if (backend?.incRef === undefined || t.dtype === 'string') return this.keep(this.clone(t));
    backend.incRef(t.dataId);
    return this.keep(this.makeTensorFromTensorInfo({ dataId: t.dataId, shape: t.shape, dtype: t.dtype }, backend));
  });
}

function proto(): EngineInternals {
  return Object.getPrototypeOf(engine()) as EngineInternals;
}

const OVERRIDES = ['gradients', 'getTensorsForGradient', 'saveTensorsForBackwardMode'] as const;
let installed = false;

/** Replace the engine's gradient walk (and what it saves) with the lean one; idempotent. */
export function installLeanBackprop(): void {
  if (installed) return;
  const eng = engine();
  eng.gradients = leanGradients;
  eng.getTensorsForGradient = leanTensorsForGradient;
  eng.saveTensorsForBackwardMode = leanSaveTensors;
  installed = true;
}

/** Put tfjs-core's own walk back (tests and the bench compare the two). */
export function uninstallLeanBackprop(): void {
  if (!installed) return;
  // Deleting the instance's own properties lets the prototype's methods show through again.
  for (const key of OVERRIDES) delete (engine() as Partial<EngineInternals>)[key];
  installed = false;
}

/**
 * Whether ops run now are recorded for a gradient (inside `tf.grad`, `tf.variableGrads`, … and not
 * inside a kernel). Custom-gradient ops can take their plain path when nothing is recorded.
 */
export function isRecordingGradients(): boolean {
  const state = engine().state as { gradientDepth: number; kernelDepth?: number };
  return state.gradientDepth > 0 && (state.kernelDepth ?? 0) === 0;
}

/** Whether the lean walk is installed. */
export function leanBackpropInstalled(): boolean {
  return installed;
}
