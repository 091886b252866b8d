r"""Calibrated confidence: the probability that a link is right, from the reranker's raw scores.

A mention's link is decided on its `decision_score`: the top candidate's score plus `lead`
times its lead over the runner-up, :math:`d = s_1 + w (s_1 - s_2)`. A top candidate that only
just beats another is a guess between them, and the best of the candidates left when the right
entity is not in the KB is such a guess more often than not: on the general dev set (bundled
model) the median lead is 0.008 when the gold is hidden and 0.055 when it is there, while their top
scores overlap (0.37 against 0.42). Training fits `w` with the NIL threshold (`w` = 0: the top
score alone, as models before it).

The scores have no fixed scale (about 0.3 for the bundled model, with the NIL threshold among
them), so a person cannot tell a sure link from a guess. `Calibration` maps the decision score
to a probability by Platt scaling, :math:`c = \sigma(a \cdot d + b)`, fitted after training on
the dev sets' mentions (right or not) and saved with the model. It is monotone in `d`, so the
NIL threshold maps exactly to the same units (`Calibration.confidence(nil_threshold)`) and the
decisions are those of the decision scores.
`reliability` is the table that checks it: predicted confidence bins against accuracy, and the
expected calibration error (ECE).

Pure functions on numbers; no I/O.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

def decision_score(top: float, runner_up: float | None, lead: float) -> float:
    """`top + lead · (top − runner_up)`: what NIL and confidence are decided on (no runner-up: no lead)."""
    return top if runner_up is None or not lead else top + lead * (top - runner_up)


def ranked_decision(scores: Sequence[float], lead: float) -> float:
    """`decision_score` of candidate scores sorted best first (-inf without any)."""
    return decision_score(scores[0], scores[1] if len(scores) > 1 else None, lead) if scores else float("-inf")


def top_cutoff(threshold: float, runner_up: float | None, lead: float) -> float:
    """The top score at which `decision_score` reaches `threshold` for this runner-up: the NIL
    cut-off of one mention in raw-score units (the joint step's NIL logit)."""
    return threshold if runner_up is None or not lead else (threshold + lead * runner_up) / (1 + lead)


@dataclass(frozen=True, slots=True)
class Calibration:
    """`confidence(score) = σ(slope · score + bias)`."""

    slope: float
    bias: float

    def confidence(self, score: float) -> float:
        z = self.slope * score + self.bias
        if not math.isfinite(z):
            return 0.0 if z < 0 else 1.0
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def to_dict(self) -> dict:
        return {"slope": self.slope, "bias": self.bias}


def fit_calibration(scores: Sequence[float], correct: Sequence[bool], iterations: int = 50) -> Calibration:
    """Maximum-likelihood Platt scaling (Newton's method) of `correct` on `scores`.

    The targets are Platt's (1999) smoothed ones, (N₊ + 1)/(N₊ + 2) for right links and
    1/(N₋ + 2) for wrong ones: they keep the fit finite when the scores separate right from wrong,
    and a dev set with only right (or only wrong) links gives a flat confidence of that smoothed
    rate instead of no model. Scores are standardised for the fit (the bundled model's span a few
    hundredths) and the result mapped back. Raises ValueError without examples."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(correct, np.float64)
    keep = np.isfinite(s)
    s, y = s[keep], y[keep]
    if not len(s):
        raise ValueError("calibration needs dev mentions with a finite score")
    right = int(y.sum())
    t = np.where(y > 0, (right + 1) / (right + 2), 1 / (len(y) - right + 2))
    mu, sd = float(s.mean()), float(s.std()) or 1.0
    x = np.stack([(s - mu) / sd, np.ones_like(s)], axis=1)
    w = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - t)
        hess = (x * (p * (1 - p))[:, None]).T @ x + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    slope = float(w[0] / sd)
    return Calibration(slope=slope, bias=float(w[1] - slope * mu))


def reliability(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> dict:
    """Predicted confidence against accuracy in `bins` equal-width bins of [0, 1]: per bin the
    count, mean confidence and accuracy; the expected calibration error (count-weighted mean
    |accuracy − confidence|); and the accuracy of the links with confidence ≥ 0.9."""
    c = np.clip(np.asarray(confidence, np.float64), 0.0, 1.0)
    y = np.asarray(correct, np.float64)
    which = np.minimum((c * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if not m.any():
            continue
        conf, acc = float(c[m].mean()), float(y[m].mean())
        ece += m.sum() / max(len(c), 1) * abs(acc - conf)
        rows.append({"bin": [b / bins, (b + 1) / bins], "count": int(m.sum()), "confidence": conf, "accuracy": acc})
    sure = c >= 0.9
    return {"bins": rows, "ece": float(ece), "count": int(len(c)),
            "accuracy_at_0.9": float(y[sure].mean()) if sure.any() else None, "share_at_0.9": float(sure.mean()) if len(c) else 0.0}
