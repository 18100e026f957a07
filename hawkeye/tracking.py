"""Experiment trackers (``logger=`` config group): MLflow and TensorBoard beside the fold's files.

A fold's own files (``history.csv``, ``predictions.csv``, ``metrics.json``) and a run's
``summary.*`` are always written; they are the record the collector reads. ``logger: [csv]`` (the
default) adds nothing to them; ``logger=[csv,mlflow,tensorboard]`` also sends the same numbers to
the trackers named, built from :data:`TRACKERS` (name -> :class:`Tracker` class). Three moments:

- **fold start** (:meth:`FoldTracking.open`, from :func:`hawkeye.train.train`): each tracker opens
  its run of this fold, or reopens the one recorded in ``<fold_dir>/tracker.json`` (a requeued or
  resumed job continues its run; no duplicate runs);
- **each epoch** (:meth:`FoldTracking.epoch_done`, called once per epoch by
  :func:`hawkeye.loop.fit_network` after the checkpoint): the history rows a tracker has not yet
  logged (``logged_through`` in tracker.json, MLflow's own metric history on reopening), so
  epochs logged before a kill are never logged twice and checkpointed ones never lost;
- **fold end** (:meth:`FoldTracking.fold_done`): final cv/test metrics, artifacts, finished.

The collector calls :func:`track_collected` after the report is written: one parent run per run
directory with the summary rows and figures; the fold runs are its children (MLflow: the parent is
found by its ``hawkeye.run_key`` tag, the run directory's hash, so folds created before it already
point at it).

Logging never breaks a fold: a tracker that cannot be imported, opened or written is reported ONCE
(one warning naming it and the reason) and dropped for the rest of the job; training goes on.

One module on purpose (~600 lines): the trackers, the fold's guarded calls and the collector's call
share one contract (tracker.json's layout, the run key, the metric names), kept in one place.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import math
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import DictConfig, OmegaConf

from hawkeye.faults import store_lock
from hawkeye.io import git_commit, write_json_atomic

log = logging.getLogger("hawkeye.tracking")

STATE_FILE = "tracker.json"  # per fold: each tracker's settings, run id and last logged epoch
FOLD_ARTIFACTS = ("predictions.csv", "history.csv", "metrics.json", "config.yaml", "model.onnx")
SUMMARY_ARTIFACTS = ("summary.md", "summary.json", "summary_*.csv")  # patterns, in the root
_PARAM_CHARS = 500  # a flattened config value longer than this is cut (MLflow caps param values)
_FAILED = object()  # what a guarded tracker call returns when it raised


@dataclass(frozen=True)
class FoldInfo:
    """Who a fold is, for run names, tags and params."""

    run_dir: Path           # absolute
    model: str
    fold: int
    config_hash: str
    commit: str             # git commit of the code, or "unknown"
    params: dict[str, str]  # the resolved config, flattened (``train.lr`` -> ``"0.001"``)

    @property
    def tags(self) -> dict[str, str]:
        commit = self.commit
        return {"hawkeye.model": self.model, "hawkeye.fold": str(self.fold),
                "hawkeye.sweep_point": self.run_dir.name, "hawkeye.config_hash": self.config_hash,
                "hawkeye.run_dir": str(self.run_dir), "hawkeye.run_key": run_key(self.run_dir),
                **({"mlflow.source.git.commit": commit, "hawkeye.git_commit": commit}
                   if commit != "unknown" else {})}


@dataclass(frozen=True)
class RunRecord:
    """What the collector hands a tracker for one run directory."""

    run_dir: Path                    # absolute
    rows: list[dict[str, Any]]       # summary rows (models, baselines) of this run
    artifacts: list[Path]            # summary files and figures
    fold_states: list[dict[str, Any]]  # this tracker's tracker.json entries of the run's folds


class Tracker(ABC):
    """One experiment tracker. ``settings`` are its resolved config (persisted in tracker.json so
    the collector rebuilds the same tracker without the config)."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_config(cls, section: Mapping[str, Any], cfg: DictConfig) -> Tracker:
        """Resolve the ``logger.<name>`` section's defaults against the run's config."""

    @property
    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """The resolved settings; ``type(self)(**settings)`` rebuilds the tracker."""

    @abstractmethod
    def open_fold(self, fold: FoldInfo, state: Mapping[str, Any]) -> dict[str, Any]:
        """Start (``state`` empty) or reopen this fold's run; return its new state, with
        ``logged_through`` = the last epoch already logged."""

    @abstractmethod
    def log_epochs(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Log history rows (``epoch`` is the step) not logged before."""

    @abstractmethod
    def finish_fold(self, metrics: Mapping[str, Any], fold_dir: Path) -> None:
        """Final metrics and artifacts of a finished fold; close its run."""

    @abstractmethod
    def fail_fold(self) -> None:
        """Close the fold's run as failed (the job raised)."""

    @abstractmethod
    def log_run(self, record: RunRecord) -> None:
        """The collector's parent run of one run directory, with its folds as children."""


# ----------------------------------------------------------------------------------------------
# The object a training job holds


class FoldTracking:
    """The trackers of one fold: the one object the epoch loop and the fold end talk to.

    Every call into a tracker is guarded: the first exception drops that tracker with one warning
    (the fold goes on); later calls skip it.
    """

    def __init__(self, fold_dir: Path, trackers: Sequence[Tracker],
                 state: dict[str, dict[str, Any]]) -> None:
        self.fold_dir, self.trackers, self.state = fold_dir, list(trackers), state

    @classmethod
    def open(cls, cfg: DictConfig, fold_dir: Path, config_hash: str) -> FoldTracking:
        """Build the trackers ``cfg.logger`` names and open (or reopen) this fold's runs."""
        tracking = cls(fold_dir, [], read_state(fold_dir))
        built = [tracking._guarded(name, "setting up", lambda n=name: build_tracker(n, cfg))
                 for name in (cfg.get("logger") or {})]
        tracking.trackers = [t for t in built if isinstance(t, Tracker)]  # csv builds none
        if not tracking.trackers:
            return tracking
        fold = fold_info(cfg, fold_dir, config_hash)
        for tracker in list(tracking.trackers):
            previous = tracking.state.get(tracker.name, {})
            if previous.get("settings", tracker.settings) != tracker.settings:
                previous = {}  # another store or experiment now: a new run there
            opened = tracking._guarded(tracker.name, "opening the fold's run",
                                       lambda t=tracker, p=previous: t.open_fold(fold, p))
            if opened is not _FAILED:
                tracking.state[tracker.name] = {**opened, "settings": tracker.settings}
        tracking._save()
        return tracking

    def epoch_done(self, history: Sequence[Mapping[str, Any]]) -> None:
        """Log every row of ``history`` (the loop's rows so far) each tracker has not logged."""
        changed = False
        for tracker in list(self.trackers):
            entry = self.state[tracker.name]
            new = [row for row in history if int(row["epoch"]) > int(entry["logged_through"])]
            if new and self._guarded(tracker.name, "logging epochs",
                                     lambda t=tracker, n=new: t.log_epochs(n)) is not _FAILED:
                entry["logged_through"] = int(new[-1]["epoch"])
                changed = True
        if changed:
            self._save()

    def fold_done(self, metrics: Mapping[str, Any],
                  history: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Epochs not logged yet (a fold without an epoch loop, or killed after its last
        checkpoint), then the final metrics and artifacts. ``history`` None: the fold's
        history.csv (a job that starts again at the export has none in memory)."""
        if self.trackers and history is None:
            path = self.fold_dir / "history.csv"
            try:
                history = read_history(path)
            except (OSError, ValueError) as error:
                log.warning("%s is unreadable (%s): the trackers get the final metrics only",
                            path, error)
        self.epoch_done(history or [])
        for tracker in list(self.trackers):
            self._guarded(tracker.name, "logging the fold's results",
                          lambda t=tracker: t.finish_fold(metrics, self.fold_dir))

    def fold_failed(self) -> None:
        for tracker in list(self.trackers):
            self._guarded(tracker.name, "closing the failed fold's run", tracker.fail_fold)

    @contextlib.contextmanager
    def failing_on_error(self) -> Iterator[FoldTracking]:
        """Mark the runs failed when the block raises (then re-raise)."""
        try:
            yield self
        # Re-raised: the fold fails as before and its runs say so. Exception, not BaseException:
        # a preempted job's SystemExit is a pause, its runs continue when it is requeued.
        except Exception:
            self.fold_failed()
            raise

    def _guarded(self, name: str, doing: str, call: Any) -> Any:
        """``call()``'s result, or :data:`_FAILED` after dropping tracker ``name``."""
        try:
            return call()
        except Exception as error:  # a tracker must never fail the fold: report once, drop it
            log.warning("tracker %s is off for this job (%s %s failed: %s: %s); training goes on "
                        "and the fold's files are written as always", name, doing,
                        self.fold_dir, type(error).__name__, error)
            self.trackers = [t for t in self.trackers if t.name != name]
            return _FAILED

    def _save(self) -> None:
        if not self.state:
            return
        try:
            write_json_atomic(self.fold_dir / STATE_FILE, self.state)
        except OSError as error:  # the trackers' bookkeeping must not fail the fold either
            log.warning("%s could not be written (%s): a job that starts again opens new "
                        "tracker runs", self.fold_dir / STATE_FILE, error)


def read_state(fold_dir: Path) -> dict[str, dict[str, Any]]:
    """A fold's tracker.json (empty when absent or unreadable: the trackers start new runs)."""
    path = fold_dir / STATE_FILE
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text())
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError) as error:
        log.warning("%s is unreadable (%s): the trackers start new runs", path, error)
        return {}


