"""The collector on run directories built by conftest.py (``make_run``, ``write_anomaly_model``:
its "Collector run builders" section describes them), with numbers worked out by hand."""

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    fold_cv_rows,
    make_run,
    write_anomaly_model,
    write_csv_rows,
    write_fold,
)
from matplotlib.image import imread
from omegaconf import OmegaConf

from hawkeye.collect import CollectOptions, collect, main
from hawkeye.config import CONF_DIR
from hawkeye.metrics import regression_metrics

FAST = CollectOptions(n_boot=60, alpha=0.05, seed=0, figures=False)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def _row(summary: dict, label: str) -> dict:
    return next(r for r in summary["rows"] if r["label"] == label)


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_complete_run_pooled_and_fold_mean_numbers_by_hand(tmp_path):
    run = make_run(tmp_path / "run")
    assert collect(run, FAST) == 0
    summary = _summary(run)
    assert summary["complete"] is True
    alpha, beta = _row(summary, "alpha"), _row(summary, "beta")
    assert alpha["cv"]["mae"]["pooled"] == pytest.approx(3 / 24)
    assert alpha["cv"]["mae"]["mean"] == pytest.approx((1 / 6 + 2 / 8 + 0) / 3)
    assert alpha["cv"]["mae"]["folds"] == pytest.approx([1 / 6, 2 / 8, 0])
    assert alpha["cv"]["mae"]["std"] == pytest.approx(np.std([1 / 6, 2 / 8, 0], ddof=1))
    assert alpha["cv"]["exact"]["pooled"] == pytest.approx(21 / 24)
    assert beta["cv"]["mae"]["pooled"] == 1.0
    assert beta["cv"]["exact"]["pooled"] == 0.0 and beta["cv"]["within1"]["pooled"] == 1.0
    for row in (alpha, beta):
        assert row["complete"] and row["folds_ok"] == 3 and row["n_cv"] == 24
        assert row["n_test"] == 6 and row["n_params"] == 1234
        assert row["train_seconds"] == pytest.approx(10 + 11 + 12)
        assert row["onnx_mb"] == pytest.approx(0.5)
        for key, stats in row["cv"].items():
            if not math.isnan(stats["pooled"] if stats["pooled"] is not None else math.nan):
                assert stats["ci_low"] - 1e-12 <= stats["pooled"] <= stats["ci_high"] + 1e-12, key
    # fold ensemble on test: each alpha fold is off by one, their mean output is exact
    assert alpha["test"]["mae"]["value"] == 0.0 and alpha["test"]["exact"]["value"] == 1.0
    assert beta["test"]["mae"]["value"] == 1.0
    assert [r["label"] for r in summary["rows"]] == ["alpha", "beta"]  # ranked by CV MAE
    assert summary["bootstrap"]["unit"] == "subject"


