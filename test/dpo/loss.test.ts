/**
 * DPO loss variants and sequence log-probs pinned against an independent float64 reference
 * (scripts/dpo_reference.py: TRL 1.x's formulas with hand-written gradients), on wasm.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { dpoLossOfRecords, dpoLossSum, pairStats, sequenceLogps, type DpoLossSettings, type DpoLossType, type PairRecord } from '../../src/dpo/loss.js';

beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
});

// The inputs scripts/dpo_reference.py uses.
const BETA = 0.1;
const EPS = 0.2;
const CHOSEN = [-12.5, -30.25, -7.0];
const REJECTED = [-14.0, -26.5, -9.75];
const REF_CHOSEN = [-13.0, -29.0, -7.5];
const REF_REJECTED = [-13.25, -27.75, -8.0];
const LEN_C = [5, 12, 3];
const LEN_R = [6, 9, 4];

/** From `python3 scripts/dpo_reference.py` (float64, hand-written gradients): value and d loss / d log-prob per variant. */
const REF = {
  'sigmoid': { loss: 0.681833485748572, gradChosen: [-0.015626354220874793, -0.01873921669619327, -0.014799536981846002], gradRejected: [0.015626354220874793, 0.01873921669619327, 0.014799536981846002] },
  'hinge': { loss: 0.9666666666666667, gradChosen: [-0.03333333333333333, -0.03333333333333333, -0.03333333333333333], gradRejected: [0.03333333333333333, 0.03333333333333333, 0.03333333333333333] },
  'ipo': { loss: 23.20453575102881, gradChosen: [-0.6366666666666667, -0.29128086419753085, -0.9768518518518517], gradRejected: [0.5305555555555556, 0.3883744855967078, 0.7326388888888888] },
  'robust': { loss: 0.6707223746374611, gradChosen: [-0.026737465331985913, -0.02985032780730439, -0.02591064809295712], gradRejected: [0.026737465331985913, 0.02985032780730439, 0.02591064809295712] },
  'apo_zero': { loss: 0.9916813502211591, gradChosen: [-0.008328127169370548, -0.008300865833787249, -0.008328127169370548], gradRejected: [0.008321625560913138, 0.00830086583378725, 0.008269855499207482] },
  'sft': { loss: 2.4875, gradChosen: [-0.05, -0.05, -0.05], gradRejected: [0.0, 0.0, 0.0] },
  'sigmoid+0.5sft_weighted': { loss: 1.6411864152563387, gradChosen: [-0.040626354220874794, -0.03436960834809664, -0.0286998842454615], gradRejected: [0.015626354220874793, 0.009369608348096635, 0.0036998842454615006] },
} as const;
const REF_REWARDS = { chosen: [0.05, -0.125, 0.05], rejected: [-0.07500000000000001, 0.125, -0.17500000000000002] };
const REF_SEQUENCE = { logps: [-4.493911724301494, -2.218880371162035], logitSums: [0.38, 0.54], gradOfSum: [0.0, 0.0, 0.0, 0.0, 0.0, -0.5175470582191287, -0.11548035798478293, 0.9299576222876386, -0.15588217832778906, -0.14104802775593767, -0.1306469149893619, -0.238054200015137, -0.3924850231444591, -0.07924135953791801, 0.8404274976868761, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.2710392658127563, -0.08163545806373497, -0.18168305313707264, 0.6689518931665921, -0.13459411615302816, -0.07328577203524364, 0.6715559564583615, -0.12082781119418683, -0.1802539129014243, -0.2971884603275065] };