def read_history(path: Path) -> list[dict[str, float]]:
    """history.csv's rows as numbers (an empty cell, a value not computed, is NaN)."""
    with open(path, newline="") as handle:
        return [{k: float(v) if v else math.nan for k, v in row.items()}
                for row in csv.DictReader(handle)]


def fold_info(cfg: DictConfig, fold_dir: Path, config_hash: str) -> FoldInfo:
    """Identity of the fold ``cfg`` trains, with its resolved config flattened as params."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("hydra", None)
    return FoldInfo(run_dir=Path(cfg.run_dir).resolve(), model=str(cfg.model.name),
                    fold=int(cfg.fold), config_hash=config_hash, commit=git_commit(),
                    params=flat_params(plain))


def flat_params(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train.lr": "0.001", ...}``: every leaf of a nested mapping (lists as JSON text), values
    cut to :data:`_PARAM_CHARS` characters."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_params(value, f"{dotted}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flat[dotted] = text[:_PARAM_CHARS]
    return flat


def run_key(run_dir: Path) -> str:
    """The tag value that names a run directory's parent run: a hash of its absolute path."""
    return hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]


def numeric_items(tree: Mapping[str, Any], prefix: str = "",
                  sep: str = "/") -> Iterator[tuple[str, float]]:
    """``(key path, value)`` of every finite number in a nested mapping (bools are skipped)."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from numeric_items(value, f"{path}{sep}", sep)
        elif isinstance(value, int | float) and not isinstance(value, bool) \
                and math.isfinite(value):
            yield path, float(value)


# ----------------------------------------------------------------------------------------------
# MLflow


class MlflowTracker(Tracker):
    """MLflow runs in a local store (``sqlite:///`` or ``file:``), written with ``MlflowClient``.

    The fold run is a child of the run directory's parent run (tag ``mlflow.parentRunId``), which
    the first fold to start creates, found again by its ``hawkeye.run_key`` tag.
    """

    name = "mlflow"

    def __init__(self, tracking_uri: str, experiment: str, artifact_root: str) -> None:
        self.tracking_uri, self.experiment, self.artifact_root = (tracking_uri, experiment,
                                                                  artifact_root)
        self._client: Any = None
        self._run_id: str | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any], cfg: DictConfig) -> MlflowTracker:
        runs = Path(cfg.paths.runs).resolve()
        return cls(tracking_uri=str(section["tracking_uri"] or f"sqlite:///{runs}/mlflow.db"),
                   experiment=str(section["experiment"]),
                   artifact_root=str(Path(section["artifact_root"] or runs / "mlflow-artifacts")
                                     .resolve()))

    @property
    def settings(self) -> dict[str, Any]:
        return {"tracking_uri": self.tracking_uri, "experiment": self.experiment,
                "artifact_root": self.artifact_root}

    # -- fold

    def open_fold(self, fold: FoldInfo, state: Mapping[str, Any]) -> dict[str, Any]:
        client = self._connect()
        with self._lock():
            experiment_id = self._experiment_id(client)
            parent = self._parent_run(client, experiment_id, fold.run_dir)
        run_id = state.get("run_id")
        if run_id and self._exists(client, run_id):
            client.update_run(run_id, status="RUNNING")
            history = client.get_metric_history(run_id, "train_loss")
            logged = max((m.step for m in history), default=0)
        else:
            run = client.create_run(experiment_id, run_name=f"{fold.model}/fold_{fold.fold}",
                                    tags={**fold.tags, "hawkeye.role": "fold",
                                          "mlflow.parentRunId": parent})
            run_id, logged = run.info.run_id, 0
            self._log_batch(client, run_id, params=fold.params)
        self._run_id = run_id
        return {"run_id": run_id, "experiment_id": experiment_id, "parent_run_id": parent,
                "logged_through": int(logged)}

    def log_epochs(self, rows: Sequence[Mapping[str, Any]]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(key, value, _now_ms(), int(row["epoch"]))
                   for row in rows for key, value in numeric_items(row) if key != "epoch"]
        self._log_batch(self._client, self._run_id, metrics=metrics)

    def finish_fold(self, metrics: Mapping[str, Any], fold_dir: Path) -> None:
        from mlflow.entities import Metric

        final = [*numeric_items({"cv": metrics.get("cv", {}), "test": metrics.get("test", {})}),
                 *((k, float(metrics[k])) for k in ("epochs_run", "best_epoch", "train_seconds",
                                                    "n_params", "onnx_mb")
                   if isinstance(metrics.get(k), int | float))]
        client, run_id = self._client, self._run_id
        self._log_batch(client, run_id, metrics=[Metric(k, v, _now_ms(), 0) for k, v in final])
        client.set_tag(run_id, "hawkeye.best_checkpoint", str((fold_dir / "best.pt").resolve()))
        for name in FOLD_ARTIFACTS:
            if (fold_dir / name).is_file():
                client.log_artifact(run_id, str(fold_dir / name))
        client.set_terminated(run_id, "FINISHED")

    def fail_fold(self) -> None:
        self._client.set_terminated(self._run_id, "FAILED")

    # -- collector

    def log_run(self, record: RunRecord) -> None:
        client = self._connect()
        with self._lock():
            experiment_id = self._experiment_id(client)
            parent = self._parent_run(client, experiment_id, record.run_dir)
        client.update_run(parent, status="RUNNING")
        metrics = []
        for row in record.rows:
            label = str(row.get("label") or row.get("model"))
            metrics += [(f"{label}/{k}", v) for k, v in numeric_items(
                {k: row.get(k) for k in ("cv", "test", "folds_ok", "rank", "vs_baseline")
                 if isinstance(row.get(k), Mapping | int | float)})]
            # a tag, not a param: params are immutable and a re-collect may change the status
            client.set_tag(parent, _metric_key(f"{label}/status"),
                           str(row.get("status", ""))[:_PARAM_CHARS])
        from mlflow.entities import Metric

        self._log_batch(client, parent, metrics=[Metric(_metric_key(k), v, _now_ms(), 0)
                                                 for k, v in metrics])
        for path in record.artifacts:
            client.log_artifact(parent, str(path),
                                artifact_path="figures" if path.suffix == ".png" else None)
        # a fold that points at another parent (this one was deleted and made anew): adopt it
        for state in record.fold_states:
            if state.get("run_id") and state.get("parent_run_id") != parent \
                    and self._exists(client, state["run_id"]):
                client.set_tag(state["run_id"], "mlflow.parentRunId", parent)
        client.set_terminated(parent, "FINISHED")

    # -- helpers

    def _connect(self) -> Any:
        # No telemetry, no network: MLflow >= 3.2 reports usage unless told not to.
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        if self.tracking_uri.startswith("file:"):  # chosen explicitly: MLflow 3 asks to opt in
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        # A tracking server that is down must cost seconds, not MLflow's minutes of retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        from mlflow.tracking import MlflowClient

        with self._lock():  # the first client of a new SQLite store creates its tables
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
            self._client.search_experiments(max_results=1)
        return self._client

    def _lock(self) -> contextlib.AbstractContextManager:
        store = _local_store_path(self.tracking_uri)
        # jobs that start together create one store, one experiment and one parent run
        return store_lock(store) if store else contextlib.nullcontext()

    def _experiment_id(self, client: Any) -> str:
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return str(found.experiment_id)
        return str(client.create_experiment(
            self.experiment, artifact_location=f"{self.artifact_root}/{self.experiment}"))

    @staticmethod
    def _parent_run(client: Any, experiment_id: str, run_dir: Path) -> str:
        key = run_key(run_dir)
        found = client.search_runs([experiment_id], max_results=1,
                                   filter_string=f"tags.`hawkeye.run_key` = '{key}' and "
                                                 "tags.`hawkeye.role` = 'run'")
        if found:
            return str(found[0].info.run_id)
        return str(client.create_run(experiment_id, run_name=Path(run_dir).name, tags={
            "hawkeye.run_key": key, "hawkeye.role": "run",
            "hawkeye.run_dir": str(run_dir)}).info.run_id)

    @staticmethod
    def _exists(client: Any, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            client.get_run(run_id)
        except MlflowException:
            return False
        return True

    @staticmethod
    def _log_batch(client: Any, run_id: str, metrics: Sequence[Any] = (),
                   params: Mapping[str, str] | None = None) -> None:
        from mlflow.entities import Param

        # MLflow takes at most 1000 metrics and 100 params per batch
        for start in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=list(metrics[start:start + 1000]))
        items = [Param(k, v) for k, v in (params or {}).items()]
        for start in range(0, len(items), 100):
            client.log_batch(run_id, params=items[start:start + 100])


def _local_store_path(uri: str) -> str | None:
    """The file or folder of a ``sqlite:///`` or ``file:`` store; None for a server."""
    for scheme in ("sqlite:///", "file://", "file:"):
        if uri.startswith(scheme):
            return uri[len(scheme):]
    return None


def _metric_key(key: str) -> str:
    """MLflow keys allow letters, digits, ``_ - . / :`` and spaces; labels may hold others."""
    return "".join(c if c.isalnum() or c in "_-./: " else "_" for c in key)


def _now_ms() -> int:
    return int(time.time() * 1000)


# ----------------------------------------------------------------------------------------------
# TensorBoard


class TensorBoardTracker(Tracker):
    """Event files: ``<log_dir>/<model>/fold_<k>`` per fold, ``<log_dir>/summary/<row>`` from the
    collector. A reopened fold writer purges events from the first unlogged epoch on (TensorBoard's
    ``purge_step``), so epochs written by a killed job before its checkpoint are not shown twice."""

    name = "tensorboard"

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self._writer: Any = None
        self._last_epoch = 0

    @classmethod
    def from_config(cls, section: Mapping[str, Any], cfg: DictConfig) -> TensorBoardTracker:
        default = Path(cfg.run_dir) / "tensorboard"
        return cls(log_dir=str(Path(section["log_dir"] or default).resolve()))

    @property
    def settings(self) -> dict[str, Any]:
        return {"log_dir": self.log_dir}

    def open_fold(self, fold: FoldInfo, state: Mapping[str, Any]) -> dict[str, Any]:
        from torch.utils.tensorboard import SummaryWriter

        logged = int(state.get("logged_through", 0))
        self._writer = SummaryWriter(str(Path(self.log_dir) / fold.model / f"fold_{fold.fold}"),
                                     purge_step=logged + 1 if state else None)
        if not state:
            self._writer.add_text("tags", _markdown_table(fold.tags), 0)
            self._writer.add_text("config", _markdown_table(fold.params), 0)
        self._last_epoch = logged
        return {"logged_through": logged}

    def log_epochs(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            for key, value in numeric_items(row):
                if key != "epoch":
                    self._writer.add_scalar(key, value, int(row["epoch"]))
            self._last_epoch = int(row["epoch"])
        self._writer.flush()

    def finish_fold(self, metrics: Mapping[str, Any], fold_dir: Path) -> None:
        final = {"cv": metrics.get("cv", {}), "test": metrics.get("test", {})}
        for key, value in numeric_items(final):
            self._writer.add_scalar(key, value, self._last_epoch)
        files = {name: str(fold_dir / name) for name in (*FOLD_ARTIFACTS, "best.pt")
                 if (fold_dir / name).is_file()}
        self._writer.add_text("artifacts", _markdown_table(files), self._last_epoch)
        self._writer.close()

    def fail_fold(self) -> None:
        self._writer.close()

    def log_run(self, record: RunRecord) -> None:
        from torch.utils.tensorboard import SummaryWriter

        for row in record.rows:
            label = str(row.get("label") or row.get("model")).replace("/", "_")
            folder = Path(self.log_dir) / "summary" / label
            shutil.rmtree(folder, ignore_errors=True)  # a re-collect replaces the last summary
            with contextlib.closing(SummaryWriter(str(folder))) as writer:
                for key, value in numeric_items({k: row.get(k) for k in ("cv", "test")
                                                 if isinstance(row.get(k), Mapping)}):
                    writer.add_scalar(f"summary/{key}", value, 0)


def _markdown_table(items: Mapping[str, Any]) -> str:
    return "| key | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in items.items())


# ----------------------------------------------------------------------------------------------
# Registry and the collector's call

# name -> tracker class; ``csv`` is the fold's own files, written whatever is chosen (no object).
TRACKERS: dict[str, type[Tracker] | None] = {
    "csv": None, MlflowTracker.name: MlflowTracker, TensorBoardTracker.name: TensorBoardTracker,
}


def build_tracker(name: str, cfg: DictConfig) -> Tracker | None:
    """The tracker ``logger.<name>`` configures (None for ``csv``)."""
    klass = tracker_class(name)
    return klass.from_config(cfg.logger[name], cfg) if klass is not None else None


def tracker_class(name: str) -> type[Tracker] | None:
    """The class of ``logger.<name>`` (None for ``csv``); a clear error for an unknown name."""
    if name not in TRACKERS:
        raise ValueError(f"logger={name} is not a tracker; choose from {sorted(TRACKERS)} "
                         "(conf/logger/)")
    return TRACKERS[name]


def track_collected(root: Path, runs: Sequence[Path], rows: Sequence[Mapping[str, Any]],
                    baselines: Sequence[Mapping[str, Any]] = ()) -> None:
    """After the report: each tracker the folds used gets one parent run per run directory with
    the run's summary rows and ``root``'s summary files and figures. Never raises: a tracker that
    fails is reported once and skipped."""
    root = Path(root).resolve()
    artifacts = [p for pattern in (*SUMMARY_ARTIFACTS, "figures/*.png")
                 for p in sorted(root.glob(pattern)) if p.is_file()]
    failed: set[str] = set()
    for run in runs:
        run = Path(run).resolve()
        point = run.relative_to(root).as_posix() if run != root else "."
        mine = [dict(r) for r in (*rows, *baselines) if r.get("run", ".") == point]
        for (name, settings), states in _fold_states(run).items():
            if name in failed:
                continue
            record = RunRecord(run, mine, artifacts, states)
            try:
                klass = tracker_class(name)
                if klass is None:
                    raise ValueError(f"{STATE_FILE} names {name!r}, which logs no runs")
                klass(**json.loads(settings)).log_run(record)
            except Exception as error:  # the summary is written; a tracker must not undo that
                log.warning("tracker %s: logging the summary of %s failed (%s: %s); the summary "
                            "files are complete", name, run, type(error).__name__, error)
                failed.add(name)


def _fold_states(run_dir: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(tracker name, its settings as JSON) -> the tracker.json entries of the run's folds."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in sorted(run_dir.glob(f"*/fold_[0-9]*/{STATE_FILE}")):
        for name, entry in read_state(path.parent).items():
            if isinstance(entry, dict) and isinstance(entry.get("settings"), dict):
                key = (name, json.dumps(entry["settings"], sort_keys=True))
                grouped.setdefault(key, []).append(entry)
    return grouped