def test_tables_lead_with_the_source_columns(tmp_path):
    run = make_run(tmp_path / "run")
    assert collect(run, FAST) == 0
    markdown = (run / "summary.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| Model"))
    assert header.startswith("| Model | CV MAE | CV Exact | Pearson | Within ±1 | QWK | Macro-F1 |")
    assert "| alpha | 0.139 ± 0.127 | 86.1 ± 12.7% |" in markdown  # std ddof=1 of 1/6, 1/4, 0
    with open(run / "summary_scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:4] == ["model", "cv_mae_mean", "cv_exact_mean", "cv_pearson_mean"]
    assert float(rows[0]["cv_mae_pooled"]) == pytest.approx(0.125)
    assert rows[0]["status"] == "complete" and rows[1]["model"] == "beta"
    assert _leftovers(run) == []  # atomic writes leave no temporary file


def test_missing_fold_is_named_with_its_slurm_log(tmp_path):
    run = make_run(tmp_path / "run", jobs={"beta/fold_1": "77_1"}, log_dir="slurm")
    (run / "beta" / "fold_1" / "metrics.json").unlink()
    (run / "beta" / "fold_1" / "last.pt").write_bytes(b"")
    log = run / "slurm" / "77_1_0_log.err"
    log.parent.mkdir()
    log.write_text("submitit ERROR - Submitted job triggered an exception\n"
                   "Traceback (most recent call last):\n  ...\nRuntimeError: CUDA out of memory\n"
                   "srun: error: node1: task 0: Exited with exit code 1\n")
    (run / "slurm" / "78_0_0_log.err").write_text("another job\n")

    assert collect(run, FAST) == 1
    summary = _summary(run)
    assert summary["complete"] is False
    beta = _row(summary, "beta")
    assert beta["complete"] is False and beta["folds_ok"] == 2
    assert beta["status"] == "INCOMPLETE (2/3 folds ok)"
    [problem] = beta["problems"]
    assert problem["fold"] == 1 and problem["logs"] == [str(log)]
    assert "no metrics.json" in problem["reason"] and "did not finish" in problem["reason"]
    assert "RuntimeError: CUDA out of memory" in problem["reason"]
    assert _row(summary, "alpha")["complete"] is True
    assert [r["label"] for r in summary["rows"]] == ["alpha", "beta"]  # incomplete rows last
    markdown = (run / "summary.md").read_text()
    assert "beta (INCOMPLETE)" in markdown and str(log) in markdown
    assert "INCOMPLETE" in (run / "summary_scores.csv").read_text()


def test_a_fold_killed_by_slurm_is_reported_with_slurms_reason(tmp_path):
    run = make_run(tmp_path / "run", models=("alpha",), jobs={"alpha/fold_2": "90_2"},
                   log_dir="../logs")  # a sweep keeps submitit's folder beside the run dirs
    (run / "alpha" / "fold_2" / "metrics.json").unlink()
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "90_2_0_log.out").write_text("epoch 7 val_mae 0.41\n")
    (logs / "90_2_0_log.err").write_text(
        "slurmstepd: error: *** JOB 92 ON node1 CANCELLED AT 2026-11-23T10:00:00 DUE TO TIME "
        "LIMIT ***\nsrun: Job step aborted\n")
    assert collect(run, FAST) == 1
    [problem] = _row(_summary(run), "alpha")["problems"]
    assert problem["logs"] == [str(logs / "90_2_0_log.err"), str(logs / "90_2_0_log.out")]
    assert "DUE TO TIME LIMIT" in problem["reason"]


def test_failed_and_never_started_folds_are_named(tmp_path):
    run = make_run(tmp_path / "run")
    metrics_path = run / "alpha" / "fold_0" / "metrics.json"
    metrics_path.write_text(
        json.dumps(
            {
                "model": "alpha",
                "fold": 0,
                "status": "failed",
                "error": "ValueError: no normal videos in fold 0",
            }
        )
    )
    beta_fold = run / "beta" / "fold_2"
    for item in beta_fold.iterdir():
        item.unlink()
    beta_fold.rmdir()

    assert collect(run, FAST) == 1
    summary = _summary(run)
    alpha, beta = _row(summary, "alpha"), _row(summary, "beta")
    assert alpha["problems"][0]["fold"] == 0
    assert "'failed'" in alpha["problems"][0]["reason"]
    assert "no normal videos in fold 0" in alpha["problems"][0]["reason"]
    assert beta["problems"][0]["fold"] == 2 and "not run" in beta["problems"][0]["reason"]
    # what did finish is still summarised, over the finished folds only
    assert alpha["folds_ok"] == 2 and alpha["n_cv"] == 8 + 10
    assert alpha["cv"]["mae"]["pooled"] == pytest.approx(2 / 18)


def test_model_in_run_json_without_any_folder_is_incomplete(tmp_path):
    run = make_run(tmp_path / "run")
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "models": ["alpha", "beta", "gamma"]}))
    assert collect(run, FAST) == 1
    gamma = _row(_summary(run), "gamma")
    assert gamma["folds_ok"] == 0 and [p["fold"] for p in gamma["problems"]] == [0, 1, 2]


