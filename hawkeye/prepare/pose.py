"""Body-pose landmarks: MediaPipe Pose in tracking mode, and the leg that does the task.

Output contract: ``landmarks`` float32 ``(T, 33, 3)`` in MediaPipe's normalised image
coordinates (x / width, y / height, z relative depth), NaN for frames without a person, like the
hand contract (docs/architecture.md) with MediaPipe Pose's 33 points (:data:`POINTS`).

The model is MediaPipe's legacy ``mp.solutions.pose.Pose`` with ``model_complexity=1``: it reads
``mediapipe/modules/pose_landmark/pose_landmark_full.tflite`` (and ``pose_detection.tflite``),
both inside the pinned mediapipe wheel. Complexities 0 and 2 would download their model at first
use, which a batch job must never do, so the complexity is fixed here (:data:`MODEL_COMPLEXITY`).

Which side? MediaPipe Pose names the person's own left and right (``left_heel`` = the person's
left heel). For leg agility the annotation's side is checked against the motion like the tapping
hand (:func:`choose_leg`): the leg that does the task lifts its heel over and over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hawkeye.prepare import landmarks as lm

N_POINTS = 33
MODEL_COMPLEXITY = 1  # the only Pose model inside the wheel (pose_landmark_full.tflite)
MODEL_FILE = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
POINTS = {"nose": 0, "shoulder": (11, 12), "elbow": (13, 14), "wrist": (15, 16), "hip": (23, 24),
          "knee": (25, 26), "ankle": (27, 28), "heel": (29, 30), "foot_index": (31, 32)}
SIDES = ("l", "r")


def point(name: str, side: str) -> int:
    """Index of the person's ``side`` (``"l"``/``"r"``) ``name`` point: ``point("heel", "l")``."""
    if side not in SIDES:
        raise ValueError(f"side must be 'l' or 'r', got {side!r}")
    return POINTS[name][SIDES.index(side)]


def other(side: str) -> str:
    return "r" if side == "l" else "l"


@dataclass(frozen=True)
class PoseSettings:
    """``prepare.pose`` of ``conf/prepare/default.yaml``: detector and leg-choice settings."""

    min_detection_confidence: float  # person detector score needed to start tracking, 0..1
    min_tracking_confidence: float   # landmark score below which the detector runs again, 0..1
    motion_check: bool               # leg agility: take the other leg when only it lifts its heel
    min_oscillation_amplitude: float  # heel height range (p90 - p10) of a lifting leg, leg lengths
    min_oscillation_cycles: int      # heel lifts a leg doing the task makes at least

    @classmethod
    def from_config(cls, cfg: Any) -> PoseSettings:
        from hawkeye.config import section_values

        given = section_values(cls, cfg, "prepare.pose (conf/prepare/default.yaml)")
        return cls(min_detection_confidence=float(given["min_detection_confidence"]),
                   min_tracking_confidence=float(given["min_tracking_confidence"]),
                   motion_check=bool(given["motion_check"]),
                   min_oscillation_amplitude=float(given["min_oscillation_amplitude"]),
                   min_oscillation_cycles=int(given["min_oscillation_cycles"]))


class PoseDetector:
    """MediaPipe's legacy pose solution in tracking mode (one person; nothing downloaded).

    Call :meth:`reset` between videos so one video's tracking state never leaks into the next.
    """

    def __init__(self, min_detection_confidence: float, min_tracking_confidence: float,
                 static_image_mode: bool = False) -> None:
        import mediapipe as mp  # here: reading precomputed files never needs MediaPipe

        self.settings = dict(min_detection_confidence=min_detection_confidence,
                             min_tracking_confidence=min_tracking_confidence,
                             static_image_mode=static_image_mode)
        self._pose = mp.solutions.pose.Pose(model_complexity=MODEL_COMPLEXITY, **self.settings)
        lm.mark_graph_built()

    def detect(self, frame_rgb: np.ndarray) -> np.ndarray | None:
        """(33, 3) float32 landmarks of the person in one RGB ``(H, W, 3) uint8`` frame, or None."""
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
            raise ValueError(f"PoseDetector.detect expects an RGB (H, W, 3) uint8 frame, got "
                             f"{frame_rgb.shape} {frame_rgb.dtype}")
        result = self._pose.process(frame_rgb)
        if result.pose_landmarks is None:
            return None
        return np.array([(p.x, p.y, p.z) for p in result.pose_landmarks.landmark],
                        dtype=np.float32)

    def reset(self) -> None:
        """Forget the tracking state (call before each new video)."""
        self._pose.reset()

    def close(self) -> None:
        self._pose.close()


_POSE = lm.DetectorCache(PoseDetector)


