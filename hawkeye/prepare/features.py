"""Clinical kinematic features of finger tapping, as pure numpy/scipy functions.

Input is the landmark contract of ``docs/architecture.md``: ``landmarks`` float32 ``(T, 21, 3)`` in
MediaPipe's normalised image coordinates (x / width, y / height), NaN where no hand, plus the frame
``width``/``height`` in pixels and ``fps``. Every length is measured in pixels with x and y scaled
separately (x * width, y * height: non-square frames) and then divided by a hand-size measure, so
the features do not depend on the camera distance or the frame shape. Only the image-plane (x, y)
coordinates are used; MediaPipe's z is a relative depth estimate too noisy for kinematics.

Two outputs (formulas, units and references for each in ``docs/features.md``):

- per-frame series ``(T, F)`` float32, names in :data:`SERIES_NAMES`: thumb–index distance, its
  velocity and acceleration, the thumb–index angle at the wrist, wrist speed, and a hand-present
  flag. They are NaN-free at every frame: where the hand is missing (NaN landmarks), distance and
  angle are linearly interpolated between the nearest frames with a hand (held constant before the
  first and after the last), and velocity, acceleration and wrist speed are 0 (a derivative of
  invented data is not reported). ``hand_present`` (1/0) carries the given presence mask.
- a per-video summary ``(S,)`` float32, names in :data:`SUMMARY_NAMES`, from the detected tap
  cycles (:func:`detect_taps`): count, frequency, amplitude, opening/closing speed, rhythm,
  decrement, hesitations and halts. Every value is defined for 0 or 1 taps (see
  :func:`summarize_taps` for the conventions), never NaN.

:func:`compute_features` is the one entry point prepare calls; the smaller functions are public so
they can be tested against analytic signals one by one (movement-style).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy.signal import butter, find_peaks, sosfiltfilt

from hawkeye.config import section_values

N_LANDMARKS = 21
WRIST, THUMB_TIP, INDEX_MCP, INDEX_PIP, INDEX_DIP, INDEX_TIP, MIDDLE_MCP = 0, 4, 5, 6, 7, 8, 9
MIN_FRAMES = 3  # acceleration is a second difference: fewer frames carry no kinematics

HAND_SIZE_MEASURES = ("index_finger", "palm")

SERIES_NAMES: tuple[str, ...] = (
    "thumb_index_distance",      # hand sizes
    "thumb_index_velocity",      # hand sizes / s
    "thumb_index_acceleration",  # hand sizes / s^2
    "thumb_index_angle",         # degrees, at the wrist
    "wrist_speed",               # hand sizes / s
    "hand_present",              # 1 = hand detected in this frame, 0 = filled
)

SUMMARY_NAMES: tuple[str, ...] = (
    "n_taps",                    # count
    "tap_frequency_hz",          # taps / s
    "amplitude_mean",            # hand sizes
    "amplitude_cv",              # ratio
    "open_speed_mean",           # hand sizes / s
    "open_speed_max",            # hand sizes / s
    "close_speed_mean",          # hand sizes / s
    "close_speed_max",           # hand sizes / s
    "iti_mean_s",                # s
    "iti_cv",                    # ratio
    "amplitude_slope_per_s",     # hand sizes / s
    "amplitude_ratio_last_first",  # ratio
    "n_hesitations",             # count
    "n_halts",                   # count
    "longest_interval_s",        # s
    "cycle_duration_range_s",    # s
)


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the feature extraction: ``prepare.features`` of ``conf/prepare/default.yaml``.

    The YAML block is the single source of the defaults: build this with :meth:`from_config`.
    """

    hand_size: str              # "index_finger" (path 5→6→7→8) or "palm" (wrist 0 → middle MCP 9)
    lowpass_hz: float           # Butterworth low-pass cutoff, Hz (>= fps / 2: no filtering)
    lowpass_order: int          # Butterworth order of each pass (filtfilt runs two)
    peak_prominence: float      # tap prominence as a fraction of the distance's 5–95 % range
    min_peak_prominence: float  # lower bound of the tap prominence, hand sizes
    min_tap_interval_s: float   # peaks closer than this are one tap, s
    hesitation_factor: float    # interval > factor x median interval is a hesitation
    halt_s: float               # interval longer than this is a halt, s

    def __post_init__(self) -> None:
        if self.hand_size not in HAND_SIZE_MEASURES:
            raise ValueError(f"features.hand_size must be one of {HAND_SIZE_MEASURES}, "
                             f"got {self.hand_size!r}")
        positive = ("lowpass_hz", "lowpass_order", "min_tap_interval_s", "hesitation_factor",
                    "halt_s")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"features.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("peak_prominence", "min_peak_prominence"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"features.{name} must be >= 0, got {getattr(self, name)!r}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> FeatureConfig:
        """Build from the ``prepare.features`` mapping (a dict or an OmegaConf ``DictConfig``).

        Every field must be present and no other key may be: a typo in an override should fail
        here, not silently fall back to a default.
        """
        given = section_values(cls, cfg, "prepare.features (conf/prepare/default.yaml)")
        names = [f.name for f in fields(cls)]
        casts = {"hand_size": str, "lowpass_order": int}
        try:
            values = {n: casts.get(n, float)(given[n]) for n in names}
        except (TypeError, ValueError) as err:
            raise ValueError(f"prepare.features: a value has the wrong type: {err}") from err
        return cls(**values)