def test_error_file_in_fold_dir_and_bad_predictions_row(tmp_path):
    run = make_run(tmp_path / "run")
    fold = run / "alpha" / "fold_1"
    (fold / "metrics.json").unlink()
    (fold / "train.err").write_text("loading store\nOSError: store.h5 is truncated\n")
    rows = (run / "beta" / "fold_0" / "predictions.csv").read_text().splitlines()
    rows[3] = rows[3].rsplit(",", 1)[0] + ",abc"
    (run / "beta" / "fold_0" / "predictions.csv").write_text("\n".join(rows) + "\n")

    assert collect(run, FAST) == 1
    summary = _summary(run)
    [alpha_problem] = _row(summary, "alpha")["problems"]
    assert alpha_problem["logs"] == [str(fold / "train.err")]
    assert "OSError: store.h5 is truncated" in alpha_problem["reason"]
    [beta_problem] = _row(summary, "beta")["problems"]
    assert "predictions.csv: line 4: column 'raw' is 'abc'" in beta_problem["reason"]


def test_unknown_fold_count_is_not_taken_as_complete(tmp_path):
    run = make_run(tmp_path / "run")
    (run / "run.json").unlink()
    assert collect(run, FAST) == 1
    assert "number of folds unknown" in (run / "summary.md").read_text()
    # the fold's saved resolved config is a fallback source of K
    (run / "alpha" / "fold_0" / "config.yaml").write_text("cv:\n  n_folds: 3\n")
    assert collect(run, FAST) == 0


def test_overlapping_subjects_between_folds_are_reported(tmp_path):
    run = make_run(tmp_path / "run", models=("alpha",))
    leaked = fold_cv_rows("alpha", 1)
    leaked[0]["subject"] = "S00"  # S00 is held out in fold 0 too
    write_fold(run, "alpha", 1, cv_rows=leaked)
    assert collect(run, FAST) == 1
    reasons = [p["reason"] for p in _row(_summary(run), "alpha")["problems"]]
    assert any("not grouped by subject" in r and "S00" in r for r in reasons)


def test_sweep_folder_ranks_its_runs_by_cv_mae(tmp_path):
    grid = tmp_path / "grid"
    make_run(grid / "hidden=64", models=("beta",), overrides=["model.hidden=64"])
    make_run(grid / "hidden=128", models=("alpha",), overrides=["model.hidden=128"])
    (grid / "hidden=128" / "summary.md").write_text("old")  # a run's own earlier summary
    assert collect(grid, FAST) == 0
    summary = _summary(grid)
    assert [(r["label"], r["rank"]) for r in summary["rows"]] == [
        ("hidden=128/alpha", 1),
        ("hidden=64/beta", 2),
    ]
    assert summary["rows"][0]["overrides"] == ["model.hidden=128"]
    assert summary["rows"][0]["run"] == "hidden=128"


def test_anomaly_rows_pool_each_folds_own_threshold(tmp_path):
    # Fold 0 (threshold 1): true [0,1,2,3], error [0.5,1.2,1.5,0.8] -> flags [0,1,1,0];
    # anomalies (true >= 2) [0,0,1,1]: TP 1, FP 1, FN 1. Fold 1 (threshold 10): true [0,3,4,1],
    # error [5,15,12,11] -> flags [0,1,1,1], anomalies [0,1,1,0]: TP 2, FP 1, FN 0.
    # Pooled: TP 3, FP 2, FN 1 -> precision 3/5, recall 3/4, F1 6/9. (One common threshold on the
    # raw errors would give different numbers: the errors of the two folds live on other scales.)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"models": ["ae"], "n_folds": 2}))
    write_anomaly_model(run)
    assert collect(run, CollectOptions(n_boot=60, alpha=0.05, seed=0, figures=True)) == 0
    row = _row(_summary(run), "ae")
    assert row["kind"] == "anomaly" and row["n_test"] == 0 and row["test"] == {}
    assert row["cv"]["precision"]["pooled"] == pytest.approx(3 / 5)
    assert row["cv"]["recall"]["pooled"] == pytest.approx(3 / 4)
    assert row["cv"]["f1"]["pooled"] == pytest.approx(6 / 9)
    header = next(ln for ln in (run / "summary.md").read_text().splitlines()
                  if ln.startswith("| Model"))
    assert header.startswith("| Model | Precision | Recall | F1 | ROC-AUC | PR-AUC |")
    assert "QWK" not in header and "CV MAE" not in header
    assert (run / "figures" / "ae_confusion.png").read_bytes().startswith(PNG_MAGIC)
    assert (run / "figures" / "comparison_anomaly.png").read_bytes().startswith(PNG_MAGIC)
    assert _summary(run)["notes"] == []  # every figure drawn (a failure would be noted here)


