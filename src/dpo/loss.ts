/**
 * DPO and its variants as TRL 1.x computes them (trl/trainer/dpo_trainer.py, `_compute_loss`), on
 * sequence log-probs summed over the reply tokens:
 *
 *   Δ_c = log π(y_c|x) − log π_ref(y_c|x)      Δ_r = log π(y_r|x) − log π_ref(y_r|x)      Δ = Δ_c − Δ_r
 *
 *   sigmoid   −log σ(β Δ)                                        (Rafailov et al. 2023)
 *   hinge     max(0, 1 − β Δ)                                    (RSO)
 *   ipo       (Δ_c / |y_c| − Δ_r / |y_r| − 1/(2β))²             (IPO; log-ratios averaged over reply length)
 *   robust    ((1−ε)(−log σ(β Δ)) − ε(−log σ(−β Δ))) / (1 − 2ε)  (rDPO, ε = label_smoothing)
 *   apo_zero  (1 − σ(β Δ_c)) + σ(β Δ_r)                          (APO-zero)
 *   sft       −Σ log π(y_c|x) / Σ |y_c|                          (NLL of the chosen replies; TRL 0.x's rpo_alpha)
 *
 * loss = Σ_k w_k · mean over pairs of loss_k (sft: the token mean over the batch's chosen replies).
 * The implicit rewards TRL logs are β Δ_c and β Δ_r whatever the loss.
 *
 * For exact gradient accumulation every term is returned as a sum over the micro-batch divided by
 * the whole optimizer step's pair (or chosen-token) count, so micro-batch contributions simply add.
 */
import * as tf from '@tensorflow/tfjs-core';
import { IGNORE_INDEX, logSumExpRows } from '../training/loss.js';

export const DPO_LOSS_TYPES = ['sigmoid', 'ipo', 'hinge', 'robust', 'apo_zero', 'sft'] as const;
export type DpoLossType = (typeof DPO_LOSS_TYPES)[number];

export interface DpoLossSettings {
  beta: number;
  /** ε of the robust loss, in [0, 0.5). */
  labelSmoothing: number;
  lossTypes: readonly DpoLossType[];
  /** One per loss type. */
  lossWeights: readonly number[];
}

/** A micro-batch of B pairs: policy log-probs (differentiable), reference log-probs (constants), reply lengths. */
export interface PairLogps {
  chosen: tf.Tensor1D /* [B] */;
  rejected: tf.Tensor1D /* [B] */;
  refChosen: tf.Tensor1D /* [B] */;
  refRejected: tf.Tensor1D /* [B] */;
  /** Reply tokens of each side (IPO's length normalisation). */
  chosenLengths: readonly number[];
  rejectedLengths: readonly number[];
}

/** −log σ(x) = softplus(−x), stable for large |x|. */
function negLogSigmoid(x: tf.Tensor): tf.Tensor {
  return tf.softplus(tf.neg(x));
}

/** The per-pair loss [B] of one pairwise variant (not `sft`, which is a token mean over the batch). */
export function pairLoss(type: Exclude<DpoLossType, 'sft'>, p: PairLogps, s: Pick<DpoLossSettings, 'beta' | 'labelSmoothing'>): tf.Tensor1D {
  return tf.tidy(() => {
    const chosenRatio = tf.sub(p.chosen, p.refChosen); // Δ_c [B]
    const rejectedRatio = tf.sub(p.rejected, p.refRejected); // Δ_r [B]
    const delta = tf.sub(chosenRatio, rejectedRatio); // Δ [B]
    const scaled = tf.mul(delta, s.beta); // β Δ
    switch (type) {
      case 'sigmoid':
        return negLogSigmoid(scaled) as tf.Tensor1D;
      case 'hinge':
        return tf.relu(tf.sub(1, scaled)) as tf.Tensor1D;
      case 'ipo': {
        const perTokenC = tf.div(chosenRatio, tf.tensor1d(p.chosenLengths.map((n) => Math.max(1, n))));
        const perTokenR = tf.div(rejectedRatio, tf.tensor1d(p.rejectedLengths.map((n) => Math.max(1, n))));
        return tf.square(tf.sub(tf.sub(perTokenC, perTokenR), 1 / (2 * s.beta))) as tf.Tensor1D;
      }
      case 'robust': {
        const eps = s.labelSmoothing;
        const clean = tf.mul(negLogSigmoid(scaled), 1 - eps);
        const flipped = tf.mul(negLogSigmoid(tf.neg(scaled)), eps);
        return tf.div(tf.sub(clean, flipped), 1 - 2 * eps) as tf.Tensor1D;
      }
      case 'apo_zero': {
        const chosenLoss = tf.sub(1, tf.sigmoid(tf.mul(chosenRatio, s.beta)));
        const rejectedLoss = tf.sigmoid(tf.mul(rejectedRatio, s.beta));
        return tf.add(chosenLoss, rejectedLoss) as tf.Tensor1D;
      }
    }
  });
}

