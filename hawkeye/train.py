"""One training job: one (model, fold) of the cross-validation, as one Slurm array task runs it.

Read top to bottom: :func:`train` loads the fold's data, hands it to the model family's fit
function (a sequence network, the LSTM autoencoder or the boosted trees), and writes the fold's
outputs. The network families share one plain epoch loop, :func:`fit_network`, which checkpoints
every epoch to ``last.pt`` and picks up from it when the same job starts again, so a preempted
and requeued Slurm task (:class:`TrainTask`) finishes with the same numbers as an uninterrupted one.

Outputs in ``<run_dir>/<model.name>/fold_<k>/`` (docs/architecture.md, "Fold outputs"):
``best.pt``, ``last.pt``, ``predictions.csv``, ``history.csv``, ``config.yaml`` and, written last
and only on success, ``metrics.json``. A fold with ``metrics.json`` is finished: calling the job
again returns the stored metrics.

Command line: ``python -m hawkeye.train model=transformer fold=2 run_dir=runs/try train.epochs=5``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast

import hydra
import numpy as np
import submitit
import torch
from omegaconf import DictConfig, OmegaConf
from threadpoolctl import threadpool_limits
from torch import nn

from hawkeye.config import CONF_DIR, config_hash
from hawkeye.data import (
    Normalization,
    SequenceSet,
    anomaly_flags,
    balanced_sample_weights,
    batch_indices,
    channel_names,
    class_weights,
    concat_sets,
    fit_normalization,
    n_score_levels,
    sequence_set,
    trim_batch,
)
from hawkeye.export import export_after_training
from hawkeye.folds import check_disjoint, ensure_folds, validation_split
from hawkeye.io import atomic_path, git_commit, write_json_atomic, write_text_atomic
from hawkeye.launch import identity
from hawkeye.metrics import (
    anomaly_metrics,
    f1_optimal_threshold,
    regression_metrics,
    score_metrics,
    spearman_rho,
)
from hawkeye.models import build_model, count_parameters
from hawkeye.models.heads import Head, build_head
from hawkeye.store import load_store

log = logging.getLogger("hawkeye.train")
T = TypeVar("T")

PREDICTION_COLUMNS = ("split", "id", "subject", "true", "pred", "raw")
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
    identity_hash = job_hash(cfg)
    out = fold_dir(cfg)
    if (out / "metrics.json").exists():
        log.info("%s is finished (metrics.json present): returning its metrics", out)
        return json.loads((out / "metrics.json").read_text())

    threads = set_num_threads(cfg.train.num_threads)
    device = resolve_device(cfg.train.device)
    log.info("model=%s fold=%s device=%s threads=%d -> %s", cfg.model.name, cfg.fold, device,
             threads, out)
    if cfg.model.family not in FAMILIES:
        raise ValueError(f"model {cfg.model.name!r} has family {cfg.model.family!r}; this loop "
                         f"trains {sorted(FAMILIES)}")
    started = time.perf_counter()
    data = load_fold_data(cfg)
    meta = checkpoint_meta(cfg, data, identity_hash)
    result = FAMILIES[cfg.model.family](cfg, data, device, out, meta)
    metrics = {
        "model": cfg.model.name, "fold": int(cfg.fold), "status": "ok",
        "family": cfg.model.family,
        "head": cfg.head.name if cfg.model.family != "autoencoder" else None,
        "target": str(cfg.task.target),
        "cv": result.metrics["cv"], "test": result.metrics.get("test", {}),
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
        "train_seconds": round(time.perf_counter() - started, 3), "device": str(device),
        "n_params": result.n_params, "batch_size": result.batch_size,
        "n_train": len(data.train), "n_val": len(data.val), "n_cv": len(data.cv),
        "n_test": len(data.test), "n_levels": data.n_levels, "seed": int(cfg.seed),
        "config_hash": identity_hash, "git_commit": git_commit(), **result.extra,
    }
    write_fold_outputs(out, cfg, metrics, result.predictions, result.history)
    log.info("done %s fold %s: cv %s", cfg.model.name, cfg.fold, _headline(metrics["cv"]))
    # model.onnx beside best.pt (export.onnx); a failed export is recorded, never fails the fold
    return export_after_training(out, cfg)


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


def job_hash(cfg: DictConfig) -> str:
    """The identity of what a job computes: its config minus where and how it runs (any fold)."""
    return config_hash(identity(cfg))


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
        return train(cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg))

    def checkpoint(self, cfg: DictConfig | dict[str, Any]) -> submitit.helpers.DelayedSubmission:
        """Requeue the same task with the same config; the state to resume is ``last.pt``."""
        return submitit.helpers.DelayedSubmission(self, cfg)


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """``python -m hawkeye.train model=... fold=... run_dir=...``"""
    train(cfg)


# ----------------------------------------------------------------------------------------------
# Data of one fold


@dataclass
class FoldData:
    """The four parts of one fold, normalised with statistics of the training part only."""

    train: SequenceSet        # optimised on
    val: SequenceSet          # early-stopping slice, carved from the training side by subject
    cv: SequenceSet           # this fold's held-out part (scored as "cv")
    test: SequenceSet         # the official held-out test split (scored as "test"; may be empty)
    n_levels: int             # score levels 0..n_levels-1, from the data
    normalization: Normalization
    input_names: list[str]
    summary_names: list[str]
    continuous: bool = False  # supervised target is a real value (task.target), not the score

    def labels(self, part: SequenceSet) -> torch.Tensor:
        """What supervised models learn for ``part``: its real target, or its integer score."""
        return part.target if self.continuous else part.y


def load_fold_data(cfg: DictConfig) -> FoldData:
    """Load the store, assign folds (once per run dir), split, pad and normalise one fold."""
    task = cfg.task
    if not 0 <= cfg.fold < cfg.cv.n_folds:
        raise ValueError(f"fold={cfg.fold} is outside 0..{cfg.cv.n_folds - 1} (cv.n_folds)")
    if task.test_split is not None and task.test_split in task.train_splits:
        raise ValueError(f"task.test_split={task.test_split!r} is also in task.train_splits="
                         f"{list(task.train_splits)}: the test split must stay held out")
    store = load_store(cfg.paths.store)
    if store.summary_only and cfg.model.family != "tabular":
        raise ValueError(f"{cfg.paths.store} is a summary-only store (per-video features imported "
                         f"from a table, no per-frame series): model={cfg.model.name} (family "
                         f"{cfg.model.family}) needs sequences; train a tabular model on it "
                         f"(model=gbm, gbm_tuned or forest)")
    splits = np.asarray(store.splits).astype(str)
    train_splits = [s for s in task.train_splits if s in splits]
    if not train_splits:
        raise ValueError(f"{cfg.paths.store} has none of task.train_splits="
                         f"{list(task.train_splits)} (its splits: {sorted(set(splits))})")
    is_cv, is_test = np.isin(splits, train_splits), splits == str(task.test_split)
    if task.test_split is not None and not is_test.any():
        log.warning("%s has no %r split: only the CV folds are scored", cfg.paths.store,
                    task.test_split)
    check_disjoint(store.subjects[is_cv], store.subjects[is_test])
    log.info("cross-validating on %s (%d videos), testing on %r (%d videos)", train_splits,
             int(is_cv.sum()), task.test_split, int(is_test.sum()))

    everything = sequence_set(store, task.input_features, task.max_len, task.frame_stride,
                              target=str(task.target),
                              anomalous=anomaly_flags(store, task.anomaly_label,
                                                      task.anomaly_min_score))
    cv_side, test = everything.take(is_cv), everything.take(is_test)
    folds = ensure_folds(cfg.run_dir, cv_side.ids, cv_side.subjects, cv_side.y.numpy(),
                         cfg.cv.n_folds, cfg.cv.seed)
    training_side, held_out = cv_side.take(folds != cfg.fold), cv_side.take(folds == cfg.fold)
    is_val = validation_split(training_side.subjects, training_side.y.numpy(),
                              cfg.cv.val_fraction, cfg.cv.seed + int(cfg.fold))
    train_part, val_part = training_side.take(~is_val), training_side.take(is_val)
    if task.target_windows not in ("all", "normal"):
        raise ValueError(f"task.target_windows must be all or normal, got "
                         f"{task.target_windows!r}")
    if task.target_windows == "normal" and cfg.model.family != "autoencoder":
        # A supervised model learns and is scored where the sensors work; finding the anomalous
        # windows is the autoencoder's job. After the fold split, so every model shares folds.
        train_part, val_part, held_out, test = (part.take(~part.anomalous) for part in
                                                (train_part, val_part, held_out, test))

    norm = fit_normalization(train_part.x, train_part.mask)
    return FoldData(train=train_part.normalized(norm), val=val_part.normalized(norm),
                    cv=held_out.normalized(norm), test=test.normalized(norm),
                    n_levels=n_score_levels(store.scores[is_cv | is_test]), normalization=norm,
                    input_names=channel_names(store, task.input_features),
                    summary_names=[str(n) for n in store.summary_names],
                    continuous=task.target != "score")


# ----------------------------------------------------------------------------------------------
# Model families: each fits on a fold and returns its scored predictions


@dataclass
class FamilyResult:
    """What a family's fit returns to :func:`train`."""

    metrics: dict[str, dict[str, Any]]   # {"cv": {...}, "test": {...}}
    predictions: list[dict[str, Any]]    # rows of predictions.csv
    history: list[dict[str, float]]      # rows of history.csv
    epochs_run: int
    best_epoch: int
    n_params: int
    batch_size: int | None
    extra: dict[str, Any] = field(default_factory=dict)