def test_ordinal_and_anomaly_models_get_a_table_each(tmp_path):
    run = make_run(tmp_path / "run", models=("beta", "alpha"))
    write_anomaly_model(run)
    (run / "run.json").write_text(json.dumps({"models": ["beta", "ae", "alpha"], "n_folds": 3}))
    (run / "ae" / "fold_2").mkdir()  # the anomaly model's third fold never finished
    assert collect(run, FAST) == 1
    markdown = (run / "summary.md").read_text()
    assert markdown.index("## Severity score") < markdown.index("## Anomaly detection")
    headers = [ln for ln in markdown.splitlines() if ln.startswith("| Model")]
    assert headers[0].startswith("| Model | CV MAE | CV Exact | Pearson |")
    assert "Precision" not in headers[0]
    assert any(h.startswith("| Model | Precision | Recall | F1 |") for h in headers)
    summary = _summary(run)
    assert [(r["label"], r["rank"]) for r in summary["rows"]] == [("alpha", 1), ("beta", 2),
                                                                  ("ae", 1)]
    assert _row(summary, "ae")["status"] == "INCOMPLETE (2/3 folds ok)"
    # one table per kind of row, each with only its own metrics; no wide table mixing them
    assert not (run / "summary.csv").exists()
    tables = {name: list(csv.DictReader(open(run / f"summary_{name}.csv", newline="")))
              for name in ("scores", "anomaly")}
    assert [r["model"] for r in tables["scores"]] == ["alpha", "beta", "baseline"]
    assert [r["model"] for r in tables["anomaly"]] == ["ae"]  # incomplete: no baseline
    assert "cv_mae_mean" in tables["scores"][0] and "cv_f1_mean" not in tables["scores"][0]
    assert "cv_f1_mean" in tables["anomaly"][0] and "cv_mae_mean" not in tables["anomaly"][0]
    assert {n: [r["label"] for r in t["rows"]] for n, t in summary["tables"].items()} == {
        "scores": ["alpha", "beta"], "anomaly": ["ae"]}
    assert summary["tables"]["anomaly"]["metrics"] == ["precision", "recall", "f1", "roc_auc",
                                                       "pr_auc"]
    # a later collection without the anomaly model removes its stale table
    (run / "run.json").write_text(json.dumps({"models": ["beta", "alpha"], "n_folds": 3}))
    shutil.rmtree(run / "ae")
    assert collect(run, FAST) == 0
    assert not (run / "summary_anomaly.csv").exists()
    assert (run / "summary_scores.csv").is_file()


