"""Clinical kinematic features of leg agility (MDS-UPDRS 3.8: seated, raise and stomp one foot
on the ground, as high and as fast as possible), as pure numpy functions on MediaPipe Pose
landmarks (:mod:`hawkeye.prepare.pose`).

The trace is the measured leg's heel height above its hip, in leg lengths
(:func:`hawkeye.prepare.pose.heel_height`): one raise-and-stomp is one cycle of the shared cycle
machinery (:mod:`hawkeye.prepare.cycles`): count, rate, amplitude, speeds, rhythm, decrement,
hesitations and halts. The other heel's height is kept as a series (it should stay still).
Formulas and units: docs/features.md.
"""

from __future__ import annotations

import numpy as np

from hawkeye.prepare import cycles, pose
from hawkeye.prepare import features as ft

SERIES_NAMES: tuple[str, ...] = (
    "heel_height",               # leg lengths, the measured leg
    "heel_velocity",             # leg lengths / s
    "heel_acceleration",         # leg lengths / s^2
    "other_heel_height",         # leg lengths, the other leg
    "pose_present",              # 1 = person detected in this frame, 0 = filled
)
SUMMARY_NAMES = cycles.CYCLE_SUMMARY_NAMES


def compute_features(landmarks: np.ndarray, presence: np.ndarray | None, fps: float,
                     width: float, height: float, config: ft.FeatureConfig,
                     side: str = "") -> ft.VideoFeatures:
    """Per-frame series and per-video heel-lift summary of the ``side`` (``"l"``/``"r"``) leg.

    ``landmarks`` ``(T, 33, 3)`` pose landmarks, NaN where nobody was seen; the other arguments as
    :func:`hawkeye.prepare.features.compute_features`. ``VideoFeatures.taps`` holds the heel lifts
    and ``hand_size_px`` the leg length (hip -> knee -> ankle, pixels).
    """
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    landmarks, presence, usable = ft.validate_landmarks(landmarks, presence, pose.N_POINTS)
    pixels = ft.to_pixels(landmarks, width, height)
    size_px = pose.leg_length(pixels, usable, side)
    raw = np.column_stack([pose.heel_height(pixels, side, size_px),
                           pose.heel_height(pixels, pose.other(side), size_px)])
    trace = cycles.cycle_trace(raw, usable, fps, config)
    series = np.column_stack([trace.smooth[:, 0], trace.velocity, trace.acceleration,
                              trace.smooth[:, 1], presence.astype(np.float64)])
    series, summary = cycles.checked(series, trace.summary)
    return ft.VideoFeatures(series=series, series_names=SERIES_NAMES, summary=summary,
                            summary_names=SUMMARY_NAMES, taps=trace.cycles, presence=presence,
                            hand_size_px=size_px)
