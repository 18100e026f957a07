"""The preparation run: PD4T annotations -> per video landmarks -> gap fill -> features -> store.

:func:`prepare` is what ``python -m hawkeye.prepare`` (:mod:`hawkeye.prepare.__main__`), the Slurm
shard jobs (:mod:`hawkeye.prepare.submit`), tests and benchmarks call.

Per video (:func:`process_video`, run in worker processes, one MediaPipe detector each):

1. the source file (the video, or its ``.landmarks.npz`` with
   ``prepare.landmark_source=precomputed``) is hashed; an id already stored with the same hash is
   not processed again (resume);
2. landmarks and frame times (:mod:`hawkeye.prepare.sources`): MediaPipe in tracking mode with
   the task hand chosen and checked against the motion (:mod:`hawkeye.prepare.landmarks`), or the
   precomputed file; the frame count is checked against the annotation;
3. short gaps are interpolated (``hawkeye.prepare.landmarks.fill_gaps``), long ones stay masked;
4. clinical features (``hawkeye.prepare.features.compute_features``);
5. a :class:`hawkeye.store.VideoEntry` goes back to the main process, which writes the store every
   ``prepare.flush_every`` videos (atomic, merging with what is stored: a killed run loses at most
   that many videos' work and never damages the store).

Nothing about one bad video stops the run: a missing, empty or corrupt file, a video without a hand,
a bad annotation row (:mod:`hawkeye.prepare.pd4t`'s problem list) or a frame count that disagrees
with the file each get a log message naming the video and a row in the QC report
(:mod:`hawkeye.prepare.qc`); the exit code is non-zero only with ``prepare.strict=true``.

Slurm arrays: ``prepare.num_shards=N prepare.shard_index=k`` processes every N-th video (sorted by
id) into ``<store>.shard-<k>-of-<N>.h5``; ``prepare.merge=true`` merges the shard stores and their
QC tables into the store (:func:`merge_shards`; ``jobs/prepare.sbatch`` runs both steps).
"""
from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from hawkeye.faults import die_with_parent, store_lock
from hawkeye.io import file_sha256
from hawkeye.prepare import landmarks as lm
from hawkeye.prepare.features import SERIES_NAMES, SUMMARY_NAMES, FeatureConfig, compute_features
from hawkeye.prepare.pd4t import Pd4tConfig, VideoItem, frame_count_problem, load_annotations
from hawkeye.prepare.qc import (
    CACHED,
    FLAGGED,
    OK,
    RELABELLED,
    SKIPPED,
    QcRow,
    plot_video,
    problem_row,
    qc_paths,
    qc_row_for,
    read_qc_csv,
    write_qc,
)
from hawkeye.prepare.sources import mediapipe_landmarks, precomputed_landmarks
from hawkeye.prepare.traces import draw_stored_traces
from hawkeye.prepare.video import VideoError
from hawkeye.store import VideoEntry, load_store, merge_stores, stored_hashes, write_store

log = logging.getLogger(__name__)

LANDMARK_SOURCES = ("mediapipe", "precomputed")


# ------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class PrepareSettings:
    """What a worker needs to process one video; built once from ``cfg.prepare``."""

    landmark_source: str           # "mediapipe" or "precomputed"
    keep_landmarks: bool           # store landmarks + presence with the features
    frame_count_tolerance: int     # frames the annotation may differ from the file
    skip_frame_mismatch: bool      # do not store videos whose frame count disagrees
    max_missing_share: float       # flag videos with the hand missing in more frames than this
    skip_low_detection: bool       # do not store flagged low-detection videos
    video: dict[str, Any]          # prepare.video: fps_fallback, fps_min, fps_max, resize_max_side
    landmarks: dict[str, Any]      # prepare.landmarks (detector, hand choice, max_gap)
    features: FeatureConfig        # prepare.features
    plot_dir: Path | None = None   # where per-video QC figures go (None: no figures)

    @classmethod
    def from_config(cls, prepare_cfg: Mapping[str, Any], plot_dir: Path | None) -> PrepareSettings:
        """Build from the ``prepare`` config section; ValueError names a wrong value."""
        source = str(prepare_cfg["landmark_source"])
        if source not in LANDMARK_SOURCES:
            raise ValueError(f"prepare.landmark_source must be one of {LANDMARK_SOURCES}, "
                             f"got {source!r}")
        share = float(prepare_cfg["max_missing_share"])
        if not 0 <= share <= 1:
            raise ValueError(f"prepare.max_missing_share must be in [0, 1], got {share}")
        return cls(
            landmark_source=source,
            keep_landmarks=bool(prepare_cfg["keep_landmarks"]),
            frame_count_tolerance=int(prepare_cfg["frame_count_tolerance"]),
            skip_frame_mismatch=bool(prepare_cfg["skip_frame_mismatch"]),
            max_missing_share=share,
            skip_low_detection=bool(prepare_cfg["skip_low_detection"]),
            video=_plain(prepare_cfg["video"]),
            landmarks=_plain(prepare_cfg["landmarks"]),
            features=FeatureConfig.from_config(prepare_cfg["features"]),
            plot_dir=plot_dir if bool(prepare_cfg["qc"]["plots"]) else None,
        )

    def detector_settings(self) -> dict[str, Any]:
        keys = ("model_complexity", "min_detection_confidence", "min_tracking_confidence",
                "max_num_hands")
        return {key: self.landmarks[key] for key in keys}

    def choice_settings(self) -> dict[str, Any]:
        keys = ("mirrored", "min_track_share", "motion_check", "min_oscillation_amplitude",
                "min_oscillation_cycles")
        return {key: self.landmarks[key] for key in keys}


