"""The preparation run: PD4T annotations -> per video landmarks -> gap fill -> features -> store.

:func:`prepare` is what ``python -m hawkeye.prepare`` (:mod:`hawkeye.prepare.__main__`), the Slurm
shard jobs (:mod:`hawkeye.prepare.submit`), tests and benchmarks call.

Per video (:func:`hawkeye.prepare.worker.process_video`, run in worker processes, one
detector each; :func:`hawkeye.prepare.worker.run_videos`): hash (resume), landmarks and frame
times of the task's landmark model (:mod:`hawkeye.prepare.sources`, timing checked by
:mod:`hawkeye.prepare.timing`), gap filling, the task's features. A
:class:`hawkeye.store.VideoEntry` goes back to this main process, which writes the store every
``prepare.flush_every`` videos (atomic, merging with what is stored: a killed run loses at most
that many videos' work and never damages the store). One preparation writes a store at a time
(:func:`hawkeye.faults.store_lock`).

Nothing about one bad video stops the run: a missing, empty or corrupt file, a video without a hand,
a bad annotation row (:mod:`hawkeye.prepare.pd4t`'s problem list) or a frame count that disagrees
with the file each get a log message naming the video and a row in the QC report
(:mod:`hawkeye.prepare.qc`); the exit code is non-zero only with ``prepare.strict=true``.

Slurm arrays: ``prepare.num_shards=N prepare.shard_index=k`` processes every N-th video (sorted by
id) into ``<store>.shard-<k>-of-<N>.h5``; ``prepare.merge=true`` merges the shard stores and their
QC tables into the store (:func:`merge_shards`; ``jobs/prepare.sbatch`` runs both steps).
"""
from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from hawkeye.faults import store_lock
from hawkeye.prepare.pd4t import Pd4tConfig, VideoItem, frame_count_problem, load_annotations
from hawkeye.prepare.qc import (
    CACHED,
    FLAGGED,
    OK,
    RELABELLED,
    SKIPPED,
    QcRow,
    problem_row,
    qc_paths,
    read_qc_csv,
    write_qc,
)
from hawkeye.prepare.tasks import TaskSpec
from hawkeye.prepare.traces import draw_stored_traces
from hawkeye.prepare.worker import (
    PrepareSettings,
    VideoResult,
    default_workers,
    plain_section,
    run_videos,
)
from hawkeye.store import VideoEntry, load_store, merge_stores, stored_hashes, write_store

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------- results


@dataclass
class PrepareReport:
    """Summary of one :func:`prepare` call."""

    store: Path                        # the store (or shard store) written
    qc_csv: Path
    qc_md: Path
    counts: dict[str, int] = field(default_factory=dict)  # QC status -> rows
    frames: int = 0                    # frames processed in this run (cached videos excluded)
    wall_s: float = 0.0                # seconds for the whole call
    timings: dict[str, float] = field(default_factory=dict)  # summed per-video seconds by stage
    exit_code: int = 0                 # 1 when prepare.strict and something was skipped


# ------------------------------------------------------------------------------------- paths


def shard_path(store: str | os.PathLike[str], shard_index: int, num_shards: int) -> Path:
    """Shard store beside ``store``: ``data/x.h5`` -> ``data/x.shard-<k>-of-<n>.h5``."""
    store = Path(store)
    return store.with_name(f"{store.stem}.shard-{shard_index}-of-{num_shards}{store.suffix}")


# ------------------------------------------------------------------------------------- the run


def _recheck_cached(store: Path, items: Mapping[str, VideoItem], cached: list[str],
                    tolerance: int) -> tuple[list[VideoEntry], dict[str, str]]:
    """Check videos found already stored against their (possibly edited) annotation rows.

    The content hash says the landmarks and features are still right; the annotation may not be.
    Returns the stored entries whose labels (subject, score, split, hand) changed, relabelled
    without recomputing anything, and a frame count mismatch message per id where the annotated
    count now disagrees with the stored length.
    """
    if not cached:
        return [], {}
    data = load_store(store)
    wanted = set(cached)
    relabelled, mismatches = [], {}
    for entry in data.entries():
        item = items.get(entry.id)
        if entry.id not in wanted or item is None:
            continue
        problem = frame_count_problem(item, len(entry.series), tolerance)
        if problem is not None:
            mismatches[entry.id] = problem.message
        if (entry.subject, entry.score, entry.split, entry.hand) != (
                item.subject, item.score, item.split, item.hand):
            relabelled.append(replace(entry, subject=item.subject, score=item.score,
                                      split=item.split, hand=item.hand))
    return relabelled, mismatches


