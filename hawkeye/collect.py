"""The collector: every (model, fold) result of a run -> summary tables (``summary_<kind>.csv``,
``summary.md``, ``summary.json``) and figures.

Runs as the Slurm job that depends (``afterany``) on the training array, or by hand:
``python -m hawkeye.collect run_dir=runs/pd4t-1a2b3c4d5e [collect.n_boot=200]``.

What it reads (contracts in docs/architecture.md, "Run directory" and "Fold outputs"):
``<run>/run.json`` (the models and the expected fold count K), and for each model and fold
``<run>/<model>/fold_<k>/metrics.json``, ``predictions.csv`` and ``history.csv``. ``run_dir`` may
also be a sweep (grid) folder holding several run directories: every run below it is collected
and the rows are ranked.

What it refuses: to average an incomplete CV silently. A fold without ``metrics.json``, with a
status other than ``"ok"``, or with unreadable predictions is named in the summary with the reason
and its Slurm log when one can be found; its row is marked INCOMPLETE and the exit code is 1. The
numbers of an incomplete row are computed over the folds that did finish and say so.

Per row (model, or sweep point × model), for every metric present in the folds' metrics.json:

- **fold mean ± std**: the folds' own ``cv`` values (std with ddof=1, across folds; NaN when a
  fold's value is undefined, e.g. Pearson r of constant predictions);
- **pooled**: the metric of all out-of-fold predictions together (each CV video scored once, by
  the model that did not train on it), with a 95% percentile CI from a bootstrap that resamples
  **subjects** (``hawkeye.metrics.bootstrap_{score,anomaly,regression}_metrics``);
- **test**: the held-out test split scored by the **fold ensemble**, which combines what the
  head predicts (:func:`hawkeye.families.ensemble_levels`): with the class probabilities
  ``p<k>`` of predictions.csv (classification, ordinal heads) the folds' probabilities are
  averaged per video and decided by the head's rule (soft vote = arg-max; CORAL = thresholds
  passed by the mean cumulative probabilities); without them (regression head, or a run older
  than the ``p<k>`` columns) the mean of the folds' ``raw`` output is rounded half-to-even and
  clipped to 0..L-1. ``raw`` is averaged either way (the ensemble's expected score). Pooled CV
  decides each video by the same rule from its one fold's probabilities; same subject-level CI.

Nominal rows (``balanced_accuracy`` among the keys: ``task.score_kind=nominal``) are scored with
:func:`hawkeye.metrics.class_metrics` (accuracy, balanced accuracy, macro-F1), no MAE,
correlation or κ.

Anomaly rows (keys ``roc_auc``/``precision``, e.g. ``lstm_ae``): each fold has its own threshold,
so scores are pooled centred on it (``raw - threshold``, decision ``> 0``), which keeps every
fold's decisions and makes the folds' scores comparable; the ensemble averages the centred scores.
The anomaly label is ``true >= anomaly_min_score`` (from metrics.json; 1 when absent, i.e. a 0/1
label). Regression rows (``r2``) use ``raw`` as the prediction. A metric that predictions.csv
cannot reproduce (``spearman_error_score``: error against the severity score) is shown as fold
mean ± std only.

The baseline (:mod:`hawkeye.baseline`): per run and kind of target, the trivial predictor fitted
on each fold's training labels (the other folds' held-out rows) and scored on the same rows and
test split is the summary's ``baselines`` row; every complete model row gets ``vs_baseline``,
the paired subject-bootstrap interval of its ranking metric minus the baseline's and a verdict.

Exit code: 0 = every row complete, 1 = some row incomplete, 2 = nothing to collect.

One module on purpose (~850 lines): reading a fold and computing from it share the fold records
and their checks (a fold is either usable for every statistic or reported); how the summary reads
is apart, in :mod:`hawkeye.report`.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hawkeye import __version__
from hawkeye.baseline import (
    BASELINE_MODEL,
    RULES,
    better_than_baseline,
    fold_values,
    trivial_outputs,
)
from hawkeye.cli import COLLECT_HELP, hydra_app, info_flags, run_app
from hawkeye.config import CONF_DIR, CONFIG_NAME, LOG_DIR_NAME, compose
from hawkeye.families import ensemble_levels
from hawkeye.io import PREDICTION_COLUMNS, git_commit
from hawkeye.metrics import (
    anomaly_metrics,
    anomaly_metrics_weighted,
    as_float,
    bootstrap_anomaly_metrics,
    bootstrap_class_metrics,
    bootstrap_paired_difference,
    bootstrap_regression_metrics,
    bootstrap_score_metrics,
    class_metrics,
    class_metrics_weighted,
    regression_metrics,
    regression_metrics_weighted,
    score_metrics,
    score_metrics_weighted,
)
from hawkeye.report import write_report
from hawkeye.sbatch import job_state
from hawkeye.tracking import track_collected

log = logging.getLogger("hawkeye.collect")

EXIT_COMPLETE, EXIT_INCOMPLETE, EXIT_NOTHING = 0, 1, 2
_NOT_RUN_DIRS = {"figures", LOG_DIR_NAME}  # folders of a grid directory that hold no run
_MAX_LOG_SCAN_BYTES = 2 << 20  # log files larger than this are not searched for a fold's name


# The metrics a summary reports, in summary order (the source package's three first); which of
# them a row shows is decided by the keys present in its metrics.json, not by model names.
METRIC_KEYS = ("mae", "exact", "pearson", "within1", "qwk", "accuracy", "balanced_accuracy",
               "macro_f1", "spearman", "mae_raw",
               "r2", "rmse", "precision", "recall", "f1", "roc_auc", "pr_auc",
               "spearman_error_score")
# Rows are grouped by kind of target, in this order, each group ranked by one metric
# (key, True = higher is better); rows without results (kind None) join the first group.
KINDS = ("ordinal", "nominal", "regression", "anomaly")
_RANK_BY = {"ordinal": ("mae", False), "nominal": ("balanced_accuracy", True),
            "regression": ("mae", False), "anomaly": ("f1", True)}
_PROBABILITY = re.compile(r"p(\d+)")  # predictions.csv's per-level probability columns


@dataclass(frozen=True)
class CollectOptions:
    """How the collector computes intervals and what it draws (defaults: ``collect:`` in config)."""

    n_boot: int         # bootstrap resamples (unit: subject) behind every interval
    alpha: float        # 1 - confidence level (0.05 = 95% CI)
    seed: int           # seed of the resampling
    figures: bool       # draw PNGs under <dir>/figures/

    @classmethod
    def from_config(cls, section: DictConfig | Mapping[str, Any] | None = None) -> CollectOptions:
        """From a ``collect:`` config section; ``None`` reads ``conf/config.yaml``'s defaults."""
        if section is None:
            section = OmegaConf.load(Path(CONF_DIR) / f"{CONFIG_NAME}.yaml").collect
        return cls(n_boot=int(section["n_boot"]), alpha=float(section["alpha"]),
                   seed=int(section["seed"]), figures=bool(section["figures"]))


