"""Checks around a preparation run, each problem one message with its likely cause.

Before any video is decoded (:func:`before_decoding`): the settings (keys, types, ranges: the
schema of :mod:`hawkeye.validate`; the task's landmark model and feature set go together), the
PD4T root, and that the store's folder is writable and not full (an unwritable output used to
surface after the first ``prepare.flush_every`` videos of work).
After the run (:func:`after_run`): a run that wrote nothing usable, or left a whole split without a
usable video, is a failure, not exit 0; when landmark files lie beside the videos but MediaPipe
was asked to track the videos, the message says ``prepare.landmark_source=precomputed``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hawkeye.prepare.qc import CACHED, FLAGGED, OK, RELABELLED, SKIPPED, QcRow
from hawkeye.validate import (
    check_keys,
    check_task_spec,
    check_writable,
    executor_keys,
    group_overrides,
)

USABLE = (OK, FLAGGED, CACHED, RELABELLED)  # QC statuses of a video that is in the store
LANDMARK_SUFFIX = ".landmarks.npz"


def before_decoding(cfg: DictConfig, overrides: Sequence[str],
                    composer: Callable[[Sequence[str]], DictConfig]) -> list[str]:
    """Problems of the settings, the input folder and the output folder of a preparation."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    reference = OmegaConf.to_container(composer(group_overrides(overrides)), resolve=True)
    problems = check_keys(plain, reference, executor_keys(plain["launcher"]))
    problems += check_task_spec(plain["task"])
    root = Path(str(plain["data_root"]))
    if not root.is_dir():
        problems.append(f"data_root={root}: no such folder (the PD4T root holding "
                        "Annotations*/ and Videos/)")
    store = Path(str(plain["paths"]["store"]))
    problems += check_writable(store.absolute().parent, "paths.store folder")
    return problems


def likely_cause(data_root: str | Path, landmark_source: str, skipped: Sequence[QcRow]) -> str:
    """Why videos were skipped, in one sentence."""
    videos = Path(data_root) / "Videos"
    if landmark_source == "mediapipe" and next(videos.rglob(f"*{LANDMARK_SUFFIX}"), None):
        return (f"landmark files (*{LANDMARK_SUFFIX}) lie beside the videos: read them with "
                "prepare.landmark_source=precomputed")
    reasons = Counter(row.reason.split(": ", 1)[-1] for row in skipped if row.reason)
    if not reasons:
        return "see the QC report"
    reason, count = reasons.most_common(1)[0]
    return f"most common reason ({count} of {len(skipped)}): {reason}"


def after_run(rows: Sequence[QcRow], store: Path, data_root: str | Path,
              prepare_cfg: Mapping[str, Any]) -> list[str]:
    """Problems of a finished run's QC ``rows``: nothing usable, or a split with no usable video.

    Not checked for one shard of several (a shard may hold few videos, or none of a split): the
    merge into the final store is.
    """
    if int(prepare_cfg["num_shards"]) > 1 and not bool(prepare_cfg["merge"]):
        return []
    usable = [r for r in rows if r.status in USABLE]
    skipped = [r for r in rows if r.status == SKIPPED]
    if not usable:
        cause = likely_cause(data_root, str(prepare_cfg["landmark_source"]), skipped)
        return [f"nothing usable was written to {store}: all {len(rows)} annotation row(s) "
                f"were skipped; {cause}"]
    usable_splits = {r.split for r in usable}
    problems = []
    for split in sorted({r.split for r in rows if r.split} - usable_splits):
        in_split = [r for r in skipped if r.split == split]
        cause = likely_cause(data_root, str(prepare_cfg["landmark_source"]), in_split)
        problems.append(f"split {split!r} has no usable video in {store} ({len(in_split)} "
                        f"row(s), all skipped); {cause}")
    return problems
