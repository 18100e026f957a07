"""Subject-grouped folds: grouping, stratification, determinism, leakage errors, folds.json."""

from __future__ import annotations

import json
import multiprocessing

import numpy as np
import pytest

from hawkeye.folds import (
    FOLDS_FILE,
    check_disjoint,
    check_grouped,
    ensure_folds,
    load_folds,
    save_folds,
    subject_grouped_folds,
    validation_split,
)


def cohort(n_subjects: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_subjects`` subjects with 2-6 videos each; a subject's videos share a score level 0-4
    up to +-1 (as in PD4T, where both hands and visits of one person score alike)."""
    rng = np.random.default_rng(seed)
    subjects, scores = [], []
    for s in range(n_subjects):
        level = s % 5
        for _ in range(rng.integers(2, 7)):
            subjects.append(f"{s:03d}")
            scores.append(int(np.clip(level + rng.integers(-1, 2), 0, 4)))
    ids = np.array([f"v{i}_{s}" for i, s in enumerate(subjects)])
    return ids, np.array(subjects), np.array(scores)


def test_folds_group_subjects_and_cover_everything() -> None:
    _, subjects, scores = cohort()
    folds = subject_grouped_folds(subjects, scores, n_folds=5, seed=0)
    assert set(folds.tolist()) == {0, 1, 2, 3, 4}
    for s in np.unique(subjects):
        assert len(set(folds[subjects == s].tolist())) == 1, f"subject {s} split across folds"
    for k in range(5):  # no subject on both sides of any fold
        assert not set(subjects[folds == k]) & set(subjects[folds != k])


def test_folds_are_stratified_by_score() -> None:
    _, subjects, scores = cohort(n_subjects=60)
    folds = subject_grouped_folds(subjects, scores, n_folds=5, seed=0)
    overall = np.bincount(scores, minlength=5) / len(scores)
    for k in range(5):
        share = np.bincount(scores[folds == k], minlength=5) / (folds == k).sum()
        # every level appears in every fold, in roughly its overall proportion
        assert (share > 0).all()
        assert np.abs(share - overall).max() < 0.12


def test_folds_are_deterministic_and_depend_on_seed() -> None:
    _, subjects, scores = cohort()
    first = subject_grouped_folds(subjects, scores, 5, seed=3)
    assert np.array_equal(first, subject_grouped_folds(subjects, scores, 5, seed=3))
    assert not np.array_equal(first, subject_grouped_folds(subjects, scores, 5, seed=4))


def test_too_few_subjects_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="3 subjects"):
        subject_grouped_folds(["a", "a", "b", "c"], [0, 1, 0, 1], n_folds=5, seed=0)


def test_check_grouped_names_the_leaking_subject() -> None:
    with pytest.raises(ValueError, match=r"\['b'\]"):
        check_grouped(np.array(["a", "a", "b", "b"]), np.array([0, 0, 0, 1]))


def test_validation_split_is_by_subject_and_about_the_requested_size() -> None:
    _, subjects, scores = cohort(n_subjects=60)
    is_val = validation_split(subjects, scores, fraction=0.2, seed=1)
    assert not set(subjects[is_val]) & set(subjects[~is_val])
    assert 0.1 < is_val.mean() < 0.3
    assert np.array_equal(is_val, validation_split(subjects, scores, fraction=0.2, seed=1))


def test_validation_split_of_many_small_classes_is_drawn_by_subject() -> None:
    # 10 classes of 4 one-sequence subjects (a small UCR-like set): no class has the 7 members
    # a 15% slice's 7 parts would stratify; the slice is still ~15%, by subject
    subjects = np.array([f"s{i}" for i in range(40)])
    scores = np.repeat(np.arange(10), 4)
    is_val = validation_split(subjects, scores, 0.15, seed=0)
    assert 4 <= is_val.sum() <= 8 and not set(subjects[is_val]) & set(subjects[~is_val])


def test_check_disjoint_lists_shared_subjects() -> None:
    check_disjoint(["001", "002"], ["003"])
    with pytest.raises(ValueError, match=r"\['002', '007'\]"):
        check_disjoint(["001", "002", "007"], ["002", "007", "009"])


def test_folds_json_round_trip_and_mismatch_errors(tmp_path) -> None:
    ids, subjects, scores = cohort()
    folds = subject_grouped_folds(subjects, scores, 5, seed=0)
    path = tmp_path / FOLDS_FILE
    save_folds(path, ids, folds, n_folds=5, seed=0)
    assert np.array_equal(load_folds(path, ids, 5, 0), folds)
    reordered = ids[::-1]
    assert np.array_equal(load_folds(path, reordered, 5, 0), folds[::-1])
    with pytest.raises(ValueError, match="n_folds=5, seed=0"):
        load_folds(path, ids, 4, 0)
    with pytest.raises(ValueError, match="store changed"):
        load_folds(path, [*ids.tolist(), "new_video_999"], 5, 0)


def test_ensure_folds_writes_once_and_reuses(tmp_path) -> None:
    ids, subjects, scores = cohort()
    first = ensure_folds(tmp_path, ids, subjects, scores, 5, 0)
    written = (tmp_path / FOLDS_FILE).read_text()
    # A second task (with the same inputs) reads the same file back.
    assert np.array_equal(ensure_folds(tmp_path, ids, subjects, scores, 5, 0), first)
    assert (tmp_path / FOLDS_FILE).read_text() == written
    assert set(json.loads(written)["folds"]) == set(ids.tolist())


def _ensure_in_process(run_dir: str) -> list[int]:
    ids, subjects, scores = cohort()
    return ensure_folds(run_dir, ids, subjects, scores, 5, 0).tolist()


def test_concurrent_tasks_agree_on_one_folds_file(tmp_path) -> None:
    """Array tasks starting together all write identical content; every one sees the same folds."""
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.map(_ensure_in_process, [str(tmp_path)] * 6)
    assert all(r == results[0] for r in results)
    assert [p.name for p in tmp_path.iterdir()] == [FOLDS_FILE]  # no temporary files left