def test_regression_rows_by_hand(tmp_path):
    # Pooled errors [0.5, 0, 0, 0, 0, -1]: MAE 1.5/6 = 0.25, RMSE sqrt(1.25/6);
    # SS_tot of the truths 1..6 is 17.5, so R² = 1 - 1.25/17.5. Test: the folds predict the two
    # test windows as [2.0, 4.0] and [3.0, 5.0]: the ensemble says [2.5, 4.5] for truths [2, 5].
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"models": ["fuel_tcn"], "n_folds": 2}))
    cv = {0: ([1.0, 2.0, 3.0], [1.5, 2.0, 3.0]), 1: ([4.0, 5.0, 6.0], [4.0, 5.0, 5.0])}
    test = {0: [2.0, 4.0], 1: [3.0, 5.0]}
    for fold, (true, raw) in cv.items():
        out = run / "fuel_tcn" / f"fold_{fold}"
        out.mkdir(parents=True)
        rows = [{"split": "cv", "id": f"w{fold}{i}", "subject": f"trip{fold}{i}", "true": t,
                 "pred": r, "raw": r} for i, (t, r) in enumerate(zip(true, raw, strict=True))]
        rows += [{"split": "test", "id": f"t{i}", "subject": f"trip_t{i}", "true": t, "pred": r,
                  "raw": r} for i, (t, r) in enumerate(zip([2.0, 5.0], test[fold], strict=True))]
        write_csv_rows(out / "predictions.csv", rows)
        (out / "metrics.json").write_text(json.dumps({
            "model": "fuel_tcn", "fold": fold, "status": "ok",
            "cv": regression_metrics(true, raw), "n_params": 412928, "train_seconds": 3.0}))
    assert collect(run, FAST) == 0
    row = _row(_summary(run), "fuel_tcn")
    assert row["kind"] == "regression" and row["complete"]
    # no history.csv: a note, not a failed fold
    assert [n.split(": no learning curve")[0] for n in row["notes"]] == ["fold 0", "fold 1"]
    assert row["cv"]["mae"]["pooled"] == pytest.approx(0.25)
    assert row["cv"]["rmse"]["pooled"] == pytest.approx(math.sqrt(1.25 / 6))
    assert row["cv"]["r2"]["pooled"] == pytest.approx(1 - 1.25 / 17.5)
    assert row["test"]["mae"]["value"] == pytest.approx((0.5 + 0.5) / 2)
    header = next(ln for ln in (run / "summary.md").read_text().splitlines()
                  if ln.startswith("| Model"))
    assert header.startswith("| Model | CV MAE | R² | RMSE | Params |")


def test_figures_are_valid_pngs(tmp_path):
    run = make_run(tmp_path / "run")
    # history.csv with an extra column and without val_mae still gives a learning curve
    write_csv_rows(
        run / "beta" / "fold_0" / "history.csv",
        [{"epoch": e, "train_loss": 1 / e, "val_loss": 2 / e, "grad_norm": 3.0} for e in (1, 2, 3)],
    )
    assert collect(run, CollectOptions(n_boot=40, alpha=0.05, seed=0, figures=True)) == 0
    figures = run / "figures"
    expected = {
        f"{m}_{kind}.png"
        for m in ("alpha", "beta")
        for kind in ("confusion", "pred_vs_true", "learning_curves")
    } | {"comparison_scores.png"}
    assert {p.name for p in figures.iterdir()} == expected
    for name in expected:
        path = figures / name
        assert path.read_bytes().startswith(PNG_MAGIC), name
        height, width, _ = imread(path).shape
        assert height > 100 and width > 100, name
    assert _summary(run)["notes"] == []
    assert _leftovers(run) == []


def test_nothing_to_collect_and_command_line(tmp_path, capsys):
    assert collect(tmp_path / "absent", FAST) == 2
    (tmp_path / "empty").mkdir()
    assert collect(tmp_path / "empty", FAST) == 2
    run = make_run(tmp_path / "run")
    assert main([f"run_dir={run}", "collect.n_boot=20", "collect.figures=false"]) == 0
    assert "| Model | CV MAE | CV Exact | Pearson |" in capsys.readouterr().out
    assert _summary(run)["bootstrap"]["n_boot"] == 20
    assert main([f"run_dir={run}", "collect.no_such_key=1"]) == 2
    assert collect(run) == 0  # options default to conf/config.yaml's collect section
    configured = OmegaConf.load(Path(CONF_DIR) / "config.yaml").collect.n_boot
    assert _summary(run)["bootstrap"]["n_boot"] == configured
    assert main([]) == 2  # run_dir not set


