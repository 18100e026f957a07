"""One video's landmarks and frame times from either source (``prepare.landmark_source``):
decoded and detected by the task's landmark model (``task.landmarks``: MediaPipe Hands or Pose,
:mod:`hawkeye.prepare.tasks`; :func:`mediapipe_landmarks`) or read from the precomputed
``.landmarks.npz`` (:func:`precomputed_landmarks`). Both fill the timing fields of the QC row
(:mod:`hawkeye.prepare.timing`: container or file timestamps, an implausible rate flagged; pose
landmarks get the same frame times as hand landmarks) and return the same :data:`Landmarks`
tuple; :func:`hawkeye.prepare.worker.process_video` takes it from there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import closing
from typing import TYPE_CHECKING, Any

import numpy as np

from hawkeye.prepare import landmarks as lm
from hawkeye.prepare.pd4t import VideoItem
from hawkeye.prepare.qc import QcRow
from hawkeye.prepare.timing import container_timing, file_timing
from hawkeye.prepare.video import (
    VideoError,
    iter_timed_frames,
    iter_timed_frames_ahead,
    probe_video,
)

if TYPE_CHECKING:  # types only: hawkeye.prepare.worker imports this module
    from hawkeye.prepare.worker import PrepareSettings

# (landmarks (T, points, 3) with NaN where the hand / body is missing, frame times (T,) s, the
#  rate features use, frame width, frame height, the hand / side choice, notes that flag the video)
Landmarks = tuple[np.ndarray, np.ndarray, float, int, int, lm.HandChoice, list[str]]


def _frames(item: VideoItem, video_cfg: dict[str, Any]) -> Iterator[tuple[np.ndarray, float]]:
    """The video's RGB frames and times, decoded ahead in a thread when ``prepare.video.
    decode_ahead`` > 0 (a section recorded before the key existed: in line)."""
    ahead = int(video_cfg.get("decode_ahead", 0))
    if ahead > 0:
        return iter_timed_frames_ahead(item.video_path, video_cfg["resize_max_side"], ahead)
    return iter_timed_frames(item.video_path, video_cfg["resize_max_side"])


def mediapipe_landmarks(item: VideoItem, settings: PrepareSettings, qc: QcRow) -> Landmarks:
    """Decode + detect with the task's landmark model + choose the hand or side; fills the timing
    fields of ``qc``. Returns the landmarks, the frame times (s), the rate features use, the frame
    size, the choice and notes that flag the video."""
    video_cfg = settings.video
    info = probe_video(item.video_path, video_cfg["fps_fallback"], video_cfg["fps_min"],
                       video_cfg["fps_max"])
    detector = settings.task.landmarks.process_detector(settings)
    detector.reset()  # one video's tracking state must not leak into the next
    detections, stamps = [], []
    with closing(_frames(item, video_cfg)) as frames:  # closed now: no decode thread outlives it
        while True:
            start = time.perf_counter()
            frame, seconds = next(frames, (None, math.nan))
            qc.decode_s += time.perf_counter() - start  # with a decode thread: the wait for it
            if frame is None:
                break
            stamps.append(seconds)
            start = time.perf_counter()
            detections.append(detector.detect(frame))
            qc.detect_s += time.perf_counter() - start
    if not detections:
        raise VideoError(item.video_path, "no frame could be decoded")
    times, fps, notes = container_timing(np.array(stamps), info, video_cfg, qc)
    if info.frame_count and len(detections) < info.frame_count:
        notes.append(f"decoded {len(detections)} of the {info.frame_count} frames the container "
                     f"announces (truncated file?)")
    start = time.perf_counter()
    landmarks, choice = settings.task.landmarks.select(
        detections, item.hand, info.width, info.height, settings, settings.task.features)
    qc.features_s += time.perf_counter() - start
    return landmarks, times, fps, info.width, info.height, choice, notes


def precomputed_landmarks(item: VideoItem, settings: PrepareSettings, qc: QcRow) -> Landmarks:
    """Read the precomputed ``.landmarks.npz`` of ``item`` (the task's number of points); its
    timing checked as a container's (:func:`hawkeye.prepare.timing.file_timing`)."""
    start = time.perf_counter()
    model = settings.task.landmarks
    data = lm.load_precomputed(item.landmarks_path, model.n_points)
    qc.decode_s += time.perf_counter() - start
    choice = model.precomputed(data.landmarks, item.hand, data.width, data.height, settings,
                               settings.task.features, item.landmarks_path.name)
    times, fps, notes = file_timing(item.landmarks_path, len(data.landmarks), data.fps,
                                    data.timestamps, settings.video, qc)
    return data.landmarks, times, fps, data.width, data.height, choice, notes