# ----------------------------------------------------------------------------------------------
# Reading a run


@dataclass
class Predictions:
    """Rows of one fold's predictions.csv as aligned arrays."""

    split: np.ndarray       # (n,) str: "cv" or "test"
    ids: np.ndarray         # (n,) str
    subjects: np.ndarray    # (n,) str
    true: np.ndarray        # (n,) float64
    pred: np.ndarray        # (n,) float64
    raw: np.ndarray         # (n,) float64
    probabilities: np.ndarray | None = None  # (n, K) columns p0..p<K-1>, when the head has them

    def part(self, split: str) -> Predictions:
        keep = self.split == split
        return Predictions(*(getattr(self, name)[keep] for name in
                             ("split", "ids", "subjects", "true", "pred", "raw")),
                           probabilities=None if self.probabilities is None
                           else self.probabilities[keep])

    def __len__(self) -> int:
        return int(self.ids.size)


@dataclass
class FoldResult:
    """What one fold left behind; ``ok`` only if every file the summary needs is valid."""

    fold: int
    ok: bool
    reason: str = ""                                  # why not ok
    logs: list[str] = field(default_factory=list)    # where to look when not ok
    metrics: dict[str, Any] = field(default_factory=dict)
    predictions: Predictions | None = None
    history: dict[str, np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)    # harmless oddities (e.g. no history.csv)


@dataclass
class RunSpec:
    """What a run directory promises: its models and fold count (from run.json or configs)."""

    run_dir: Path
    models: list[str]
    n_folds: int | None
    overrides: list[str] = field(default_factory=list)
    log_dir: Path | None = None
    jobs: dict[str, str] = field(default_factory=dict)   # "<model>/fold_<k>" -> Slurm job id
    launcher: str = ""                                   # run.json's launcher (slurm, local, ...)
    problems: list[str] = field(default_factory=list)    # run-level: unreadable run.json, no K


def find_runs(root: Path) -> list[Path]:
    """``root`` itself if it is a run directory, else every run directory below it (a sweep).

    A run directory holds ``run.json`` or at least one ``<model>/fold_<k>/`` folder; the search
    does not descend into a run directory once found.
    """
    if _is_run_dir(root):
        return [root]
    runs = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if here != root and _is_run_dir(here):
            runs.append(here)
            dirnames.clear()
            continue
        dirnames[:] = sorted(d for d in dirnames
                             if d not in _NOT_RUN_DIRS and not d.startswith("."))
    return sorted(runs)


def _is_run_dir(path: Path) -> bool:
    return (path / "run.json").is_file() or any(p.is_dir() for p in path.glob("*/fold_[0-9]*"))


def read_run_spec(run_dir: Path) -> RunSpec:
    """Models and expected fold count of a run: ``run.json``, else the saved resolved configs.

    The model list is run.json's ``models`` followed by any other model folder found; the fold
    count is run.json's ``n_folds``, else ``cv.n_folds`` of ``<run>/config.yaml`` or of a fold's
    ``config.yaml``. When no source gives it, the run is flagged: without K a missing fold
    cannot be told apart from a CV with fewer folds.
    """
    spec = RunSpec(run_dir=run_dir, models=[], n_folds=None, log_dir=run_dir / LOG_DIR_NAME)
    found = sorted({p.parent.name for p in run_dir.glob("*/fold_[0-9]*") if p.is_dir()})
    run_json = run_dir / "run.json"
    if run_json.is_file():
        try:
            info = json.loads(run_json.read_text())
            spec.models = [str(m) for m in info.get("models", [])]
            spec.n_folds = int(info["n_folds"]) if info.get("n_folds") is not None else None
            spec.overrides = [str(o) for o in info.get("overrides", [])]
            spec.jobs = {str(k): str(v) for k, v in (info.get("jobs") or {}).items()}
            spec.launcher = str(info.get("launcher") or "")
            if info.get("log_dir"):  # relative to the run dir, e.g. "../logs" in a sweep
                spec.log_dir = Path(os.path.normpath(run_dir / str(info["log_dir"])))
        except (OSError, ValueError, TypeError, AttributeError) as error:
            spec.problems.append(f"{run_json} is unreadable ({error}); fix or delete it "
                                 "(launch writes it) and collect again")
    spec.models += [m for m in found if m not in spec.models]
    if spec.n_folds is None:
        candidates = [run_dir / "config.yaml", *sorted(run_dir.glob("*/fold_[0-9]*/config.yaml"))]
        spec.n_folds = next((k for k in map(_n_folds_from_config, candidates) if k), None)
    if spec.n_folds is None:
        spec.problems.append(f"expected number of folds unknown: {run_json} (key n_folds) and "
                             "config.yaml (cv.n_folds) are missing; rows cannot be checked "
                             "complete")
    return spec