def process_detector(min_detection_confidence: float,
                     min_tracking_confidence: float) -> PoseDetector:
    """This process's one pose detector (:class:`~hawkeye.prepare.landmarks.DetectorCache`)."""
    return _POSE.get(min_detection_confidence=min_detection_confidence,
                     min_tracking_confidence=min_tracking_confidence)


close_process_detector = _POSE.close


def stack(detections: list[np.ndarray | None]) -> np.ndarray:
    """(T, 33, 3) float32 landmarks from per-frame detections, NaN where nobody was found."""
    out = np.full((len(detections), N_POINTS, 3), np.nan, dtype=np.float32)
    for t, found in enumerate(detections):
        if found is not None:
            out[t] = found
    return out


# --------------------------------------------------------------------------- leg choice


def leg_length(pixels: np.ndarray, usable: np.ndarray, side: str) -> float:
    """Median over usable frames of hip -> knee -> ankle path length of ``side``, pixels."""
    chain = pixels[usable][:, [point("hip", side), point("knee", side), point("ankle", side)]]
    size = float(np.median(np.linalg.norm(np.diff(chain, axis=1), axis=2).sum(axis=1)))
    if not size > 0:
        raise ValueError(f"leg length ({side}) is {size} pixels: the pose landmarks are degenerate")
    return size


def heel_height(pixels: np.ndarray, side: str, size_px: float) -> np.ndarray:
    """(T,) height of ``side``'s heel above its hip's level, leg lengths (image y points down,
    so the hip's y minus the heel's y; about -1 with the leg hanging, rising as the heel lifts)."""
    return (pixels[:, point("hip", side), 1] - pixels[:, point("heel", side), 1]) / size_px


def choose_leg(landmarks: np.ndarray, side: str, width: int, height: int,
               settings: PoseSettings) -> lm.HandChoice:
    """The leg whose heel height is measured: the annotated ``side`` unless, with
    ``motion_check``, it does not lift its heel (:func:`hawkeye.prepare.landmarks.oscillation`
    below ``min_oscillation_amplitude`` or ``min_oscillation_cycles``) and the other leg does.

    The record's ``label`` is the chosen side (``"l"``/``"r"``), ``amplitudes`` the heel-height
    ranges of (left, right); ``reason``: ``annotated_side``, ``motion_override`` or ``no_person``.
    """
    if side not in SIDES:
        raise ValueError(f"leg agility needs the annotated side 'l' or 'r', got {side!r}")
    pixels = landmarks[..., :2].astype(np.float64) * np.array([width, height], dtype=np.float64)
    usable = np.isfinite(pixels).all(axis=(1, 2))
    if not usable.any():
        return lm.HandChoice(track=-1, n_tracks=0, label="", reason="no_person",
                             detail="no person detected in any frame")
    osc = {}
    for leg in SIDES:
        try:
            trace = heel_height(pixels, leg, leg_length(pixels, usable, leg))
        except ValueError:  # a degenerate leg cannot be the moving one
            trace = np.full(len(pixels), np.nan)
        osc[leg] = lm.oscillation(trace)
    amplitudes = (osc["l"].amplitude, osc["r"].amplitude)

    def lifts(leg: str) -> bool:
        return bool(np.isfinite(osc[leg].amplitude)
                    and osc[leg].amplitude >= settings.min_oscillation_amplitude
                    and osc[leg].cycles >= settings.min_oscillation_cycles)

    def describe(leg: str) -> str:
        return f"amplitude {osc[leg].amplitude:.2f} leg lengths, {osc[leg].cycles} lifts"

    if settings.motion_check and not lifts(side) and lifts(other(side)):
        return lm.HandChoice(
            track=SIDES.index(other(side)), n_tracks=2, label=other(side),
            reason="motion_override", amplitudes=amplitudes,
            detail=f"annotated leg {side!r} does not lift its heel ({describe(side)}) but the "
                   f"other does ({describe(other(side))}); took the other")
    return lm.HandChoice(track=SIDES.index(side), n_tracks=2, label=side, reason="annotated_side",
                         amplitudes=amplitudes,
                         detail=f"annotated leg {side!r} ({describe(side)})")


def both_sides(landmarks: np.ndarray) -> lm.HandChoice:
    """The record for tasks that measure the whole body (gait): no side is chosen."""
    seen = bool(np.isfinite(landmarks[:, 0, 0]).any())
    if not seen:
        return lm.HandChoice(track=-1, n_tracks=0, label="", reason="no_person",
                             detail="no person detected in any frame")
    return lm.HandChoice(track=0, n_tracks=1, label="", reason="whole_body",
                         detail="both sides measured")