/**
 * This micro-batch's share of the step's loss: Σ_k w_k · Σ_i v_i ℓ_k,i / stepPairs for the pairwise
 * variants (v_i: per-pair weights, 1 by default) plus w_sft · (−Σ_i log π(y_c,i)) / stepChosenTokens.
 * Summed over the step's micro-batches it is the loss of the whole batch, as TRL computes it on one.
 */
export function dpoLossSum(
  p: PairLogps,
  s: DpoLossSettings,
  step: { pairs: number; chosenTokens: number },
  pairWeights?: readonly number[],
): tf.Scalar {
  if (s.lossTypes.length !== s.lossWeights.length) {
    throw new Error(`dpoLossSum: ${s.lossTypes.length} loss types but ${s.lossWeights.length} weights`);
  }
  return tf.tidy(() => {
    let total: tf.Tensor = tf.scalar(0);
    s.lossTypes.forEach((type, k) => {
      const w = s.lossWeights[k]!;
      let term: tf.Tensor;
      if (type === 'sft') {
        term = tf.div(tf.neg(tf.sum(p.chosen)), Math.max(1, step.chosenTokens));
      } else {
        let perPair: tf.Tensor = pairLoss(type, p, s);
        if (pairWeights) perPair = tf.mul(perPair, tf.tensor1d([...pairWeights]));
        term = tf.div(tf.sum(perPair), Math.max(1, step.pairs));
      }
      total = tf.add(total, tf.mul(term, w));
    });
    return total as tf.Scalar;
  });
}

/**
 * Per sequence: Σ over scored positions of log p(label | prefix) [N] (the reply's log-prob), and
 * Σ over the same positions of the mean logit over the vocabulary [N] (TRL's `logits/chosen`).
 * `labels` [N, T] are already shifted (position t is scored on token t+1; −100 = not scored).
 * Differentiable in `logits` [N, T, V]; call inside tidy / variableGrads.
 */
export function sequenceLogps(logits: tf.Tensor3D, labels: readonly (readonly number[])[]): { logps: tf.Tensor1D; logitSums: tf.Tensor1D } {
  const [n, t, vocab] = logits.shape;
  if (labels.length !== n || labels.some((row) => row.length !== t)) {
    throw new Error(`sequenceLogps: labels are not [${n}, ${t}] like the logits [${logits.shape}]`);
  }
  const mask: number[] = [];
  const flatIndex: number[] = [];
  labels.forEach((row, i) =>
    row.forEach((y, j) => {
      const scored = y !== IGNORE_INDEX;
      if (scored && (y < 0 || y >= vocab || !Number.isInteger(y))) throw new Error(`sequenceLogps: label ${y} at [${i}, ${j}] is outside [0, ${vocab})`);
      mask.push(scored ? 1 : 0);
      flatIndex.push((i * t + j) * vocab + (scored ? y : 0));
    }),
  );
  const m = tf.tensor2d(mask, [n, t]); // [N, T]
  const flat = tf.reshape(logits, [n * t, vocab]); // [N·T, V]
  const lse = tf.reshape(logSumExpRows(flat), [n, t]); // [N, T]
  const picked = tf.reshape(tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(flatIndex, 'int32')), [n, t]); // [N, T]
  const logps = tf.sum(tf.mul(tf.sub(picked, lse), m), 1) as tf.Tensor1D; // [N]
  const logitSums = tf.sum(tf.mul(tf.mean(logits, -1), m), 1) as tf.Tensor1D; // [N]
  return { logps, logitSums };
}