def _n_folds_from_config(path: Path) -> int | None:
    if not path.is_file():
        return None
    try:
        value = OmegaConf.select(OmegaConf.load(path), "cv.n_folds")
        return int(value) if value is not None else None
    except (OSError, ValueError, TypeError):
        return None


def read_fold(spec: RunSpec, model: str, fold: int) -> FoldResult:
    """Read one fold's outputs; never raises for bad files, returns a not-ok result saying why."""
    fold_dir = spec.run_dir / model / f"fold_{fold}"
    metrics_path = fold_dir / "metrics.json"

    def failed(reason: str, metrics: dict[str, Any] | None = None,
               excerpt: bool = False) -> FoldResult:
        logs = find_fold_logs(spec, model, fold)  # searched only for a fold that needs them
        return FoldResult(fold, False, reason + (_error_excerpt(logs) if excerpt else ""), logs,
                          metrics or {})

    if not fold_dir.is_dir():
        return failed(f"not run: {fold_dir} does not exist{_job_note(spec, model, fold)}",
                      excerpt=True)
    if not metrics_path.is_file():
        started = " (last.pt present: training started but did not finish)" \
            if (fold_dir / "last.pt").is_file() else ""
        return failed(f"no metrics.json in {fold_dir}{started}", excerpt=True)
    try:
        metrics = json.loads(metrics_path.read_text())
        if not isinstance(metrics, dict):
            raise ValueError("top level is not an object")
    except (OSError, ValueError) as error:
        return failed(f"{metrics_path} unreadable: {error}")
    status = metrics.get("status")
    if status != "ok":
        if metrics.get("error"):
            return failed(f"status {status!r} in {metrics_path}: {metrics['error']}", metrics)
        return failed(f"status {status!r} in {metrics_path}", metrics, excerpt=True)
    if not isinstance(metrics.get("cv"), dict) or not metrics["cv"]:
        return failed(f"{metrics_path} has no 'cv' metrics", metrics)
    try:
        predictions = read_predictions(fold_dir / "predictions.csv")
    except (OSError, ValueError) as error:
        return failed(str(error), metrics)
    if len(predictions.part("cv")) == 0:
        return failed(f"{fold_dir / 'predictions.csv'} has no split=cv rows", metrics)
    result = FoldResult(fold, True, metrics=metrics, predictions=predictions)
    if metrics.get("onnx_error"):  # trained and scored, but predict cannot use it
        result.notes.append(f"fold {fold}: ONNX export failed ({metrics['onnx_error']}); redo it "
                            f"with python -m hawkeye.export run_dir={spec.run_dir}")
    try:
        result.history = read_history(fold_dir / "history.csv")
    except (OSError, ValueError) as error:
        result.notes.append(f"fold {fold}: no learning curve ({error})")
    return result


def read_predictions(path: Path) -> Predictions:
    """Parse a predictions.csv; raise ``ValueError`` naming the file and line of a bad row."""
    if not path.is_file():
        raise ValueError(f"{path} is missing (the fold's metrics.json exists: the fold directory "
                         "is damaged; rerun that fold with launch.force=true)")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in PREDICTION_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: columns {missing} missing (header: {reader.fieldnames}); "
                             f"expected {list(PREDICTION_COLUMNS)}")
        rows = {c: [] for c in PREDICTION_COLUMNS}
        p_columns = _probability_columns(path, reader.fieldnames or [])
        probabilities = []
        for line, row in enumerate(reader, start=2):
            if row["split"] not in ("cv", "test"):
                raise ValueError(f"{path}: line {line}: split is {row['split']!r}, not cv/test")
            for column in ("split", "id", "subject"):
                rows[column].append(row[column])
            for column in ("true", "pred", "raw"):
                rows[column].append(_number(row[column], path, line, column))
            probabilities.append([_number(row[c], path, line, c) for c in p_columns])
    if not rows["id"]:
        raise ValueError(f"{path} has a header but no rows")
    return Predictions(*(np.asarray(rows[c], dtype=np.float64 if c in ("true", "pred", "raw")
                                    else str) for c in PREDICTION_COLUMNS),
                       probabilities=np.asarray(probabilities) if p_columns else None)


def _probability_columns(path: Path, header: Sequence[str]) -> list[str]:
    """The ``p<k>`` columns of a predictions.csv header, which must be exactly p0 .. p<K-1>."""
    found = sorted((int(m.group(1)), c) for c in header if (m := _PROBABILITY.fullmatch(c)))
    if [k for k, _ in found] != list(range(len(found))):
        raise ValueError(f"{path}: probability columns {[c for _, c in found]} are not "
                         "p0 .. p<K-1> without gaps")
    return [c for _, c in found]


def _number(text: str | None, path: Path, line: int, column: str) -> float:
    word = (text or "").strip().lower()
    if word in ("true", "false"):  # a boolean label written by csv from a Python bool
        return float(word == "true")
    try:
        value = float(word)
    except ValueError:
        raise ValueError(f"{path}: line {line}: column {column!r} is {text!r}, not a number") \
            from None
    if not math.isfinite(value):
        raise ValueError(f"{path}: line {line}: column {column!r} is {text!r} (not finite)")
    return value


def read_history(path: Path) -> dict[str, np.ndarray]:
    """Numeric columns of a history.csv (epoch, train_loss, val_loss, val_mae, any extra).

    Cells that are empty or not numbers become NaN (a metric a family does not compute);
    a file without rows raises ``ValueError``.
    """
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path} has no rows")
    columns = {}
    for name in rows[0]:
        if name is None:
            continue
        values = np.asarray([_maybe_number(row.get(name)) for row in rows], dtype=np.float64)
        if np.isfinite(values).any():
            columns[name] = values
    return columns


