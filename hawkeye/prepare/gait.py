"""Clinical kinematic features of gait (MDS-UPDRS 3.10: walk away from the camera, turn, walk
back), as pure numpy functions on MediaPipe Pose landmarks (:mod:`hawkeye.prepare.pose`).

Steps are the cycles (:mod:`hawkeye.prepare.cycles`) of the ankle separation (distance between
the two ankles in the image, torso lengths): the feet are farthest apart once per step, whether
the person walks across the image or towards the camera. From them: cadence, step time, stride
time (the same foot's consecutive steps: every second step) and its variability. Arm swing is
each wrist's movement relative to its shoulder along its main direction; turning shows in the
shoulder line: its signed width (person's left shoulder x minus right, torso lengths) changes
sign when the person turns round and is near 0 while they are side-on. Formulas and units:
docs/features.md.
"""

from __future__ import annotations

import numpy as np

from hawkeye.prepare import cycles, pose
from hawkeye.prepare import features as ft

# A turn is a change of facing direction: the signed shoulder width crosses from above this share
# of its median magnitude to below minus it (hysteresis: tracking jitter around 0 is no turn), and
# side-on frames (|width| below it) count as turning time.
TURN_WIDTH_SHARE = 0.5

SERIES_NAMES: tuple[str, ...] = (
    "ankle_separation",          # torso lengths
    "ankle_separation_velocity",  # torso lengths / s
    "shoulder_width",            # torso lengths, signed (+: facing the camera, unmirrored video)
    "left_arm_swing",            # torso lengths along the left wrist's main direction
    "right_arm_swing",           # torso lengths along the right wrist's main direction
    "pose_present",              # 1 = person detected in this frame, 0 = filled
)
SUMMARY_NAMES: tuple[str, ...] = (
    "n_steps",                   # count
    "cadence_steps_per_min",     # steps / min
    "step_time_mean_s",          # s
    "step_time_cv",              # ratio
    "stride_time_mean_s",        # s
    "stride_time_cv",            # ratio
    "step_amplitude_mean",       # torso lengths
    "step_amplitude_slope_per_s",  # torso lengths / s
    "arm_swing_left",            # torso lengths
    "arm_swing_right",           # torso lengths
    "arm_swing_asymmetry",       # ratio
    "n_turns",                   # count
    "turning_share",             # ratio of frames
)


def torso_length(pixels: np.ndarray, usable: np.ndarray) -> float:
    """Median over usable frames of mid-shoulder to mid-hip distance, pixels."""
    shoulders = pixels[usable][:, list(pose.POINTS["shoulder"])].mean(axis=1)
    hips = pixels[usable][:, list(pose.POINTS["hip"])].mean(axis=1)
    size = float(np.median(np.linalg.norm(shoulders - hips, axis=1)))
    if not size > 0:
        raise ValueError(f"torso length is {size} pixels: the pose landmarks are degenerate")
    return size


def swing(relative: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """(T,) projection of ``(T, 2)`` positions on their main direction (first principal axis of
    the usable frames), centred on their mean; 0 where not usable."""
    seen = relative[usable]
    centred = seen - seen.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    out = np.zeros(len(relative))
    out[usable] = centred @ axes[0]
    return out


def robust_range(values: np.ndarray) -> float:
    """p90 - p10 of ``values`` (0 when empty)."""
    return float(np.subtract(*np.percentile(values, [90, 10]))) if values.size else 0.0


def count_turns(width: np.ndarray, band: float) -> int:
    """Sign changes of ``width`` that cross the whole band ``[-band, band]`` (hysteresis)."""
    side, turns = 0, 0
    for value in width:
        now = 1 if value > band else -1 if value < -band else 0
        if now and side and now != side:
            turns += 1
        side = now or side
    return turns


def stride_times(cycle: ft.TapCycles, usable: np.ndarray) -> np.ndarray:
    """Times between every second step (the same foot), s, over fully observed stretches only."""
    if cycle.n < 3:
        return np.zeros(0)
    keep = cycles.fully_observed(usable, cycle.peak[:-2], cycle.peak[2:])
    return (cycle.peak_s[2:] - cycle.peak_s[:-2])[keep]


def _cv(values: np.ndarray) -> float:
    mean = float(values.mean()) if values.size >= 2 else 0.0
    return float(values.std() / mean) if mean > 0 else 0.0


def summarize_gait(trace: cycles.CycleTrace, left: np.ndarray, right: np.ndarray,
                   width: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """The per-video summary ``(S,)`` float64 in :data:`SUMMARY_NAMES` order (0 where there are
    too few steps, as the cycle conventions of :func:`hawkeye.prepare.features.summarize_taps`)."""
    by_name = dict(zip(cycles.CYCLE_SUMMARY_NAMES, trace.summary, strict=True))
    strides = stride_times(trace.cycles, usable)
    swing_left, swing_right = robust_range(left[usable]), robust_range(right[usable])
    larger = max(swing_left, swing_right)
    band = TURN_WIDTH_SHARE * float(np.median(np.abs(width[usable])))
    return np.array([
        by_name["n_cycles"], 60.0 * by_name["cycle_frequency_hz"],
        by_name["interval_mean_s"], by_name["interval_cv"],
        float(strides.mean()) if strides.size else 0.0, _cv(strides),
        by_name["amplitude_mean"], by_name["amplitude_slope_per_s"],
        swing_left, swing_right, abs(swing_left - swing_right) / larger if larger > 0 else 0.0,
        count_turns(width[usable], band), float(np.mean(np.abs(width[usable]) < band)),
    ], dtype=np.float64)


def compute_features(landmarks: np.ndarray, presence: np.ndarray | None, fps: float,
                     width: float, height: float, config: ft.FeatureConfig,
                     side: str = "") -> ft.VideoFeatures:
    """Per-frame series and per-video gait summary of one walking video (both sides: ``side`` is
    not used). ``landmarks`` ``(T, 33, 3)``; the other arguments as
    :func:`hawkeye.prepare.features.compute_features`. ``VideoFeatures.taps`` holds the steps and
    ``hand_size_px`` the torso length (pixels)."""
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    landmarks, presence, usable = ft.validate_landmarks(landmarks, presence, pose.N_POINTS)
    pixels = ft.to_pixels(landmarks, width, height)
    size_px = torso_length(pixels, usable)
    ankles = pixels[:, [pose.point("ankle", "l"), pose.point("ankle", "r")]]
    shoulders = pixels[:, [pose.point("shoulder", "l"), pose.point("shoulder", "r")]]
    arms = [(pixels[:, pose.point("wrist", s)] - pixels[:, pose.point("shoulder", s)]) / size_px
            for s in pose.SIDES]
    raw = np.column_stack([
        np.linalg.norm(ankles[:, 0] - ankles[:, 1], axis=1) / size_px,
        (shoulders[:, 0, 0] - shoulders[:, 1, 0]) / size_px,
        *[swing(np.nan_to_num(arm), usable) for arm in arms],
    ])
    trace = cycles.cycle_trace(raw, usable, fps, config)
    shoulder_width, left, right = trace.smooth[:, 1], trace.smooth[:, 2], trace.smooth[:, 3]
    series = np.column_stack([trace.smooth[:, 0], trace.velocity, shoulder_width, left, right,
                              presence.astype(np.float64)])
    summary = summarize_gait(trace, left, right, shoulder_width, usable)
    series, summary = cycles.checked(series, summary)
    return ft.VideoFeatures(series=series, series_names=SERIES_NAMES, summary=summary,
                            summary_names=SUMMARY_NAMES, taps=trace.cycles, presence=presence,
                            hand_size_px=size_px)
