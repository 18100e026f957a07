"""One training job: one (model, fold) of the cross-validation, as one Slurm array task runs it.

Read top to bottom: :func:`train` loads the fold's data (:mod:`hawkeye.fold_data`), hands it to
the model family's fit (:mod:`hawkeye.families`: a sequence network, the LSTM autoencoder, the
tree ensembles or MiniRocket), and writes the fold's outputs. The network families share one plain
epoch loop (:func:`hawkeye.loop.fit_network`), which checkpoints every epoch to ``last.pt``
(:mod:`hawkeye.checkpoint`) and picks up from it when the same job starts again, so a preempted
and requeued Slurm task (:class:`TrainTask`) finishes with the same numbers as an uninterrupted one.

The families and the loop live in their own modules because export and predict ask the families
too, and this job imports the export: keeping them here would make train <-> export a circle.

Outputs in ``<run_dir>/<model.name>/fold_<k>/`` (docs/architecture.md, "Fold outputs"):
``best.pt``, ``last.pt``, ``predictions.csv``, ``history.csv``, ``config.yaml`` and, written last
and only on success, ``metrics.json``. A fold whose ``metrics.json`` says ``"ok"`` is finished:
calling the job again returns the stored metrics; one that says ``"exporting"`` (killed during
its ONNX export) is exported again.

Command line: ``python -m hawkeye.train model=transformer fold=2 run_dir=runs/try train.epochs=5``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, cast

import submitit
from omegaconf import DictConfig, OmegaConf

from hawkeye.cli import TRAIN_HELP, hydra_app
from hawkeye.config import identity_hash
from hawkeye.export import EXPORTING, export_after_training
from hawkeye.families import family_of
from hawkeye.faults import die_with_parent
from hawkeye.fold_data import FoldData, load_fold_data
from hawkeye.io import (
    PREDICTION_COLUMNS,
    atomic_path,
    git_commit,
    write_json_atomic,
    write_text_atomic,
)
from hawkeye.loop import resolve_device, set_num_threads
from hawkeye.scoring_task import task_identity
from hawkeye.tracking import FoldTracking

log = logging.getLogger("hawkeye.train")

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "val_mae", "lr", "seconds")


# ----------------------------------------------------------------------------------------------
# The job


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train and evaluate one (model, fold); return the metrics dict also written to metrics.json.

    Reads ``cfg.run_dir``, ``cfg.fold``, ``cfg.seed`` and the ``model``, ``head``, ``train``,
    ``cv``, ``task`` and ``paths.store`` sections. Raises (after writing nothing final) when
    anything fails, so the launcher and the collector can report the fold.
    """
    if cfg.run_dir is None:
        raise ValueError("run_dir is not set: pass run_dir=<folder> (launch sets it for you)")
    cfg = with_model_overrides(cfg)
    job_hash = identity_hash(cfg)
    out = fold_dir(cfg)
    if (out / "metrics.json").exists():
        metrics = json.loads((out / "metrics.json").read_text())
        if metrics.get("status") == EXPORTING:  # killed during its export: finish that part
            log.info("%s was trained but not exported: exporting", out)
            return _export_and_track(out, cfg, FoldTracking.open(cfg, out, job_hash))
        log.info("%s is finished (metrics.json present): returning its metrics", out)
        return metrics

    threads = set_num_threads(cfg.train.num_threads,  # null: from the CPUs the job has
                              OmegaConf.select(cfg, "launcher.parameters.cpus_per_task"),
                              OmegaConf.select(cfg, "launcher.max_parallel"))
    device = resolve_device(cfg.train.device)
    log.info("model=%s fold=%s device=%s threads=%d -> %s", cfg.model.name, cfg.fold, device,
             threads, out)
    family = family_of(cfg.model.family, cfg.model.name)
    started = time.perf_counter()
    data = load_fold_data(cfg, keep_anomalous=family.learns_anomalies,
                          needs_sequences=family.needs_sequences)
    meta = checkpoint_meta(cfg, data, job_hash)
    tracking = FoldTracking.open(cfg, out, job_hash)  # logger=...: never raises for a tracker
    with tracking.failing_on_error():
        result = family.fit(cfg, data, device, out, meta, tracking.epoch_done)
    # A fold is finished when everything it promises exists: with an export due, its metrics say
    # "exporting" until model.onnx (or the export's error) is recorded.
    exporting = bool(cfg.export.onnx) and family.exported
    metrics = {
        "model": cfg.model.name, "fold": int(cfg.fold), "status": EXPORTING if exporting else "ok",
        "family": cfg.model.family,
        "head": cfg.head.name if family.uses_head else None,
        "target": str(cfg.task.target),
        "cv": result.metrics["cv"], "test": result.metrics.get("test", {}),
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
        "train_seconds": round(time.perf_counter() - started, 3), "device": str(device),
        "n_params": result.n_params, "batch_size": result.batch_size,
        "n_train": len(data.train), "n_val": len(data.val), "n_cv": len(data.cv),
        "n_test": len(data.test), "n_levels": data.n_levels, "seed": int(cfg.seed),
        "config_hash": job_hash, "git_commit": git_commit(), **result.extra,
    }
    write_fold_outputs(out, cfg, metrics, result.predictions, result.history)
    log.info("done %s fold %s: cv %s", cfg.model.name, cfg.fold, _headline(metrics["cv"]))
    return _export_and_track(out, cfg, tracking, result.history)


