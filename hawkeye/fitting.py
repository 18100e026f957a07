"""Fitting one fold, one function per model family (:mod:`hawkeye.families` says which family
uses which): a network with a score head (:func:`fit_sequence`), the LSTM autoencoder with its
fitted threshold (:func:`fit_autoencoder`), the tree ensembles on summary features
(:func:`fit_tabular`) and MiniRocket + ridge (:func:`fit_rocket`); each returns a
:class:`FamilyResult` of metrics, predictions.csv rows and history, scored through the head.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from threadpoolctl import threadpool_limits
from torch import nn

from hawkeye.checkpoint import save_best, seed_everything
from hawkeye.data import SequenceSet, class_weights, concat_sets
from hawkeye.fold_data import FoldData
from hawkeye.io import atomic_path, git_commit, probability_columns
from hawkeye.loop import NetworkRun, fit_network, predict_outputs
from hawkeye.metrics import (
    anomaly_metrics,
    class_metrics,
    f1_optimal_threshold,
    regression_metrics,
    score_metrics,
    spearman_rho,
)
from hawkeye.models import build_model, count_parameters
from hawkeye.models.heads import Head, build_head
from hawkeye.tree_export import export_fitted_fold, tree_metadata

if TYPE_CHECKING:  # types only: hawkeye.predict imports this module
    pass

log = logging.getLogger("hawkeye.train")

# Called once per epoch with the history so far (hawkeye.tracking.FoldTracking.epoch_done).
EpochHook = Callable[[list[dict[str, Any]]], None]



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

    @classmethod
    def from_network(cls, run: NetworkRun, metrics: dict, predictions: list, model: nn.Module,
                     extra: dict | None = None) -> FamilyResult:
        """The result of a network family: epochs and batch size from the loop's state."""
        return cls(metrics, predictions, run.state.history, run.state.epoch, run.state.best_epoch,
                   count_parameters(model), run.state.batch_size, extra or {})


