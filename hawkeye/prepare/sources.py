"""One video's landmarks and frame times from either source (``prepare.landmark_source``):
decoded and detected by MediaPipe (:func:`mediapipe_landmarks`) or read from the precomputed
``.landmarks.npz`` (:func:`precomputed_landmarks`). Both fill the timing fields of the QC row
(:mod:`hawkeye.prepare.timing`: container or file timestamps, an implausible rate flagged) and
return the same :data:`Landmarks` tuple; :func:`hawkeye.prepare.pipeline.process_video` takes it
from there.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np

from hawkeye.prepare import landmarks as lm
from hawkeye.prepare.pd4t import VideoItem
from hawkeye.prepare.qc import QcRow
from hawkeye.prepare.timing import container_timing, file_timing
from hawkeye.prepare.video import VideoError, iter_timed_frames, probe_video

if TYPE_CHECKING:  # types only: hawkeye.prepare.pipeline imports this module
    from hawkeye.prepare.pipeline import PrepareSettings

# (landmarks (T, 21, 3) with NaN where no hand, frame times (T,) s, the rate features use,
#  frame width, frame height, the hand choice, notes that flag the video)
Landmarks = tuple[np.ndarray, np.ndarray, float, int, int, lm.HandChoice, list[str]]


def mediapipe_landmarks(item: VideoItem, settings: PrepareSettings, qc: QcRow) -> Landmarks:
    """Decode + detect + choose the hand; fills the timing fields of ``qc``. Returns the
    landmarks, the frame times (s), the rate features use, the frame size, the hand choice and
    notes that flag the video."""
    video_cfg = settings.video
    info = probe_video(item.video_path, video_cfg["fps_fallback"], video_cfg["fps_min"],
                       video_cfg["fps_max"])
    detector = lm.process_detector(**settings.detector_settings())
    detector.reset()  # one video's tracking state must not leak into the next
    detections, stamps = [], []
    frames = iter_timed_frames(item.video_path, video_cfg["resize_max_side"])
    while True:
        start = time.perf_counter()
        frame, seconds = next(frames, (None, math.nan))
        qc.decode_s += time.perf_counter() - start
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
    cfg = settings.landmarks
    tracks = lm.track_hands(detections, cfg["max_num_hands"], cfg["new_track_distance"])
    choice = lm.choose_hand(tracks, item.hand, width=info.width, height=info.height,
                            **settings.choice_settings())
    qc.features_s += time.perf_counter() - start
    return lm.select_track(tracks, choice), times, fps, info.width, info.height, choice, notes


def precomputed_landmarks(item: VideoItem, settings: PrepareSettings, qc: QcRow) -> Landmarks:
    """Read the precomputed ``.landmarks.npz`` of ``item``; its timing checked as a container's
    (:func:`hawkeye.prepare.timing.file_timing`)."""
    start = time.perf_counter()
    data = lm.load_precomputed(item.landmarks_path)
    qc.decode_s += time.perf_counter() - start
    choice = lm.HandChoice(
        track=0, n_tracks=1, label="", reason="precomputed",
        detail=f"landmarks of the task hand read from {item.landmarks_path.name}")
    times, fps, notes = file_timing(item.landmarks_path, len(data.landmarks), data.fps,
                                    data.timestamps, settings.video, qc)
    return data.landmarks, times, fps, data.width, data.height, choice, notes