def _plain(section: Any) -> dict[str, Any]:
    """An OmegaConf section (or mapping) as a plain dict, picklable for worker processes."""
    if isinstance(section, DictConfig):
        return dict(OmegaConf.to_container(section, resolve=True))
    return dict(section)


# ------------------------------------------------------------------------------------- results



@dataclass
class VideoResult:
    """What a worker returns for one video."""

    qc: QcRow
    entry: VideoEntry | None = None     # None when skipped or cached


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


# ------------------------------------------------------------------------------------- one video


def _checks(item: VideoItem, raw: np.ndarray, choice: lm.HandChoice, settings: PrepareSettings
            ) -> tuple[list[str], bool]:
    """Warnings about one video's landmarks and whether they keep it out of the store."""
    notes, skip = [], False
    mismatch = frame_count_problem(item, len(raw), settings.frame_count_tolerance)
    if mismatch is not None:
        notes.append(mismatch.message)
        skip |= settings.skip_frame_mismatch
    missing = float(np.isnan(raw[:, 0, 0]).mean())
    if settings.max_missing_share < missing < 1:  # no hand at all is its own reason
        notes.append(f"hand missing in {missing:.0%} of frames (more than "
                     f"prepare.max_missing_share={settings.max_missing_share:.0%})")
        skip |= settings.skip_low_detection
    if choice.reason in ("motion_override", "motion_no_label"):
        notes.append(f"hand chosen by motion, not by label: {choice.detail}")  # worth a look
    return notes, skip


def process_video(item: VideoItem, stored_hash: str | None, settings: PrepareSettings
                  ) -> VideoResult:
    """Landmarks -> gap fill -> features -> :class:`VideoEntry` for one video, with its QC row.

    Never raises for bad input: a problem with the file becomes ``status="skipped"`` and a reason
    naming the file (an unexpected exception too, with its type and place, so that one bug cannot
    stop a run of hundreds of videos).
    """
    qc = qc_row_for(item)
    started = time.perf_counter()
    mediapipe = settings.landmark_source == "mediapipe"
    source = item.video_path if mediapipe else item.landmarks_path
    qc.source = str(source)
    try:
        if not source.exists():
            what = "video" if mediapipe else "landmark file (landmark_source=precomputed)"
            qc.reason = f"{source}: {what} named by the annotation of {item.id} not found"
            return VideoResult(qc)
        start = time.perf_counter()
        source_hash = file_sha256(source)
        qc.hash_s = time.perf_counter() - start
        if stored_hash == source_hash:
            qc.status = CACHED
            return VideoResult(qc)
        read = mediapipe_landmarks if mediapipe else precomputed_landmarks
        raw, times, fps, width, height, choice, notes = read(item, settings, qc)
        qc.frames, qc.fps, qc.width, qc.height = len(raw), fps, width, height
        qc.hand_choice, qc.hand_detail = choice.reason, choice.detail

        start = time.perf_counter()
        presence = ~np.isnan(raw[:, 0, 0])
        qc.detection_rate = float(presence.mean())
        qc.longest_gap = lm.longest_gap(presence)
        more_notes, skip = _checks(item, raw, choice, settings)
        notes += more_notes
        if not presence.any():
            qc.reason = " | ".join([f"{source}: no hand detected in any of {len(raw)} frames",
                                    *notes])
            return VideoResult(qc)
        filled = lm.fill_gaps(raw, settings.landmarks["max_gap"])
        qc.filled_frames = int((~presence & ~np.isnan(filled[:, 0, 0])).sum())
        try:
            features = compute_features(filled, presence, fps, width, height, settings.features)
        except ValueError as err:
            qc.reason = " | ".join([f"{source}: no features: {err}", *notes])
            return VideoResult(qc)
        qc.taps = features.taps.n
        qc.features_s += time.perf_counter() - start
        qc.reason = " | ".join(notes)
        if skip:
            qc.reason += " (not stored: prepare.skip_frame_mismatch / skip_low_detection)"
            return VideoResult(qc)
        qc.status = FLAGGED if notes else OK
        if settings.plot_dir is not None:
            plot_video(settings.plot_dir / f"{item.id}.png", features, times, qc)
        return VideoResult(qc, VideoEntry(
            id=item.id, subject=item.subject, score=item.score, split=item.split,
            series=features.series, summary=features.summary, hand=item.hand, fps=float(fps),
            source=str(source), source_hash=source_hash,
            landmarks=filled if settings.keep_landmarks else None,
            presence=presence if settings.keep_landmarks else None, timestamps=times))
    except (VideoError, lm.LandmarkError) as err:
        qc.reason = str(err)
        return VideoResult(qc)
    except Exception as err:  # noqa: BLE001 - a bug in one video must not stop the others
        place = traceback.extract_tb(err.__traceback__)[-1]
        qc.reason = (f"{source}: unexpected {type(err).__name__}: {err} (at "
                     f"{Path(place.filename).name}:{place.lineno})")
        return VideoResult(qc)
    finally:
        qc.total_s = time.perf_counter() - started