def fit_sequence(cfg: DictConfig, data: FoldData, device: torch.device, out: Path,
                 meta: dict[str, Any], on_epoch: EpochHook | None = None) -> FamilyResult:
    """A supervised sequence network: head loss on the training part, scored on cv and test.

    A real-valued ``task.target`` takes the ``continuous`` head, standardised with the training
    part's mean and standard deviation (recorded in the checkpoint's ``head_cfg``).
    """
    head_cfg = fitted_head_config(cfg, data)
    head = build_head(head_cfg, data.n_levels)
    meta = {**meta, "head_cfg": head_cfg}
    seed_everything(cfg.seed)
    model = build_model(cfg.model, len(data.input_names), head.out_dim(data.n_levels)).to(device)
    weights = (class_weights(data.train.y, data.n_levels).to(device)
               if cfg.train.balance == "weights" else None)

    def loss(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return head.loss(outputs, y, weights)

    def validate(outputs: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return {"val_loss": float(loss(outputs, y)),
                **validation_scores(head, outputs.cpu(), y.cpu(), data)}

    run = fit_network(cfg, data, model, loss, validate, device, out,
                      monitor=cfg.train.monitor, meta=meta, on_epoch=on_epoch)
    metrics, predictions = {}, []
    for split, part in _scored_parts(data):
        outputs = predict_outputs(model, part, run.eval_batch_size, device, cfg.train.amp)
        metrics[split], rows = _score_outputs(head, split, part, outputs.cpu(), data)
        predictions += rows
    return FamilyResult.from_network(run, metrics, predictions, model,
                                     extra=_target_stats(head_cfg))


def fitted_head_config(cfg: DictConfig, data: FoldData) -> dict[str, Any]:
    """The head's config as a plain dict; for a real-valued target, with the training part's
    mean and standard deviation filled in. Raises when target and head do not go together."""
    head_cfg = OmegaConf.to_container(cfg.head, resolve=True)
    if data.score_kind == "nominal" and not data.continuous \
            and head_cfg.get("name") != "classification":
        raise ValueError(f"task.score_kind=nominal: classes have no order, so they need "
                         f"head=classification, got head={head_cfg.get('name')} (or set "
                         "task.score_kind=ordinal for ordered scores)")
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


def _reconstruction_error(model: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return model.reconstruction_error(x, mask)



def fit_autoencoder(cfg: DictConfig, data: FoldData, device: torch.device, out: Path,
                    meta: dict[str, Any], on_epoch: EpochHook | None = None) -> FamilyResult:
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
    seed_everything(cfg.seed)
    model = build_model(cfg.model, n_features, n_features).to(device)

    def loss(errors: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return errors.mean()

    def validate(errors: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return {"val_loss": float(errors.mean()), "val_mae": float("nan")}

    normal_only = replace(data, train=normal_train, val=normal_val)
    run = fit_network(cfg, normal_only, model, loss, validate, device, out, monitor="val_loss",
                      meta=meta, forward=_reconstruction_error, on_epoch=on_epoch)

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
    return FamilyResult.from_network(run, metrics, predictions, model, extra={
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
    scikit-learn estimator could only be saved by pickle, which the project never loads; with
    ``export.onnx`` the fitted trees are written as ``model.onnx`` here, checked against the
    estimator on the fold's rows (:mod:`hawkeye.tree_export`). With
    ``train.balance`` weights or sampling, the trees get balanced per-sample weights. The trees
    never early-stop on the validation slice, so they are fitted on the whole training side
    (training part + validation slice); a ``tune`` grid is chosen on inner subject-grouped folds
    of that same side, scored by the MAE of the head's expected score. NaN features (a store
    that keeps missing cells) go to the trees as they are.
    """
    if not data.summary_names:
        raise ValueError(f"{cfg.paths.store} has no summary features: model={cfg.model.name} "
                         "needs them (prepare the store with features, or pick a sequence model)")
    started = time.perf_counter()
    head_cfg = fitted_head_config(cfg, data)
    head = build_head(head_cfg, data.n_levels)
    estimator = build_model(cfg.model, len(data.summary_names), head.out_dim(data.n_levels))
    fit_part, weights = _training_side(cfg, data)

    def inner_mae(raw: np.ndarray, y: np.ndarray) -> float:
        return float(np.abs(head.expected(torch.from_numpy(raw)).numpy() - y).mean())

    # scikit-learn's OpenMP would take every core of the node; keep to the job's share
    with threadpool_limits(limits=torch.get_num_threads(), user_api="openmp"):
        estimator.fit(fit_part.summary.numpy(), data.labels(fit_part).numpy(),
                      sample_weight=weights, groups=fit_part.subjects, score_fn=inner_mae)

    def outputs(part: SequenceSet) -> torch.Tensor:
        return torch.from_numpy(estimator.predict(part.summary.numpy()))

    extra = {**_target_stats(head_cfg), **estimator.fit_report()}
    if cfg.export.onnx:  # the estimator lives only in this job: its model.onnx is written now
        rows = np.concatenate([p.summary.numpy() for p in (fit_part, data.cv, data.test)])
        extra.update(export_fitted_fold(estimator, head, rows, out, tree_metadata(
            meta, head, data.summary_names, int(cfg.fold), git_commit()), cfg.export))
    return _single_fit_result(cfg, data, head, outputs, fit_part, started, estimator, extra)


ROCKET_WEIGHTS = "minirocket.npz"  # a rocket fold's fitted model, beside its best.pt


def fit_rocket(cfg: DictConfig, data: FoldData, device: torch.device, out: Path,
               meta: dict[str, Any]) -> FamilyResult:
    """MiniRocket + ridge (:class:`~hawkeye.models.minirocket.MiniRocketRidge`) on the fold's
    normalised sequences: one closed-form fit, no epochs, CPU only (``device`` unused).

    Like the trees it never early-stops, so it fits on the whole training side (training part +
    validation slice); the ridge penalty is chosen by leave-one-out on that side. The fitted model
    is ``minirocket.npz`` (arrays, no pickle); ``best.pt`` holds no weights, only what export
    needs to rebuild the fold (``weights_file`` names the ``.npz``). A requeued task refits.
    """
    started = time.perf_counter()
    head_cfg = fitted_head_config(cfg, data)
    head = build_head(head_cfg, data.n_levels)
    model = build_model(cfg.model, len(data.input_names), head.out_dim(data.n_levels))
    fit_part, weights = _training_side(cfg, data)
    model.fit(fit_part.x, fit_part.mask, data.labels(fit_part).numpy(), sample_weight=weights)
    model.save(out / ROCKET_WEIGHTS)
    with atomic_path(out / "best.pt") as tmp:
        torch.save({**meta, "head_cfg": head_cfg, "weights_file": ROCKET_WEIGHTS, "epoch": 1}, tmp)

    def outputs(part: SequenceSet) -> torch.Tensor:
        return torch.from_numpy(model.predict(part.x, part.mask))

    return _single_fit_result(cfg, data, head, outputs, fit_part, started, model,
                              {**_target_stats(head_cfg), "ridge_alpha": model.alpha})


def _training_side(cfg: DictConfig, data: FoldData) -> tuple[SequenceSet, np.ndarray | None]:
    """What a model that never early-stops fits on: the training part and the validation slice,
    with balanced per-sample weights when ``train.balance`` asks for any balancing."""
    fit_part = concat_sets([data.train, data.val])
    weights = (class_weights(fit_part.y, data.n_levels)[fit_part.y].numpy()
               if cfg.train.balance != "none" else None)
    return fit_part, weights


def _single_fit_result(cfg: DictConfig, data: FoldData, head: Head,
                       outputs: Callable[[SequenceSet], torch.Tensor], fit_part: SequenceSet,
                       started: float, model: Any, extra: dict[str, Any]) -> FamilyResult:
    """The fold result of a model fitted once on ``fit_part``: cv/test scored through the head,
    one history row (no held-out validation loss: the validation slice is part of the fit)."""
    history = [{"epoch": 1, "train_loss": float(head.loss(outputs(fit_part),
                                                          data.labels(fit_part))),
                "val_loss": math.nan, "val_mae": math.nan,
                "lr": float(cfg.model.get("learning_rate", math.nan)),
                "seconds": round(time.perf_counter() - started, 3)}]
    metrics, predictions = {}, []
    for split, part in _scored_parts(data):
        metrics[split], rows = _score_outputs(head, split, part, outputs(part), data)
        predictions += rows
    return FamilyResult(metrics, predictions, history, epochs_run=1, best_epoch=1,
                        n_params=count_parameters(model), batch_size=None,
                        extra={**extra, "n_fit": len(fit_part)})


# The model config's `family` key picks the fit function.


def _scored_parts(data: FoldData) -> Iterator[tuple[str, SequenceSet]]:
    yield "cv", data.cv
    if len(data.test):
        yield "test", data.test


def _score_outputs(head: Head, split: str, part: SequenceSet, outputs: torch.Tensor,
                   data: FoldData) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics and predictions.csv rows (with the head's class probabilities ``p<k>``, if any)
    of a head's ``outputs`` for the videos of ``part``."""
    true = data.labels(part).numpy()
    pred, raw = head.predict(outputs).numpy(), head.expected(outputs).float().numpy()
    probabilities = head.probabilities(outputs)
    rows = _prediction_rows(split, part, true, pred, raw)
    if probabilities is not None:
        for row, p in zip(rows, probabilities.float().numpy().tolist(), strict=True):
            row.update(zip(probability_columns(len(p)), p, strict=True))
    return task_metrics(data, true, pred, raw), rows


def task_metrics(data: FoldData, true: np.ndarray, pred: np.ndarray,
                 raw: np.ndarray) -> dict[str, Any]:
    """The metrics of the task's target: regression metrics of a real-valued target, class
    metrics of nominal classes (``task.score_kind``), else ordinal score metrics."""
    if data.continuous:
        return regression_metrics(true, raw)
    if data.score_kind == "nominal":
        return class_metrics(true, pred, data.n_levels)
    return score_metrics(true, pred, raw, data.n_levels)


def validation_scores(head: Head, outputs: torch.Tensor, y: torch.Tensor,
                      data: FoldData) -> dict[str, float]:
    """``val_<metric>`` of every scalar of :func:`task_metrics` on the validation slice: what
    ``train.monitor`` may name besides ``val_loss``."""
    pred, raw = head.predict(outputs).numpy(), head.expected(outputs).float().numpy()
    metrics = task_metrics(data, y.numpy(), pred, raw)
    return {f"val_{k}": float(v) for k, v in metrics.items()
            if isinstance(v, float) and k != "n"}


def _prediction_rows(split: str, part: SequenceSet, true: np.ndarray, pred: np.ndarray,
                     raw: np.ndarray) -> list[dict[str, Any]]:
    # .tolist() gives Python ints for scores and floats for real-valued targets
    return [{"split": split, "id": i, "subject": s, "true": t, "pred": p, "raw": float(r)}
            for i, s, t, p, r in zip(part.ids, part.subjects, true.tolist(), pred.tolist(),
                                     raw.tolist(), strict=True)]