/** Loss and its gradient with respect to the policy's chosen / rejected log-probs, through dpoLossSum. */
function lossAndGrads(types: DpoLossType[], weights: number[], pairWeights?: number[]): { loss: number; gc: number[]; gr: number[] } {
  const settings: DpoLossSettings = { beta: BETA, labelSmoothing: EPS, lossTypes: types, lossWeights: weights };
  const before = tf.memory().numTensors;
  const c = tf.tensor1d(CHOSEN);
  const r = tf.tensor1d(REJECTED);
  // (+ 0·Σ rejected: `sft` alone does not read the rejected side, and tf.grads wants every input used.)
  const f = (cc: tf.Tensor, rr: tf.Tensor) =>
    tf.add(tf.mul(tf.sum(rr), 0), dpoLossSum(
      { chosen: cc as tf.Tensor1D, rejected: rr as tf.Tensor1D, refChosen: tf.tensor1d(REF_CHOSEN), refRejected: tf.tensor1d(REF_REJECTED), chosenLengths: LEN_C, rejectedLengths: LEN_R },
      settings,
      { pairs: 3, chosenTokens: LEN_C.reduce((a, b) => a + b, 0) },
      pairWeights,
    )) as tf.Scalar;
  const { value, grads } = tf.valueAndGrads(f)([c, r]);
  const out = { loss: value.dataSync()[0]!, gc: Array.from(grads[0]!.dataSync()), gr: Array.from(grads[1]!.dataSync()) };
  tf.dispose([value, ...grads, c, r]);
  expect(tf.memory().numTensors).toBe(before);
  return out;
}

function expectClose(actual: readonly number[], expected: readonly number[], tol: number): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]!)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(expected[i]!))));
}

describe.each(['sigmoid', 'hinge', 'ipo', 'robust', 'apo_zero', 'sft'] as const)('loss_type %s', (type) => {
  test('value and gradient match the float64 reference', () => {
    const { loss, gc, gr } = lossAndGrads([type], [1]);
    const ref = REF[type];
    expectClose([loss], [ref.loss], 1e-6);
    expectClose(gc, ref.gradChosen, 1e-5);
    expectClose(gr, ref.gradRejected, 1e-5);
  });
});

test('a weighted sum of losses with per-pair weights is the weighted sum of the references', () => {
  const { loss, gc, gr } = lossAndGrads(['sigmoid', 'sft'], [1, 0.5], [1, 0.5, 0.25]);
  const ref = REF['sigmoid+0.5sft_weighted'];
  expectClose([loss], [ref.loss], 1e-6);
  expectClose(gc, ref.gradChosen, 1e-5);
  expectClose(gr, ref.gradRejected, 1e-5);
});

test('micro-batches add up to the whole batch (step-level denominators)', () => {
  const settings: DpoLossSettings = { beta: BETA, labelSmoothing: EPS, lossTypes: ['ipo', 'sft'], lossWeights: [1, 2] };
  const step = { pairs: 3, chosenTokens: 20 };
  const part = (idx: number[]) => tf.tidy(() => dpoLossSum({
    chosen: tf.tensor1d(idx.map((i) => CHOSEN[i]!)), rejected: tf.tensor1d(idx.map((i) => REJECTED[i]!)),
    refChosen: tf.tensor1d(idx.map((i) => REF_CHOSEN[i]!)), refRejected: tf.tensor1d(idx.map((i) => REF_REJECTED[i]!)),
    chosenLengths: idx.map((i) => LEN_C[i]!), rejectedLengths: idx.map((i) => LEN_R[i]!),
  }, settings, step).dataSync()[0]!);
  expect(part([0]) + part([1, 2])).toBeCloseTo(part([0, 1, 2]), 5);
  expect(part([0, 1, 2])).toBeCloseTo(REF.ipo.loss + 2 * REF.sft.loss, 4);
});

