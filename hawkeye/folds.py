"""Subject-grouped, score-stratified cross-validation folds, computed once per run and shared.

Two videos of one subject (left and right hand, several visits) are far more alike than two
subjects, so every split here is made **by subject**: a subject's videos are all on one side.
Splitting by video instead would leak the subject's hand into the held-out part and inflate every
figure. On top of the grouping, folds are stratified by score so each fold sees every severity.

The assignment is deterministic from ``cv.seed`` and written once per run directory as
``folds.json`` (id -> fold). Every Slurm array task of the run reads that file; the first task that
needs it writes it. Writers race harmlessly: all of them compute the same content from the same
store and seed, and the write is an atomic rename, so a reader sees either no file or a whole one.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from hawkeye.io import write_json_atomic

FOLDS_FILE = "folds.json"


def subject_grouped_folds(subjects: Sequence[str] | np.ndarray, scores: Sequence[int] | np.ndarray,
                          n_folds: int, seed: int) -> np.ndarray:
    """Fold index (0 .. n_folds-1) of every sample: grouped by subject, stratified by score.

    Uses scikit-learn's ``StratifiedGroupKFold(shuffle=True, random_state=seed)``; the same inputs
    and seed always give the same assignment. Raises ``ValueError`` when there are fewer subjects
    than folds, and if (against expectation) a subject ends up in two folds.
    """
    subjects = np.asarray(subjects).astype(str)
    scores = np.asarray(scores)
    if subjects.shape != scores.shape or subjects.ndim != 1:
        raise ValueError(f"subjects {subjects.shape} and scores {scores.shape} must be two 1-D "
                         "arrays of the same length")
    n_subjects = len(np.unique(subjects))
    if n_folds < 2 or n_subjects < n_folds:
        raise ValueError(f"cannot make {n_folds} subject-grouped folds from {n_subjects} subjects: "
                         "use cv.n_folds between 2 and the number of subjects")
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.full(len(subjects), -1, dtype=np.int64)
    for k, (_, held_out) in enumerate(splitter.split(np.zeros(len(subjects)), scores, subjects)):
        folds[held_out] = k
    check_grouped(subjects, folds)
    return folds


def check_grouped(subjects: Sequence[str] | np.ndarray, folds: np.ndarray) -> None:
    """Raise ``ValueError`` unless every subject's samples share one fold (and all are assigned).

    This is the leakage check: with one fold per subject, no subject can be on both the training
    and the held-out side of any fold.
    """
    subjects = np.asarray(subjects).astype(str)
    folds = np.asarray(folds)
    if (folds < 0).any():
        raise ValueError(f"{int((folds < 0).sum())} samples have no fold")
    leaked = sorted(s for s in np.unique(subjects).tolist()
                    if len(np.unique(folds[subjects == s])) > 1)
    if leaked:
        raise ValueError(f"subjects split across folds (would leak between training and held-out "
                         f"sides): {leaked}")


def validation_split(subjects: Sequence[str] | np.ndarray, scores: Sequence[int] | np.ndarray,
                     fraction: float, seed: int) -> np.ndarray:
    """Boolean mask (True = validation) carving an early-stopping slice out of a training side.

    Also grouped by subject and stratified by score: the slice is one part of a
    ``StratifiedGroupKFold`` with ``round(1 / fraction)`` parts, so its size is close to
    ``fraction`` of the samples. Needs at least two subjects.
    """
    subjects = np.asarray(subjects).astype(str)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    n_subjects = len(np.unique(subjects))
    n_parts = min(max(2, round(1.0 / fraction)), n_subjects)
    if n_parts < 2:
        raise ValueError(f"cannot carve a subject-grouped validation slice from {n_subjects} "
                         "subject(s): the training side needs at least two subjects")
    splitter = StratifiedGroupKFold(n_splits=n_parts, shuffle=True, random_state=seed)
    scores = np.asarray(scores)
    # Many classes of a few sequences each (a small bring-your-own set): no class has n_parts
    # members, which StratifiedGroupKFold refuses; the slice is then drawn by subject alone.
    strata = scores if np.unique(scores, return_counts=True)[1].max() >= n_parts \
        else np.zeros_like(scores)
    with warnings.catch_warnings():
        # A rare level with fewer videos than parts is expected in a small slice: stratification
        # is then best effort, which is all early stopping needs.
        warnings.filterwarnings("ignore", message="The least populated class",
                                category=UserWarning)
        _, held_out = next(splitter.split(np.zeros(len(subjects)), strata, subjects))
    is_val = np.zeros(len(subjects), dtype=bool)
    is_val[held_out] = True
    overlap = set(subjects[is_val].tolist()) & set(subjects[~is_val].tolist())
    if overlap:
        raise ValueError(f"validation slice shares subjects with training: {sorted(overlap)}")
    return is_val


def check_disjoint(cv_subjects: Sequence[str] | np.ndarray,
                   test_subjects: Sequence[str] | np.ndarray) -> None:
    """Raise ``ValueError`` naming every subject that is both in the CV set and the test split.

    The official test split is only honest if none of its subjects was trained on in any fold.
    """
    shared = sorted(set(np.asarray(cv_subjects).astype(str).tolist())
                    & set(np.asarray(test_subjects).astype(str).tolist()))
    if shared:
        raise ValueError(f"{len(shared)} subject(s) are in both the cross-validation splits and "
                         f"the held-out test split: {shared}. Use a subject-correct split "
                         "(PD4T's Annotations_split) or change task.train_splits/task.test_split.")


def save_folds(path: str | os.PathLike[str], ids: Sequence[str], folds: np.ndarray,
               n_folds: int, seed: int) -> None:
    """Write ``{"n_folds", "seed", "folds": {id: fold}}`` atomically (ids sorted: stable bytes)."""
    if len(ids) != len(folds):
        raise ValueError(f"{len(ids)} ids but {len(folds)} fold indices")
    assignment = {str(i): int(k) for i, k in sorted(zip(ids, folds, strict=True))}
    write_json_atomic(path, {"n_folds": int(n_folds), "seed": int(seed), "folds": assignment})


def load_folds(path: str | os.PathLike[str], ids: Sequence[str], n_folds: int,
               seed: int) -> np.ndarray:
    """Read a ``folds.json`` back as a fold index per id, in the order of ``ids``.

    Raises ``ValueError`` when the file was made with other CV settings or for other videos (the
    store changed under a running experiment): mixing two assignments in one run would leak.
    """
    with open(path) as handle:
        saved = json.load(handle)
    if saved.get("n_folds") != n_folds or saved.get("seed") != seed:
        raise ValueError(f"{path} was written with n_folds={saved.get('n_folds')}, "
                         f"seed={saved.get('seed')} but this job has n_folds={n_folds}, "
                         f"seed={seed}: use a new run_dir for other CV settings")
    assignment: dict[str, int] = saved["folds"]
    missing = [i for i in ids if i not in assignment]
    extra = set(assignment) - set(map(str, ids))
    if missing or extra:
        raise ValueError(f"{path} does not match the store: {len(missing)} id(s) missing from it "
                         f"(e.g. {missing[:5]}), {len(extra)} id(s) no longer in the store "
                         f"(e.g. {sorted(extra)[:5]}). The store changed since this run started: "
                         "use a new run_dir.")
    return np.array([assignment[i] for i in ids], dtype=np.int64)


def ensure_folds(run_dir: str | os.PathLike[str], ids: Sequence[str],
                 subjects: Sequence[str] | np.ndarray, scores: Sequence[int] | np.ndarray,
                 n_folds: int, seed: int) -> np.ndarray:
    """The run's fold assignment: read ``<run_dir>/folds.json``, or compute and write it first.

    Safe for concurrent array tasks (see the module docstring). The loaded assignment is checked
    for subject grouping again, so a hand-edited file cannot leak.
    """
    path = Path(run_dir) / FOLDS_FILE
    ids = [str(i) for i in ids]
    if not path.exists():
        save_folds(path, ids, subject_grouped_folds(subjects, scores, n_folds, seed), n_folds, seed)
    folds = load_folds(path, ids, n_folds, seed)
    check_grouped(subjects, folds)
    return folds
