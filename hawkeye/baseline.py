"""The trivial predictor every summary row is judged against, and the verdict of the comparison.

Each kind of target has one constant predictor, fitted on a fold's training labels:

- severity scores (``ordinal`` rows): the training **median** score, the constant with the
  smallest MAE (prediction: the median rounded half-to-even and clipped to the levels; continuous
  output: the median itself);
- nominal classes (``nominal`` rows): the training **majority class** (ties: the lowest index);
- 0/1 classes (``anomaly`` rows): the training **majority class** (ties: normal), as a constant
  anomaly score of +-0.5 around the decision threshold 0, so it never ranks one video above another;
- a real-valued target (``regression`` rows): the training **mean**.

Where a fold's training labels come from: the folds of a cross-validation partition the
cross-validated videos, so fold k's training side (its training part and early-stopping slice)
is exactly the union of the *other* folds' held-out rows, whose true labels are in their
``predictions.csv``. The collector (:mod:`hawkeye.collect`) therefore fits the baseline from the
fold outputs it already reads, on exactly the model's folds and test split; it needs every fold
(with one missing, some training side would be short), so an incomplete row gets no baseline.

The comparison: for the kind's ranking metric (MAE, or F1 for anomalies), ``model - baseline``
with a paired subject-bootstrap interval (:func:`hawkeye.metrics.bootstrap_paired_difference`);
"better than baseline" is *yes* only when the whole interval lies on the better side of 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BASELINE_MODEL = "baseline"  # the label of a summary's baseline row
RULES = {"ordinal": "training median", "nominal": "training majority class",
         "anomaly": "training majority class", "regression": "training mean"}


def trivial_value(kind: str, training_true: np.ndarray) -> float:
    """The constant the baseline predicts after seeing ``training_true`` (module doc).

    ``training_true`` is in the units the kind is scored in: scores, 0/1 labels or target values.
    """
    labels = np.asarray(training_true, dtype=np.float64)
    if labels.size == 0:
        raise ValueError("the baseline needs at least one training label")
    if kind == "ordinal":
        return float(np.median(labels))
    if kind == "nominal":  # the most frequent class (a tie goes to the lowest class index)
        classes, counts = np.unique(labels, return_counts=True)
        return float(classes[np.argmax(counts)])
    if kind == "anomaly":
        return float(np.mean(labels) > 0.5)  # a tie goes to the normal class
    if kind == "regression":
        return float(np.mean(labels))
    raise ValueError(f"no baseline for kind {kind!r}; expected one of {sorted(RULES)}")


def trivial_outputs(kind: str, value: float, n: int,
                    n_levels: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, raw)`` of the constant ``value`` for ``n`` rows, as a fold's predictions.csv holds
    them (anomaly ``raw``: the score against the threshold 0, +-0.5)."""
    if kind == "ordinal":
        if n_levels is None:
            raise ValueError("an ordinal baseline needs the number of score levels")
        pred = float(np.clip(np.rint(value), 0, n_levels - 1))
        raw = value
    elif kind == "anomaly":
        pred, raw = value, value - 0.5
    else:
        pred = raw = value
    return np.full(n, pred), np.full(n, raw)


def fold_values(kind: str, held_out_true: Sequence[np.ndarray]) -> list[float]:
    """Per fold, the baseline fitted on every other fold's held-out labels (module doc)."""
    if len(held_out_true) < 2:
        raise ValueError("a baseline per fold needs at least 2 folds (fold k's training labels "
                         "are the other folds' held-out rows)")
    return [trivial_value(kind, np.concatenate([t for j, t in enumerate(held_out_true) if j != k]))
            for k in range(len(held_out_true))]


def better_than_baseline(ci_low: float, ci_high: float, higher_is_better: bool) -> bool | None:
    """Yes when the whole interval of ``model - baseline`` is on the better side of 0; None when
    the interval is undefined (e.g. a metric NaN on every resample)."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return None
    return ci_low > 0 if higher_is_better else ci_high < 0
