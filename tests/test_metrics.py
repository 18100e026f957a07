"""hawkeye.metrics against values computed by hand.

Every expected number below is worked out in the comment beside it, so a change of definition
(κ weighting, F1 label set, threshold side, bootstrap unit) fails a test instead of drifting.
"""

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from hawkeye.metrics import (
    _group_draws,
    _is_number,
    _percentile_interval,
    anomaly_metrics,
    anomaly_metrics_weighted,
    bootstrap_anomaly_metrics,
    bootstrap_class_metrics,
    bootstrap_regression_metrics,
    bootstrap_score_metrics,
    class_metrics,
    class_metrics_weighted,
    quadratic_weighted_kappa,
    regression_metrics,
    regression_metrics_weighted,
    score_metrics,
    score_metrics_weighted,
)

# ----------------------------------------------------------------------------------------------
# The index-based reference bootstrap: resample rows by index and rerun the point metric. Slow,
# but obviously right; the vectorised bootstrap functions must give the same intervals.


def bootstrap_ci(
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    y_true: Any,
    y_pred: Any,
    groups: Any,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile ``1 - alpha`` interval of ``metric_fn(y_true, y_pred)`` by a **group** bootstrap.

    The resampling unit is the group (the subject): each of ``n_boot`` resamples draws as many
    groups as there are, uniformly with replacement, and keeps *all* rows of every drawn group
    (a group drawn twice contributes its rows twice). The interval is the (alpha/2, 1 - alpha/2)
    percentiles of the resampled values (Efron's percentile interval). Resamples where the metric
    is undefined (``NaN``, e.g. a correlation of a constant resample) are dropped; with none left
    the interval is ``(nan, nan)``. Deterministic for a given ``seed``.

    ``y_pred`` may be 2-D ``(n, k)`` (rows are resampled together), e.g. integer and continuous
    predictions stacked for :func:`score_metrics`.
    """
    def as_dict(t: np.ndarray, p: np.ndarray) -> dict[str, float]:
        return {"value": metric_fn(t, p)}

    return bootstrap_cis(as_dict, y_true, y_pred, groups, n_boot, seed, alpha)["value"]


def bootstrap_cis(
    metrics_fn: Callable[[np.ndarray, np.ndarray], Mapping[str, Any]],
    y_true: Any,
    y_pred: Any,
    groups: Any,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    keys: tuple[str, ...] | None = None,
) -> dict[str, tuple[float, float]]:
    """:func:`bootstrap_ci` for several metrics at once, sharing the same resamples.

    ``metrics_fn`` returns a dict; an interval is computed for each of ``keys`` (default: every
    key whose value is a number). Same resampling unit (group), interval and NaN rule as
    :func:`bootstrap_ci`.
    """
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    g = np.asarray(groups)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array, got shape {t.shape}")
    if p.shape[:1] != t.shape or g.shape != t.shape:
        raise ValueError(f"y_true {t.shape}, y_pred {p.shape} and groups {g.shape} must have the "
                         "same number of rows")
    if not 0 < alpha < 1 or n_boot < 1:
        raise ValueError(f"need 0 < alpha < 1 and n_boot >= 1, got alpha={alpha}, n_boot={n_boot}")
    values: dict[str, list[float]] = {}
    for idx in _group_resamples(g, n_boot, seed):
        out = metrics_fn(t[idx], p[idx])
        for key in keys if keys is not None else [k for k, v in out.items() if _is_number(v)]:
            values.setdefault(key, []).append(float(out[key]))
    return {key: _percentile_interval(np.asarray(v), alpha) for key, v in values.items()}



def _group_resamples(groups: np.ndarray, n_boot: int, seed: int):
    """Yield ``n_boot`` row-index arrays, each the rows of G groups drawn with replacement.

    Vectorised per resample: rows are sorted by group once, so a resample's indices are built with
    one ``np.repeat`` instead of concatenating G small arrays.
    """
    inverse, draws = _group_draws(groups, n_boot, seed)
    sizes = np.bincount(inverse)
    order = np.argsort(inverse, kind="stable")  # group k's rows: order[starts[k]:][:sizes[k]]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for draw in draws:
        lengths = sizes[draw]
        ends = np.cumsum(lengths)
        # position within the resample minus the resample-offset of its block + the group's start
        shift = np.repeat(starts[draw] - (ends - lengths), lengths)
        yield order[np.arange(ends[-1]) + shift]



def test_perfect_predictions():
    y = np.array([0, 1, 2, 3, 4, 2, 1])
    m = score_metrics(y, y, y.astype(float), n_levels=5)
    assert m["mae"] == 0 and m["mae_raw"] == 0
    assert m["exact"] == 1 and m["within1"] == 1
    assert m["qwk"] == pytest.approx(1.0)
    assert m["macro_f1"] == pytest.approx(1.0)
    assert m["pearson"] == pytest.approx(1.0) and m["spearman"] == pytest.approx(1.0)
    assert np.array_equal(m["confusion"], np.diag([1, 2, 2, 1, 1]))
    assert m["n"] == 7


def test_off_by_one_everywhere():
    y = np.array([0, 1, 2, 3, 4, 1, 2, 3])
    pred = np.where(y < 4, y + 1, y - 1)  # every prediction one level away
    m = score_metrics(y, pred, pred + 0.2, n_levels=5)
    assert m["mae"] == 1.0
    assert m["within1"] == 1.0
    assert m["exact"] == 0.0
    assert m["mae_raw"] == pytest.approx(np.mean(np.abs(y - (pred + 0.2))))


def test_mae_is_on_the_integer_prediction_and_mae_raw_on_the_continuous_output():
    y = np.array([1, 2, 3])
    raw = np.array([1.4, 2.4, 3.4])  # rounds to the truth: integer MAE 0, raw MAE 0.4
    m = score_metrics(y, np.rint(raw), raw, n_levels=5)
    assert m["mae"] == 0.0
    assert m["mae_raw"] == pytest.approx(0.4)


def test_quadratic_weighted_kappa_small_example():
    # L=3, t=[0,1,2,2], p=[0,2,2,1]. Observed disagreement Σ(i-j)²·O = 1 + 1 = 2.
    # Marginals a = b = [1,1,2]; chance Σ(i-j)²·a_i·b_j / n = (1+8+1+2+8+2) / 4 = 5.5.
    # κ = 1 - 2 / 5.5 = 7/11.
    t, p = [0, 1, 2, 2], [0, 2, 2, 1]
    assert score_metrics(t, p, p, n_levels=3)["qwk"] == pytest.approx(7 / 11)
    # quadratic, not linear: linear weights |i-j| give 1 - 2/3.5 = 3/7
    assert quadratic_weighted_kappa(t, p, 3) != pytest.approx(3 / 7)


@pytest.mark.filterwarnings("error")  # a NaN must come with no SciPy/sklearn warning
def test_constant_input_gives_nan_correlations_and_kappa_without_crash():
    y = np.array([2, 2, 2, 2])
    m = score_metrics(y, y, np.full(4, 2.0), n_levels=5)
    assert math.isnan(m["pearson"]) and math.isnan(m["spearman"])
    assert math.isnan(m["qwk"])  # all in one level: chance disagreement 0, κ = 0/0
    m = score_metrics([0, 1, 2, 3], [1, 1, 1, 1], [1.0, 1.0, 1.0, 1.0], n_levels=4)
    assert math.isnan(m["pearson"])
    assert m["mae"] == pytest.approx(1.0)  # |0-1| + 0 + 1 + 2 = 4, / 4


def test_macro_f1_counts_never_predicted_levels_and_skips_absent_ones():
    # t=[0,0,1,1], p=[0,0,1,0], L=3. Level 0: TP 2, FP 1, FN 0 -> F1 = 4/5.
    # Level 1: TP 1, FP 0, FN 1 -> 2/3. Level 2 absent from both sides: left out.
    m = score_metrics([0, 0, 1, 1], [0, 0, 1, 0], [0.0, 0.1, 1.0, 0.4], n_levels=3)
    assert m["macro_f1"] == pytest.approx((4 / 5 + 2 / 3) / 2)
    # a present level never predicted counts as 0: t=[0,1], p=[0,0] -> (2/3 + 0) / 2
    assert score_metrics([0, 1], [0, 0], [0.0, 0.2], 2)["macro_f1"] == pytest.approx(1 / 3)


def test_confusion_has_all_levels_even_unused():
    m = score_metrics([0, 1], [1, 1], [1.0, 1.0], n_levels=4)
    assert m["confusion"] == [[0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize(
    ("y_true", "y_pred", "y_raw", "message"),
    [
        ([0, 1, 2], [0, 1], [0.0, 1.0, 2.0], "shape"),
        ([0, 1, 2], [0, 1, 5], [0.0, 1.0, 2.0], "levels 0..4"),
        ([0, 1, 2], [0, 1.5, 2], [0.0, 1.0, 2.0], "levels 0..4"),
        ([0, 1, 2], [0, 1, 2], [0.0, np.nan, 2.0], "NaN"),
        ([], [], [], "non-empty"),
    ],
)
def test_bad_input_raises_value_error_naming_the_array(y_true, y_pred, y_raw, message):
    with pytest.raises(ValueError, match=message):
        score_metrics(y_true, y_pred, y_raw, n_levels=5)


def test_anomaly_metrics_by_hand():
    # flagged = score > 0.5 -> [0, 1, 0, 1]; TP 1, FP 1, FN 1: precision = recall = F1 = 1/2.
    # ROC-AUC: positive scores {0.4, 0.9} beat negatives {0.1, 0.6} in 3 of 4 pairs -> 0.75.
    m = anomaly_metrics([False, False, True, True], [0.1, 0.6, 0.4, 0.9], threshold=0.5)
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert m["roc_auc"] == pytest.approx(0.75)
    # average precision: ranks 0.9 (pos, P=1), 0.6 (neg), 0.4 (pos, P=2/3) -> (1 + 2/3) / 2
    assert m["pr_auc"] == pytest.approx(5 / 6)
    assert m["threshold"] == 0.5 and m["n"] == 4


def test_anomaly_threshold_is_strict_and_single_class_auc_is_nan():
    m = anomaly_metrics([0, 1], [0.5, 0.5], threshold=0.5)  # equal to threshold: not flagged
    assert m["recall"] == 0.0 and math.isnan(m["precision"])  # nothing flagged: precision 0/0
    m = anomaly_metrics([0, 0, 0], [0.1, 0.7, 0.2], threshold=0.5)
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"])
    with pytest.raises(ValueError, match="True/False"):
        anomaly_metrics([0, 2], [0.1, 0.2], threshold=0.5)


def test_regression_metrics_by_hand():
    # errors [0, 0, 0, 1]: MAE 1/4, RMSE sqrt(1/4); SS_tot = 2.25+0.25+0.25+2.25 = 5 -> R² = 0.8
    m = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0])
    assert m == pytest.approx({"r2": 0.8, "mae": 0.25, "rmse": 0.5, "n": 4})
    assert math.isnan(regression_metrics([2.0, 2.0], [1.0, 3.0])["r2"])


def _subject_data(n_subjects: int, per_subject: int, seed: int):
    """Each subject has ``per_subject`` videos; predictions are the truth plus N(0, 0.8) noise."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_subjects), per_subject)
    y = rng.integers(0, 5, groups.size)
    return y, y + rng.normal(0, 0.8, y.size), groups


def _mean_abs_error(t: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(t - p)))


def test_bootstrap_ci_contains_point_estimate_and_is_deterministic():
    y, p, g = _subject_data(40, 4, seed=1)
    low, high = bootstrap_ci(_mean_abs_error, y, p, g, n_boot=300, seed=3)
    assert low < _mean_abs_error(y, p) < high
    assert bootstrap_ci(_mean_abs_error, y, p, g, n_boot=300, seed=3) == (low, high)
    assert bootstrap_ci(_mean_abs_error, y, p, g, n_boot=300, seed=4) != (low, high)


def test_bootstrap_ci_narrows_with_more_subjects():
    widths = []
    for n_subjects in (10, 250):
        y, p, g = _subject_data(n_subjects, 3, seed=0)
        low, high = bootstrap_ci(_mean_abs_error, y, p, g, n_boot=300)
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # ~sqrt(25) = 5x narrower in theory


def test_bootstrap_resamples_subjects_not_samples():
    # 5 subjects x 40 videos; every video of subject s is off by exactly s points. The subject is
    # the unit of independent evidence, so the MAE is uncertain across [0, 4]: the group bootstrap
    # interval is wide (sd of 5 subject means ~1.4/sqrt(5) -> width ~2.4). A per-sample bootstrap
    # would believe it has 200 independent errors (width ~0.4).
    groups = np.repeat(np.arange(5), 40)
    y = np.zeros(groups.size)
    p = groups.astype(float)
    low, high = bootstrap_ci(_mean_abs_error, y, p, groups, n_boot=500)
    assert high - low > 1.5
    per_sample = bootstrap_ci(_mean_abs_error, y, p, np.arange(groups.size), n_boot=500)
    assert per_sample[1] - per_sample[0] < 0.6


def test_bootstrap_keeps_rows_of_2d_predictions_together_and_drops_nan_resamples():
    y, p, g = _subject_data(30, 2, seed=5)
    stacked = np.stack([np.rint(np.clip(p, 0, 4)), p], axis=1)  # (n, 2): integer and raw

    def metrics(t, pr):
        return score_metrics(t, pr[:, 0], pr[:, 1], 5)

    cis = bootstrap_cis(metrics, y, stacked, g, n_boot=100, keys=("mae", "pearson", "qwk"))
    full = metrics(y, stacked)
    for key in ("mae", "pearson", "qwk"):
        assert cis[key][0] <= full[key] <= cis[key][1]
    # a metric that is NaN on every resample gives a NaN interval, not an exception
    assert all(math.isnan(v) for v in bootstrap_ci(lambda t, q: math.nan, y, p, g, n_boot=20))


def test_bootstrap_rejects_misaligned_groups():
    with pytest.raises(ValueError, match="same number of rows"):
        bootstrap_ci(_mean_abs_error, np.zeros(4), np.zeros(4), np.zeros(3), n_boot=5)


def test_weighted_metrics_equal_score_metrics_on_repeated_items():
    # The vectorised bootstrap evaluates a resample as weights (copies per item); on every
    # weighting, including ties, constant outputs and perfect predictions, the numbers must be
    # score_metrics' own on the items repeated that many times.
    rng = np.random.default_rng(0)
    for trial in range(30):
        n, levels = int(rng.integers(1, 25)), int(rng.integers(2, 6))
        t = rng.integers(0, levels, n)
        p = t.copy() if trial % 5 == 0 else np.clip(t + rng.integers(-2, 3, n), 0, levels - 1)
        raw = np.full(n, 1.0) if trial % 7 == 0 else np.round(p + rng.normal(0, 0.5, n), 1)
        weights = rng.integers(0, 4, (3, n)).astype(float)
        weights[:, 0] += 1  # every resample holds at least one item
        got = score_metrics_weighted(t, p, raw, levels, weights)
        for b in range(3):
            rows = np.repeat(np.arange(n), weights[b].astype(int))
            reference = score_metrics(t[rows], p[rows], raw[rows], levels)
            for key, values in got.items():
                assert values[b] == pytest.approx(
                    reference[key], rel=1e-9, abs=1e-12, nan_ok=True
                ), (trial, key)


def test_vectorised_bootstrap_matches_resampling_score_metrics():
    y, raw, groups = _subject_data(25, 3, seed=2)
    pred = np.clip(np.rint(raw), 0, 4).astype(int)
    fast = bootstrap_score_metrics(y, pred, raw, groups, 5, n_boot=80, seed=7)
    slow = bootstrap_cis(
        lambda t, pr: score_metrics(t, pr[:, 0], pr[:, 1], 5),
        y,
        np.stack([pred, raw], axis=1),
        groups,
        n_boot=80,
        seed=7,
    )
    for key in ("mae", "mae_raw", "exact", "within1", "pearson", "spearman", "qwk", "macro_f1"):
        assert fast[key] == pytest.approx(slow[key], rel=1e-9), key


def test_weighted_anomaly_and_regression_metrics_equal_the_point_functions():
    rng = np.random.default_rng(1)
    for trial in range(30):
        n = int(rng.integers(1, 20))
        label = rng.integers(0, 2, n).astype(bool)
        if trial % 9 == 0:
            label[:] = True  # one class only: AUCs undefined
        scores = np.round(rng.normal(0, 1, n) + label, int(rng.integers(0, 2)))  # ties sometimes
        threshold = float(rng.normal(0.5, 0.5))
        truth = rng.normal(0, 1, n)
        pred = truth + rng.normal(0, 0.5, n)
        weights = rng.integers(0, 3, (3, n)).astype(float)
        weights[:, 0] += 1
        anomaly = anomaly_metrics_weighted(label, scores, threshold, weights)
        regression = regression_metrics_weighted(truth, pred, weights)
        for b in range(3):
            rows = np.repeat(np.arange(n), weights[b].astype(int))
            with warnings.catch_warnings():  # scikit-learn warns on the 0/0 cases we map to NaN
                warnings.simplefilter("ignore")
                reference = {
                    **anomaly_metrics(label[rows], scores[rows], threshold),
                    **{
                        f"reg_{k}": v
                        for k, v in regression_metrics(truth[rows], pred[rows]).items()
                    },
                }
            got = {**anomaly, **{f"reg_{k}": v for k, v in regression.items()}}
            for key, values in got.items():
                assert values[b] == pytest.approx(
                    reference[key], rel=1e-9, abs=1e-12, nan_ok=True
                ), (trial, key)


def test_vectorised_anomaly_and_regression_bootstraps_match_resampling():
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(20), 3)
    label = rng.random(60) < 0.3
    scores = rng.normal(0, 1, 60) + label
    fast = bootstrap_anomaly_metrics(label, scores, 0.5, groups, n_boot=50, seed=1)
    slow = bootstrap_cis(
        lambda t, s: anomaly_metrics(t, s, 0.5),
        label,
        scores,
        groups,
        n_boot=50,
        seed=1,
        keys=("precision", "recall", "f1", "roc_auc", "pr_auc"),
    )
    for key, interval in slow.items():
        assert fast[key] == pytest.approx(interval, rel=1e-9), key
    fast = bootstrap_regression_metrics(scores, scores + label, groups, n_boot=50, seed=1)
    slow = bootstrap_cis(
        regression_metrics,
        scores,
        scores + label,
        groups,
        n_boot=50,
        seed=1,
        keys=("r2", "mae", "rmse"),
    )
    for key, interval in slow.items():
        assert fast[key] == pytest.approx(interval, rel=1e-9), key