@dataclass(frozen=True)
class TapCycles:
    """The tap cycles found in one video; all arrays ``(n,)``.

    A cycle runs from the valley before its peak (fingers closed) through the peak (fingers
    furthest apart) to the valley after it; consecutive cycles share their valley. Frame indices are
    the samples; times are refined between samples (parabola through the extremum and its two
    neighbours), so durations and speeds are not quantised to whole frames.
    """

    peak: np.ndarray             # int64, frame of maximal opening
    start: np.ndarray            # int64, frame of the valley before the peak (opening starts)
    end: np.ndarray              # int64, frame of the valley after the peak (closing ends)
    peak_s: np.ndarray           # s, refined time of the peak
    start_s: np.ndarray          # s, refined time of the valley before
    end_s: np.ndarray            # s, refined time of the valley after
    amplitude: np.ndarray        # hand sizes, peak height above the line joining the two valleys
    open_speed: np.ndarray       # hand sizes / s, (d_peak - d_start) / (t_peak - t_start)
    close_speed: np.ndarray      # hand sizes / s, (d_peak - d_end) / (t_end - t_peak)
    open_speed_max: np.ndarray   # hand sizes / s, largest velocity while opening
    close_speed_max: np.ndarray  # hand sizes / s, largest -velocity while closing

    @property
    def n(self) -> int:
        """Number of taps."""
        return int(self.peak.size)


@dataclass(frozen=True)
class VideoFeatures:
    """Everything :func:`compute_features` derives from one video's landmarks."""

    series: np.ndarray                # (T, F) float32, NaN-free
    series_names: tuple[str, ...]     # F names, SERIES_NAMES
    summary: np.ndarray               # (S,) float32, NaN-free
    summary_names: tuple[str, ...]    # S names, SUMMARY_NAMES
    taps: TapCycles                   # the detected cycles (for QC plots)
    presence: np.ndarray              # (T,) bool, frames with a detected hand
    hand_size_px: float               # the hand-size measure, pixels


# --------------------------------------------------------------------------- geometry


