"""One (model, fold) training job: outputs per the contract, learning, resume, OOM, families.

The data is a small store of simulated finger-tapping traces (hawkeye.synthetic's kinematic model:
the thumb-index aperture and its velocity, 4 s at 30 fps). Each subject has a typical severity; the
score sets the tapping frequency, amplitude, rhythm and decrement, so it is learnable in seconds.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import submitit
import torch
from conftest import tapping_store, tiny_model

from hawkeye import loop as loop_module
from hawkeye.config import compose
from hawkeye.folds import FOLDS_FILE
from hawkeye.loop import halve_batch_on_oom
from hawkeye.store import load_store, write_sequences
from hawkeye.train import TrainTask, fold_dir, train

REPO = Path(__file__).resolve().parents[1]
@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tapping_store(tmp_path_factory.mktemp("store") / "tapping.h5")


def overrides(store: Path, run_dir: Path, model: str = "attention_lstm", *extra: str) -> list[str]:
    return [
        f"paths.store={store}",
        f"run_dir={run_dir}",
        f"model={model}",
        *tiny_model(model),
        "cv.n_folds=3",
        "train.epochs=3",
        "train.batch_size=16",
        "train.num_threads=1",
        "export.onnx=false",  # export has its own tests (tests/test_export.py)
        *extra,
    ]


def run(store: Path, run_dir: Path, model: str = "attention_lstm", *extra: str) -> dict:
    return train(compose(overrides(store, run_dir, model, *extra)))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# -------------------------------------------------------------------------------------------
# outputs


def test_fold_outputs_follow_the_contract(store, tmp_path) -> None:
    metrics = run(store, tmp_path)
    out = tmp_path / "attention_lstm" / "fold_0"
    assert sorted(p.name for p in out.iterdir()) == [
        "best.pt",
        "config.yaml",
        "history.csv",
        "last.pt",
        "metrics.json",
        "predictions.csv",
    ]
    assert (tmp_path / FOLDS_FILE).exists()
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    for key in (
        "model",
        "fold",
        "status",
        "cv",
        "test",
        "epochs_run",
        "best_epoch",
        "train_seconds",
        "device",
        "n_params",
        "config_hash",
        "git_commit",
    ):
        assert key in metrics, key
    assert metrics["status"] == "ok" and metrics["device"] == "cpu" and metrics["epochs_run"] == 3
    for key in ("mae", "exact", "within1", "pearson", "spearman", "qwk", "macro_f1", "confusion"):
        assert key in metrics["cv"] and key in metrics["test"]

    rows = read_csv(out / "predictions.csv")
    assert list(rows[0]) == ["split", "id", "subject", "true", "pred", "raw"]
    assert sum(r["split"] == "cv" for r in rows) == metrics["n_cv"] == metrics["cv"]["n"]
    assert sum(r["split"] == "test" for r in rows) == metrics["n_test"] == 12
    folds = json.loads((tmp_path / FOLDS_FILE).read_text())["folds"]
    assert {r["id"] for r in rows if r["split"] == "cv"} == {i for i, k in folds.items() if k == 0}

    history = read_csv(out / "history.csv")
    assert list(history[0])[:6] == ["epoch", "train_loss", "val_loss", "val_mae", "lr", "seconds"]
    assert {"val_exact", "val_qwk", "val_macro_f1"} <= set(history[0])  # any can be monitored
    assert [int(h["epoch"]) for h in history] == [1, 2, 3]
    assert "model:" in (out / "config.yaml").read_text()

    best = torch.load(out / "best.pt", weights_only=True)
    assert best["epoch"] == metrics["best_epoch"]
    assert best["normalization"]["mean"].shape == (2,) and best["input_names"] == [
        "aperture",
        "velocity",
    ]
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 3


def test_a_finished_fold_returns_its_stored_metrics(store, tmp_path) -> None:
    first = run(store, tmp_path)
    last = tmp_path / "attention_lstm" / "fold_0" / "last.pt"
    stamp = last.stat().st_mtime_ns
    again = run(store, tmp_path, "attention_lstm", "train.epochs=50")  # would train more if it ran
    assert again == json.loads(json.dumps(first)) and last.stat().st_mtime_ns == stamp


def test_normalisation_comes_from_the_training_part_only(tmp_path) -> None:
    """Scaling the held-out fold and the test split by 100 leaves the fitted statistics unchanged
    (and scaling a training video changes them)."""
    plain = tapping_store(tmp_path / "plain.h5")
    run(plain, tmp_path / "a", "attention_lstm", "train.epochs=1")
    folds = json.loads((tmp_path / "a" / FOLDS_FILE).read_text())["folds"]
    held_out = {i for i, k in folds.items() if k == 0}
    test_ids = {f"{v}_{s:03d}" for s in range(6) for v in range(2)}
    scaled = tapping_store(tmp_path / "scaled.h5", scale_ids=held_out | test_ids)
    run(scaled, tmp_path / "b", "attention_lstm", "train.epochs=1")
    a, b = (
        torch.load(tmp_path / d / "attention_lstm" / "fold_0" / "best.pt", weights_only=True)[
            "normalization"
        ]
        for d in ("a", "b")
    )
    assert torch.equal(a["mean"], b["mean"]) and torch.equal(a["std"], b["std"])
    trained_on = sorted(i for i, k in folds.items() if k != 0)
    changed = tapping_store(tmp_path / "changed.h5", scale_ids=set(trained_on))
    run(changed, tmp_path / "c", "attention_lstm", "train.epochs=1")
    c = torch.load(tmp_path / "c" / "attention_lstm" / "fold_0" / "best.pt", weights_only=True)[
        "normalization"
    ]
    assert not torch.equal(a["std"], c["std"])


# -------------------------------------------------------------------------------------------
# learning


def test_training_beats_predicting_the_training_mean(store, tmp_path) -> None:
    """Held-out MAE well below that of the constant "training mean" prediction (about 1.2 here)."""
    metrics = run(store, tmp_path, "tcn", "train.epochs=25", "train.lr=1e-2", "train.patience=25")
    folds = json.loads((tmp_path / FOLDS_FILE).read_text())["folds"]
    data = load_store(store)
    fold_of = np.array([folds.get(i, -1) for i in data.ids.tolist()])  # -1: test split
    training_mean = data.scores[fold_of > 0].mean()
    mean_mae = np.abs(data.scores[fold_of == 0] - training_mean).mean()
    assert metrics["cv"]["mae"] < 0.6 * mean_mae, (metrics["cv"]["mae"], mean_mae)
    assert metrics["cv"]["pearson"] > 0.7
    test_mean_mae = np.abs(data.scores[fold_of == -1] - training_mean).mean()
    assert metrics["test"]["mae"] < 0.6 * test_mean_mae, (metrics["test"]["mae"], test_mean_mae)


@pytest.mark.parametrize("head", ["classification", "ordinal"])
def test_other_heads_train_and_score(store, tmp_path, head) -> None:
    metrics = run(store, tmp_path, "conv_lstm", f"head={head}", "train.epochs=2")
    assert metrics["head"] == head
    rows = [r for r in read_csv(tmp_path / "conv_lstm" / "fold_0" / "predictions.csv")
            if r["split"] == "cv"]
    true, pred = (np.array([float(r[c]) for r in rows]) for c in ("true", "pred"))
    assert set(pred) <= set(range(5))  # the head's decision is a score level
    assert metrics["cv"]["mae"] == pytest.approx(np.abs(true - pred).mean())


# -------------------------------------------------------------------------------------------
# resume


KILL_AFTER_EPOCH = textwrap.dedent("""
    import json, os, signal, sys
    from hawkeye import loop as T
    from hawkeye.config import compose
    from hawkeye.train import train
    original = T.save_checkpoint
    def save_then_die(path, *args):
        original(path, *args)
        state = args[5]
        if path.name == "last.pt" and state.epoch == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no exception handler runs
    T.save_checkpoint = save_then_die
    train(compose(json.loads(sys.argv[1])))
