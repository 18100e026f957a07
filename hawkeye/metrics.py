"""Evaluation metrics: pure ``(y_true, y_pred) -> value or dict`` functions, one protocol each.

Every function names the exact definition it implements, so a number in a summary can be traced
to one line here. Definitions come from scikit-learn and SciPy wherever they exist; this module only
fixes their options (label sets, weighting, what an undefined value becomes) and validates input
once, at the door, with errors that name the offending array.

Undefined values are ``NaN`` with a documented reason, never a crash and never a silent 0:
a correlation of a constant series, κ when truth and prediction sit in one single class, ROC-AUC
when the truth has one class. ``hawkeye.io.write_json_atomic`` writes them as ``null``.

Four families, chosen by the training target and the task's ``score_kind``:

- :func:`score_metrics`  ordinal severity scores 0..L-1 (PD4T's MDS-UPDRS item 3.4);
- :func:`class_metrics`  nominal classes 0..L-1 whose order means nothing (speakers, gestures);
- :func:`anomaly_metrics` a score thresholded into normal/anomaly (the LSTM autoencoder);
- :func:`regression_metrics` a continuous target (telemetry fuel consumption).

:func:`bootstrap_ci` gives a percentile confidence interval that resamples *subjects*, not samples,
because predictions of one subject's videos are correlated and a per-sample bootstrap would be too
narrow.

One module on purpose: every ``*_weighted`` function is the vectorised twin of a point metric
here (the bootstrap evaluates it on all resamples at once), and keeping each pair side by side is
what keeps their definitions identical (tests/test_metrics.py checks them against each other).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)


def score_metrics(y_true: Any, y_pred: Any, y_raw: Any, n_levels: int) -> dict[str, Any]:
    """Metrics of an ordinal severity score with levels ``0 .. n_levels-1``.

    Args:
        y_true: true integer scores, shape ``(n,)``.
        y_pred: predicted integer scores (the head's rounded/clipped or arg-max output), ``(n,)``.
        y_raw: the model's continuous output for the same items, ``(n,)``: the regression value,
            or the expected score of a classification/ordinal head.
        n_levels: number of score levels L (from the data, not a constant).

    Returns a dict of plain Python numbers:

    - ``mae``: mean |y_true - y_pred| on the **integer** prediction, the score a clinician would
      read off (``sklearn.metrics.mean_absolute_error``); this is the source table's "CV MAE".
    - ``mae_raw``: the same on the continuous output ``y_raw`` (no rounding).
    - ``exact``: fraction with y_pred == y_true (``accuracy_score``).
    - ``within1``: fraction with |y_true - y_pred| <= 1 (within-±1 accuracy).
    - ``pearson``, ``spearman``: correlation of ``y_true`` with ``y_raw`` (``scipy.stats``);
      ``NaN`` when either series is constant or n < 2 (the correlation is undefined, 0/0).
    - ``qwk``: Cohen's κ with **quadratic** weights, labels 0..L-1
      (``cohen_kappa_score(weights="quadratic")``); ``NaN`` when truth and prediction all fall in
      one and the same level (chance disagreement is 0, κ is 0/0).
    - ``macro_f1``: unweighted mean of per-level F1 over labels 0..L-1
      (``f1_score(average="macro")``). A level present in the truth but never predicted counts
      as F1 = 0; a level absent from both truth and prediction has an undefined F1 and is left
      out of the mean (``zero_division=nan``), so a rare level missing from a small split does
      not drag the score down.
    - ``confusion``: ``confusion[i][j]`` = count of true level i predicted as j, i, j in 0..L-1.
    - ``n``: number of items.
    """
    t = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred", like=t)
    r = _as_1d(y_raw, "y_raw", like=t)
    if int(n_levels) < 2:
        raise ValueError(f"n_levels must be >= 2 (got {n_levels}): an ordinal score has two "
                         "levels or more")
    levels = list(range(int(n_levels)))
    _check_levels(t, "y_true", n_levels)
    _check_levels(p, "y_pred", n_levels)
    t = t.astype(np.int64)
    p = p.astype(np.int64)
    return {
        "mae": mae(t, p),
        "mae_raw": mae(t, r),
        "exact": exact_accuracy(t, p),
        "within1": within1_accuracy(t, p),
        "pearson": pearson_r(t, r),
        "spearman": spearman_rho(t, r),
        "qwk": quadratic_weighted_kappa(t, p, n_levels),
        "macro_f1": macro_f1(t, p, n_levels),
        "confusion": confusion_matrix(t, p, labels=levels).tolist(),
        "n": int(t.size),
    }


def class_metrics(y_true: Any, y_pred: Any, n_classes: int) -> dict[str, Any]:
    """Metrics of nominal classes ``0 .. n_classes-1`` (no order: no MAE, correlation or κ).

    Args:
        y_true: true class indices, shape ``(n,)``.
        y_pred: predicted class indices (the ensemble's or the head's decision), ``(n,)``.
        n_classes: number of classes K (from the data).

    Returns a dict of plain Python numbers:

    - ``accuracy``: fraction with y_pred == y_true (``accuracy_score``).
    - ``balanced_accuracy``: mean per-class recall over the classes present in ``y_true``
      (``balanced_accuracy_score``'s definition: a class absent from the truth has no recall and
      is left out).
    - ``macro_f1``: unweighted mean of per-class F1 over 0..K-1, a class absent from truth and
      prediction left out (``f1_score(average="macro", zero_division=nan)``, as in
      :func:`score_metrics`).
    - ``per_class_recall``: list of K recalls ``TP_k / support_k``; ``NaN`` for a class with no
      support (``recall_score(average=None, zero_division=nan)``).
    - ``confusion``: ``confusion[i][j]`` = count of true class i predicted as j.
    - ``n``: number of items.
    """
    t = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred", like=t)
    if int(n_classes) < 2:
        raise ValueError(f"n_classes must be >= 2 (got {n_classes})")
    _check_levels(t, "y_true", n_classes)
    _check_levels(p, "y_pred", n_classes)
    t, p = t.astype(np.int64), p.astype(np.int64)
    labels = list(range(int(n_classes)))
    recall = recall_score(t, p, labels=labels, average=None, zero_division=np.nan)
    return {
        "accuracy": exact_accuracy(t, p),
        # balanced_accuracy_score's definition, from the recalls (it warns on every small
        # validation slice that lacks a predicted class)
        "balanced_accuracy": float(np.nanmean(recall)),
        "macro_f1": macro_f1(t, p, n_classes),
        "per_class_recall": [float(v) for v in recall],
        "confusion": confusion_matrix(t, p, labels=labels).tolist(),
        "n": int(t.size),
    }


# The single-number definitions score_metrics is made of. They trust their input (score_metrics
# validates once), so the bootstrap can call them per resample without re-checking.

def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error, mean |y_true - y_pred| (``mean_absolute_error``)."""
    return float(mean_absolute_error(y_true, y_pred))


def exact_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of items with y_pred == y_true (``accuracy_score``)."""
    return float(accuracy_score(y_true, y_pred))


def within1_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of items with |y_true - y_pred| <= 1 (the clinical "within one point")."""
    return float(np.mean(np.abs(np.asarray(y_true) - np.asarray(y_pred)) <= 1))


def pearson_r(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Pearson r (``scipy.stats.pearsonr``); NaN when either series is constant or n < 2."""
    return _correlation(pearsonr, np.asarray(y_true), np.asarray(y_score))


def spearman_rho(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Spearman ρ (``scipy.stats.spearmanr``); NaN when either series is constant or n < 2."""
    return _correlation(spearmanr, np.asarray(y_true), np.asarray(y_score))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_levels: int) -> float:
    """Mean per-level F1 over labels 0..L-1; levels absent from truth and prediction left out."""
    return float(f1_score(y_true, y_pred, labels=list(range(int(n_levels))), average="macro",
                          zero_division=np.nan))


def quadratic_weighted_kappa(y_true: Any, y_pred: Any, n_levels: int) -> float:
    """Cohen's κ with quadratic weights over labels 0..L-1; ``NaN`` when it is 0/0.

    κ = 1 - Σ w·O / Σ w·E with w_ij = (i-j)² and E the outer product of the marginals. Σ w·E is 0
    exactly when truth and prediction all sit in one single level; κ is then undefined.
    """
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.size == 0 or np.unique(np.concatenate([t, p])).size < 2:
        return float("nan")
    return float(cohen_kappa_score(t, p, labels=list(range(int(n_levels))), weights="quadratic"))


def anomaly_metrics(y_true_bool: Any, scores: Any, threshold: float) -> dict[str, float]:
    """Metrics of an anomaly score turned into a decision by ``score > threshold``.

    Args:
        y_true_bool: True for an anomaly, ``(n,)`` (bool or 0/1).
        scores: anomaly scores, larger = more anomalous (e.g. reconstruction error), ``(n,)``.
        threshold: decision threshold; an item is flagged when its score is **strictly above** it
            (the LSTM autoencoder's percentile of the training reconstruction error).

    Returns ``precision``, ``recall``, ``f1`` of the anomaly class (positive = anomaly) at that
    threshold (``precision_score``/``recall_score``/``f1_score``; ``NaN`` where the ratio is 0/0:
    precision with no flagged item, recall and F1 with no anomaly and no flag), the
    threshold-free ``roc_auc`` (``roc_auc_score``) and ``pr_auc`` (average precision,
    ``average_precision_score``), both ``NaN`` when the truth holds a single class, the
    ``threshold`` used and ``n``.
    """
    t = _as_1d(y_true_bool, "y_true_bool")
    s = _as_1d(scores, "scores", like=t)
    if not np.isin(t, (0, 1)).all():
        raise ValueError("y_true_bool must hold only True/False (or 1/0); "
                         f"found values {np.unique(t)[:5].tolist()}")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    t = t.astype(bool)
    flagged = s > threshold
    both_classes = 0 < int(t.sum()) < t.size
    return {
        "precision": float(precision_score(t, flagged, zero_division=np.nan)),
        "recall": float(recall_score(t, flagged, zero_division=np.nan)),
        "f1": float(f1_score(t, flagged, zero_division=np.nan)),
        "roc_auc": float(roc_auc_score(t, s)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(t, s)) if both_classes else float("nan"),
        "threshold": float(threshold),
        "n": int(t.size),
    }


def f1_optimal_threshold(y_true_bool: Any, scores: Any,
                         sample_weight: Any = None) -> tuple[float, float]:
    """The threshold that maximises F1 of the decision ``score > threshold`` on these items.

    Every cut between two consecutive distinct scores is tried (flag the k highest, k = 1..n).
    The threshold sits midway between the lowest flagged score and the highest unflagged one, so
    a new item is judged by the nearer side; a tie in F1 goes to the cut that flags fewer items.
    When the best cut flags every item the threshold is just below the lowest score.
    ``sample_weight`` (default 1) counts an item that many times in F1 = 2TP / (2TP + FP + FN),
    e.g. to give a validation sample the anomaly rate of the data it stands for. Returns
    ``(threshold, f1)``; ``(nan, nan)`` when no item is an anomaly (F1 is undefined).
    Meant for a *validation* set: choosing it on the data it is scored on would be optimistic.
    """
    t = _as_1d(y_true_bool, "y_true_bool")
    s = _as_1d(scores, "scores", like=t).astype(np.float64)
    w = (np.ones_like(s) if sample_weight is None
         else _as_1d(sample_weight, "sample_weight", like=t).astype(np.float64))
    if not np.isin(t, (0, 1)).all():
        raise ValueError("y_true_bool must hold only True/False (or 1/0); "
                         f"found values {np.unique(t)[:5].tolist()}")
    if (w <= 0).any():
        raise ValueError("sample_weight must be positive")
    positives = float(w[t.astype(bool)].sum())
    if positives == 0:
        return float("nan"), float("nan")
    order = np.argsort(-s, kind="stable")
    s_sorted, t_sorted, w_sorted = s[order], t[order].astype(bool), w[order]
    # only cuts between distinct scores can be realised by a threshold
    cut = np.flatnonzero(np.append(s_sorted[1:] < s_sorted[:-1], True))  # last index flagged
    true_positives = np.cumsum(w_sorted * t_sorted)[cut]
    false_positives = np.cumsum(w_sorted * ~t_sorted)[cut]
    f1 = 2.0 * true_positives / (true_positives + false_positives + positives)
    best = int(np.argmax(f1))  # first maximum = fewest flags
    k = int(cut[best])
    if k + 1 < len(s_sorted):
        threshold = 0.5 * (s_sorted[k] + s_sorted[k + 1])
    else:
        threshold = float(np.nextafter(s_sorted[k], -np.inf))
    return float(threshold), float(f1[best])


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Metrics of a continuous target.

    ``r2``: coefficient of determination 1 - SS_res/SS_tot (``r2_score``), ``NaN`` when the truth
    is constant or n < 2 (SS_tot = 0: R² undefined; scikit-learn would otherwise report 0 or 1);
    ``mae``: mean |y_true - y_pred|; ``rmse``: sqrt(mean (y_true - y_pred)²); ``n``.
    """
    t = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred", like=t)
    defined = t.size >= 2 and np.ptp(t) > 0
    return {
        "r2": float(r2_score(t, p)) if defined else float("nan"),
        "mae": float(mean_absolute_error(t, p)),
        "rmse": float(root_mean_squared_error(t, p)),
        "n": int(t.size),
    }


def bootstrap_score_metrics(
    y_true: Any,
    y_pred: Any,
    y_raw: Any,
    groups: Any,
    n_levels: int,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Subject-bootstrap intervals of every scalar of :func:`score_metrics`, vectorised.

    Same resampling unit (group), resamples (same ``seed`` -> same draws), percentile interval and
    NaN rule as :func:`bootstrap_cis` applied to :func:`score_metrics`, and the same numbers: a
    resample is represented by how many times it holds each row (a weight), and
    :func:`score_metrics_weighted` evaluates all resamples at once. About 100x faster than calling
    scikit-learn per resample (its input validation dominates at ~1-2 ms per call), which is what
    makes 1000 resamples per model affordable in the collector.
    """
    return _bootstrap_weighted(
        lambda w: score_metrics_weighted(y_true, y_pred, y_raw, n_levels, w),
        groups, np.size(y_true), n_boot, seed, alpha)


def bootstrap_class_metrics(y_true: Any, y_pred: Any, groups: Any, n_classes: int,
                            n_boot: int = 1000, seed: int = 0,
                            alpha: float = 0.05) -> dict[str, tuple[float, float]]:
    """:func:`bootstrap_score_metrics` for the scalars of :func:`class_metrics` (same unit,
    draws, interval): ``accuracy``, ``balanced_accuracy``, ``macro_f1``."""
    return _bootstrap_weighted(
        lambda w: class_metrics_weighted(y_true, y_pred, n_classes, w),
        groups, np.size(y_true), n_boot, seed, alpha)


def bootstrap_anomaly_metrics(y_true_bool: Any, scores: Any, threshold: float, groups: Any,
                              n_boot: int = 1000, seed: int = 0,
                              alpha: float = 0.05) -> dict[str, tuple[float, float]]:
    """:func:`bootstrap_score_metrics` for :func:`anomaly_metrics` (same unit, draws, interval)."""
    return _bootstrap_weighted(
        lambda w: anomaly_metrics_weighted(y_true_bool, scores, threshold, w),
        groups, np.size(y_true_bool), n_boot, seed, alpha)


def bootstrap_regression_metrics(y_true: Any, y_pred: Any, groups: Any, n_boot: int = 1000,
                                 seed: int = 0,
                                 alpha: float = 0.05) -> dict[str, tuple[float, float]]:
    """:func:`bootstrap_score_metrics` for :func:`regression_metrics` (same unit, draws, CI)."""
    return _bootstrap_weighted(lambda w: regression_metrics_weighted(y_true, y_pred, w),
                               groups, np.size(y_true), n_boot, seed, alpha)


def bootstrap_paired_difference(
    model_fn: Callable[[np.ndarray], dict[str, np.ndarray]],
    baseline_fn: Callable[[np.ndarray], dict[str, np.ndarray]],
    groups: Any, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Subject-bootstrap intervals of ``model - baseline`` for every scalar both return.

    ``model_fn`` and ``baseline_fn`` map row weights ``(b, n)`` to ``{key: (b,)}`` (e.g.
    :func:`score_metrics_weighted` with the model's and the baseline's predictions of the same
    ``n`` items). Paired: each resample draws one set of subjects and scores both on it, so the
    interval is that of the difference on the same patients. Same unit, draws (for the same
    ``seed``), percentile interval and NaN rule as :func:`bootstrap_score_metrics`.
    """
    def difference(weights: np.ndarray) -> dict[str, np.ndarray]:
        model, baseline = model_fn(weights), baseline_fn(weights)
        return {key: model[key] - baseline[key] for key in model if key in baseline}

    return _bootstrap_weighted(difference, groups, np.size(groups), n_boot, seed, alpha)


def _bootstrap_weighted(metrics_fn: Callable[[np.ndarray], dict[str, np.ndarray]], groups: Any,
                        n: int, n_boot: int, seed: int,
                        alpha: float) -> dict[str, tuple[float, float]]:
    """Percentile intervals of ``metrics_fn(weights)`` over group-bootstrap weightings."""
    g = np.asarray(groups)
    if g.shape != (n,) or n == 0:
        raise ValueError(f"groups has shape {g.shape}; need one group per item ({n},)")
    if not 0 < alpha < 1 or n_boot < 1:
        raise ValueError(f"need 0 < alpha < 1 and n_boot >= 1, got alpha={alpha}, n_boot={n_boot}")
    inverse, draws = _group_draws(g, n_boot, seed)
    values: dict[str, list[np.ndarray]] = {}
    for chunk in np.array_split(draws, max(1, n_boot // 128)):  # bounds memory: (128, n) arrays
        counts = np.zeros((chunk.shape[0], draws.shape[1]))
        np.add.at(counts, (np.arange(chunk.shape[0])[:, None], chunk), 1.0)
        weights = counts[:, inverse]  # (resamples, n): copies of each row in each resample
        for key, v in metrics_fn(weights).items():
            values.setdefault(key, []).append(v)
    return {key: _percentile_interval(np.concatenate(v), alpha) for key, v in values.items()}


def score_metrics_weighted(y_true: Any, y_pred: Any, y_raw: Any, n_levels: int,
                           weights: Any) -> dict[str, np.ndarray]:
    """The scalars of :func:`score_metrics` for many integer weightings of the same items at once.

    ``weights`` is ``(b, n)``: row k says how many times each item counts (0 = left out). Each
    returned array ``(b,)`` equals :func:`score_metrics` on the items repeated that many times
    (tested): same definitions, computed from the weighted confusion matrix (mae, exact,
    within1, qwk, macro_f1), weighted moments (pearson, mae_raw) and weighted average ranks
    (spearman, ties get their mean rank). Undefined values are NaN by the same rules.
    """
    t = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred", like=t)
    r = _as_1d(y_raw, "y_raw", like=t).astype(np.float64)
    _check_levels(t, "y_true", n_levels)
    _check_levels(p, "y_pred", n_levels)
    w = _check_weights(weights, t.size)
    levels = int(n_levels)
    t, p = t.astype(np.int64), p.astype(np.int64)
    total = w.sum(axis=1)                                               # (b,)
    onehot = np.zeros((t.size, levels * levels))
    onehot[np.arange(t.size), t * levels + p] = 1.0
    confusion = (w @ onehot).reshape(-1, levels, levels)               # (b, L, L) true x pred
    i, j = np.indices((levels, levels))
    rows, cols = confusion.sum(axis=2), confusion.sum(axis=1)           # (b, L) true, pred counts
    expected = rows[:, :, None] * cols[:, None, :] / total[:, None, None]
    disagreement = ((i - j) ** 2 * expected).sum(axis=(1, 2))
    tp = np.diagonal(confusion, axis1=1, axis2=2)
    f1_denominator = rows + cols                                        # 2TP + FP + FN
    with np.errstate(invalid="ignore", divide="ignore"):
        per_level_f1 = np.where(f1_denominator > 0, 2 * tp / f1_denominator, np.nan)
        qwk = np.where(disagreement > 0, 1 - ((i - j) ** 2 * confusion).sum(axis=(1, 2))
                       / disagreement, np.nan)
    return {
        "mae": (np.abs(i - j) * confusion).sum(axis=(1, 2)) / total,
        "mae_raw": w @ np.abs(t - r) / total,
        "exact": np.trace(confusion, axis1=1, axis2=2) / total,
        "within1": ((np.abs(i - j) <= 1) * confusion).sum(axis=(1, 2)) / total,
        "pearson": _weighted_pearson(np.broadcast_to(t, w.shape), np.broadcast_to(r, w.shape), w),
        "spearman": _weighted_pearson(_weighted_ranks(t, w), _weighted_ranks(r, w), w),
        "qwk": qwk,
        "macro_f1": np.nanmean(per_level_f1, axis=1),  # every row has a level with support
    }


def class_metrics_weighted(y_true: Any, y_pred: Any, n_classes: int,
                           weights: Any) -> dict[str, np.ndarray]:
    """The scalars of :func:`class_metrics` for many integer weightings at once (``(b, n)``).

    Equal to :func:`class_metrics` on the items repeated ``weights[k]`` times (tested), from the
    weighted confusion matrix: accuracy = trace / total, balanced accuracy = mean recall over
    the classes with support, macro-F1 over the classes in truth or prediction.
    """
    t = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred", like=t)
    _check_levels(t, "y_true", n_classes)
    _check_levels(p, "y_pred", n_classes)
    w = _check_weights(weights, t.size)
    k = int(n_classes)
    onehot = np.zeros((t.size, k * k))
    onehot[np.arange(t.size), t.astype(np.int64) * k + p.astype(np.int64)] = 1.0
    confusion = (w @ onehot).reshape(-1, k, k)                         # (b, K, K) true x pred
    tp = np.diagonal(confusion, axis1=1, axis2=2)
    support, predicted = confusion.sum(axis=2), confusion.sum(axis=1)  # (b, K)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), np.nan)
    return {"accuracy": tp.sum(axis=1) / w.sum(axis=1),
            "balanced_accuracy": np.nanmean(recall, axis=1),  # every row has a class with support
            "macro_f1": np.nanmean(f1, axis=1)}


def anomaly_metrics_weighted(y_true_bool: Any, scores: Any, threshold: float,
                             weights: Any) -> dict[str, np.ndarray]:
    """The scalars of :func:`anomaly_metrics` for many integer weightings at once (``(b, n)``).

    Equal to :func:`anomaly_metrics` on the items repeated ``weights[k]`` times (tested):
    precision/recall/F1 from weighted counts, ROC-AUC as the Mann-Whitney statistic of weighted
    average ranks (ties count one half, as scikit-learn's trapezoid does), PR-AUC as average
    precision over the distinct scores, NaN by the same rules.
    """
    t = _as_1d(y_true_bool, "y_true_bool")
    s = _as_1d(scores, "scores", like=t).astype(np.float64)
    if not np.isin(t, (0, 1)).all():
        raise ValueError("y_true_bool must hold only True/False (or 1/0)")
    w = _check_weights(weights, t.size)
    positive = t.astype(np.float64)
    flagged = (s > threshold).astype(np.float64)
    tp, fp = w @ (positive * flagged), w @ ((1 - positive) * flagged)
    n_pos, n_neg = w @ positive, w @ (1 - positive)
    both = (n_pos > 0) & (n_neg > 0)
    rank_sum = (w * _weighted_ranks(s, w)) @ positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "precision": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
            "recall": np.where(n_pos > 0, tp / n_pos, np.nan),
            "f1": np.where(n_pos + tp + fp > 0, 2 * tp / (n_pos + tp + fp), np.nan),  # 2TP+FP+FN
            "roc_auc": np.where(both, (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg),
                                np.nan),
            "pr_auc": np.where(both, _weighted_average_precision(positive, s, w, n_pos), np.nan),
        }


def regression_metrics_weighted(y_true: Any, y_pred: Any, weights: Any) -> dict[str, np.ndarray]:
    """The scalars of :func:`regression_metrics` for many integer weightings at once (``(b, n)``).

    Equal to :func:`regression_metrics` on the items repeated ``weights[k]`` times (tested);
    R² is NaN where the resampled truth is constant.
    """
    t = _as_1d(y_true, "y_true").astype(np.float64)
    p = _as_1d(y_pred, "y_pred", like=t).astype(np.float64)
    w = _check_weights(weights, t.size)
    total = w.sum(axis=1)
    squared = w @ (t - p) ** 2
    centred = t - ((w @ t) / total)[:, None]                            # (b, n)
    constant = _row_range(np.broadcast_to(t, w.shape), w > 0) == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1 - squared / (w * centred**2).sum(axis=1)
    return {"r2": np.where(constant, np.nan, r2), "mae": w @ np.abs(t - p) / total,
            "rmse": np.sqrt(squared / total)}


def _weighted_average_precision(positive: np.ndarray, scores: np.ndarray, w: np.ndarray,
                                n_pos: np.ndarray) -> np.ndarray:
    """Σ (R_k - R_{k-1}) P_k over distinct scores, highest first (``average_precision_score``)."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_scores[1:] != sorted_scores[:-1]]))
    tps = np.cumsum(np.add.reduceat((w * positive)[:, order], starts, axis=1), axis=1)
    flagged = np.cumsum(np.add.reduceat(w[:, order], starts, axis=1), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(flagged > 0, tps / flagged, 0.0)
        recall = tps / n_pos[:, None]
    return (np.diff(recall, axis=1, prepend=0.0) * precision).sum(axis=1)


def _check_weights(weights: Any, n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != n or (w < 0).any() or (w.sum(axis=1) <= 0).any():
        raise ValueError(f"weights must be (b, {n}) non-negative with a positive sum per row, "
                         f"got shape {w.shape}")
    return w


def _weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson r per row of (b, n) arrays with weights; NaN where x or y is constant."""
    present = w > 0
    constant = (_row_range(x, present) == 0) | (_row_range(y, present) == 0)
    total = w.sum(axis=1, keepdims=True)
    dx = x - (w * x).sum(axis=1, keepdims=True) / total
    dy = y - (w * y).sum(axis=1, keepdims=True) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.sqrt((w * dx * dx).sum(axis=1) * (w * dy * dy).sum(axis=1))
        r = (w * dx * dy).sum(axis=1) / spread
    return np.where(constant, np.nan, np.clip(r, -1.0, 1.0))


def _row_range(x: np.ndarray, present: np.ndarray) -> np.ndarray:
    return np.where(present, x, -np.inf).max(axis=1) - np.where(present, x, np.inf).min(axis=1)


def _weighted_ranks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(b, n) average ranks of ``x`` in each weighted resample (ties share their mean rank)."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    new_value = np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]])
    copies = np.add.reduceat(w[:, order], np.flatnonzero(new_value), axis=1)  # (b, U) per value
    # a tie block of m copies after c lower copies holds ranks c+1 .. c+m: mean c + (m+1)/2
    value_rank = np.cumsum(copies, axis=1) - (copies - 1) / 2
    ranks = np.empty_like(w)
    ranks[:, order] = value_rank[:, np.cumsum(new_value) - 1]
    return ranks


def _group_draws(groups: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(group index of each row (n,), drawn group indices (n_boot, G)): the resampling plan.

    The bootstrap functions (by row weights) and the tests' index-based reference (by row
    indices) use this plan, so the same seed gives the same resamples in both.
    """
    _, inverse = np.unique(groups, return_inverse=True)
    n_groups = int(inverse.max()) + 1
    return inverse, np.random.default_rng(seed).integers(0, n_groups, size=(n_boot, n_groups))


def _percentile_interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def _correlation(fn: Callable, t: np.ndarray, r: np.ndarray) -> float:
    # Constant input makes the correlation 0/0; answer NaN instead of SciPy's warning.
    if t.size < 2 or np.ptp(t) == 0 or np.ptp(r) == 0:
        return float("nan")
    return float(fn(t, r)[0])


def _as_1d(values: Any, name: str, like: np.ndarray | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    if like is not None and array.shape != like.shape:
        raise ValueError(f"{name} has shape {array.shape} but y_true has shape {like.shape}")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    if not np.isfinite(array.astype(np.float64)).all():
        bad = np.flatnonzero(~np.isfinite(array.astype(np.float64)))
        raise ValueError(f"{name} holds NaN/inf at positions {bad[:5].tolist()}: "
                         "drop or fix those items before scoring")
    return array


def _check_levels(values: np.ndarray, name: str, n_levels: int) -> None:
    outside = (values != np.round(values)) | (values < 0) | (values > n_levels - 1)
    if outside.any():
        raise ValueError(f"{name} must hold integer levels 0..{n_levels - 1}; position "
                         f"{int(np.flatnonzero(outside)[0])} holds {values[outside][0]}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def as_float(value: Any) -> float:
    """``value`` as a float; NaN for None or anything that is not a number (a missing metric)."""
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan
