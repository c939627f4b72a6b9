#!/usr/bin/env python3
"""Independent float64 reference for test/dpo/loss.test.ts: every DPO loss variant TRL 1.x computes
(trl/trainer/dpo_trainer.py, _compute_loss), its value and its gradient with respect to the policy's
sequence log-probs, written out by hand (no autograd), plus sequence log-probs over reply tokens.

Run: python3 scripts/dpo_reference.py   (prints the JSON the test pins)
"""
import json
import numpy as np

beta = 0.1
eps = 0.2  # label_smoothing (robust)
chosen = np.array([-12.5, -30.25, -7.0], dtype=np.float64)
rejected = np.array([-14.0, -26.5, -9.75], dtype=np.float64)
ref_chosen = np.array([-13.0, -29.0, -7.5], dtype=np.float64)
ref_rejected = np.array([-13.25, -27.75, -8.0], dtype=np.float64)
len_c = np.array([5, 12, 3], dtype=np.float64)
len_r = np.array([6, 9, 4], dtype=np.float64)
B = len(chosen)

sig = lambda x: 1.0 / (1.0 + np.exp(-x))
dc = chosen - ref_chosen
dr = rejected - ref_rejected
d = dc - dr
out = {}

# Each: per-pair loss l_i; loss = mean_i l_i; grad wrt chosen_i / rejected_i = (1/B) dl_i/d(.)
def record(name, per_pair, g_c, g_r):
    out[name] = {"loss": float(per_pair.mean()), "grad_chosen": list(g_c / B), "grad_rejected": list(g_r / B)}

# sigmoid: -log sigma(beta d); dl/dd = -beta sigma(-beta d)
g = -beta * sig(-beta * d)
record("sigmoid", -np.log(sig(beta * d)), g, -g)
# hinge: relu(1 - beta d); dl/dd = -beta [1 - beta d > 0]
g = -beta * (1 - beta * d > 0)
record("hinge", np.maximum(0, 1 - beta * d), g, -g)
# ipo: (dc/Lc - dr/Lr - 1/(2 beta))^2
h = dc / len_c - dr / len_r - 1 / (2 * beta)
record("ipo", h ** 2, 2 * h / len_c, -2 * h / len_r)
# robust: ((1-e)(-log s(bd)) - e(-log s(-bd))) / (1-2e); dl/dd = (-(1-e) b s(-bd) - e b s(bd)) / (1-2e)
per = ((1 - eps) * -np.log(sig(beta * d)) - eps * -np.log(sig(-beta * d))) / (1 - 2 * eps)
g = (-(1 - eps) * beta * sig(-beta * d) - eps * beta * sig(beta * d)) / (1 - 2 * eps)
record("robust", per, g, -g)
# apo_zero: 1 - s(b dc) + s(b dr)
sc, sr = sig(beta * dc), sig(beta * dr)
record("apo_zero", 1 - sc + sr, -beta * sc * (1 - sc), beta * sr * (1 - sr))
# sft: -sum chosen / sum Lc (token mean of the NLL over the batch's chosen replies)
n_tok = len_c.sum()
out["sft"] = {"loss": float(-chosen.sum() / n_tok), "grad_chosen": list(np.full(B, -1 / n_tok)), "grad_rejected": [0.0] * B}

# A weighted mix: 1.0 sigmoid + 0.5 sft, and per-pair weights on the sigmoid term.
w = np.array([1.0, 0.5, 0.25])
per = -np.log(sig(beta * d))
g = -beta * sig(-beta * d)
out["sigmoid+0.5sft_weighted"] = {
    "loss": float((w * per).sum() / B + 0.5 * out["sft"]["loss"]),
    "grad_chosen": list(w * g / B + 0.5 * np.full(B, -1 / n_tok)),
    "grad_rejected": list(-w * g / B),
}
out["rewards"] = {"chosen": list(beta * dc), "rejected": list(beta * dr)}

# Sequence log-probs over reply tokens: logits [2, 4, 5], shifted labels (-100 = not scored).
logits = np.array([
    [[0.1, -0.3, 0.7, 0.2, -1.0], [1.5, 0.0, -0.5, 0.3, 0.2], [-0.2, 0.4, 0.9, -0.7, 0.0], [0.3, 0.3, 0.3, 0.3, 0.3]],
    [[2.0, -1.0, 0.5, 0.0, 0.1], [0.0, 0.2, -0.4, 1.1, -0.3], [0.6, -0.6, 0.2, 0.8, -0.1], [-0.5, 1.0, 0.0, 0.4, 0.9]],
])
labels = [[-100, 2, 4, -100], [-100, -100, 3, 1]]
ls = logits - logits.max(-1, keepdims=True)
logsm = ls - np.log(np.exp(ls).sum(-1, keepdims=True))
sm = np.exp(logsm)
logps, logit_sums, grad = [], [], np.zeros_like(logits)
for i, row in enumerate(labels):
    s = m = 0.0
    for t, y in enumerate(row):
        if y == -100:
            continue
        s += logsm[i, t, y]
        m += logits[i, t].mean()
        grad[i, t] = -sm[i, t]
        grad[i, t, y] += 1.0
    logps.append(s)
    logit_sums.append(m)
out["sequence"] = {"logps": logps, "logit_sums": logit_sums, "grad_of_sum": grad.reshape(-1).tolist()}

print(json.dumps(out, indent=1))
