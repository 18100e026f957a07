"""Nominal classes end to end (issue 16): a bring-your-own store of three separable classes
(tests/conftest.py ``class_store``) trained with ``task=sequences head=classification`` and
collected; the early-stopping rule; threads per job; the store-derived time base."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from conftest import class_store, tiny_model

from hawkeye.collect import CollectOptions, collect
from hawkeye.config import compose
from hawkeye.export import ONNX_NAME, export_fold, read_metadata
from hawkeye.loop import improves, job_threads, monitor_sign
from hawkeye.predict import PredictError, run_predict
from hawkeye.store import load_store
from hawkeye.timebase import TimeBase, store_time_base, uniform_times
from hawkeye.train import train

N_FOLDS, PATIENCE, EPOCHS = 3, 3, 60


@pytest.fixture(scope="module")
def class_run(tmp_path_factory):
    """Three folds of a tiny attention LSTM on the three-class store, and the collected summary."""
    root = tmp_path_factory.mktemp("classes")
    store = class_store(root / "classes.h5")
    run_dir = root / "run"
    folds, configs = [], []
    for fold in range(N_FOLDS):
        cfg = compose([*tiny_model("attention_lstm"), "task=sequences", "head=classification",
                       f"paths.store={store}", f"run_dir={run_dir}", f"fold={fold}",
                       f"cv.n_folds={N_FOLDS}", f"train.epochs={EPOCHS}",
                       f"train.patience={PATIENCE}", "train.monitor=val_accuracy",
                       "train.lr=0.01", "train.num_threads=1", "export.onnx=false"])
        folds.append(train(cfg))
        configs.append(cfg)
    options = CollectOptions(n_boot=50, alpha=0.05, seed=0, figures=False)
    assert collect(run_dir, options) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    return run_dir, folds, summary, configs


def test_nominal_classes_are_scored_as_classes_and_show_no_mae(class_run):
    run_dir, folds, summary, _ = class_run
    (row,) = summary["rows"]
    assert row["kind"] == "nominal" and row["n_levels"] == 3
    for part in (row["cv"], row["test"], folds[0]["cv"], folds[0]["test"]):
        assert {"accuracy", "balanced_accuracy", "macro_f1"} <= set(part)
        assert not {"mae", "mae_raw", "pearson", "spearman", "qwk", "within1", "exact"} & set(part)
    assert len(folds[0]["cv"]["per_class_recall"]) == 3
    assert "MAE" not in (run_dir / "summary.md").read_text()


def test_soft_vote_ensemble_is_at_least_as_good_as_the_best_fold(class_run):
    run_dir, folds, summary, _ = class_run
    (row,) = summary["rows"]
    best_fold = max(f["test"]["accuracy"] for f in folds)
    assert best_fold > 0.9  # the classes are separable: the folds learned them
    assert row["test"]["accuracy"]["value"] >= best_fold
    assert row["cv"]["accuracy"]["pooled"] > 0.9


def test_predictions_keep_the_class_probabilities(class_run):
    run_dir, _, _, _ = class_run
    with open(run_dir / "attention_lstm" / "fold_0" / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:9] == ["split", "id", "subject", "true", "pred", "raw", "p0", "p1",
                                 "p2"]
    for r in rows:
        p = np.array([float(r[f"p{k}"]) for k in range(3)])
        assert p.sum() == pytest.approx(1.0, abs=1e-5) and int(r["pred"]) == int(p.argmax())


def test_early_stopping_stops_within_patience_of_the_plateau(class_run):
    _, folds, _, _ = class_run
    for f in folds:
        # val_accuracy reaches its plateau (1.0) and the loss stops falling by more than
        # min_delta; PATIENCE epochs later the fold stops, far before EPOCHS
        assert f["epochs_run"] == f["best_epoch"] + PATIENCE < EPOCHS


@pytest.mark.slow
def test_onnx_and_predict_use_the_collectors_soft_vote(class_run, tmp_path):
    """Export the folds (a ``probabilities`` output), score the test split's sequences from a
    ``.npz`` with hawkeye.predict: each level is the soft vote of the folds' predictions.csv
    probabilities, the rule the collector's test ensemble uses."""
    run_dir, _, _, configs = class_run
    for fold, cfg in enumerate(configs):
        export_fold(run_dir / "attention_lstm" / f"fold_{fold}", cfg)
    meta = read_metadata(run_dir / "attention_lstm" / "fold_0" / ONNX_NAME)
    assert meta["outputs"] == ["raw", "expected", "level", "probabilities"]
    # the store's own rate (10 Hz) for its longest sequence (60 samples): every sample, none cut
    assert meta["sample_rate_hz"] == 10.0 and meta["max_seconds"] == pytest.approx(6.0)
    assert TimeBase.from_task(meta).max_steps == 60
    store = load_store(configs[0].paths.store, splits="test")
    sequences = tmp_path / "new.npz"
    np.savez(sequences, ids=store.ids, sequences=store.series, lengths=store.lengths,
             channel_names=np.asarray(store.series_names))
    run = run_predict(sequences, run_dir, "attention_lstm", configs[0].prepare, tmp_path / "out")
    assert [p.status for p in run.predictions] == ["ok"] * len(store)
    mean_p = {}
    for fold in range(N_FOLDS):
        with open(run_dir / "attention_lstm" / f"fold_{fold}" / "predictions.csv") as handle:
            for r in csv.DictReader(handle):
                if r["split"] == "test":
                    p = np.array([float(r[f"p{k}"]) for k in range(3)]) / N_FOLDS
                    mean_p[r["id"]] = mean_p.get(r["id"], 0) + p
    for p in run.predictions:
        assert p.score == int(mean_p[p.input.id].argmax())
    with open(tmp_path / "out" / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == list(store.ids) and all(r["score"] for r in rows)


def test_predict_names_the_file_whose_channels_the_model_does_not_read(class_run, tmp_path):
    run_dir, _, _, configs = class_run
    if not (run_dir / "attention_lstm" / "fold_0" / ONNX_NAME).exists():
        export_fold(run_dir / "attention_lstm" / "fold_0", configs[0])
    bad = tmp_path / "bad.npz"
    np.savez(bad, ids=np.array(["x"]), seq_0=np.ones((20, 3)))
    with pytest.raises(PredictError, match=r"bad\.npz.*channels"):
        run_predict(bad, run_dir, "attention_lstm", configs[0].prepare, tmp_path / "out")


def test_a_tie_improves_only_when_the_loss_falls_by_more_than_min_delta():
    best, best_loss = 0.0, 0.5  # e.g. an MAE that has reached 0
    assert improves(-0.01, 0.6, best, best_loss, min_delta=0.001)      # better metric
    assert not improves(0.0, 0.4995, best, best_loss, min_delta=0.001)  # tie, loss by crumbs
    assert improves(0.0, 0.49, best, best_loss, min_delta=0.001)        # tie, loss clearly lower
    assert improves(0.0005, 0.1, best, best_loss, min_delta=0.001)      # tie, loss lower
    assert not improves(math.nan, 0.1, best, best_loss, min_delta=0.001)
    assert improves(5.0, 9.0, math.inf, math.inf, min_delta=0.001)      # the first epoch


def test_monitor_direction_follows_the_metric():
    assert monitor_sign("val_loss", "auto")(0.3) == 0.3
    assert monitor_sign("val_accuracy", "auto")(0.9) == -0.9   # higher is better
    assert monitor_sign("val_r2", "min")(0.5) == 0.5
    with pytest.raises(ValueError, match="monitor_mode"):
        monitor_sign("val_loss", "up")


def test_threads_per_job_come_from_the_cpus_the_job_has():
    assert job_threads(2, None, None, 2) == 1         # two local jobs on two cores
    assert job_threads(16, None, None, 3) == 5
    assert job_threads(16, "4", None, 2) == 4          # inside a Slurm job
    assert job_threads(16, None, 8, None) == 8         # the launcher's cpus_per_task
    assert job_threads(2, None, None, 4) == 1 and job_threads(6, None, None, None) == 6


def test_the_time_base_comes_from_the_store_without_thinning_or_cutting():
    lengths, fps = np.array([40, 300, 120]), np.full(3, 100.0)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    times = np.concatenate([uniform_times(int(n), 100.0) for n in lengths])
    own = store_time_base(None, None, fps, times, offsets, "s.h5")
    assert own.sample_rate_hz == 100.0 and own.max_seconds == pytest.approx(3.0)
    assert own.max_steps == 300  # every sample of the longest sequence
    assert store_time_base(25.0, None, fps, times, offsets, "s.h5").max_steps == 75
    assert store_time_base(15.0, 17.0, fps, times, offsets, "s.h5") == TimeBase(15.0, 17.0)
    unknown = store_time_base(None, None, np.full(3, np.nan), np.full(460, np.nan), offsets, "s")
    assert unknown == TimeBase(1.0, 300.0)  # no fps: one sample per step, the longest kept
    with pytest.raises(ValueError, match=r"s.h5 holds sequences at 2 rates.*sample_rate_hz"):
        store_time_base(None, None, np.array([100.0, 50.0, np.nan]), times, offsets, "s.h5")