def _export_and_track(out: Path, cfg: DictConfig, tracking: FoldTracking,
                      history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """model.onnx beside best.pt (export.onnx; a failed export is recorded, never fails the
    fold), then the trackers get the final metrics and artifacts, model.onnx included."""
    metrics = export_after_training(out, cfg)
    tracking.fold_done(metrics, history)
    return metrics


def with_model_overrides(cfg: DictConfig) -> DictConfig:
    """``cfg`` with ``train.model_overrides[<model.name>]`` merged into ``model`` (a copy).

    An experiment that trains several models sizes each one there (``conf/experiment/demo.yaml``);
    the merged values are what the fold's config.yaml and checkpoints record.
    """
    extra = (cfg.train.get("model_overrides") or {}).get(cfg.model.name)
    if not extra:
        return cfg
    unknown = sorted(set(extra) - set(cfg.model))
    if unknown:
        raise ValueError(f"train.model_overrides.{cfg.model.name} sets {unknown}, which "
                         f"conf/model/{cfg.model.name}.yaml does not have "
                         f"(keys: {sorted(cfg.model)})")
    # merged at the root, so the model's interpolations (e.g. ${head.output_layer}) still resolve
    return cast(DictConfig, OmegaConf.merge(cfg, {"model": extra}))


def fold_dir(cfg: DictConfig) -> Path:
    """``<run_dir>/<model.name>/fold_<k>``: where one (model, fold) writes everything."""
    return Path(cfg.run_dir) / str(cfg.model.name) / f"fold_{int(cfg.fold)}"


class TrainTask(submitit.helpers.Checkpointable):
    """The callable a Slurm array task runs: ``TrainTask()(cfg)`` trains one (model, fold).

    On preemption or time-out submitit calls :meth:`checkpoint`; the resubmitted task calls
    :func:`train` again, which resumes from the fold's ``last.pt`` (written every epoch). ``cfg``
    may be a ``DictConfig`` or a plain dict (``OmegaConf.to_container``), which pickles anywhere.
    """

    def __call__(self, cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        if os.environ.get("SUBMITIT_EXECUTOR") == "local":
            # launcher=local prints the pid of submitit's controller as the job id; this trainer
            # is its child and must die with it (kill -9 <job id>), not train on unseen
            die_with_parent()
        return train(cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg))

    def checkpoint(self, cfg: DictConfig | dict[str, Any]) -> submitit.helpers.DelayedSubmission:
        """Requeue the same task with the same config; the state to resume is ``last.pt``."""
        return submitit.helpers.DelayedSubmission(self, cfg)


@hydra_app(TRAIN_HELP)
def main(cfg: DictConfig) -> None:
    """``python -m hawkeye.train model=... fold=... run_dir=...``"""
    train(cfg)


# ----------------------------------------------------------------------------------------------
# Outputs


def checkpoint_meta(cfg: DictConfig, data: FoldData, identity_hash: str) -> dict[str, Any]:
    """What a checkpoint carries besides weights, so export/predict can rebuild and feed it."""
    uses_head = family_of(cfg.model.family, cfg.model.name).uses_head
    return {
        "config_hash": identity_hash,
        "model_name": str(cfg.model.name), "family": str(cfg.model.family),
        "model_cfg": OmegaConf.to_container(cfg.model, resolve=True),
        "head_cfg": OmegaConf.to_container(cfg.head, resolve=True) if uses_head else None,
        "n_levels": data.n_levels, "input_features": str(cfg.task.input_features),
        "input_names": data.input_names,
        "sample_rate_hz": data.time_base.sample_rate_hz,
        "max_seconds": data.time_base.max_seconds,
        "task": task_identity(cfg.task),
        "normalization": {"mean": data.normalization.mean, "std": data.normalization.std},
    }


def write_fold_outputs(out: Path, cfg: DictConfig, metrics: dict[str, Any],
                       predictions: list[dict[str, Any]], history: list[dict[str, float]]) -> None:
    """predictions.csv, history.csv, config.yaml, then metrics.json (the "finished" marker)."""
    _write_csv(out / "predictions.csv", _with_extra(PREDICTION_COLUMNS, predictions), predictions)
    _write_csv(out / "history.csv", _with_extra(HISTORY_COLUMNS, history), history)
    write_text_atomic(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    write_json_atomic(out / "metrics.json", metrics)


def _with_extra(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """``columns`` followed by the other keys of ``rows`` (class probabilities ``p<k>``, every
    ``val_<metric>`` of the task), in first-seen order."""
    return tuple(dict.fromkeys([*columns, *(k for row in rows for k in row)]))


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        # NaN (a value the family does not compute, e.g. lstm_ae's val_mae) -> empty cell
        writer.writerows({k: "" if isinstance(v, float) and math.isnan(v) else v
                          for k, v in row.items()} for row in rows)


def _headline(split_metrics: dict[str, Any]) -> str:
    keys = ("mae", "exact", "pearson", "f1", "roc_auc")
    return "  ".join(f"{k} {split_metrics[k]:.3f}" for k in keys
                     if isinstance(split_metrics.get(k), float))


if __name__ == "__main__":
    main()
