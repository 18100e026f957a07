"""Experiment trackers (hawkeye/tracking.py) with the real packages, read back with their own
readers: MLflow's ``MlflowClient`` on a SQLite store in tmp_path, TensorBoard's
``EventAccumulator``. The folds are tiny (conftest's tapping store, 3 epochs of a tiny
AttentionLSTM), so each test takes seconds."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import tapping_store, tiny_model

from hawkeye.collect import CollectOptions, collect
from hawkeye.config import compose, identity_hash
from hawkeye.tracking import STATE_FILE, flat_params, run_key, tracker_class
from hawkeye.train import fold_dir, train

NOT_INSTALLED = "is not installed: `make install` brings it (pyproject's track extra, in dev)"
mlflow_tracking = pytest.importorskip("mlflow.tracking", reason=f"mlflow {NOT_INSTALLED}")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason=f"tensorboard {NOT_INSTALLED}")

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 3


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tapping_store(tmp_path_factory.mktemp("store") / "tapping.h5", n_subjects=12)


def fold_overrides(store: Path, root: Path, fold: int, *extra: str,
                   model: str = "attention_lstm") -> list[str]:
    return [f"paths.store={store}", f"paths.runs={root}", f"run_dir={root / 'run'}",
            f"fold={fold}", *tiny_model(model), "cv.n_folds=2",
            f"train.epochs={EPOCHS}", "train.patience=50", "train.num_threads=1",
            "export.onnx=false", *extra]


def client_for(root: Path):
    return mlflow_tracking.MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db")


def fold_runs(client, experiment: str = "pd4t_finger_tapping") -> list:
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], "tags.`hawkeye.role` = 'fold'")


def steps(client, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def scalar_steps(event_dir: Path, tag: str) -> list[int]:
    events = event_accumulator.EventAccumulator(str(event_dir))
    events.Reload()
    return [e.step for e in events.Scalars(tag)]


def test_fold_runs_and_the_collectors_parent_run_in_mlflow_and_tensorboard(store, tmp_path):
    # a network (epoch loop) and a tree model (one fit, exported to model.onnx by its fit)
    trackers = "logger=[csv,mlflow,tensorboard]"
    export = {"attention_lstm": "export.onnx=false", "gbm": "export.onnx=true"}  # trees: fast
    metrics = {(model, k): train(compose(fold_overrides(store, tmp_path, k, trackers,
                                                        export[model], model=model)))
               for model in export for k in range(2)}
    run_dir = tmp_path / "run"
    assert collect(run_dir, CollectOptions(n_boot=20, alpha=0.05, seed=0, figures=True)) == 0

    client = client_for(tmp_path)
    runs = {(r.data.tags["hawkeye.model"], int(r.data.tags["hawkeye.fold"])): r
            for r in fold_runs(client)}
    assert sorted(runs) == sorted(metrics)  # one run per fold, no more
    (parent,) = client.search_runs([runs["gbm", 0].info.experiment_id],
                                   "tags.`hawkeye.role` = 'run'")
    assert parent.data.tags["hawkeye.run_key"] == run_key(run_dir)
    assert parent.info.status == "FINISHED"
    for (model, _), run in runs.items():
        fold_metrics = metrics[model, int(run.data.tags["hawkeye.fold"])]
        run_id, tags = run.info.run_id, run.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["hawkeye.config_hash"] == fold_metrics["config_hash"]
        assert tags["hawkeye.sweep_point"] == "run"
        assert "hawkeye.git_commit" in tags  # the tests run inside the repository
        assert tags["hawkeye.best_checkpoint"].endswith("best.pt")
        assert run.info.status == "FINISHED"
        epochs = list(range(1, fold_metrics["epochs_run"] + 1))
        assert steps(client, run_id, "train_loss") == epochs
        assert run.data.metrics["cv/mae"] == pytest.approx(fold_metrics["cv"]["mae"])
        assert run.data.metrics["test/qwk"] == pytest.approx(fold_metrics["test"]["qwk"])
        assert run.data.params["model.name"] == model
        artifacts = {a.path for a in client.list_artifacts(run_id)}
        assert {"predictions.csv", "history.csv", "metrics.json", "config.yaml"} <= artifacts
        assert ("model.onnx" in artifacts) == (model == "gbm")
    for k in range(2):
        network = runs["attention_lstm", k].info.run_id
        for key in ("val_loss", "val_mae", "lr"):
            assert steps(client, network, key) == list(range(1, EPOCHS + 1))
    for row in ("attention_lstm", "gbm"):
        assert parent.data.metrics[f"{row}/cv/mae/pooled"] > 0
        assert parent.data.tags[f"{row}/status"] == "complete"
    parent_files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"summary.md", "summary.json", "summary_scores.csv", "figures"} <= parent_files
    assert client.list_artifacts(parent.info.run_id, "figures")

    board = run_dir / "tensorboard"
    assert scalar_steps(board / "gbm" / "fold_0", "train_loss") == [1]
    for k in range(2):
        assert scalar_steps(board / "attention_lstm" / f"fold_{k}",
                            "train_loss") == list(range(1, EPOCHS + 1))
        assert scalar_steps(board / "attention_lstm" / f"fold_{k}", "cv/mae") == [EPOCHS]
    assert scalar_steps(board / "summary" / "attention_lstm", "summary/cv/mae/pooled") == [0]


# The job dies (SIGKILL: nothing is cleaned up) when it is about to record in tracker.json that
# epoch 2 was logged: MLflow and TensorBoard have epoch 2, tracker.json still says epoch 1.
KILL_WHEN_EPOCH_2_IS_RECORDED = textwrap.dedent("""
    import json, os, signal, sys
    from hawkeye import tracking
    from hawkeye.config import compose
    from hawkeye.train import train
    original = tracking.write_json_atomic
    def record_then_die(path, state):
        if state.get("mlflow", {}).get("logged_through") == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        original(path, state)
    tracking.write_json_atomic = record_then_die
    train(compose(json.loads(sys.argv[1])))