""")


def comparable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("train_seconds",)}


def test_resume_after_kill_ends_with_the_same_metrics(store, tmp_path) -> None:
    extra = ("train.epochs=5", "train.patience=50", "model.dropout=0.3")
    straight = run(store, tmp_path / "straight", "attention_lstm", *extra)

    args = overrides(store, tmp_path / "resumed", "attention_lstm", *extra)
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_EPOCH, json.dumps(args), "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    out = tmp_path / "resumed" / "attention_lstm" / "fold_0"
    assert not (out / "metrics.json").exists()  # nothing final from a killed job
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 2

    torch.manual_seed(1234)  # the resumed job must not depend on the state it starts in
    resumed = train(compose(args))
    assert comparable(resumed) == comparable(straight)
    straight_dir = tmp_path / "straight" / "attention_lstm" / "fold_0"
    assert (out / "predictions.csv").read_text() == (straight_dir / "predictions.csv").read_text()
    drop_seconds = [
        {k: v for k, v in r.items() if k != "seconds"} for r in read_csv(out / "history.csv")
    ]
    assert drop_seconds == [
        {k: v for k, v in r.items() if k != "seconds"}
        for r in read_csv(straight_dir / "history.csv")
    ]


def test_a_checkpoint_of_another_configuration_is_refused(store, tmp_path) -> None:
    run(store, tmp_path, "attention_lstm", "train.epochs=1")
    (tmp_path / "attention_lstm" / "fold_0" / "metrics.json").unlink()  # as if killed at the end
    with pytest.raises(ValueError, match="another configuration"):
        run(store, tmp_path, "attention_lstm", "train.epochs=1", "model.hidden=24")


# -------------------------------------------------------------------------------------------
# per-model overrides (how one experiment sizes several models)


def test_model_overrides_size_only_the_named_model(store, tmp_path) -> None:
    table = "train.model_overrides={attention_lstm: {hidden: 24}, transformer: {d_model: 24}}"
    metrics = run(store, tmp_path, "attention_lstm", table, "train.epochs=1")
    config = (tmp_path / "attention_lstm" / "fold_0" / "config.yaml").read_text()
    assert "hidden: 24" in config  # the fold records what it actually trained
    best = torch.load(tmp_path / "attention_lstm" / "fold_0" / "best.pt", weights_only=True)
    assert best["model_cfg"]["hidden"] == 24 and metrics["n_params"] > 0
    with pytest.raises(ValueError, match=r"sets \['no_such_key'\]"):
        run(store, tmp_path / "bad", "attention_lstm",
            "train.model_overrides={attention_lstm: {no_such_key: 1}}")


def test_model_overrides_keep_the_heads_interpolation(store, tmp_path) -> None:
    """The ordinal head needs a CORAL output layer; merging sizes must not lose that link."""
    run(store, tmp_path, "conv_lstm", "head=ordinal", "train.epochs=1",
        "train.model_overrides={conv_lstm: {hidden: 8}}")
    best = torch.load(tmp_path / "conv_lstm" / "fold_0" / "best.pt", weights_only=True)
    assert best["model_cfg"]["output_layer"] == "coral"


# -------------------------------------------------------------------------------------------
# out of memory, AMP, failures


def test_oom_back_off_halves_until_the_epoch_fits(caplog) -> None:
    tried = []

    def epoch(batch_size: int) -> str:
        tried.append(batch_size)
        if batch_size > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return "done"

    with caplog.at_level(logging.WARNING, logger="hawkeye.train"):
        assert halve_batch_on_oom(epoch, 64) == ("done", 8)
    assert tried == [64, 32, 16, 8]
    assert "out of memory at batch size 64" in caplog.text


def test_oom_back_off_gives_up_at_batch_size_one() -> None:
    def epoch(batch_size: int) -> None:
        raise torch.cuda.OutOfMemoryError("simulated")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        halve_batch_on_oom(epoch, 4)


def test_oom_in_the_training_loop_continues_with_a_smaller_batch(
    store, tmp_path, monkeypatch
) -> None:
    real_forward = loop_module._call_model

    def forward_that_fits_4(model, x, mask):
        if model.training and x.shape[0] > 4:
            raise torch.cuda.OutOfMemoryError("simulated: batch too large")
        return real_forward(model, x, mask)

    monkeypatch.setattr(loop_module, "_call_model", forward_that_fits_4)
    metrics = run(store, tmp_path, "attention_lstm", "train.batch_size=16", "train.epochs=2")
    assert metrics["batch_size"] == 4 and metrics["epochs_run"] == 2
    last = torch.load(tmp_path / "attention_lstm" / "fold_0" / "last.pt", weights_only=True)
    assert last["batch_size"] == 4  # a resumed job keeps the batch size that fits


def test_amp_on_cpu_is_logged_and_ignored(store, tmp_path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="hawkeye.train"):
        metrics = run(store, tmp_path, "attention_lstm", "train.amp=true", "train.epochs=1")
    assert "train.amp=true ignored on cpu" in caplog.text
    assert metrics["status"] == "ok"


def test_a_failing_job_raises_and_writes_no_metrics(store, tmp_path, monkeypatch) -> None:
    def broken(model, x, mask):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(loop_module, "_call_model", broken)
    with pytest.raises(RuntimeError, match="exploded"):
        run(store, tmp_path)
    assert not (tmp_path / "attention_lstm" / "fold_0" / "metrics.json").exists()


def test_cv_subjects_in_the_test_split_are_refused(tmp_path) -> None:
    path = tmp_path / "leaky.h5"
    series = [np.random.default_rng(i).normal(size=(20, 2)) for i in range(12)]
    subjects = [f"{i % 6:03d}" for i in range(12)]
    splits = ["train"] * 10 + ["test"] * 2  # subjects 004 and 005 are in both
    write_sequences(
        path, [f"v{i}" for i in range(12)], series, np.arange(12) % 3, subjects, splits=splits
    )
    with pytest.raises(ValueError, match=r"\['004', '005'\]"):
        run(path, tmp_path / "run")
    assert not (tmp_path / "run" / "attention_lstm").exists()


# -------------------------------------------------------------------------------------------
# families


def test_autoencoder_family_end_to_end(store, tmp_path) -> None:
    metrics = run(store, tmp_path, "lstm_ae", "train.epochs=3")
    out = tmp_path / "lstm_ae" / "fold_0"
    assert {
        "best.pt",
        "last.pt",
        "metrics.json",
        "predictions.csv",
        "history.csv",
        "config.yaml",
    } <= {p.name for p in out.iterdir()}
    for key in ("precision", "recall", "f1", "roc_auc", "threshold", "spearman_error_score"):
        assert key in metrics["cv"], key
    assert metrics["family"] == "autoencoder" and metrics["threshold"] > 0
    # trained on the normal videos (score < task.anomaly_min_score = 2) of the training part only
    assert 0 < metrics["n_train_normal"] < metrics["n_train"]
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["model"]["threshold"].item() == pytest.approx(metrics["threshold"])
    rows = read_csv(out / "predictions.csv")
    assert {r["pred"] for r in rows} <= {"0", "1"}
    flagged = [float(r["raw"]) > metrics["threshold"] for r in rows]
    assert flagged == [r["pred"] == "1" for r in rows]


def test_tabular_family_end_to_end(store, tmp_path) -> None:
    metrics = run(store, tmp_path, "gbm")
    out = tmp_path / "gbm" / "fold_0"
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml",
        "history.csv",
        "metrics.json",
        "predictions.csv",
    ]
    assert metrics["family"] == "tabular" and metrics["n_params"] > 0  # number of trees
    assert metrics["cv"]["mae"] < 1.0  # the summary features carry the score


def test_a_real_valued_target_trains_with_the_continuous_head(tmp_path) -> None:
    """Target = 3 x the mean aperture + 1 (units of, say, L/h): learnable from the series."""
    rng = np.random.default_rng(0)
    sequences = [np.column_stack([a, np.gradient(a)]) for a in
                 (rng.uniform(0.2, 1.0) * (1 - np.cos(np.linspace(0, 20, 60))) / 2
                  for _ in range(60))]
    fuel = np.array([3 * s[:, 0].mean() + 1 + rng.normal(0, 0.02) for s in sequences])
    path = tmp_path / "fuel.h5"
    write_sequences(path, [f"w{i}" for i in range(60)], sequences, np.zeros(60, int),
                    [f"trip{i // 3}" for i in range(60)],
                    splits=["test" if i < 12 else "train" for i in range(60)],
                    targets={"fuel": fuel})
    with pytest.raises(ValueError, match="head=continuous"):
        run(path, tmp_path / "wrong_head", "tcn", "task.target=fuel")
    metrics = run(path, tmp_path / "run", "tcn", "task.target=fuel", "head=continuous",
                  "train.epochs=25", "train.lr=1e-2")
    assert {"r2", "mae", "rmse"} <= set(metrics["cv"]) and metrics["target"] == "fuel"
    assert metrics["cv"]["r2"] > 0.5 and metrics["test"]["r2"] > 0.5
    best = torch.load(tmp_path / "run" / "tcn" / "fold_0" / "best.pt", weights_only=True)
    assert best["head_cfg"]["target_mean"] == pytest.approx(metrics["target_mean"])
    assert 1.5 < metrics["target_mean"] < 3.0  # the training part's mean, not the config's 0
    rows = read_csv(tmp_path / "run" / "tcn" / "fold_0" / "predictions.csv")
    assert all(float(r["pred"]) == pytest.approx(float(r["raw"])) for r in rows)


# -------------------------------------------------------------------------------------------
# Slurm task and command line


def test_train_task_pickles_and_checkpoint_resubmits_the_same_call(store, tmp_path) -> None:
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(compose(overrides(store, tmp_path)), resolve=True)
    task = TrainTask()
    delayed = task.checkpoint(cfg)
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    restored = cloudpickle.loads(cloudpickle.dumps(delayed))
    metrics = restored.function(*restored.args, **restored.kwargs)
    assert metrics["status"] == "ok"
    executor = submitit.DebugExecutor(folder=tmp_path / "submitit")
    job = executor.submit(TrainTask(), cfg)
    assert job.result() == json.loads(json.dumps(metrics))  # finished fold: stored metrics


def test_command_line_entry_point(store, tmp_path) -> None:
    args = overrides(store, tmp_path, "tcn", "fold=1", "train.epochs=1")
    done = subprocess.run(
        [sys.executable, "-m", "hawkeye.train", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (fold_dir(compose(args)) / "metrics.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [FOLDS_FILE, "tcn"]  # no stray files


def test_a_finished_fold_is_exported_to_onnx_when_asked(store, tmp_path) -> None:
    metrics = run(store, tmp_path, "tcn", "train.epochs=1", "export.onnx=true")
    fold = tmp_path / "tcn" / "fold_0"
    assert (fold / "model.onnx").stat().st_size > 0
    assert metrics["onnx_mb"] > 0 and metrics["onnx_parity_max_abs"] <= 1e-4
    assert json.loads((fold / "metrics.json").read_text())["onnx_mb"] == metrics["onnx_mb"]