# ------------------------------------------------------------------------------------- workers

_WORKER_SETTINGS: PrepareSettings | None = None


def init_worker(settings: PrepareSettings) -> None:
    """Process pool initializer: keep the settings and build this process's one detector."""
    global _WORKER_SETTINGS
    parent = multiprocessing.parent_process()
    if parent is not None:  # a pool worker: it must not outlive a killed prepare (kill -9)
        die_with_parent(parent.pid)
    _WORKER_SETTINGS = settings
    if settings.landmark_source == "mediapipe":
        lm.process_detector(**settings.detector_settings())


def _run_task(task: tuple[VideoItem, str | None]) -> VideoResult:
    if _WORKER_SETTINGS is None:
        raise RuntimeError("worker used before init_worker")
    return process_video(task[0], task[1], _WORKER_SETTINGS)


def default_workers() -> int:
    """All cores this process may use (the Slurm allocation, not the whole node)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def pool_context(settings: PrepareSettings) -> multiprocessing.context.BaseContext:
    """How worker processes start: ``fork`` when it is safe, else ``spawn``.

    A forked worker inherits the imported modules, so it starts in ~0.2 s instead of the 4-17 s
    a spawned one spent here importing scipy, h5py and MediaPipe again on 2 loaded cores (a
    start-up that would eat the parallel speed-up on a small dataset). Forking is safe only while
    no MediaPipe graph was ever built in this process (:func:`hawkeye.prepare.landmarks.
    graph_built_in_process`; importing the module builds none), so MediaPipe is imported here
    and fork is used unless a graph exists or existed (e.g. a test session that ran the detector
    before); then workers are spawned.
    """
    if "fork" not in multiprocessing.get_all_start_methods() or lm.graph_built_in_process():
        return multiprocessing.get_context("spawn")
    if settings.landmark_source == "mediapipe":
        import mediapipe  # noqa: F401 - imported once here, inherited by every forked worker
    return multiprocessing.get_context("fork")


def run_videos(tasks: Sequence[tuple[VideoItem, str | None]], settings: PrepareSettings,
               workers: int) -> Iterator[VideoResult]:
    """Process ``tasks`` and yield results as they finish (in completion order).

    One worker runs in this process (no pool to start, easiest to debug); more use a process
    pool (:func:`pool_context`), each worker with its own detector built by :func:`init_worker`.
    """
    if not tasks:
        return
    if workers <= 1:
        init_worker(settings)
        try:
            for task in tasks:
                yield _run_task(task)
        finally:  # free the graph's threads and memory once the videos are done
            lm.close_process_detector()
        return
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=min(workers, len(tasks)), mp_context=pool_context(settings),
            initializer=init_worker, initargs=(settings,)) as pool:
        futures = [pool.submit(_run_task, task) for task in tasks]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


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
                 problem_rows: list[QcRow], previous_qc: dict[str, QcRow]) -> None:
        self.out, self.attrs, self.flush_every = out, attrs, flush_every
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
            written = write_store(self.out, self.pending, SERIES_NAMES, SUMMARY_NAMES, self.attrs)
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
    settings = PrepareSettings.from_config(prepare_cfg, qc_paths(out)["dir"])
    workers = prepare_cfg["workers"]
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"prepare.workers must be >= 1 (or null = all cores), got {workers}")

    annotations = load_annotations(data_root, Pd4tConfig.from_config(task_cfg))
    items = sorted(annotations.items, key=lambda item: item.id)[shard_index::num_shards]
    existing = stored_hashes(out)
    tasks = [(item, existing.get(item.id)) for item in items]
    attrs = {"task": str(task_cfg["name"]), "data_root": str(data_root),
             "landmark_source": settings.landmark_source,
             "prepare": {k: v for k, v in _plain(prepare_cfg).items()
                         if k not in ("shard_index", "num_shards", "merge", "workers", "submit",
                                      "jobs")}}  # how it ran, not what it computed
    run = _RunLog(
        out, attrs, flush_every,
        # Bad annotation rows belong to no shard: shard 0 reports them, a merge lists them once.
        problem_rows=[problem_row(p) for p in annotations.problems] if shard_index == 0 else [],
        previous_qc={row.id: row for row in read_qc_csv(qc_paths(out)["csv"])
                     if row.status in (OK, FLAGGED, CACHED, RELABELLED)})
    log.info("prepare: %d videos (shard %d of %d) from %s -> %s, %d worker(s), landmarks: %s; "
             "%d already stored", len(items), shard_index, num_shards, data_root, out, workers,
             settings.landmark_source, sum(1 for _, h in tasks if h))

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
        drawn = draw_stored_traces(out, run.cached, settings.plot_dir, settings.features)
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