test('pair statistics are TRL\'s: rewards β·Δ, strict accuracy, margins, log-probs, logits per reply token', () => {
  const records: PairRecord[] = CHOSEN.map((c, i) => ({
    chosen: c, rejected: REJECTED[i]!, refChosen: REF_CHOSEN[i]!, refRejected: REF_REJECTED[i]!,
    chosenLogitSum: [1, 2, 3][i]!, rejectedLogitSum: [-1, 0, 4][i]!, chosenTokens: LEN_C[i]!, rejectedTokens: LEN_R[i]!,
  }));
  const s = pairStats(records, BETA);
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  expect(s['rewards/chosen']).toBeCloseTo(mean(REF_REWARDS.chosen), 12);
  expect(s['rewards/rejected']).toBeCloseTo(mean(REF_REWARDS.rejected), 12);
  expect(s['rewards/margins']).toBeCloseTo(mean(REF_REWARDS.chosen) - mean(REF_REWARDS.rejected), 12);
  expect(s['rewards/accuracies']).toBeCloseTo(2 / 3, 12); // pair 2 prefers rejected
  expect(s['logps/chosen']).toBeCloseTo(mean(CHOSEN), 12);
  expect(s['logps/rejected']).toBeCloseTo(mean(REJECTED), 12);
  expect(s['logits/chosen']).toBeCloseTo(6 / 20, 12);
  expect(s['logits/rejected']).toBeCloseTo(3 / 19, 12);
  // The evaluation loss from plain numbers is the same formula.
  expect(dpoLossOfRecords(records, { beta: BETA, labelSmoothing: 0, lossTypes: ['sigmoid'], lossWeights: [1] })).toBeCloseTo(REF.sigmoid.loss, 6);
});

test('at the reference (policy = reference) the rewards are 0 and the sigmoid loss is log 2', () => {
  const records: PairRecord[] = CHOSEN.map((c, i) => ({
    chosen: c, rejected: REJECTED[i]!, refChosen: c, refRejected: REJECTED[i]!, chosenLogitSum: 0, rejectedLogitSum: 0, chosenTokens: 1, rejectedTokens: 1,
  }));
  const s = pairStats(records, BETA);
  expect(s['rewards/chosen']).toBe(0);
  expect(s['rewards/margins']).toBe(0);
  expect(s['rewards/accuracies']).toBe(0);
  expect(Math.abs(dpoLossOfRecords(records, { beta: BETA, labelSmoothing: 0, lossTypes: ['sigmoid'], lossWeights: [1] }) - Math.LN2)).toBeLessThan(1e-6);
});

test('sequenceLogps sums log p(label) over scored positions; its gradient is onehot − softmax there', () => {
  const logitsValues = [
    [[0.1, -0.3, 0.7, 0.2, -1.0], [1.5, 0.0, -0.5, 0.3, 0.2], [-0.2, 0.4, 0.9, -0.7, 0.0], [0.3, 0.3, 0.3, 0.3, 0.3]],
    [[2.0, -1.0, 0.5, 0.0, 0.1], [0.0, 0.2, -0.4, 1.1, -0.3], [0.6, -0.6, 0.2, 0.8, -0.1], [-0.5, 1.0, 0.0, 0.4, 0.9]],
  ];
  const labels = [[-100, 2, 4, -100], [-100, -100, 3, 1]];
  const logits = tf.tensor3d(logitsValues);
  const before = tf.memory().numTensors;
  const [logps, logitSums] = tf.tidy(() => {
    const o = sequenceLogps(logits, labels);
    return [o.logps, o.logitSums];
  });
  expectClose(Array.from(logps!.dataSync()), REF_SEQUENCE.logps, 1e-6);
  expectClose(Array.from(logitSums!.dataSync()), REF_SEQUENCE.logitSums, 1e-6);
  const g = tf.grad((x: tf.Tensor) => tf.sum(sequenceLogps(x as tf.Tensor3D, labels).logps))(logits);
  expectClose(Array.from(g.dataSync()), REF_SEQUENCE.gradOfSum, 1e-5);
  tf.dispose([logps!, logitSums!, g]);
  expect(tf.memory().numTensors).toBe(before);
  logits.dispose();
  expect(() => sequenceLogps(tf.zeros([1, 2, 5]) as tf.Tensor3D, [[-100, 7]])).toThrow(/outside \[0, 5\)/);
});