def test_module_entry_point(tmp_path):
    run = make_run(tmp_path / "run")
    (run / "alpha" / "fold_2" / "metrics.json").unlink()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hawkeye.collect",
            f"run_dir={run}",
            "collect.n_boot=10",
            "collect.figures=false",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "| Model | CV MAE | CV Exact | Pearson |" in done.stdout
    assert "alpha (INCOMPLETE)" in done.stdout


# ----------------------------------------------------------------------------------------------
# nominal classes: the fold ensemble is a soft vote of predictions.csv's probabilities

# Per test video (true class 0, 1, 2) each fold's class probabilities. Video T0: the folds put
# their mass on classes 0 and 2; the mean (0.533, 0, 0.467) votes 0, right, while the mean
# expected index (0.8 + 0.8 + 1.2) / 3 = 0.93 would round to class 1, which no fold chose.
SOFT_VOTE_TEST = {"T0": (0, ([0.6, 0.0, 0.4], [0.6, 0.0, 0.4], [0.4, 0.0, 0.6])),
                  "T1": (1, ([0.1, 0.8, 0.1],) * 3),
                  "T2": (2, ([0.3, 0.0, 0.7], [0.55, 0.0, 0.45], [0.3, 0.0, 0.7]))}


def write_class_fold(run: Path, fold: int) -> None:
    """A classification fold: 3 CV videos (one per class, right with p = 0.7), the 3 test videos
    of SOFT_VOTE_TEST; metrics from class_metrics as hawkeye.train writes them."""
    from hawkeye.metrics import class_metrics

    out = run / "clf" / f"fold_{fold}"
    out.mkdir(parents=True)
    rows = []
    for c in range(3):
        p = [0.7 if k == c else 0.15 for k in range(3)]
        rows.append({"split": "cv", "id": f"C{fold}{c}", "subject": f"C{fold}{c}", "true": c,
                     "pred": c, "raw": float(np.dot(p, range(3))), "p0": p[0], "p1": p[1],
                     "p2": p[2]})
    for video, (true, per_fold) in SOFT_VOTE_TEST.items():
        p = per_fold[fold]
        rows.append({"split": "test", "id": video, "subject": video, "true": true,
                     "pred": int(np.argmax(p)), "raw": float(np.dot(p, range(3))), "p0": p[0],
                     "p1": p[1], "p2": p[2]})
    write_csv_rows(out / "predictions.csv", rows)

    def scored(split: str) -> dict:
        part = [r for r in rows if r["split"] == split]
        return class_metrics([r["true"] for r in part], [r["pred"] for r in part], 3)

    metrics = {"model": "clf", "fold": fold, "status": "ok", "head": "classification",
               "cv": scored("cv"), "test": scored("test"), "n_levels": 3}
    (out / "metrics.json").write_text(json.dumps(metrics))


def test_nominal_test_ensemble_is_the_soft_vote_of_the_fold_probabilities(tmp_path) -> None:
    run = tmp_path / "run"
    for fold in range(3):
        write_class_fold(run, fold)
    (run / "run.json").write_text(json.dumps({"models": ["clf"], "n_folds": 3}))
    assert collect(run, FAST) == 0
    (row,) = json.loads((run / "summary.json").read_text())["rows"]
    assert row["kind"] == "nominal"
    assert row["test"]["accuracy"]["value"] == 1.0       # soft vote: all three right
    folds = [json.loads((run / "clf" / f"fold_{k}" / "metrics.json").read_text())["test"]
             for k in range(3)]
    assert [f["accuracy"] for f in folds] == pytest.approx([1.0, 2 / 3, 2 / 3])
    assert row["cv"]["balanced_accuracy"]["pooled"] == 1.0
    assert not {"mae", "qwk", "pearson", "exact"} & (set(row["cv"]) | set(row["test"]))
    markdown = (run / "summary.md").read_text()
    assert "Bal. accuracy" in markdown and "MAE" not in markdown