def fit_sequence(cfg: DictConfig, data: FoldData, device: torch.device, out: Path,
                 meta: dict[str, Any]) -> FamilyResult:
    """A supervised sequence network: head loss on the training part, scored on cv and test.

    A real-valued ``task.target`` takes the ``continuous`` head, standardised with the training
    part's mean and standard deviation (recorded in the checkpoint's ``head_cfg``).
    """
    head_cfg = fitted_head_config(cfg, data)
    head = build_head(head_cfg, data.n_levels)
    meta = {**meta, "head_cfg": head_cfg}
    _seed_everything(cfg.seed)
    model = build_model(cfg.model, len(data.input_names), head.out_dim(data.n_levels)).to(device)
    weights = (class_weights(data.train.y, data.n_levels).to(device)
               if cfg.train.balance == "weights" else None)

    def loss(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return head.loss(outputs, y, weights)

    def validate(outputs: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return {"val_loss": float(loss(outputs, y)),
                "val_mae": float((head.predict(outputs) - y).abs().float().mean())}

    run = fit_network(cfg, data, model, loss, validate, device, out,
                      monitor=cfg.train.monitor, meta=meta)
    metrics, predictions = {}, []
    for split, part in _scored_parts(data):
        outputs = predict_outputs(model, part, run.eval_batch_size, device, cfg.train.amp)
        metrics[split], rows = _score_outputs(head, split, part, outputs.cpu(), data)
        predictions += rows
    return run.result(metrics, predictions, model, extra=_target_stats(head_cfg))


def fitted_head_config(cfg: DictConfig, data: FoldData) -> dict[str, Any]:
    """The head's config as a plain dict; for a real-valued target, with the training part's
    mean and standard deviation filled in. Raises when target and head do not go together."""
    head_cfg = OmegaConf.to_container(cfg.head, resolve=True)
    if data.continuous != (head_cfg.get("name") == "continuous"):
        raise ValueError(f"task.target={cfg.task.target!r} needs "
                         f"{'head=continuous' if data.continuous else 'a score head'} "
                         f"(regression | classification | ordinal), got "
                         f"head={head_cfg.get('name')}")
    if data.continuous:
        values = data.train.target.double()
        head_cfg.update(target_mean=float(values.mean()),
                        target_std=float(values.std(unbiased=False).clamp(min=1e-8)))
    return head_cfg


def _target_stats(head_cfg: dict[str, Any]) -> dict[str, float]:
    return {k: head_cfg[k] for k in ("target_mean", "target_std") if k in head_cfg}


def fit_autoencoder(cfg: DictConfig, data: FoldData, device: torch.device, out: Path,
                    meta: dict[str, Any]) -> FamilyResult:
    """The LSTM autoencoder: learn to reconstruct normal videos, flag the badly reconstructed.

    Anomalous = the store target ``task.anomaly_label`` when set (1 = anomaly), else score >=
    ``task.anomaly_min_score`` (:func:`hawkeye.data.anomaly_flags`). The network trains on the
    normal videos of the training part and early-stops on those of the validation slice. Then
    :func:`anomaly_thresholds` lists the decision thresholds side by side: percentiles of the
    training error (``task.anomaly_percentiles`` and ``model.threshold_percentile``) and the
    F1-optimal threshold on validation data (the training side's anomalous videos and the
    validation slice's normal ones, weighted back to the training side's anomaly rate);
    ``task.anomaly_threshold`` picks the one behind the
    fold's ``cv``/``test`` metrics and the model's ``threshold`` buffer (so the ONNX export
    decides the same). Scored with :func:`hawkeye.metrics.anomaly_metrics`, plus how well the error
    ranks the score (Spearman rho). In predictions.csv ``true`` is the score (or, with an
    ``anomaly_label``, the 0/1 label), ``pred`` the decision (1 = flagged) and ``raw`` the error.
    """
    normal_train = data.train.take(~data.train.anomalous)
    normal_val = data.val.take(~data.val.anomalous)
    if len(normal_train) == 0 or len(normal_val) == 0:
        raise ValueError(f"fold {cfg.fold}: no normal videos in the training or validation part "
                         "to fit the autoencoder on (task.anomaly_label / anomaly_min_score)")
    n_features = len(data.input_names)
    _seed_everything(cfg.seed)
    model = build_model(cfg.model, n_features, n_features).to(device)

    def loss(errors: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return errors.mean()

    def validate(errors: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return {"val_loss": float(errors.mean()), "val_mae": float("nan")}

    normal_only = replace(data, train=normal_train, val=normal_val)
    run = fit_network(cfg, normal_only, model, loss, validate, device, out, monitor="val_loss",
                      meta=meta, forward=_reconstruction_error)

    def errors_of(part: SequenceSet) -> np.ndarray:
        return predict_outputs(model, part, run.eval_batch_size, device, cfg.train.amp,
                               forward=_reconstruction_error).cpu().numpy()

    # Validation data to choose a threshold on: every anomalous video of the training side (the
    # network never trains on them) and the validation slice's normal videos. Each normal one
    # stands for the training side's normals it was sampled from, so the F1 maximised is the F1
    # at the training side's anomaly rate, not at the inflated rate of this small set.
    selection = concat_sets([data.val, data.train.take(data.train.anomalous)])
    flags = selection.anomalous.numpy()
    normal_weight = (len(normal_train) + len(normal_val)) / len(normal_val)
    thresholds = anomaly_thresholds(errors_of(normal_train), errors_of(selection), flags, cfg,
                                    np.where(flags, 1.0, normal_weight))
    chosen = choose_threshold(thresholds, cfg)
    threshold = thresholds[chosen]["threshold"]
    model.threshold.fill_(threshold)
    label_is_score = cfg.task.anomaly_label is None
    metrics, predictions = {}, []
    for split, part in _scored_parts(data):
        errors, anomalous, y = errors_of(part), part.anomalous.numpy(), part.y.numpy()
        for entry in thresholds.values():
            entry[split] = anomaly_metrics(anomalous, errors, entry["threshold"])
        metrics[split] = {**thresholds[chosen][split],
                          "spearman_error_score": spearman_rho(y, errors),
                          "anomaly_rate_true": float(np.mean(anomalous))}
        true = y if label_is_score else anomalous.astype(np.int64)
        predictions += _prediction_rows(split, part, true, (errors > threshold).astype(np.int64),
                                        errors)
    save_best(out / "best.pt", model, run.state, meta)  # again, now with the chosen threshold
    return run.result(metrics, predictions, model, extra={
        "threshold": threshold, "threshold_choice": chosen, "thresholds": thresholds,
        "anomaly_min_score": int(cfg.task.anomaly_min_score) if label_is_score else 1,
        "anomaly_label": cfg.task.anomaly_label,
        "n_train_normal": len(normal_train), "n_val_normal": len(normal_val),
        "threshold_selection": {"n_anomalous": int(flags.sum()), "n_normal": int((~flags).sum()),
                                "normal_weight": normal_weight},
        "threshold_percentile": float(cfg.model.threshold_percentile)})


def anomaly_thresholds(train_errors: np.ndarray, selection_errors: np.ndarray,
                       selection_anomalous: np.ndarray, cfg: DictConfig,
                       selection_weights: np.ndarray | None = None) -> dict[str, dict]:
    """The candidate thresholds, side by side: ``{"p95": {"threshold", "validation"}, ...,
    "val_f1": {...}}``. ``p<q>``: the q-th percentile of the normal training errors (the source's
    rule; q from ``task.anomaly_percentiles`` and ``model.threshold_percentile``); ``val_f1``: the
    F1-optimal threshold on the validation errors, each counted ``selection_weights`` times
    (absent when they hold no anomaly). Each entry's ``validation`` holds (unweighted)
    :func:`~hawkeye.metrics.anomaly_metrics` on the validation errors when both classes occur."""
    percentiles = sorted({float(q) for q in cfg.task.anomaly_percentiles}
                         | {float(cfg.model.threshold_percentile)}, reverse=True)
    values = {f"p{q:g}": float(np.percentile(train_errors, q)) for q in percentiles}
    best, _ = f1_optimal_threshold(selection_anomalous, selection_errors, selection_weights)
    if math.isfinite(best):
        values["val_f1"] = best
    table = {}
    for name, value in values.items():
        table[name] = {"threshold": value}
        if 0 < selection_anomalous.sum() < len(selection_anomalous):
            table[name]["validation"] = anomaly_metrics(selection_anomalous, selection_errors,
                                                        value)
    return table


def choose_threshold(thresholds: dict[str, dict], cfg: DictConfig) -> str:
    """The key of the threshold ``task.anomaly_threshold`` asks for: ``percentile`` (the model's
    ``threshold_percentile``) or ``val_f1`` (falls back to the percentile, with a warning, when
    the validation data hold no anomaly)."""
    choice = str(cfg.task.anomaly_threshold)
    percentile = f"p{float(cfg.model.threshold_percentile):g}"
    if choice == "percentile":
        return percentile
    if choice != "val_f1":
        raise ValueError(f"task.anomaly_threshold must be percentile or val_f1, got {choice!r}")
    if "val_f1" not in thresholds:
        log.warning("fold %s: no anomalous video in the validation data, so no F1-optimal "
                    "threshold; using %s", cfg.fold, percentile)
        return percentile
    return "val_f1"


def fit_tabular(cfg: DictConfig, data: FoldData, device: torch.device, out: Path,
                meta: dict[str, Any]) -> FamilyResult:
    """Tree ensembles on the per-video clinical summary features, scored through the head.

    No epochs and no ``.pt`` files: a fit takes seconds, so a requeued task simply fits again, and a
    scikit-learn estimator could only be saved by pickle, which the project never loads. With
    ``train.balance`` weights or sampling, the trees get balanced per-sample weights. The trees
    never early-stop on the validation slice, so they are fitted on the whole training side
    (training part + validation slice); a ``tune`` grid is chosen on inner subject-grouped folds
    of that same side, scored by the MAE of the head's expected score. NaN features (a store
    that keeps missing cells) go to the trees as they are.
    """
    if not data.summary_names:
        raise ValueError(f"{cfg.paths.store} has no summary features: model={cfg.model.name} "
                         "needs them "
                         "(prepare the store with features, or pick a sequence model)")
    started = time.perf_counter()
    head_cfg = fitted_head_config(cfg, data)
    head = build_head(head_cfg, data.n_levels)
    estimator = build_model(cfg.model, len(data.summary_names), head.out_dim(data.n_levels))
    fit_part = concat_sets([data.train, data.val])
    weights = (class_weights(fit_part.y, data.n_levels)[fit_part.y].numpy()
               if cfg.train.balance != "none" else None)
    fit_y = data.labels(fit_part)

    def inner_mae(raw: np.ndarray, y: np.ndarray) -> float:
        return float(np.abs(head.expected(torch.from_numpy(raw)).numpy() - y).mean())

    # scikit-learn's OpenMP would take every core of the node; keep to the job's share
    with threadpool_limits(limits=torch.get_num_threads(), user_api="openmp"):
        estimator.fit(fit_part.summary.numpy(), fit_y.numpy(), sample_weight=weights,
                      groups=fit_part.subjects, score_fn=inner_mae)

    def outputs(part: SequenceSet) -> torch.Tensor:
        return torch.from_numpy(estimator.predict(part.summary.numpy()))

    # no held-out validation loss: the validation slice is part of the fit
    history = [{"epoch": 1, "train_loss": float(head.loss(outputs(fit_part), fit_y)),
                "val_loss": math.nan, "val_mae": math.nan,
                "lr": float(cfg.model.get("learning_rate", math.nan)),
                "seconds": round(time.perf_counter() - started, 3)}]
    metrics, predictions = {}, []
    for split, part in _scored_parts(data):
        metrics[split], rows = _score_outputs(head, split, part, outputs(part), data)
        predictions += rows
    return FamilyResult(metrics, predictions, history, epochs_run=1, best_epoch=1,
                        n_params=count_parameters(estimator), batch_size=None,
                        extra={**_target_stats(head_cfg), "n_fit": len(fit_part),
                               **estimator.fit_report()})


# The model config's `family` key picks the fit function.
FAMILIES: dict[str, Callable[[DictConfig, FoldData, torch.device, Path, dict[str, Any]],
                              FamilyResult]] = {
    "sequence": fit_sequence,
    "autoencoder": fit_autoencoder,
    "tabular": fit_tabular,
}


# ----------------------------------------------------------------------------------------------
# The epoch loop shared by the network families


@dataclass
class TrainState:
    """Everything that changes from epoch to epoch (and goes into ``last.pt``)."""

    epoch: int = 0                      # epochs completed
    best: float = math.inf              # best value of the monitored metric so far
    best_loss: float = math.inf         # validation loss at that epoch (breaks ties of the metric)
    best_epoch: int = 0                 # 1-based epoch of the best value (0 = none yet)
    bad_epochs: int = 0                 # epochs since the last improvement
    batch_size: int = 32                # current batch size (halved on CUDA out-of-memory)
    history: list[dict[str, float]] = field(default_factory=list)
    best_model: dict[str, torch.Tensor] | None = None  # weights of the best epoch


@dataclass
class NetworkRun:
    """The outcome of :func:`fit_network`; the model holds the best weights."""

    state: TrainState
    eval_batch_size: int

    def result(self, metrics: dict, predictions: list, model: nn.Module,
               extra: dict | None = None) -> FamilyResult:
        return FamilyResult(metrics, predictions, self.state.history, self.state.epoch,
                            self.state.best_epoch, count_parameters(model), self.state.batch_size,
                            extra or {})


def fit_network(cfg: DictConfig, data: FoldData, model: nn.Module,
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                validate_fn: Callable[[torch.Tensor, torch.Tensor], dict[str, float]],
                device: torch.device, out: Path, monitor: str, meta: dict[str, Any],
                forward: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
                | None = None) -> NetworkRun:
    """Train ``model`` on ``data.train`` with early stopping on ``data.val``; resume from last.pt.

    ``forward(model, x, mask)`` gives what ``loss_fn(outputs, y)`` and ``validate_fn`` consume
    (default: ``model(x, mask)``). Each epoch ends with ONE checkpoint of the complete state (the
    best epoch's weights included), so a killed job that starts again replays nothing and diverges
    nowhere. At the end the best weights are loaded into ``model`` and written to ``best.pt``.
    """
    tc = cfg.train
    forward = forward or _call_model
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = _lr_scheduler(optimizer, tc.lr_schedule, tc.epochs)
    autocast, scaler = amp_setup(device, tc.amp)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    sample_weights = (balanced_sample_weights(data.train.y, data.n_levels)
                      if tc.balance == "sampling" else None)
    train_set, val_set = data.train.to(device), data.val.to(device)
    train_labels, val_labels = data.labels(train_set), data.labels(val_set)
    state = TrainState(batch_size=int(tc.batch_size))
    last = out / "last.pt"
    if last.exists():
        state = load_checkpoint(last, model, optimizer, scheduler, scaler, generator,
                                expected_hash=meta["config_hash"])
        log.info("resuming from %s after epoch %d (batch size %d)", last, state.epoch,
                 state.batch_size)

    def train_epoch(batch_size: int) -> float:
        model.train()
        total, count = torch.zeros((), device=device), 0
        for index in batch_indices(len(train_set), batch_size, generator,
                                   sample_weights=sample_weights):
            index = index.to(device)
            x, mask = trim_batch(train_set.x[index], train_set.mask[index])
            y = train_labels[index]
            with autocast():
                loss = loss_fn(forward(model, x, mask), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if tc.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            total += loss.detach() * len(index)  # a tensor: no device sync per step
            count += len(index)
        return float(total) / max(count, 1)

    while state.epoch < tc.epochs and state.bad_epochs < tc.patience:
        started = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train_loss, state.batch_size = halve_batch_on_oom(train_epoch, state.batch_size)
        outputs = predict_outputs(model, val_set, _eval_batch(tc, state), device, tc.amp, forward)
        scores = validate_fn(outputs, val_labels)
        scheduler.step()
        state.epoch += 1
        state.history.append({"epoch": state.epoch, "train_loss": train_loss, **scores, "lr": lr,
                              "seconds": round(time.perf_counter() - started, 3)})
        # Lower is better; ties of a coarse metric (MAE of integer scores) go to the lower loss.
        if (scores[monitor], scores["val_loss"]) < (state.best, state.best_loss):
            state.best, state.best_loss = scores[monitor], scores["val_loss"]
            state.best_epoch, state.bad_epochs = state.epoch, 0
            state.best_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            state.bad_epochs += 1
        save_checkpoint(last, model, optimizer, scheduler, scaler, generator, state, meta)
        if state.epoch % tc.log_every == 0 or state.bad_epochs >= tc.patience:
            log.info("epoch %3d  train_loss %.4f  val_loss %.4f  val_mae %.4f  (%.1fs)%s",
                     state.epoch, train_loss, scores["val_loss"], scores["val_mae"],
                     state.history[-1]["seconds"],
                     "  best" if state.best_epoch == state.epoch else "")

    if state.best_model is None:
        raise RuntimeError(f"{out}: no epoch produced a finite {monitor} (train.epochs="
                           f"{tc.epochs}); check the data for NaN and lower train.lr")
    model.load_state_dict(state.best_model)
    save_best(out / "best.pt", model, state, meta)
    return NetworkRun(state=state, eval_batch_size=_eval_batch(tc, state))


@torch.no_grad()
def predict_outputs(model: nn.Module, part: SequenceSet, batch_size: int, device: torch.device,
                    amp: bool = False,
                    forward: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
                    | None = None) -> torch.Tensor:
    """The model's outputs for every video of ``part``, in order, in eval mode, in float32."""
    forward = forward or _call_model
    model.eval()
    autocast, _ = amp_setup(device, amp, quiet=True)
    chunks = []
    for index in batch_indices(len(part), batch_size, shuffle=False):
        x, mask = trim_batch(part.x[index].to(device), part.mask[index].to(device))
        with autocast():
            chunks.append(forward(model, x, mask).float())
    return torch.cat(chunks) if chunks else torch.empty(0)


def _call_model(model: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return model(x, mask)


def _reconstruction_error(model: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return model.reconstruction_error(x, mask)


def _eval_batch(tc: DictConfig, state: TrainState) -> int:
    return int(tc.eval_batch_size or state.batch_size)


# ----------------------------------------------------------------------------------------------
# Device, precision, threads, out-of-memory


def resolve_device(choice: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; ``cpu``/``cuda`` as asked (cuda must exist)."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device=cuda but no CUDA device is visible: use train.device=auto")
    return torch.device(choice)


def amp_setup(device: torch.device, amp: bool,
              quiet: bool = False) -> tuple[Callable[[], contextlib.AbstractContextManager],
                                            torch.amp.GradScaler]:
    """Autocast context factory and gradient scaler for ``train.amp`` on ``device``.

    CUDA: bf16 autocast where the GPU supports it (no scaler needed), else fp16 with a
    ``GradScaler``. CPU: full float32 (logged once), since CPU autocast gives no speed-up here.
    """
    if amp and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
        return (lambda: torch.autocast("cuda", dtype=dtype)), scaler
    if amp and not quiet:
        log.info("train.amp=true ignored on %s: training in float32", device.type)
    return contextlib.nullcontext, torch.amp.GradScaler(device.type, enabled=False)


def halve_batch_on_oom(run_epoch: Callable[[int], T], batch_size: int) -> tuple[T, int]:
    """Run ``run_epoch(batch_size)``; on CUDA out-of-memory halve the batch size and run it again.

    Returns the result and the batch size that worked (kept for the following epochs). Gives up
    (re-raises) when even a batch of one does not fit.
    """
    while True:
        try:
            return run_epoch(batch_size), batch_size
        except torch.cuda.OutOfMemoryError:
            if batch_size <= 1:
                raise
            log.warning("CUDA out of memory at batch size %d: retrying the epoch with %d",
                        batch_size, batch_size // 2)
            batch_size //= 2
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def set_num_threads(num_threads: int | None) -> int:
    """Set torch's CPU threads: ``num_threads`` or every CPU this job may run on."""
    if num_threads is None:
        num_threads = len(os.sched_getaffinity(0))
        if os.environ.get("SLURM_CPUS_PER_TASK"):
            num_threads = min(num_threads, int(os.environ["SLURM_CPUS_PER_TASK"]))
    torch.set_num_threads(int(num_threads))
    return int(num_threads)


def _lr_scheduler(optimizer: torch.optim.Optimizer, schedule: str,
                  epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(int(epochs), 1))
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    raise ValueError(f"train.lr_schedule must be cosine or constant, got {schedule!r}")


# ----------------------------------------------------------------------------------------------
# Checkpoints: plain state dicts and tensors, loadable with weights_only=True


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, scaler: torch.amp.GradScaler, generator: torch.Generator,
                    state: TrainState, meta: dict[str, Any]) -> None:
    """Write the complete training state to ``path`` atomically."""
    checkpoint = {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
        "epoch": state.epoch, "best": state.best, "best_loss": state.best_loss,
        "best_epoch": state.best_epoch,
        "bad_epochs": state.bad_epochs, "batch_size": state.batch_size,
        "history": state.history, "best_model": state.best_model, "rng": rng_state(),
        "generator": generator.get_state(), **meta,
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def save_best(path: Path, model: nn.Module, state: TrainState, meta: dict[str, Any]) -> None:
    """Write ``best.pt``: the model's (best) weights, how it was chosen, and what rebuilds it."""
    checkpoint = {"model": model.state_dict(), "epoch": state.best_epoch, "best": state.best,
                  "best_loss": state.best_loss, "history": state.history, **meta}
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, scaler: torch.amp.GradScaler,
                    generator: torch.Generator, expected_hash: str | None = None) -> TrainState:
    """Restore what :func:`save_checkpoint` wrote; return the training state to continue from.

    With ``expected_hash``, refuse a checkpoint written under another configuration: resuming it
    would silently mix two experiments (or fail deep inside ``load_state_dict``).
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if expected_hash is not None and ckpt.get("config_hash") != expected_hash:
        raise ValueError(f"{path} was written by another configuration (hash "
                         f"{ckpt.get('config_hash')}, this job {expected_hash}): use a new "
                         f"run_dir, or delete {path.parent} to start this fold over")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    generator.set_state(ckpt["generator"])
    set_rng_state(ckpt["rng"])
    return TrainState(epoch=ckpt["epoch"], best=ckpt["best"], best_loss=ckpt["best_loss"],
                      best_epoch=ckpt["best_epoch"],
                      bad_epochs=ckpt["bad_epochs"], batch_size=ckpt["batch_size"],
                      history=list(ckpt["history"]), best_model=ckpt["best_model"])


def rng_state() -> dict[str, Any]:
    """torch, CUDA, numpy and Python RNG states as tensors and plain types (weights_only-safe)."""
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": torch.from_numpy(np_keys.astype(np.int64)), "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss), "numpy_gauss": float(np_gauss),
        "python": torch.tensor(py_internal, dtype=torch.int64), "python_version": int(py_version),
        "python_gauss": py_gauss,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNG states :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32),
                         state["numpy_pos"], state["numpy_has_gauss"], state["numpy_gauss"]))
    random.setstate((state["python_version"], tuple(int(v) for v in state["python"].tolist()),
                     state["python_gauss"]))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def checkpoint_meta(cfg: DictConfig, data: FoldData, identity_hash: str) -> dict[str, Any]:
    """What a checkpoint carries besides weights, so export/predict can rebuild and feed it."""
    uses_head = cfg.model.family != "autoencoder"
    return {
        "config_hash": identity_hash,
        "model_name": str(cfg.model.name), "family": str(cfg.model.family),
        "model_cfg": OmegaConf.to_container(cfg.model, resolve=True),
        "head_cfg": OmegaConf.to_container(cfg.head, resolve=True) if uses_head else None,
        "n_levels": data.n_levels, "input_features": str(cfg.task.input_features),
        "input_names": data.input_names, "max_len": int(cfg.task.max_len),
        "frame_stride": int(cfg.task.frame_stride),
        "normalization": {"mean": data.normalization.mean, "std": data.normalization.std},
    }


# ----------------------------------------------------------------------------------------------
# Outputs


def _scored_parts(data: FoldData) -> Iterator[tuple[str, SequenceSet]]:
    yield "cv", data.cv
    if len(data.test):
        yield "test", data.test


def _score_outputs(head: Head, split: str, part: SequenceSet, outputs: torch.Tensor,
                   data: FoldData) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics and predictions.csv rows of a head's ``outputs`` for the videos of ``part``:
    score metrics of the integer score, or regression metrics of a real-valued target."""
    pred = head.predict(outputs).numpy()
    raw = head.expected(outputs).float().numpy()
    true = data.labels(part).numpy()
    metrics = (regression_metrics(true, raw) if data.continuous
               else score_metrics(true, pred, raw, data.n_levels))
    return metrics, _prediction_rows(split, part, true, pred, raw)


def _prediction_rows(split: str, part: SequenceSet, true: np.ndarray, pred: np.ndarray,
                     raw: np.ndarray) -> list[dict[str, Any]]:
    # .tolist() gives Python ints for scores and floats for real-valued targets
    return [{"split": split, "id": i, "subject": s, "true": t, "pred": p, "raw": float(r)}
            for i, s, t, p, r in zip(part.ids, part.subjects, true.tolist(), pred.tolist(),
                                     raw.tolist(), strict=True)]


def write_fold_outputs(out: Path, cfg: DictConfig, metrics: dict[str, Any],
                       predictions: list[dict[str, Any]], history: list[dict[str, float]]) -> None:
    """predictions.csv, history.csv, config.yaml, then metrics.json (the "finished" marker)."""
    _write_csv(out / "predictions.csv", PREDICTION_COLUMNS, predictions)
    _write_csv(out / "history.csv", HISTORY_COLUMNS, history)
    write_text_atomic(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    write_json_atomic(out / "metrics.json", metrics)


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
