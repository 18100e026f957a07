"""One video in a worker process: the settings, landmarks, checks and features, the process pool.

:func:`process_video` turns one annotated video (or its ``.landmarks.npz`` with
``prepare.landmark_source=precomputed``) into a :class:`hawkeye.store.VideoEntry` and its QC row:

1. the source file is hashed; an id already stored with the same hash is not processed again
   (resume);
2. landmarks and frame times (:mod:`hawkeye.prepare.sources`): the task's landmark model
   (``task.landmarks``, :mod:`hawkeye.prepare.tasks`): MediaPipe Hands in tracking mode with the
   task hand chosen and checked against the motion (:mod:`hawkeye.prepare.landmarks`) or
   MediaPipe Pose with the task's side (:mod:`hawkeye.prepare.pose`), or the precomputed file;
   the times from the container or the file (:mod:`hawkeye.prepare.timing`, an implausible rate
   flagged); the frame count is checked against the annotation;
3. short gaps are interpolated (``hawkeye.prepare.landmarks.fill_gaps``), long ones stay masked;
4. clinical features of the task's feature set (``task.features``: finger tapping, hand
   movement, leg agility or gait; :mod:`hawkeye.prepare.tasks`).

:func:`run_videos` runs it over many videos, in this process or in a process pool whose workers
each build one detector (:func:`init_worker`) and die with a killed parent. The main process's
side of a run (flushes, QC report, shards) is :mod:`hawkeye.prepare.pipeline`; predict scores
new videos through the same :func:`process_video`.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from hawkeye.faults import die_with_parent
from hawkeye.io import file_sha256
from hawkeye.prepare import landmarks as lm
from hawkeye.prepare.features import FeatureConfig
from hawkeye.prepare.pd4t import VideoItem, frame_count_problem
from hawkeye.prepare.pose import PoseSettings
from hawkeye.prepare.qc import (
    CACHED,
    FLAGGED,
    OK,
    QcRow,
    VideoTrace,
    plot_video,
    qc_row_for,
    video_trace,
)
from hawkeye.prepare.sources import mediapipe_landmarks, precomputed_landmarks
from hawkeye.prepare.tasks import TaskSpec, task_spec_from_config
from hawkeye.prepare.video import VideoError
from hawkeye.store import VideoEntry

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
    task: TaskSpec                 # landmark model and feature set (hawkeye.prepare.tasks)
    pose: PoseSettings | None      # prepare.pose (None: a recorded section from before pose tasks)
    plot_dir: Path | None = None   # where per-video QC figures go (None: no figures)
    keep_trace: bool = False       # return each video's trace (VideoResult.trace) to draw later

    @classmethod
    def from_config(cls, prepare_cfg: Mapping[str, Any], plot_dir: Path | None,
                    task_cfg: Mapping[str, Any] | None = None) -> PrepareSettings:
        """Build from the ``prepare`` config section and the task's ``landmarks``/``features``
        (``task_cfg``; None: finger tapping, what every store before them holds); ValueError
        names a wrong value."""
        source = str(prepare_cfg["landmark_source"])
        if source not in LANDMARK_SOURCES:
            raise ValueError(f"prepare.landmark_source must be one of {LANDMARK_SOURCES}, "
                             f"got {source!r}")
        share = float(prepare_cfg["max_missing_share"])
        if not 0 <= share <= 1:
            raise ValueError(f"prepare.max_missing_share must be in [0, 1], got {share}")
        task = task_spec_from_config(task_cfg)
        if task.landmarks.name == "pose" and "pose" not in prepare_cfg:
            raise ValueError("task.landmarks=pose needs the prepare.pose section "
                             "(conf/prepare/default.yaml)")
        return cls(
            landmark_source=source,
            keep_landmarks=bool(prepare_cfg["keep_landmarks"]),
            frame_count_tolerance=int(prepare_cfg["frame_count_tolerance"]),
            skip_frame_mismatch=bool(prepare_cfg["skip_frame_mismatch"]),
            max_missing_share=share,
            skip_low_detection=bool(prepare_cfg["skip_low_detection"]),
            video=plain_section(prepare_cfg["video"]),
            landmarks=plain_section(prepare_cfg["landmarks"]),
            features=FeatureConfig.from_config(prepare_cfg["features"]),
            task=task,
            pose=PoseSettings.from_config(prepare_cfg["pose"]) if "pose" in prepare_cfg else None,
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


def plain_section(section: Any) -> dict[str, Any]:
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
    trace: VideoTrace | None = None     # with plot_dir or keep_trace: what the trace figure draws


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
        notes.append(f"{settings.task.landmarks.subject} missing in {missing:.0%} of frames "
                     f"(more than prepare.max_missing_share={settings.max_missing_share:.0%})")
        skip |= settings.skip_low_detection
    if choice.reason in ("motion_override", "motion_no_label"):
        notes.append(f"chosen by motion, not by label: {choice.detail}")  # worth a look
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
            qc.reason = " | ".join([f"{source}: no {settings.task.landmarks.subject} detected in "
                                    f"any of {len(raw)} frames",
                                    *notes])
            return VideoResult(qc)
        filled = lm.fill_gaps(raw, settings.landmarks["max_gap"])
        qc.filled_frames = int((~presence & ~np.isnan(filled[:, 0, 0])).sum())
        try:
            features = settings.task.features.compute(filled, presence, fps, width, height,
                                                      settings.features, side=choice.label)
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
        trace = None
        if settings.plot_dir is not None or settings.keep_trace:
            trace = video_trace(features.series[:, 0], features.presence, times, features.taps)
        if settings.plot_dir is not None:
            plot_video(settings.plot_dir / f"{item.id}.png", trace, qc,
                       settings.task.features.trace, f"{settings.task.score.name} {item.score} "
                       "(rated)")
        return VideoResult(qc, trace=trace, entry=VideoEntry(
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
        settings.task.landmarks.process_detector(settings)


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
            settings.task.landmarks.close_process_detector()
        return
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=min(workers, len(tasks)), mp_context=pool_context(settings),
            initializer=init_worker, initargs=(settings,)) as pool:
        futures = [pool.submit(_run_task, task) for task in tasks]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()
