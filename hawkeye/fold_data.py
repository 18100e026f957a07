"""The data of one fold: the store split into the training part, the early-stopping slice, this
fold's held-out part and the official test split, padded and normalised with statistics of the
training part only (the fold assignment itself: :mod:`hawkeye.folds`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig

from hawkeye.data import (
    Normalization,
    SequenceSet,
    anomaly_flags,
    channel_names,
    fit_normalization,
    n_score_levels,
    sequence_set,
)
from hawkeye.folds import check_disjoint, ensure_folds, validation_split
from hawkeye.store import load_store
from hawkeye.timebase import TimeBase, store_time_base

log = logging.getLogger("hawkeye.train")
SCORE_KINDS = ("ordinal", "nominal")  # task.score_kind: ordered scores | unordered classes


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
    time_base: TimeBase       # rate and window of the inputs (the task's, nulls resolved)
    continuous: bool = False  # supervised target is a real value (task.target), not the score
    score_kind: str = "ordinal"  # the score's levels: ordinal (ordered) | nominal (classes)

    def labels(self, part: SequenceSet) -> torch.Tensor:
        """What supervised models learn for ``part``: its real target, or its integer score."""
        return part.target if self.continuous else part.y


def load_fold_data(cfg: DictConfig, keep_anomalous: bool = False,
                   needs_sequences: bool = True) -> FoldData:
    """Load the store, assign folds (once per run dir), split, pad and normalise one fold.

    ``keep_anomalous``: the model family learns what anomalous videos look like (the
    autoencoder), so ``task.target_windows: normal`` does not take them out.
    ``needs_sequences``: the family reads per-frame series, so a summary-only store (a feature
    table) is refused with a message naming the models that train on it.
    """
    task = cfg.task
    if not 0 <= cfg.fold < cfg.cv.n_folds:
        raise ValueError(f"fold={cfg.fold} is outside 0..{cfg.cv.n_folds - 1} (cv.n_folds)")
    if task.test_split is not None and task.test_split in task.train_splits:
        raise ValueError(f"task.test_split={task.test_split!r} is also in task.train_splits="
                         f"{list(task.train_splits)}: the test split must stay held out")
    store = load_store(cfg.paths.store)
    if store.summary_only and needs_sequences:
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

    base = store_time_base(task.sample_rate_hz, task.max_seconds, store.fps, store.frame_times(),
                           store.offsets, str(cfg.paths.store))
    everything = sequence_set(store, task.input_features, base,
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
    if task.score_kind not in SCORE_KINDS:
        raise ValueError(f"task.score_kind must be one of {SCORE_KINDS}, got {task.score_kind!r}")
    if task.target_windows not in ("all", "normal"):
        raise ValueError(f"task.target_windows must be all or normal, got "
                         f"{task.target_windows!r}")
    if task.target_windows == "normal" and not keep_anomalous:
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
                    time_base=base,
                    continuous=task.target != "score", score_kind=str(task.score_kind))