class _RunLog:
    """The main process's bookkeeping of one run: QC rows, entries waiting for the next flush."""

    def __init__(self, out: Path, attrs: dict[str, Any], flush_every: int,
                 problem_rows: list[QcRow], previous_qc: dict[str, QcRow],
                 task: TaskSpec) -> None:
        self.out, self.attrs, self.flush_every, self.task = out, attrs, flush_every, task
        self.problem_rows = problem_rows  # bad annotation rows (their ids may repeat a video's)
        self.previous_qc = previous_qc    # rows of the last run, reused for videos found cached
        self.rows: dict[str, QcRow] = {}
        self.pending: list[VideoEntry] = []
        self.cached: list[str] = []
        self.frames = 0
        self.timings: Counter[str] = Counter()

    def all_rows(self) -> list[QcRow]:
        return [*self.problem_rows, *self.rows.values()]

    def add(self, result: VideoResult) -> None:
        """Record one video's result; flush every ``flush_every`` new entries."""
        qc = result.qc
        if qc.status == CACHED:
            self.cached.append(qc.id)
            earlier = self.previous_qc.get(qc.id)
            self.rows[qc.id] = replace(earlier, status=CACHED) if earlier else qc
        else:
            self.rows[qc.id] = qc
            self.frames += qc.frames
            for stage in ("hash_s", "decode_s", "detect_s", "features_s", "total_s"):
                self.timings[stage] += getattr(qc, stage)
            log.info("%s: %s, %d frames, %.1f fps, hand: %s; hash %.2fs decode %.2fs detect %.2fs "
                     "features %.2fs total %.2fs%s", qc.id, qc.status, qc.frames, qc.fps,
                     qc.hand_choice or "-", qc.hash_s, qc.decode_s, qc.detect_s, qc.features_s,
                     qc.total_s, f" -- {qc.reason}" if qc.reason else "")
            if qc.status == SKIPPED:
                log.warning("skipped %s: %s", qc.id, qc.reason)
            elif qc.status == FLAGGED:
                log.warning("flagged %s: %s", qc.id, qc.reason)
        if result.entry is not None:
            self.pending.append(result.entry)
            if len(self.pending) >= self.flush_every:
                self.flush()

    def flush(self) -> None:
        """Write waiting entries into the store (atomic, merging) and the QC table so far."""
        if self.pending:
            features = self.task.features
            written = write_store(self.out, self.pending, list(features.series_names),
                                  list(features.summary_names), self.attrs)
            log.info("flushed %d videos: %s", len(self.pending), written)
            self.pending.clear()
        write_qc(self.out, self.all_rows(), overview=False)


def prepare(data_root: str | os.PathLike[str], store: str | os.PathLike[str],
            task_cfg: Mapping[str, Any], prepare_cfg: Mapping[str, Any]) -> PrepareReport:
    """Build (or extend) the feature store from a PD4T root; see the module docstring.

    ``task_cfg`` and ``prepare_cfg`` are the ``task`` and ``prepare`` config sections. Raises only
    for what stops the whole run (no annotations, subject overlap with ``on_subject_overlap:
    error``, a bad setting, an existing store of another schema); problems with single videos go
    to the QC report.
    """
    started = time.perf_counter()
    store = Path(store)
    num_shards, shard_index = int(prepare_cfg["num_shards"]), int(prepare_cfg["shard_index"])
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"prepare.shard_index must be in 0..num_shards-1, got {shard_index} of "
                         f"{num_shards}")
    if bool(prepare_cfg["merge"]):
        return merge_shards(store, num_shards, bool(prepare_cfg["strict"]),
                            bool(prepare_cfg["qc"]["overview"]))
    out = shard_path(store, shard_index, num_shards) if num_shards > 1 else store
    # One preparation per store at a time: a second one refuses at once (StoreBusyError) instead
    # of both merging stale copies; the lock file also shows early that the folder is writable.
    with store_lock(out, wait=False):
        return _prepare_into(out, data_root, task_cfg, prepare_cfg, shard_index, num_shards,
                             started)