""")


def test_a_killed_and_resumed_fold_continues_its_run_without_duplicate_steps(store, tmp_path):
    args = fold_overrides(store, tmp_path, 0, "logger=[mlflow,tensorboard]", "train.epochs=4")
    killed = subprocess.run([sys.executable, "-c", KILL_WHEN_EPOCH_2_IS_RECORDED,
                             json.dumps(args)], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    out = fold_dir(compose(args))
    assert json.loads((out / STATE_FILE).read_text())["mlflow"]["logged_through"] == 1

    train(compose(args))  # the requeued job

    client = client_for(tmp_path)
    (run,) = fold_runs(client)  # the same run, reopened
    assert run.info.run_id == json.loads((out / STATE_FILE).read_text())["mlflow"]["run_id"]
    assert steps(client, run.info.run_id, "train_loss") == [1, 2, 3, 4]
    assert run.info.status == "FINISHED"
    board = tmp_path / "run" / "tensorboard" / "attention_lstm" / "fold_0"
    assert scalar_steps(board, "train_loss") == [1, 2, 3, 4]  # epoch 2's first write purged


def test_a_broken_tracker_warns_once_and_the_fold_finishes(store, tmp_path, caplog):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    args = fold_overrides(store, tmp_path, 0, "logger=[csv,mlflow,tensorboard]",
                          f"logger.mlflow.tracking_uri=sqlite:///{blocker}/mlflow.db",
                          f"logger.tensorboard.log_dir={blocker}/board")
    with caplog.at_level(logging.WARNING, logger="hawkeye.tracking"):
        metrics = train(compose(args))
    assert metrics["status"] == "ok"
    out = fold_dir(compose(args))
    assert json.loads((out / "metrics.json").read_text())["cv"]["mae"] == metrics["cv"]["mae"]
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "hawkeye.tracking" and r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert any(w.startswith("tracker mlflow is off") for w in warnings)
    assert any(w.startswith("tracker tensorboard is off") for w in warnings)
    assert not (out / STATE_FILE).exists()  # no tracker opened a run


# an unknown URI scheme; a server that is down: port 9 (discard) on the loopback, where nothing
# listens, so the connection is refused at once and the tracker costs seconds, not the fold
@pytest.mark.parametrize("uri", ["nosuchstore://host/db", "http://127.0.0.1:9"])
def test_a_store_that_cannot_be_reached_warns_once_and_the_fold_finishes(store, tmp_path, caplog,
                                                                         uri):
    args = fold_overrides(store, tmp_path, 0, "logger=mlflow", f"logger.mlflow.tracking_uri={uri}")
    with caplog.at_level(logging.WARNING, logger="hawkeye.tracking"):
        assert train(compose(args))["status"] == "ok"
    (warning,) = [r.getMessage() for r in caplog.records
                  if r.name == "hawkeye.tracking" and r.levelno == logging.WARNING]
    assert warning.startswith("tracker mlflow is off") and uri.split("//")[1] in warning


def test_the_default_writes_only_the_fold_files(store, tmp_path):
    cfg = compose(fold_overrides(store, tmp_path, 0))
    assert list(cfg.logger) == ["csv"]
    train(cfg)
    assert not (fold_dir(cfg) / STATE_FILE).exists()
    assert not (tmp_path / "mlflow.db").exists()


def test_trackers_are_no_part_of_the_run_identity():
    assert identity_hash(compose(["logger=[csv,mlflow]"])) == identity_hash(compose())


def test_an_unknown_tracker_name_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"logger=wandb is not a tracker; choose from"):
        tracker_class("wandb")


def test_config_params_are_flat_and_short():
    params = flat_params({"train": {"lr": 0.001, "sizes": [1, 2]}, "name": "x" * 900, "e": {}})
    assert params == {"train.lr": "0.001", "train.sizes": "[1, 2]", "name": "x" * 500,
                      "e": "{}"}


def test_a_tracker_that_fails_in_the_collector_leaves_the_summary_and_exit_code(store, tmp_path,
                                                                               caplog):
    for k in range(2):
        train(compose(fold_overrides(store, tmp_path, k, "logger=mlflow", model="gbm")))
    for path in (tmp_path / "run").glob(f"gbm/fold_*/{STATE_FILE}"):  # as if the store had moved
        state = json.loads(path.read_text())
        state["mlflow"]["settings"]["tracking_uri"] = "nosuchstore://host/db"
        path.write_text(json.dumps(state))
    with caplog.at_level(logging.WARNING, logger="hawkeye.tracking"):
        code = collect(tmp_path / "run", CollectOptions(n_boot=20, alpha=0.05, seed=0,
                                                        figures=False))
    assert code == 0 and (tmp_path / "run" / "summary.json").is_file()
    (warning,) = [r.getMessage() for r in caplog.records
                  if r.name == "hawkeye.tracking" and r.levelno == logging.WARNING]
    assert warning.startswith("tracker mlflow: logging the summary of")


KILL_AT_THE_EXPORT = textwrap.dedent("""
    import json, os, signal, sys
    from hawkeye import train as T
    from hawkeye.config import compose
    T.export_after_training = lambda out, cfg: os.kill(os.getpid(), signal.SIGKILL)
    T.train(compose(json.loads(sys.argv[1])))
""")


def test_a_fold_killed_at_its_export_finishes_its_run_when_it_starts_again(store, tmp_path):
    args = fold_overrides(store, tmp_path, 0, "logger=mlflow", "export.onnx=true", model="gbm")
    killed = subprocess.run([sys.executable, "-c", KILL_AT_THE_EXPORT, json.dumps(args)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    out = fold_dir(compose(args))
    assert json.loads((out / "metrics.json").read_text())["status"] == "exporting"

    assert train(compose(args))["status"] == "ok"  # the job again: only the export is redone

    client = client_for(tmp_path)
    (run,) = fold_runs(client)
    assert run.info.status == "FINISHED"
    assert steps(client, run.info.run_id, "train_loss") == [1]  # from history.csv
    assert "model.onnx" in {a.path for a in client.list_artifacts(run.info.run_id)}