/** Scored positions per row of shifted labels (the reply length in tokens). */
export function replyLengths(labels: readonly (readonly number[])[]): number[] {
  return labels.map((row) => row.reduce((n, y) => n + (y === IGNORE_INDEX ? 0 : 1), 0));
}

/** The statistics TRL logs for a set of pairs (plain numbers; rewards are β Δ). */
export interface PairStats {
  'rewards/chosen': number;
  'rewards/rejected': number;
  'rewards/accuracies': number;
  'rewards/margins': number;
  'logps/chosen': number;
  'logps/rejected': number;
  'logits/chosen': number;
  'logits/rejected': number;
}

/** One pair's numbers as the loop collects them. */
export interface PairRecord {
  chosen: number;
  rejected: number;
  refChosen: number;
  refRejected: number;
  chosenLogitSum: number;
  rejectedLogitSum: number;
  chosenTokens: number;
  rejectedTokens: number;
}

/**
 * TRL's metrics over pairs: rewards β Δ (means), accuracy = share with β Δ_c > β Δ_r (strictly),
 * margin = mean β Δ, sequence log-probs (means over pairs), and the mean logit per reply token
 * (token-weighted over the batch, as TRL sums logits and tokens before dividing).
 */
export function pairStats(records: readonly PairRecord[], beta: number): PairStats {
  const n = Math.max(1, records.length);
  let rc = 0, rr = 0, acc = 0, margin = 0, lc = 0, lr = 0, logitC = 0, logitR = 0, tokC = 0, tokR = 0;
  for (const r of records) {
    const chosenReward = beta * (r.chosen - r.refChosen);
    const rejectedReward = beta * (r.rejected - r.refRejected);
    rc += chosenReward;
    rr += rejectedReward;
    acc += chosenReward > rejectedReward ? 1 : 0;
    margin += chosenReward - rejectedReward;
    lc += r.chosen;
    lr += r.rejected;
    logitC += r.chosenLogitSum;
    logitR += r.rejectedLogitSum;
    tokC += r.chosenTokens;
    tokR += r.rejectedTokens;
  }
  return {
    'rewards/chosen': rc / n,
    'rewards/rejected': rr / n,
    'rewards/accuracies': acc / n,
    'rewards/margins': margin / n,
    'logps/chosen': lc / n,
    'logps/rejected': lr / n,
    'logits/chosen': tokC > 0 ? logitC / tokC : 0,
    'logits/rejected': tokR > 0 ? logitR / tokR : 0,
  };
}

/** The loss of a set of pairs from plain numbers (evaluation: no gradient, one pass over the held-out pairs). */
export function dpoLossOfRecords(records: readonly PairRecord[], s: DpoLossSettings, pairWeights?: readonly number[]): number {
  if (records.length === 0) return NaN;
  const loss = tf.tidy(() =>
    dpoLossSum(
      {
        chosen: tf.tensor1d(records.map((r) => r.chosen)),
        rejected: tf.tensor1d(records.map((r) => r.rejected)),
        refChosen: tf.tensor1d(records.map((r) => r.refChosen)),
        refRejected: tf.tensor1d(records.map((r) => r.refRejected)),
        chosenLengths: records.map((r) => r.chosenTokens),
        rejectedLengths: records.map((r) => r.rejectedTokens),
      },
      s,
      { pairs: records.length, chosenTokens: records.reduce((n, r) => n + r.chosenTokens, 0) },
      pairWeights,
    ),
  );
  const value = loss.dataSync()[0]!;
  loss.dispose();
  return value;
}