def _prepare_into(out: Path, data_root: str | os.PathLike[str], task_cfg: Mapping[str, Any],
                  prepare_cfg: Mapping[str, Any], shard_index: int, num_shards: int,
                  started: float) -> PrepareReport:
    """:func:`prepare`'s run into the store (or shard store) ``out``, under its writer lock."""
    flush_every = int(prepare_cfg["flush_every"])
    if flush_every < 1:
        raise ValueError(f"prepare.flush_every must be >= 1 video, got {flush_every}")
    settings = PrepareSettings.from_config(prepare_cfg, qc_paths(out)["dir"], task_cfg)
    workers = prepare_cfg["workers"]
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"prepare.workers must be >= 1 (or null = all cores), got {workers}")

    annotations = load_annotations(data_root, Pd4tConfig.from_config(task_cfg))
    items = sorted(annotations.items, key=lambda item: item.id)[shard_index::num_shards]
    existing = stored_hashes(out)
    tasks = [(item, existing.get(item.id)) for item in items]
    attrs = {"task": str(task_cfg["name"]), "data_root": str(data_root),
             "landmark_source": settings.landmark_source, **settings.task.record(),
             "prepare": {**{k: v for k, v in plain_section(prepare_cfg).items()
                            if k not in ("shard_index", "num_shards", "merge", "workers",
                                         "submit", "jobs")},  # how it ran, not what it computed
                         "task": settings.task.names()}}  # predict computes the same features
    run = _RunLog(
        out, attrs, flush_every,
        # Bad annotation rows belong to no shard: shard 0 reports them, a merge lists them once.
        problem_rows=[problem_row(p) for p in annotations.problems] if shard_index == 0 else [],
        previous_qc={row.id: row for row in read_qc_csv(qc_paths(out)["csv"])
                     if row.status in (OK, FLAGGED, CACHED, RELABELLED)},
        task=settings.task)
    log.info("prepare: %d videos (shard %d of %d) from %s -> %s, %d worker(s), landmarks: %s "
             "(%s), features: %s; %d already stored", len(items), shard_index, num_shards,
             data_root, out, workers, settings.landmark_source, settings.task.landmarks.name,
             settings.task.features.name, sum(1 for _, h in tasks if h))

    # If the pool dies (a worker killed by the OOM killer, a segfault in a native library), the
    # finally block still stores every video that finished before the error propagates.
    try:
        with logging_redirect_tqdm(), tqdm(total=len(tasks), unit="video", desc="prepare",
                                           mininterval=1.0) as bar:
            for result in run_videos(tasks, settings, workers):
                run.add(result)
                bar.update(1)
    finally:
        run.flush()
    relabelled, mismatches = _recheck_cached(out, {item.id: item for item in items}, run.cached,
                                             settings.frame_count_tolerance)
    for video_id, message in mismatches.items():
        run.rows[video_id] = replace(run.rows[video_id], reason=f"{message} (stored earlier)")
    for entry in relabelled:
        row = run.rows[entry.id]
        run.rows[entry.id] = replace(row, status=RELABELLED, reason=" | ".join(
            filter(None, ["annotation labels changed; stored features kept", row.reason])))
    run.pending.extend(relabelled)
    run.flush()
    if settings.plot_dir is not None and run.cached:
        drawn = draw_stored_traces(out, run.cached, settings.plot_dir, settings.features,
                                   settings.task)
        log.info("drew %d trace figure(s) of stored videos in %s", len(drawn), settings.plot_dir)
    overlap_note = ""
    if annotations.overlap:
        overlap_note = ("**Subject overlap between splits:** " + ", ".join(
            f"{s} ({'/'.join(sp)})" for s, sp in annotations.overlap.items()))
    write_qc(out, run.all_rows(), bool(prepare_cfg["qc"]["overview"]), overlap_note)

    if run.problem_rows:
        log.warning("%d annotation row(s) not used (see %s): %s", len(run.problem_rows),
                    qc_paths(out)["md"], ", ".join(row.id for row in run.problem_rows))
    counts = dict(Counter(row.status for row in run.all_rows()))
    report = PrepareReport(store=out, qc_csv=qc_paths(out)["csv"], qc_md=qc_paths(out)["md"],
                           counts=counts, frames=run.frames, timings=dict(run.timings),
                           wall_s=time.perf_counter() - started,
                           exit_code=_exit_code(counts, bool(prepare_cfg["strict"])))
    log.info("prepare done in %.1fs: %s; %d frames (%.1f frames/s); QC: %s", report.wall_s,
             report.counts, report.frames, report.frames / max(report.wall_s, 1e-9), report.qc_md)
    return report


def _exit_code(counts: Mapping[str, int], strict: bool) -> int:
    return 1 if strict and counts.get(SKIPPED, 0) else 0


def merge_shards(store: Path, num_shards: int, strict: bool, overview: bool) -> PrepareReport:
    """Merge ``<store>.shard-<k>-of-<n>.h5`` (k = 0..n-1) and their QC tables into ``store``.

    All shards must exist (a missing one names the Slurm array task to rerun); shard files are
    kept, so a merge can be repeated.
    """
    started = time.perf_counter()
    shards = [shard_path(store, k, num_shards) for k in range(num_shards)]
    missing = [str(s) for s in shards if not s.exists()]
    if missing:
        raise FileNotFoundError(f"cannot merge into {store}: shard store(s) {missing} missing; "
                                f"rerun those array tasks (prepare.shard_index=k) first")
    written = merge_stores(store, shards)
    log.info("merged %d shards: %s", num_shards, written)
    rows = [row for shard in shards for row in read_qc_csv(qc_paths(shard)["csv"])]
    write_qc(store, rows, overview)
    counts = dict(Counter(row.status for row in rows))
    return PrepareReport(store=store, qc_csv=qc_paths(store)["csv"], qc_md=qc_paths(store)["md"],
                         counts=counts, wall_s=time.perf_counter() - started,
                         exit_code=_exit_code(counts, strict))


def prepare_from_config(cfg: Mapping[str, Any]) -> PrepareReport:
    """:func:`prepare` with the sections of a composed ``conf/config.yaml``."""
    return prepare(cfg["data_root"], cfg["paths"]["store"], cfg["task"], cfg["prepare"])