def _maybe_number(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _job_note(spec: RunSpec, model: str, fold: int) -> str:
    """``; Slurm job <id>: CANCELLED, no log`` for a fold of a Slurm run that never started (a
    pending array task cancelled, e.g. because the stage before it failed); "" elsewhere."""
    job_id = spec.jobs.get(f"{model}/fold_{fold}")
    if not job_id or spec.launcher in ("", "local", "debug"):  # their job ids are no Slurm ids
        return ""
    state = job_state(job_id) or "state unknown (sacct does not list it)"
    logs = "" if find_fold_logs(spec, model, fold) else ", no log (the task never started)"
    return f"; Slurm job {job_id}: {state}{logs}"


def find_fold_logs(spec: RunSpec, model: str, fold: int) -> list[str]:
    """Log files that tell what happened to a fold, best first (may be empty).

    1. the fold directory's own ``*.err``, ``*.log`` and ``error*`` files;
    2. submitit's logs of the fold's Slurm job (run.json ``jobs["<model>/fold_<k>"]``) in the
       run's log folder (``<job_id>_<task>_log.err`` / ``.out``);
    3. failing that, any ``*.err``/``*.out`` in the log folder that mentions ``<model>/fold_<k>``
       (the training job logs its output folder when it starts).
    """
    fold_dir = spec.run_dir / model / f"fold_{fold}"
    found = [p for pattern in ("*.err", "*.log", "error*") for p in sorted(fold_dir.glob(pattern))
             if p.is_file()]
    log_dir = spec.log_dir
    job_id = spec.jobs.get(f"{model}/fold_{fold}")
    if log_dir is not None and log_dir.is_dir():
        if job_id:
            found += sorted(p for p in log_dir.glob(f"{job_id}_*") if p.suffix in (".err", ".out"))
        if not found:
            needle = f"{model}/fold_{fold}"
            found += [p for p in sorted(log_dir.iterdir()) if p.suffix in (".err", ".out")
                      and p.is_file() and p.stat().st_size <= _MAX_LOG_SCAN_BYTES
                      and needle in p.read_text(errors="replace")]
    # .err first: that is where a traceback lands
    return [str(p) for p in sorted(dict.fromkeys(found), key=lambda p: p.suffix != ".err")]


# What ended a job, most telling first: Slurm's own verdict (time limit, preemption, memory),
# then the exception line of a Python traceback; else the log's last line.
_LOG_VERDICTS = (
    re.compile(r"\*\*\*.*(CANCELLED|TIME LIMIT|PREEMPT|NODE FAIL).*\*\*\*|oom[-_ ]kill",
               re.IGNORECASE),
    re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b(:.*)?$"),
)


def _error_excerpt(logs: Sequence[str]) -> str:
    """``: <line>``: the line of the first readable log that says why the job ended."""
    for name in logs:
        try:
            with open(name, "rb") as handle:
                handle.seek(max(0, os.path.getsize(name) - 16384))  # the end tells how it ended
                lines = [ln.strip() for ln in handle.read().decode(errors="replace").splitlines()]
        except OSError:
            continue
        lines = [ln for ln in lines if ln]
        for verdict in _LOG_VERDICTS:
            found = next((ln for ln in reversed(lines) if verdict.search(ln)), None)
            if found:
                return f": {found[:300]}"
        if lines:
            return f": {lines[-1][:300]}"
    return ""


# ----------------------------------------------------------------------------------------------
# Summarising one model of one run


@dataclass
class ModelResult:
    """One summary row plus the arrays its figures need."""

    row: dict[str, Any]
    pooled: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None   # (true, pred, score) CV
    pooled_folds: np.ndarray | None = None   # (n,) int: the fold that held out each pooled row
    histories: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    best_epochs: dict[str, int] = field(default_factory=dict)  # "fold k" -> metrics.json best_epoch
    baseline: list[FoldResult] = field(default_factory=list)  # its baseline's folds (complete)


def metric_kind(cv_metrics: Mapping[str, Any]) -> str:
    """``ordinal``, ``nominal``, ``anomaly`` or ``regression``, from the metric keys a fold
    reported."""
    if "balanced_accuracy" in cv_metrics:
        return "nominal"
    if "qwk" in cv_metrics or "exact" in cv_metrics:
        return "ordinal"
    if "roc_auc" in cv_metrics or "precision" in cv_metrics:
        return "anomaly"
    if "r2" in cv_metrics or "rmse" in cv_metrics:
        return "regression"
    raise ValueError(f"cannot tell the target kind from metric keys {sorted(cv_metrics)}: "
                     "expected score_metrics, anomaly_metrics or regression_metrics keys")


def summarise_model(spec: RunSpec, model: str, folds: Sequence[FoldResult], label: str,
                    options: CollectOptions, against_baseline: bool = True) -> ModelResult:
    """One row: fold mean ± std, pooled out-of-fold metrics with CI, test-ensemble metrics and
    (``against_baseline``, complete rows) the comparison with the trivial predictor."""
    ok = [f for f in folds if f.ok]
    problems = [{"fold": f.fold, "reason": f.reason, "logs": f.logs} for f in folds if not f.ok]
    problems += [{"fold": None, "reason": p, "logs": []} for p in spec.problems]
    row: dict[str, Any] = {
        "label": label, "model": model, "run": ".", "overrides": spec.overrides,
        "kind": None, "folds_expected": spec.n_folds, "folds_ok": len(ok), "n_levels": None,
        "cv": {}, "test": {}, "n_cv": 0, "n_test": 0, "n_params": None, "train_seconds": None,
        "onnx_mb": None, "problems": problems, "notes": [n for f in ok for n in f.notes],
    }
    result = ModelResult(row, histories={f"fold {f.fold}": f.history for f in ok if f.history},
                         best_epochs={f"fold {f.fold}": int(f.metrics["best_epoch"]) for f in ok
                                      if f.metrics.get("best_epoch") is not None})
    if ok:
        try:
            _fill_metrics(result, ok, options)
        except ValueError as error:  # inconsistent folds: report, do not average
            problems.append({"fold": None, "reason": str(error), "logs": []})
    row["complete"] = not problems and spec.n_folds is not None and len(ok) == spec.n_folds
    expected = spec.n_folds if spec.n_folds is not None else "?"
    row["status"] = "complete" if row["complete"] else f"INCOMPLETE ({len(ok)}/{expected} folds ok)"
    row["vs_baseline"] = None
    if not against_baseline:
        return result
    if row["complete"] and len(ok) > 1:
        result.baseline = baseline_folds(ok, row["kind"], row["n_levels"])
        row["vs_baseline"] = compare_to_baseline(ok, result.baseline, row["kind"],
                                                 row["n_levels"], options)
    elif ok:
        row["notes"].append("no baseline comparison: it needs every fold (a fold's training "
                            "labels are the other folds' held-out rows)")
    return result


def _fill_metrics(result: ModelResult, ok: Sequence[FoldResult], options: CollectOptions) -> None:
    row = result.row
    kinds = {metric_kind(f.metrics["cv"]) for f in ok}
    if len(kinds) > 1:
        raise ValueError(f"folds report different kinds of metrics ({sorted(kinds)})")
    kind = row["kind"] = kinds.pop()
    keys = [k for k in METRIC_KEYS if any(k in f.metrics["cv"] for f in ok)]
    n_levels = row["n_levels"] = _n_levels(ok) if kind in ("ordinal", "nominal") else None
    for key in keys:
        values = np.asarray([as_float(f.metrics["cv"].get(key)) for f in ok])
        row["cv"][key] = {"mean": float(np.mean(values)),
                          "std": float(np.std(values, ddof=1)) if values.size > 1 else math.nan,
                          "folds": values.tolist()}
    decide = _fold_decision(ok, n_levels)
    true, pred, score, subjects, test_parts = _pooled_arrays(ok, kind, decide)
    _check_grouping(ok)
    point, cis = _scored(kind, keys, true, pred, score, subjects, n_levels, options)
    for key in keys:
        row["cv"][key].update(pooled=point.get(key, math.nan), ci_low=cis[key][0],
                              ci_high=cis[key][1])
    row["n_cv"] = int(true.size)
    result.pooled = (true, pred, score)
    result.pooled_folds = np.concatenate([np.full(len(f.predictions.part("cv")), f.fold)
                                          for f in ok])  # _pooled_arrays' order: folds in turn
    if test_parts:
        t, p, s, g = _test_ensemble(test_parts, kind, decide)
        point, cis = _scored(kind, keys, t, p, s, g, n_levels, options)
        row["test"] = {k: {"value": point.get(k, math.nan), "ci_low": cis[k][0],
                           "ci_high": cis[k][1]} for k in keys}
        row["n_test"] = int(t.size)
    n_params = {f.metrics.get("n_params") for f in ok} - {None}
    row["n_params"] = max(n_params) if n_params else None
    seconds = [as_float(f.metrics.get("train_seconds")) for f in ok]
    row["train_seconds"] = float(np.sum(seconds)) if seconds else None
    sizes = [as_float(f.metrics["onnx_mb"]) for f in ok if f.metrics.get("onnx_mb") is not None]
    row["onnx_mb"] = float(np.mean(sizes)) if sizes else None


def _n_levels(ok: Sequence[FoldResult]) -> int:
    """Score levels L: metrics.json ``n_levels``, else the confusion matrix size, else the data."""
    stated = [int(f.metrics["n_levels"]) for f in ok if f.metrics.get("n_levels")]
    stated += [len(f.metrics["cv"]["confusion"]) for f in ok if f.metrics["cv"].get("confusion")]
    if stated:
        return max(stated)
    seen = max(max(f.predictions.true.max(), f.predictions.pred.max()) for f in ok)
    return max(2, int(seen) + 1)


def _fold_decision(ok: Sequence[FoldResult], n_levels: int | None):
    """The decision rule of the folds' head (one head for every fold), or None for rows without
    score levels."""
    heads = {f.metrics.get("head") for f in ok}
    if len(heads) > 1:
        raise ValueError(f"folds were trained with different heads ({sorted(map(str, heads))})")
    return _decision_rule(heads.pop(), n_levels) if n_levels else None


def _decision_rule(head: str | None, n_levels: int):
    """``decide(probabilities or None, mean raw) -> levels`` of a score row's head (module doc)."""
    def decide(probabilities: np.ndarray | None, raw: np.ndarray) -> np.ndarray:
        if probabilities is not None and head is None:
            raise ValueError("predictions.csv has class probabilities but metrics.json names no "
                             "head to decide them by")
        return ensemble_levels(str(head), probabilities, raw, n_levels).astype(np.float64)
    return decide


def _pooled_arrays(ok: Sequence[FoldResult], kind: str, decide):
    """Out-of-fold (true, pred, score, subjects) of all ok folds, and each fold's test part."""
    parts, test_parts = [], []
    for f in ok:
        for split, bucket in (("cv", parts), ("test", test_parts)):
            part = f.predictions.part(split)
            if len(part):
                bucket.append(_target_view(part, f, kind, decide))
    true, pred, score, subjects = (np.concatenate(a) for a in list(zip(*parts, strict=True))[:4])
    return true, pred, score, subjects, test_parts


def _target_view(part: Predictions, fold: FoldResult, kind: str, decide):
    """(true, pred, score, subjects, ids, probabilities) in the units the kind is scored in (see
    module doc); with probabilities, ``pred`` is decided from them by the ensemble's rule."""
    if kind in ("ordinal", "nominal"):
        pred = part.pred if part.probabilities is None else decide(part.probabilities, part.raw)
        return part.true, pred, part.raw, part.subjects, part.ids, part.probabilities
    if kind != "anomaly":
        return part.true, part.pred, part.raw, part.subjects, part.ids, None
    threshold = as_float(fold.metrics["cv"].get("threshold", fold.metrics.get("threshold")))
    if not math.isfinite(threshold):
        raise ValueError(f"fold {fold.fold}: anomaly metrics without a finite 'threshold' in "
                         "metrics.json; cannot pool its decisions")
    min_score = as_float(fold.metrics.get("anomaly_min_score", 1))
    return ((part.true >= min_score).astype(np.float64), part.pred, part.raw - threshold,
            part.subjects, part.ids, None)


def _check_grouping(ok: Sequence[FoldResult]) -> None:
    """Each held-out video in one fold only, each subject held out in one fold only, test apart."""
    fold_of_subject: dict[str, set[int]] = {}
    seen_ids: dict[str, int] = {}
    for f in ok:
        cv = f.predictions.part("cv")
        for video in cv.ids:
            if video in seen_ids and seen_ids[video] != f.fold:
                raise ValueError(f"video {video!r} is held out in folds {seen_ids[video]} and "
                                 f"{f.fold}: the folds overlap, pooled metrics would double-count")
            seen_ids[video] = f.fold
        for subject in set(cv.subjects):
            fold_of_subject.setdefault(subject, set()).add(f.fold)
    leaked = sorted(s for s, k in fold_of_subject.items() if len(k) > 1)
    if leaked:
        raise ValueError(f"subjects held out in more than one fold (folds not grouped by subject): "
                         f"{leaked[:5]}")
    test_subjects = {s for f in ok for s in f.predictions.part("test").subjects}
    both = sorted(test_subjects & set(fold_of_subject))
    if both:
        raise ValueError(f"subjects in both the CV and the test split: {both[:5]}")


def _test_ensemble(parts, kind: str, decide):
    """Fold ensemble on the test split: mean score (and probabilities) per video over folds,
    decided by the head's rule (module docstring)."""
    id_sets = [frozenset(p[4]) for p in parts]
    if len(set(id_sets)) > 1:
        raise ValueError("folds scored different test sets (test ids differ); the ensemble "
                         "needs every fold's predictions of the same videos")
    with_probabilities = {p[5] is not None for p in parts}
    if len(with_probabilities) > 1:
        raise ValueError("some folds' predictions.csv have class probabilities and some do not; "
                         "rerun the folds without them (launch.force=true)")
    true, _, score, subjects, ids = (np.concatenate(a) for a in list(zip(*parts, strict=True))[:5])
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    counts = np.bincount(inverse)
    mean_score = np.bincount(inverse, weights=score) / counts
    if np.any(np.bincount(inverse, weights=true) / counts != true[first]):
        raise ValueError("the same test video has different true values in different folds")
    if kind in ("ordinal", "nominal"):
        mean_probabilities = None
        if with_probabilities == {True}:
            stacked = np.concatenate([p[5] for p in parts])             # (folds * n, K)
            mean_probabilities = np.stack([np.bincount(inverse, weights=stacked[:, k])
                                           for k in range(stacked.shape[1])], axis=1) \
                / counts[:, None]
        pred = decide(mean_probabilities, mean_score)
    elif kind == "anomaly":
        pred = (mean_score > 0).astype(np.float64)
    else:
        pred = mean_score
    return true[first], pred, mean_score, subjects[first]


def _scored(kind: str, keys: Sequence[str], true: np.ndarray, pred: np.ndarray,
            score: np.ndarray, subjects: np.ndarray, n_levels: int | None,
            options: CollectOptions) -> tuple[dict[str, Any], dict[str, tuple[float, float]]]:
    """Point metrics on all rows and subject-bootstrap intervals of ``keys``."""
    # The bootstrap functions are vectorised over resamples and give the same numbers as
    # re-running the point metric on each resample (tests/test_metrics.py).
    resampling = _resampling(options)
    point = _point_metrics(kind, true, pred, score, n_levels)
    if kind == "ordinal":
        cis = bootstrap_score_metrics(true, pred, score, subjects, n_levels, **resampling)
    elif kind == "nominal":
        point = class_metrics(true, pred, n_levels)
        cis = bootstrap_class_metrics(true, pred, subjects, n_levels, **resampling)
    elif kind == "anomaly":  # centred scores: the decision threshold is 0 (module docstring)
        cis = bootstrap_anomaly_metrics(true.astype(bool), score, 0.0, subjects, **resampling)
    else:
        cis = bootstrap_regression_metrics(true, score, subjects, **resampling)
    return point, {k: cis.get(k, (math.nan, math.nan)) for k in keys}


def _resampling(options: CollectOptions) -> dict[str, Any]:
    return {"n_boot": options.n_boot, "seed": options.seed, "alpha": options.alpha}


def _point_metrics(kind: str, true: np.ndarray, pred: np.ndarray, score: np.ndarray,
                   n_levels: int | None) -> dict[str, Any]:
    """The kind's metrics of one set of rows (units of :func:`_target_view`)."""
    if kind == "ordinal":
        return score_metrics(true, pred, score, n_levels)
    if kind == "nominal":
        return class_metrics(true, pred, n_levels)
    if kind == "anomaly":
        return anomaly_metrics(true.astype(bool), score, 0.0)
    return regression_metrics(true, score)


def _weighted_metrics(kind: str, true: np.ndarray, pred: np.ndarray, score: np.ndarray,
                      n_levels: int | None):
    """``weights (b, n) -> {metric: (b,)}``: :func:`_point_metrics` on many resamples at once."""
    if kind == "ordinal":
        return lambda w: score_metrics_weighted(true, pred, score, n_levels, w)
    if kind == "nominal":
        return lambda w: class_metrics_weighted(true, pred, n_levels, w)
    if kind == "anomaly":
        return lambda w: anomaly_metrics_weighted(true.astype(bool), score, 0.0, w)
    return lambda w: regression_metrics_weighted(true, score, w)


# ----------------------------------------------------------------------------------------------
# The baseline (hawkeye.baseline: which constant, where its training labels come from)


def baseline_folds(ok: Sequence[FoldResult], kind: str,
                   n_levels: int | None) -> list[FoldResult]:
    """The trivial predictor of ``kind`` as fold results on exactly the rows of ``ok`` (every
    fold of a complete row): fold k's constant is fitted on the other folds' held-out labels."""
    decide = _fold_decision(ok, n_levels)
    held_out = [_target_view(f.predictions.part("cv"), f, kind, decide)[0] for f in ok]
    folds = []
    for f, value in zip(ok, fold_values(kind, held_out), strict=True):
        p = f.predictions
        pred, raw = trivial_outputs(kind, value, len(p), n_levels)
        metrics = {"model": BASELINE_MODEL, "fold": f.fold, "status": "ok", "n_levels": n_levels,
                   "baseline_value": value, "threshold": 0.0, "cv": {},
                   "anomaly_min_score": f.metrics.get("anomaly_min_score", 1)}
        fold = FoldResult(f.fold, True, metrics=metrics,
                          predictions=Predictions(p.split, p.ids, p.subjects, p.true, pred, raw))
        metrics["cv"] = _point_metrics(
            kind, *_target_view(fold.predictions.part("cv"), fold, kind, decide)[:3], n_levels)
        folds.append(fold)
    return folds


def compare_to_baseline(ok: Sequence[FoldResult], baseline: Sequence[FoldResult], kind: str,
                        n_levels: int | None, options: CollectOptions) -> dict[str, Any]:
    """``model - baseline`` of the kind's ranking metric on the pooled CV rows and the test
    ensemble, each with a paired subject-bootstrap interval and the yes/no verdict."""
    key, higher_is_better = _RANK_BY[kind]
    comparison: dict[str, Any] = {"metric": key, "rule": RULES[kind]}
    decide = _fold_decision(ok, n_levels)
    model_cv, base_cv = _pooled_arrays(ok, kind, decide), _pooled_arrays(baseline, kind, decide)
    sides = {"cv": (model_cv[:4], base_cv[:4])}
    if model_cv[4]:
        sides["test"] = (_test_ensemble(model_cv[4], kind, decide),
                         _test_ensemble(base_cv[4], kind, decide))
    for split, (model, base) in sides.items():
        (true, pred, score, subjects), (_, base_pred, base_score, _) = model, base
        point = _point_metrics(kind, true, pred, score, n_levels)[key]
        base_point = _point_metrics(kind, true, base_pred, base_score, n_levels)[key]
        low, high = bootstrap_paired_difference(
            _weighted_metrics(kind, true, pred, score, n_levels),
            _weighted_metrics(kind, true, base_pred, base_score, n_levels),
            subjects, **_resampling(options)).get(key, (math.nan, math.nan))
        comparison[split] = {"model": point, "baseline": base_point,
                             "difference": as_float(point) - as_float(base_point),
                             "ci_low": low, "ci_high": high,
                             "better": better_than_baseline(low, high, higher_is_better)}
    return comparison


def baseline_rows(spec: RunSpec, results: Sequence[ModelResult], point: str,
                  options: CollectOptions) -> list[dict[str, Any]]:
    """One baseline row per kind of target in a run, scored on the rows of the run's first
    complete model of that kind (every model of a kind shares the run's folds)."""
    rows, kinds = [], []
    for result in results:
        kind = result.row["kind"]
        if result.baseline and kind not in kinds:
            kinds.append(kind)
            label = f"{point}/{BASELINE_MODEL}" if point else BASELINE_MODEL
            row = summarise_model(spec, BASELINE_MODEL, result.baseline, label, options,
                                  against_baseline=False).row
            row.update(run=point or ".", rank=None, baseline_rule=RULES[kind],
                       baseline_of=result.row["label"], vs_baseline=None)
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# Ranking and the summary


def rank_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group rows by kind (:data:`KINDS` order) and rank each group: complete rows first, then by
    fold-mean CV MAE (ordinal, regression) or F1 (anomaly); ``rank`` counts within the group."""
    ranked = []
    for group in kind_groups(rows):
        kind = next((r["kind"] for r in group if r["kind"]), None)
        key, higher_better = _RANK_BY.get(kind, (None, False))

        def order(row: dict[str, Any], key=key, higher_better=higher_better) -> tuple:
            value = as_float(row["cv"].get(key, {}).get("mean")) if key else math.nan
            value = -value if higher_better else value
            return (not row["complete"], math.isnan(value), 0.0 if math.isnan(value) else value)

        for rank, row in enumerate(sorted(group, key=order), start=1):
            row["rank"] = rank
            ranked.append(row)
    return ranked


def kind_groups(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows by kind of target in :data:`KINDS` order; rows without a kind join the first group."""
    groups = [[r for r in rows if r["kind"] == kind] for kind in KINDS]
    groups = [g for g in groups if g] or [[]]
    groups[0] = groups[0] + [r for r in rows if r["kind"] not in KINDS]
    return [g for g in groups if g]


# ----------------------------------------------------------------------------------------------
# Figures


@dataclass
class Summary:
    """Everything the collector computed: what ``summary.json`` holds (:meth:`to_json`) plus the
    arrays behind the figures; :mod:`hawkeye.report` renders it."""

    root: str                          # the collected folder (a run or a sweep)
    created: str                       # ISO time of the collection
    complete: bool                     # every row complete and no run-level problem
    bootstrap: dict[str, Any]          # n_boot, alpha, seed, unit, interval of every CI
    metrics: list[str]                 # metric keys any row has, in METRIC_KEYS order
    rows: list[dict[str, Any]]         # ranked rows (contract: docs/architecture.md)
    problems: list[str]                # run-level problems (no model, unreadable run.json)
    git_commit: str
    hawkeye_version: str
    results: list[ModelResult] = field(default_factory=list, repr=False)  # figures' arrays
    notes: list[str] = field(default_factory=list)  # figures that could not be drawn
    baselines: list[dict[str, Any]] = field(default_factory=list)  # rows of hawkeye.baseline

    @property
    def groups(self) -> list[list[dict[str, Any]]]:
        """The rows by kind of target (one table each), ranked within each group."""
        return kind_groups(self.rows)

    def to_json(self) -> dict[str, Any]:
        """The content of ``summary.json`` (:func:`hawkeye.report.write_report` adds the same rows
        as one table per kind of row, ``"tables"``)."""
        return {"root": self.root, "created": self.created, "complete": self.complete,
                "bootstrap": self.bootstrap, "metrics": self.metrics, "rows": self.rows,
                "baselines": self.baselines, "problems": self.problems, "notes": self.notes,
                "git_commit": self.git_commit, "hawkeye_version": self.hawkeye_version}


def summarise(root: Path, runs: Sequence[Path], options: CollectOptions) -> Summary:
    """Read every fold of every run below ``root``, pool, bootstrap and rank: the summary."""
    results, problems, baselines = [], [], []
    for run in runs:
        spec = read_run_spec(run)
        point = run.relative_to(root).as_posix() if run != root else ""
        if not spec.models:
            problems += [f"{run}: no model folder and no models in run.json", *spec.problems]
        run_results = []
        for model in spec.models:
            expected, extra = _fold_numbers(spec, model)
            folds = [read_fold(spec, model, k) for k in expected]
            folds += [FoldResult(k, False, f"fold_{k} is beyond n_folds={spec.n_folds}: a stale "
                                 "folder from another CV? remove it") for k in extra]
            label = f"{point}/{model}" if point else model
            result = summarise_model(spec, model, folds, label, options)
            result.row["run"] = point or "."
            run_results.append(result)
        results += run_results
        baselines += baseline_rows(spec, run_results, point, options)
    rows = rank_rows([r.row for r in results])
    return Summary(
        root=str(root), created=datetime.now(UTC).isoformat(timespec="seconds"),
        complete=bool(rows) and not problems and all(r["complete"] for r in rows),
        bootstrap={"n_boot": options.n_boot, "alpha": options.alpha, "seed": options.seed,
                   "unit": "subject", "interval": "percentile"},
        metrics=[k for k in METRIC_KEYS if any(k in r["cv"] for r in rows)], rows=rows,
        problems=problems, git_commit=git_commit(), hawkeye_version=__version__,
        results=results, baselines=baselines)


# ----------------------------------------------------------------------------------------------
# The job


def collect(run_dir: Path, options: CollectOptions | None = None) -> int:
    """Collect a run (or a sweep of runs) under ``run_dir``; write summaries; return the exit code.

    Writes ``summary_<kind>.csv`` (one per kind of row), ``summary.md``, ``summary.json``
    (atomically; :func:`hawkeye.report.write_report`) and, if
    ``options.figures``, PNGs under ``<run_dir>/figures/``; prints the Markdown summary.
    ``options`` defaults to the ``collect:`` section of ``conf/config.yaml``.
    """
    options = options or CollectOptions.from_config()
    root = Path(run_dir)
    if not root.is_dir():
        print(f"hawkeye.collect: {root} is not a directory; pass run_dir=<a run or sweep folder>",
              file=sys.stderr)
        return EXIT_NOTHING
    runs = find_runs(root)
    if not runs:
        print(f"hawkeye.collect: no run under {root} (no run.json and no <model>/fold_<k>/ "
              "folder); nothing to collect", file=sys.stderr)
        return EXIT_NOTHING
    summary = summarise(root, runs, options)
    print(write_report(summary, root, options.figures))
    # the trackers the folds logged to (their tracker.json) get one parent run per run directory
    track_collected(root, runs, summary.rows, summary.baselines)
    return EXIT_COMPLETE if summary.complete else EXIT_INCOMPLETE


def _fold_numbers(spec: RunSpec, model: str) -> tuple[list[int], list[int]]:
    """(expected 0..K-1, extra fold folders found beyond them: reported, never dropped silently)."""
    present = sorted(int(p.name.split("_", 1)[1]) for p in (spec.run_dir / model).glob("fold_*")
                     if p.is_dir() and p.name.split("_", 1)[1].isdigit())
    expected = list(range(spec.n_folds)) if spec.n_folds is not None else present
    return expected, [k for k in present if k not in expected]


@hydra_app(COLLECT_HELP)
def _collect_app(cfg: DictConfig) -> None:
    if cfg.run_dir is None:
        print("hawkeye.collect: run_dir is not set; pass run_dir=PATH", file=sys.stderr)
        sys.exit(EXIT_NOTHING)
    sys.exit(collect(Path(cfg.run_dir), CollectOptions.from_config(cfg.collect)))


def main(argv: Sequence[str] | None = None) -> int:
    """``hawkeye-collect run_dir=PATH [collect.n_boot=N collect.figures=false]`` (a Hydra app);
    returns the exit code 0/1/2, also 2 for a bad override (nothing was collected)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not info_flags(args):
        try:  # composed here first: Hydra would exit 1, which means "a fold is missing"
            compose([a for a in args if not a.startswith("-")])
        except (HydraException, OmegaConfBaseException, ValueError) as error:
            print(f"hawkeye.collect: bad arguments ({error}); see hawkeye-collect --help",
                  file=sys.stderr)
            return EXIT_NOTHING
    return run_app(_collect_app, args)


if __name__ == "__main__":
    sys.exit(main())
