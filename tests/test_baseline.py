"""The baseline row of every summary (hawkeye.baseline, hawkeye.collect) where the answer is known.

The hand-made run (``write_run``): 3 folds of 4 subjects, one video each; every video of fold 0
has score 0, of fold 1 score 2, of fold 2 score 4; the test split is 3 subjects of score 1.
Fold k's training labels are the other two folds' scores, so the training medians are 3, 2 and
1: the baseline's held-out errors are 3, 0 and 3 per video (pooled MAE (4*3 + 0 + 4*3) / 12 =
2); on the test split the fold ensemble's mean output is (3 + 2 + 1) / 3 = 2, error 1.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import tapping_store, tiny_model

from hawkeye.baseline import better_than_baseline, fold_values, trivial_outputs, trivial_value
from hawkeye.collect import CollectOptions, collect
from hawkeye.config import compose
from hawkeye.figures import comparison_figure
from hawkeye.metrics import regression_metrics, score_metrics
from hawkeye.store import load_store
from hawkeye.train import train

OPTIONS = CollectOptions(n_boot=400, alpha=0.05, seed=0, figures=False)
FOLD_SCORES = (0, 2, 4)
SUBJECTS_PER_FOLD = 4
N_LEVELS = 5


def test_the_trivial_predictor_of_each_kind() -> None:
    assert trivial_value("ordinal", np.array([0, 1, 1, 4])) == 1.0          # median
    assert trivial_value("ordinal", np.array([1, 2])) == 1.5
    assert trivial_value("regression", np.array([1.0, 2.0, 6.0])) == 3.0    # mean
    assert trivial_value("anomaly", np.array([0, 0, 1])) == 0.0             # majority class
    assert trivial_value("anomaly", np.array([1, 1, 0])) == 1.0
    assert trivial_value("anomaly", np.array([0, 1])) == 0.0                # a tie: normal
    pred, raw = trivial_outputs("ordinal", 1.5, 3, N_LEVELS)
    assert pred.tolist() == [2.0] * 3 and raw.tolist() == [1.5] * 3         # rounded half to even
    assert trivial_outputs("anomaly", 1.0, 2, None)[1].tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="kind 'ranking'"):
        trivial_value("ranking", np.array([1.0]))
    with pytest.raises(ValueError, match="at least 2 folds"):
        fold_values("ordinal", [np.array([1.0])])


def test_each_fold_learns_from_the_other_folds_only() -> None:
    held_out = [np.full(4, float(s)) for s in FOLD_SCORES]
    assert fold_values("ordinal", held_out) == [3.0, 2.0, 1.0]
    assert fold_values("regression", held_out) == [3.0, 2.0, 1.0]


def test_the_verdict_needs_the_whole_interval_on_the_better_side() -> None:
    assert better_than_baseline(-0.5, -0.1, higher_is_better=False) is True   # MAE lower
    assert better_than_baseline(-0.5, 0.0, higher_is_better=False) is False
    assert better_than_baseline(0.1, 0.3, higher_is_better=True) is True      # F1 higher
    assert better_than_baseline(-0.1, 0.3, higher_is_better=True) is False
    assert better_than_baseline(float("nan"), 0.3, higher_is_better=True) is None


# ----------------------------------------------------------------------------------------------
# the collector on a hand-made run


def _rows(fold: int, predict) -> list[dict]:
    rows = [{"split": "cv", "id": f"f{fold}s{s}", "subject": f"f{fold}s{s}",
             "true": FOLD_SCORES[fold]} for s in range(SUBJECTS_PER_FOLD)]
    rows += [{"split": "test", "id": f"t{s}", "subject": f"t{s}", "true": 1} for s in range(3)]
    for row in rows:
        row["raw"] = predict(fold, row)
        row["pred"] = int(np.clip(np.rint(row["raw"]), 0, N_LEVELS - 1))
    return rows


def write_run(run: Path, models: dict) -> Path:
    """The run of the module doc; ``models`` maps a name to ``predict(fold, row) -> raw``."""
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"models": list(models), "n_folds": 3}))
    for name, predict in models.items():
        for fold in range(3):
            out = run / name / f"fold_{fold}"
            out.mkdir(parents=True)
            rows = _rows(fold, predict)
            with open(out / "predictions.csv", "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["split", "id", "subject", "true",
                                                            "pred", "raw"])
                writer.writeheader()
                writer.writerows(rows)
            cv = [r for r in rows if r["split"] == "cv"]
            metrics = score_metrics([r["true"] for r in cv], [r["pred"] for r in cv],
                                    [r["raw"] for r in cv], N_LEVELS)
            (out / "metrics.json").write_text(json.dumps({
                "model": name, "fold": fold, "status": "ok", "cv": metrics,
                "n_levels": N_LEVELS}))
    return run


def perfect(fold: int, row: dict) -> float:
    return float(row["true"])


def like_the_baseline(fold: int, row: dict) -> float:
    return (3.0, 2.0, 1.0)[fold]  # each fold's training median: the baseline itself


def test_the_baseline_row_and_each_models_paired_difference(tmp_path) -> None:
    run = write_run(tmp_path / "run", {"perfect": perfect, "constant": like_the_baseline})
    assert collect(run, OPTIONS) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert [r["label"] for r in summary["rows"]] == ["perfect", "constant"]  # model rows only
    (baseline,) = summary["baselines"]
    assert baseline["label"] == "baseline" and baseline["baseline_rule"] == "training median"
    assert baseline["complete"] and baseline["n_cv"] == 12 and baseline["n_test"] == 3
    assert baseline["cv"]["mae"]["folds"] == pytest.approx([3.0, 0.0, 3.0])
    assert baseline["cv"]["mae"]["pooled"] == pytest.approx(2.0)
    assert baseline["test"]["mae"]["value"] == pytest.approx(1.0)

    rows = {r["label"]: r for r in summary["rows"]}
    best = rows["perfect"]["vs_baseline"]
    assert best["metric"] == "mae" and best["rule"] == "training median"
    assert best["cv"]["model"] == 0.0 and best["cv"]["baseline"] == pytest.approx(2.0)
    assert best["cv"]["difference"] == pytest.approx(-2.0)
    assert best["cv"]["ci_low"] <= -2.0 <= best["cv"]["ci_high"] < 0
    assert best["cv"]["better"] is True
    assert best["test"]["difference"] == pytest.approx(-1.0) and best["test"]["better"] is True
    # the same predictions as the baseline: a difference of exactly 0 on every resample
    same = rows["constant"]["vs_baseline"]
    assert same["cv"]["difference"] == 0.0
    assert (same["cv"]["ci_low"], same["cv"]["ci_high"]) == (0.0, 0.0)
    assert same["cv"]["better"] is False and same["test"]["better"] is False

    markdown = (run / "summary.md").read_text()
    assert "| baseline (training median) | 2.000 ± 1.732 |" in markdown  # folds 3, 0, 3
    assert "Δ MAE vs baseline, 95% CI | Better than baseline |" in markdown
    assert "| 12 | -2.000 [" in markdown and "] | yes |" in markdown
    with open(run / "summary_scores.csv", newline="") as handle:
        table = {r["model"]: r for r in csv.DictReader(handle)}
    assert table["baseline"]["baseline_rule"] == "training median"
    assert table["perfect"]["cv_vs_baseline_better"] == "yes"
    assert table["constant"]["cv_vs_baseline_better"] == "no"
    assert float(table["perfect"]["cv_vs_baseline_difference"]) == pytest.approx(-2.0)


def test_an_incomplete_row_gets_no_baseline_and_says_why(tmp_path) -> None:
    run = write_run(tmp_path / "run", {"perfect": perfect})
    (run / "perfect" / "fold_2" / "metrics.json").unlink()
    assert collect(run, OPTIONS) == 1
    summary = json.loads((run / "summary.json").read_text())
    (row,) = summary["rows"]
    assert row["vs_baseline"] is None and summary["baselines"] == []
    assert any("no baseline comparison" in note for note in row["notes"])


def test_a_real_valued_target_is_compared_with_the_training_mean(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"models": ["fuel"], "n_folds": 2}))
    truths = {0: [1.0, 2.0, 3.0], 1: [5.0, 6.0, 7.0]}  # training means: 6 for fold 0, 2 for 1
    for fold, true in truths.items():
        out = run / "fuel" / f"fold_{fold}"
        out.mkdir(parents=True)
        raw = [t + 0.5 for t in true]
        with open(out / "predictions.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["split", "id", "subject", "true", "pred", "raw"])
            writer.writerows(["cv", f"w{fold}{i}", f"trip{fold}{i}", t, r, r]
                             for i, (t, r) in enumerate(zip(true, raw, strict=True)))
        (out / "metrics.json").write_text(json.dumps({
            "model": "fuel", "fold": fold, "status": "ok", "cv": regression_metrics(true, raw)}))
    assert collect(run, OPTIONS) == 0
    summary = json.loads((run / "summary.json").read_text())
    (baseline,) = summary["baselines"]
    assert baseline["baseline_rule"] == "training mean"
    assert baseline["cv"]["mae"]["pooled"] == pytest.approx(4.0)  # |1-6|,|2-6|,|3-6|,|5-2|,...
    versus = summary["rows"][0]["vs_baseline"]["cv"]
    assert versus["difference"] == pytest.approx(0.5 - 4.0) and versus["better"] is True


# ----------------------------------------------------------------------------------------------
# a real training run: the baseline recomputed from the store and folds.json


@pytest.mark.slow
def test_on_a_trained_store_the_baseline_is_the_training_median_of_each_fold(tmp_path) -> None:
    # test_launch's tiny store: every score level has several subjects in every fold
    store = tapping_store(tmp_path / "store.h5", n_subjects=28, videos_per_subject=3,
                          n_frames=36, test_subjects=4)
    run_dir = tmp_path / "run"
    for fold in range(3):
        train(compose([*tiny_model("gbm"), f"paths.store={store}", f"run_dir={run_dir}",
                       "cv.n_folds=3", f"fold={fold}", "train.num_threads=1",
                       "export.onnx=false"]))
    assert collect(run_dir, OPTIONS) == 0
    (baseline,) = json.loads((run_dir / "summary.json").read_text())["baselines"]

    data = load_store(store)
    folds = json.loads((run_dir / "folds.json").read_text())["folds"]
    cv = data.splits != "test"
    fold_of = np.array([folds.get(i, -1) for i in data.ids])
    errors, test_outputs = [], []
    for k in range(3):
        median = np.median(data.scores[cv & (fold_of != k)])  # the whole training side
        held_out = data.scores[fold_of == k]
        errors += np.abs(held_out - np.clip(np.rint(median), 0, 4)).tolist()
        test_outputs.append(median)
    assert baseline["cv"]["mae"]["pooled"] == pytest.approx(np.mean(errors))
    ensemble = np.clip(np.rint(np.mean(test_outputs)), 0, 4)
    test_true = data.scores[data.splits == "test"]
    assert baseline["test"]["mae"]["value"] == pytest.approx(np.mean(np.abs(test_true - ensemble)))


def test_the_comparison_figure_draws_the_baseline(tmp_path) -> None:
    panels = {"MAE": ([0.4, 0.6], [0.3, 0.5], [0.5, 0.7])}
    plain = comparison_figure(["a", "b"], panels, tmp_path / "plain.png", "t")
    drawn = comparison_figure(["a", "b"], panels, tmp_path / "with.png", "t",
                              baseline=("baseline: training median of each fold",
                                        {"MAE": (0.9, 0.8, 1.0)}))
    assert len(plain.axes[0].patches) == 2 and len(drawn.axes[0].patches) == 3  # + its bar
    dashed = [line for line in drawn.axes[0].lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_xdata()) == [0.9, 0.9]
    run = write_run(tmp_path / "run", {"perfect": perfect})
    assert collect(run, CollectOptions(n_boot=50, alpha=0.05, seed=0, figures=True)) == 0
    assert json.loads((run / "summary.json").read_text())["notes"] == []  # every figure drawn


def test_nominal_classes_get_the_training_majority_class() -> None:
    assert trivial_value("nominal", np.array([2, 0, 2, 1, 2, 0])) == 2.0
    assert trivial_value("nominal", np.array([1, 0, 0, 1])) == 0.0  # a tie: the lowest class
    pred, raw = trivial_outputs("nominal", 2.0, 3, 4)
    assert pred.tolist() == [2.0, 2.0, 2.0] and raw.tolist() == [2.0, 2.0, 2.0]