def validate_landmarks(landmarks: np.ndarray, presence: np.ndarray | None = None,
                       n_points: int = N_LANDMARKS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the landmark contract (``n_points``: 21 hand, 33 body-pose points); return
    ``(landmarks float64, presence, usable)``.

    ``usable`` marks frames whose x, y are finite for every landmark (frames filled by the landmark
    stage's short-gap interpolation are usable even where ``presence`` is False). ``presence``
    defaults to the contract's ``~isnan(landmarks[:, 0, 0])``; a frame cannot be present without
    usable coordinates.
    """
    landmarks = np.asarray(landmarks)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (n_points, 3):
        raise ValueError(f"landmarks must have shape (T, {n_points}, 3), got {landmarks.shape}")
    if landmarks.shape[0] < MIN_FRAMES:
        raise ValueError(f"landmarks have {landmarks.shape[0]} frames; at least {MIN_FRAMES} are "
                         f"needed for velocity and acceleration (shape {landmarks.shape})")
    landmarks = landmarks.astype(np.float64, copy=False)
    usable = np.isfinite(landmarks[:, :, :2]).all(axis=(1, 2))
    if presence is None:
        presence = ~np.isnan(landmarks[:, 0, 0])
    presence = np.asarray(presence)
    if presence.shape != landmarks.shape[:1]:
        raise ValueError(f"presence must have shape ({landmarks.shape[0]},) to match landmarks "
                         f"{landmarks.shape}, got {presence.shape}")
    presence = presence.astype(bool)
    if np.any(presence & ~usable):
        frames = np.flatnonzero(presence & ~usable)[:5].tolist()
        raise ValueError(f"presence is True at frames {frames}... but their landmarks are not "
                         "finite; NaN landmarks must be marked absent")
    if not usable.any():
        raise ValueError(f"no frame of {landmarks.shape[0]} has a hand (all landmarks NaN): "
                         "nothing to measure")
    return landmarks, presence, usable


def to_pixels(landmarks: np.ndarray, width: float, height: float) -> np.ndarray:
    """Normalised (x, y) to pixels, ``(T, 21, 2)``: x * width and y * height, scaled separately."""
    if not (np.isfinite(width) and np.isfinite(height) and width > 0 and height > 0):
        raise ValueError(f"frame width and height must be positive, got {width} x {height}")
    return landmarks[..., :2] * np.array([width, height], dtype=np.float64)


def hand_size(pixels: np.ndarray, usable: np.ndarray, measure: str) -> float:
    """Median over usable frames of the hand-size measure, pixels.

    ``index_finger``: |p5p6| + |p6p7| + |p7p8| (MCP → PIP → DIP → tip path length; it does not
    change as the finger opens and closes). ``palm``: |p0p9| (wrist → middle-finger MCP). The median
    over frames makes it robust to frames where the tracker misplaces the finger.
    """
    frames = pixels[usable]
    if measure == "index_finger":
        chain = frames[:, [INDEX_MCP, INDEX_PIP, INDEX_DIP, INDEX_TIP]]
        per_frame = np.linalg.norm(np.diff(chain, axis=1), axis=2).sum(axis=1)
    elif measure == "palm":
        per_frame = np.linalg.norm(frames[:, MIDDLE_MCP] - frames[:, WRIST], axis=1)
    else:
        raise ValueError(f"hand-size measure must be one of {HAND_SIZE_MEASURES}, got {measure!r}")
    size = float(np.median(per_frame))
    if not size > 0:
        raise ValueError(f"hand size ({measure}) is {size} pixels: the landmarks are degenerate")
    return size


def thumb_index_distance(pixels: np.ndarray) -> np.ndarray:
    """Thumb-tip (4) to index-tip (8) distance per frame, pixels, ``(T,)``."""
    return np.linalg.norm(pixels[:, INDEX_TIP] - pixels[:, THUMB_TIP], axis=1)


def thumb_index_angle(pixels: np.ndarray) -> np.ndarray:
    """Angle at the wrist between wrist→thumb tip and wrist→index tip, degrees in [0, 180].

    ``atan2(|u x v|, u . v)`` rather than ``arccos`` of the normalised dot product: accurate near 0
    and 180 degrees and defined (0) when a vector has zero length.
    """
    u = pixels[:, THUMB_TIP] - pixels[:, WRIST]
    v = pixels[:, INDEX_TIP] - pixels[:, WRIST]
    cross = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    dot = (u * v).sum(axis=1)
    return np.degrees(np.arctan2(np.abs(cross), dot))


# --------------------------------------------------------------------------- signal processing


def fill_gaps(values: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Linearly interpolate ``values`` ``(T,)`` or ``(T, K)`` over frames where ``usable`` is False.

    Before the first and after the last usable frame the nearest usable value is held (np.interp).
    """
    if usable.all():
        return values
    t = np.arange(usable.size)
    known = np.flatnonzero(usable)
    if values.ndim == 1:
        return np.interp(t, known, values[known])
    return np.stack([np.interp(t, known, values[known, k]) for k in range(values.shape[1])],
                    axis=1)


@functools.lru_cache(maxsize=64)
def _butterworth(order: int, cutoff_hz: float, fps: float) -> np.ndarray:
    return butter(order, cutoff_hz, btype="low", fs=fps, output="sos")


def lowpass(values: np.ndarray, fps: float, cutoff_hz: float, order: int) -> np.ndarray:
    """Zero-phase Butterworth low-pass along axis 0 (``scipy.signal.sosfiltfilt``).

    Zero phase keeps peaks at their true frames. Left unfiltered, and said so here rather than
    failing: a cutoff at or above the Nyquist frequency (``fps / 2``; nothing to remove) and a
    sequence no longer than filtfilt's edge padding (``3 * (2 * sections + 1)`` frames, 15 for
    order 4), where the edge transient would be the whole signal.
    """
    if cutoff_hz >= fps / 2:
        return values
    sos = _butterworth(int(order), float(cutoff_hz), float(fps))
    padlen = 3 * (2 * sos.shape[0] + 1)
    if values.shape[0] <= padlen:
        return values
    return sosfiltfilt(sos, values, axis=0, padlen=padlen)


def derivative(values: np.ndarray, fps: float) -> np.ndarray:
    """Time derivative along axis 0, units per second: central differences inside, one-sided at the
    ends (``np.gradient``), exact for a linear ramp."""
    return np.gradient(values, 1.0 / fps, axis=0)


def frame_series(pixels: np.ndarray, usable: np.ndarray, presence: np.ndarray, fps: float,
                 size_px: float, config: FeatureConfig) -> np.ndarray:
    """The per-frame series ``(T, F)`` float64 in :data:`SERIES_NAMES` order (see module docstring).

    Distance, angle and wrist position are computed at usable frames, interpolated over the others,
    low-pass filtered together, then differentiated; derivatives are zeroed where no hand is usable.
    """
    raw = np.column_stack([
        thumb_index_distance(pixels) / size_px,
        thumb_index_angle(pixels),
        pixels[:, WRIST],
    ])  # (T, 4): distance, angle, wrist x, wrist y
    smooth = lowpass(fill_gaps(raw, usable), fps, config.lowpass_hz, config.lowpass_order)
    distance, angle = smooth[:, 0], smooth[:, 1]
    velocity = derivative(distance, fps)
    acceleration = derivative(velocity, fps)
    wrist_speed = np.linalg.norm(derivative(smooth[:, 2:4], fps), axis=1) / size_px
    for derived in (velocity, acceleration, wrist_speed):
        derived[~usable] = 0.0
    return np.column_stack([distance, velocity, acceleration, angle, wrist_speed,
                            presence.astype(np.float64)])


# --------------------------------------------------------------------------- tap cycles


def detect_taps(distance: np.ndarray, velocity: np.ndarray, fps: float, usable: np.ndarray,
                config: FeatureConfig) -> TapCycles:
    """Find tap cycles in the (filtered, normalised) thumb–index distance.

    A tap is a peak of ``distance`` (``scipy.signal.find_peaks``) whose prominence is at least
    ``max(peak_prominence * (P95 - P5), min_peak_prominence)`` (P = percentiles of the distance at
    usable frames: relative to this video's range, but a still hand's noise never counts) and that
    lies at least ``min_tap_interval_s * fps`` frames from a higher peak. Peaks at frames without a
    usable hand are dropped. The valley of a cycle is the minimum of the distance between two
    consecutive peaks (or between a peak and the sequence end).
    """
    observed = distance[usable]
    spread = float(np.percentile(observed, 95) - np.percentile(observed, 5))
    prominence = max(config.peak_prominence * spread, config.min_peak_prominence)
    min_gap = max(1, int(round(config.min_tap_interval_s * fps)))
    peaks, _ = find_peaks(distance, prominence=prominence, distance=min_gap)
    peaks = peaks[usable[peaks]].astype(np.int64)
    if peaks.size == 0:
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return TapCycles(empty_i, empty_i, empty_i, *([empty_f] * 8))

    bounds = np.concatenate([[0], peaks, [distance.size - 1]])
    # valley k lies between bounds k and k+1: before the first peak, between peaks, after the last
    valleys = np.array([lo + int(np.argmin(distance[lo:hi + 1]))
                        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)], dtype=np.int64)
    start, end = valleys[:-1], valleys[1:]

    peak_f, d_peak = refine_extrema(distance, peaks)
    valley_f, d_valley = refine_extrema(distance, valleys)
    t_peak, t_valley = peak_f / fps, valley_f / fps
    t_start, t_end, d_start, d_end = t_valley[:-1], t_valley[1:], d_valley[:-1], d_valley[1:]
    # at least one frame per phase: a cycle cut by the sequence edge can have its valley on the peak
    open_s = np.maximum(t_peak - t_start, 1.0 / fps)
    close_s = np.maximum(t_end - t_peak, 1.0 / fps)
    baseline = d_start + (d_end - d_start) * open_s / (open_s + close_s)
    open_max = np.array([velocity[a:p + 1].max() for a, p in zip(start, peaks, strict=True)])
    close_max = np.array([(-velocity[p:b + 1]).max() for p, b in zip(peaks, end, strict=True)])
    return TapCycles(
        peak=peaks, start=start, end=end,
        peak_s=t_peak, start_s=t_start, end_s=t_end,
        amplitude=d_peak - baseline,
        open_speed=(d_peak - d_start) / open_s,
        close_speed=(d_peak - d_end) / close_s,
        open_speed_max=open_max,
        close_speed_max=close_max,
    )


def refine_extrema(values: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-frame position and value of local extrema at ``index`` of a 1-D signal.

    Fits a parabola through each extremum and its two neighbours; the vertex is at
    ``i + (y[i-1] - y[i+1]) / (2 (y[i-1] - 2 y[i] + y[i+1]))`` (offset clipped to half a frame)
    with value ``y[i] - (y[i-1] - y[i+1]) * offset / 4``. Extrema on the first or last frame, or on
    a flat stretch, keep their sample. Without this, a tap whose true peak falls between two frames
    gets its opening time wrong by up to half a frame (7 % of a 2 Hz cycle at 30 fps).
    """
    position = index.astype(np.float64)
    value = values[index].astype(np.float64)
    inner = (index > 0) & (index < values.size - 1)
    i = index[inner]
    before, here, after = values[i - 1], values[i], values[i + 1]
    curvature = before - 2 * here + after
    flat = curvature == 0
    offset = np.clip(0.5 * (before - after) / np.where(flat, 1.0, curvature), -0.5, 0.5)
    offset[flat] = 0.0
    position[inner] += offset
    value[inner] = here - 0.25 * (before - after) * offset
    return position, value


def _cv(values: np.ndarray) -> float:
    """Coefficient of variation std / mean (population std); 0 for fewer than 2 values or mean 0."""
    if values.size < 2:
        return 0.0
    mean = float(values.mean())
    return float(values.std() / mean) if mean != 0 else 0.0


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def summarize_taps(taps: TapCycles, fps: float, usable: np.ndarray,
                   config: FeatureConfig) -> np.ndarray:
    """The per-video summary ``(S,)`` float64 in :data:`SUMMARY_NAMES` order.

    Intervals (inter-tap intervals, cycle durations) that contain a frame without a usable hand are
    left out of the interval statistics: a gap in tracking is not evidence of a halt. Conventions
    for few taps, chosen so that every value is defined and "no evidence" reads as "no change":
    means, speeds, frequency, interval statistics, slope, counts, longest interval and range are 0
    when they need more taps than there are (0 taps: all 0; 1 tap: amplitude and speeds defined,
    everything about intervals 0); CVs are 0 for fewer than two values; the last/first-third
    amplitude ratio is 1 for fewer than 3 taps.
    """
    n = taps.n
    missing_before = np.concatenate([[0], np.cumsum(~usable)])  # missing frames in [0, i)

    def fully_observed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (missing_before[b + 1] - missing_before[a]) == 0

    if n:
        first, last = int(taps.start[0]), int(taps.end[-1])
        observed_span_s = (taps.end_s[-1] - taps.start_s[0]
                           - (missing_before[last] - missing_before[first]) / fps)
        frequency = n / observed_span_s if observed_span_s > 0 else 0.0
    else:
        frequency = 0.0

    intervals = np.diff(taps.peak_s)[fully_observed(taps.peak[:-1], taps.peak[1:])]
    if intervals.size:
        median = float(np.median(intervals))
        n_hesitations = int(np.sum(intervals > config.hesitation_factor * median))
        n_halts = int(np.sum(intervals > config.halt_s))
        longest = float(intervals.max())
    else:
        n_hesitations = n_halts = 0
        longest = 0.0

    cycles = (taps.end_s - taps.start_s)[fully_observed(taps.start, taps.end)]
    cycle_range = float(cycles.max() - cycles.min()) if cycles.size >= 2 else 0.0

    amplitude = taps.amplitude
    if n >= 2:
        slope = float(np.polyfit(taps.peak_s, amplitude, 1)[0])
    else:
        slope = 0.0
    third = n // 3
    first_mean = float(amplitude[:third].mean()) if third else 0.0
    ratio = float(amplitude[-third:].mean()) / first_mean if third and first_mean > 0 else 1.0

    summary = np.array([
        n, frequency, _mean(amplitude), _cv(amplitude),
        _mean(taps.open_speed), _mean(taps.open_speed_max),
        _mean(taps.close_speed), _mean(taps.close_speed_max),
        _mean(intervals), _cv(intervals), slope, ratio,
        n_hesitations, n_halts, longest, cycle_range,
    ], dtype=np.float64)
    return summary


# --------------------------------------------------------------------------- entry point


def compute_features(landmarks: np.ndarray, presence: np.ndarray | None, fps: float, width: float,
                     height: float, config: FeatureConfig) -> VideoFeatures:
    """Per-frame series and per-video tap summary of one video's landmarks.

    ``landmarks`` ``(T, 21, 3)`` normalised image coordinates, NaN where no hand; ``presence``
    ``(T,)`` bool or None (then derived from NaN); ``fps`` frames per second; ``width``/``height``
    the frame size in pixels. Raises ``ValueError`` naming the problem for a wrong shape, fewer than
    :data:`MIN_FRAMES` frames, no frame with a hand, non-positive fps/size or degenerate landmarks.
    """
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    landmarks, presence, usable = validate_landmarks(landmarks, presence)
    pixels = to_pixels(landmarks, width, height)
    size_px = hand_size(pixels, usable, config.hand_size)
    series = frame_series(pixels, usable, presence, fps, size_px, config)
    taps = detect_taps(series[:, 0], series[:, 1], fps, usable, config)
    summary = summarize_taps(taps, fps, usable, config)
    if not (np.isfinite(series).all() and np.isfinite(summary).all()):
        # unreachable for finite input; a guard so the store never receives NaN silently
        raise ValueError("feature computation produced non-finite values from finite landmarks")
    return VideoFeatures(
        series=series.astype(np.float32), series_names=SERIES_NAMES,
        summary=summary.astype(np.float32), summary_names=SUMMARY_NAMES,
        taps=taps, presence=presence, hand_size_px=size_px,
    )