# ----------------------------------------------------------------------------------------------
# Nominal classes


def test_class_metrics_by_hand_and_without_ordinal_metrics():
    # truth 0 0 1 1 2 2, prediction 0 1 1 1 2 0: recalls 1/2, 1, 1/2; F1 = 2TP/(2TP+FP+FN)
    # = 2/4, 4/5, 2/3
    got = class_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], 3)
    assert got["accuracy"] == pytest.approx(4 / 6)
    assert got["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert got["per_class_recall"] == pytest.approx([0.5, 1.0, 0.5])
    assert got["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert got["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert not {"mae", "pearson", "qwk", "spearman", "within1"} & set(got)


def test_class_metrics_recall_of_an_absent_class_is_nan_and_left_out_of_balanced_accuracy():
    got = class_metrics([0, 0, 1], [0, 2, 1], 3)
    assert math.isnan(got["per_class_recall"][2])
    assert got["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert got["balanced_accuracy"] == pytest.approx(
            balanced_accuracy_score([0, 0, 1], [0, 2, 1]))


def test_weighted_class_metrics_equal_class_metrics_on_repeated_items():
    rng = np.random.default_rng(3)
    for trial in range(30):
        n, k = int(rng.integers(1, 25)), int(rng.integers(2, 6))
        t = rng.integers(0, k, n)
        p = t.copy() if trial % 5 == 0 else rng.integers(0, k, n)
        weights = rng.integers(0, 4, (3, n)).astype(float)
        weights[:, 0] += 1
        got = class_metrics_weighted(t, p, k, weights)
        for b in range(3):
            rows = np.repeat(np.arange(n), weights[b].astype(int))
            with warnings.catch_warnings():  # scikit-learn warns on classes without support
                warnings.simplefilter("ignore")
                reference = class_metrics(t[rows], p[rows], k)
            for key, values in got.items():
                assert values[b] == pytest.approx(reference[key], rel=1e-9, abs=1e-12), (trial, key)


def test_vectorised_class_bootstrap_matches_resampling():
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(20), 3)
    t = rng.integers(0, 3, 60)
    p = np.where(rng.random(60) < 0.7, t, rng.integers(0, 3, 60))
    fast = bootstrap_class_metrics(t, p, groups, 3, n_boot=60, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slow = bootstrap_cis(lambda a, b: class_metrics(a, b, 3), t, p, groups, n_boot=60, seed=2,
                             keys=("accuracy", "balanced_accuracy", "macro_f1"))
    for key, interval in slow.items():
        assert fast[key] == pytest.approx(interval, rel=1e-9), key
