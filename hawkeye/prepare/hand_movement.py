"""Clinical kinematic features of hand movement (MDS-UPDRS 3.5: open and close the hand fully,
as fast and as wide as possible), as pure numpy functions on MediaPipe hand landmarks.

The trace is the hand aperture (:func:`hand_aperture`): the mean distance of the five fingertips
from the palm centre, divided by the palm size. It is largest with the hand open and smallest
with a fist, so one opening-closing movement is one cycle of the shared cycle machinery
(:mod:`hawkeye.prepare.cycles`): count, rate, amplitude, speeds, rhythm, decrement, hesitations
and halts, as finger tapping measures taps. Formulas and units: docs/features.md.

The palm size (wrist 0 to middle-finger MCP 9) is used whatever ``prepare.features.hand_size``
says: the index finger's projected length, finger tapping's default, shrinks as the finger curls
into a fist, so it would rescale the very movement being measured.
"""

from __future__ import annotations

import numpy as np

from hawkeye.prepare import cycles
from hawkeye.prepare import features as ft

FINGERTIPS = (4, 8, 12, 16, 20)   # thumb, index, middle, ring, little finger tips
PALM = (0, 5, 9, 13, 17)          # wrist and the four finger MCP joints: they stay put in a fist

SERIES_NAMES: tuple[str, ...] = (
    "hand_aperture",               # palm sizes
    "hand_aperture_velocity",      # palm sizes / s
    "hand_aperture_acceleration",  # palm sizes / s^2
    "wrist_speed",                 # palm sizes / s
    "hand_present",                # 1 = hand detected in this frame, 0 = filled
)
SUMMARY_NAMES = cycles.CYCLE_SUMMARY_NAMES


def hand_aperture(pixels: np.ndarray) -> np.ndarray:
    """(T,) mean distance of the five fingertips from the palm centre (mean of :data:`PALM`), px."""
    centre = pixels[:, PALM].mean(axis=1)
    return np.linalg.norm(pixels[:, FINGERTIPS] - centre[:, None], axis=2).mean(axis=1)


def compute_features(landmarks: np.ndarray, presence: np.ndarray | None, fps: float,
                     width: float, height: float, config: ft.FeatureConfig,
                     side: str = "") -> ft.VideoFeatures:
    """Per-frame series and per-video cycle summary of one hand-movement video.

    Arguments as :func:`hawkeye.prepare.features.compute_features` (``side`` is not used: the
    hand was chosen before). ``VideoFeatures.taps`` holds the open-close cycles.
    """
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    landmarks, presence, usable = ft.validate_landmarks(landmarks, presence)
    pixels = ft.to_pixels(landmarks, width, height)
    size_px = ft.hand_size(pixels, usable, "palm")
    raw = np.column_stack([hand_aperture(pixels) / size_px, pixels[:, ft.WRIST]])
    trace = cycles.cycle_trace(raw, usable, fps, config)
    wrist_speed = np.linalg.norm(ft.derivative(trace.smooth[:, 1:3], fps), axis=1) / size_px
    wrist_speed[~usable] = 0.0
    series = np.column_stack([trace.smooth[:, 0], trace.velocity, trace.acceleration,
                              wrist_speed, presence.astype(np.float64)])
    series, summary = cycles.checked(series, trace.summary)
    return ft.VideoFeatures(series=series, series_names=SERIES_NAMES, summary=summary,
                            summary_names=SUMMARY_NAMES, taps=trace.cycles, presence=presence,
                            hand_size_px=size_px)
