"""Time in seconds for every sequence input: frame timing, its QC and resampling to one rate.

Cameras record at 24-60 fps, phones with a variable frame rate. A model that saw every
``k``-th frame of 30 fps data would see a 60 fps video at twice the speed. So model inputs are
sampled by *time*: the store keeps every native frame with its timestamp (``hawkeye.store``), and
:func:`resample` turns each video into steps ``t0, t0 + 1/rate, ...`` (linear interpolation
between the two frames around each step) for at most ``max_seconds``. Training
(:func:`hawkeye.data.sequence_set`), export metadata and :mod:`hawkeye.predict` call the same
function with the same :class:`TimeBase`, so a video scores the same at any frame rate.

Decimation without an extra anti-alias filter is safe for the engineered series: preparation
low-passes them (``prepare.features.lowpass_hz``, 7.5 Hz) below the Nyquist frequency of the
default model rate (15 Hz). Landmarks where they are the input are interpolated the same way; a
step next to a frame without a hand stays NaN (missing), as the frame itself was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# A step that lands within this many steps of the last frame still counts (float round-off of
# k / rate against frame times i / fps must not drop the last step).
_STEP_TOLERANCE = 1e-6
# A step within this fraction of a frame interval of a frame takes that frame as it is: 10 Hz
# steps of a 30 fps video are exactly every 3rd frame, not a 1e-15 blend with its neighbour.
_ON_FRAME = 1e-6
# Frame intervals varying by more than this share of the median: a variable frame rate.
VARIABLE_SPREAD = 0.1


@dataclass(frozen=True)
class TimeBase:
    """The rate and window every sequence input is resampled to (``task.sample_rate_hz`` and
    ``task.max_seconds``)."""

    sample_rate_hz: float   # model steps per second
    max_seconds: float      # window kept from the first frame, seconds

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sample_rate_hz) and self.sample_rate_hz > 0):
            raise ValueError(f"task.sample_rate_hz must be a positive number of Hz, got "
                             f"{self.sample_rate_hz}")
        if not (math.isfinite(self.max_seconds) and self.max_seconds * self.sample_rate_hz >= 1):
            raise ValueError(f"task.max_seconds ({self.max_seconds}) must hold at least one step "
                             f"at task.sample_rate_hz={self.sample_rate_hz}")

    @classmethod
    def from_task(cls, task: Mapping[str, Any]) -> TimeBase:
        """From the ``task`` config section (or a model's metadata holding the same keys)."""
        return cls(float(task["sample_rate_hz"]), float(task["max_seconds"]))

    @property
    def max_steps(self) -> int:
        """Steps of a full window (the padded length of the longest video)."""
        return max(1, int(math.floor(self.max_seconds * self.sample_rate_hz + _STEP_TOLERANCE)))


def store_time_base(sample_rate_hz: float | None, max_seconds: float | None, fps: np.ndarray,
                    times: np.ndarray, offsets: np.ndarray, store: str) -> TimeBase:
    """The task's time base with its nulls resolved from the store (``task=sequences``).

    ``sample_rate_hz`` null: the store's own rate, so nothing is thinned: its one known fps, or
    one sample per step at 1 Hz when no sequence has an fps (unknown timing, see
    :func:`known_times`); a store of several rates must say which one the model sees (ValueError
    naming ``store``). ``max_seconds`` null: the longest sequence at that rate, so nothing is cut.
    """
    if sample_rate_hz is None:
        fps = np.asarray(fps, dtype=np.float64)
        rates = np.unique(fps[np.isfinite(fps)])
        if rates.size > 1:
            raise ValueError(f"{store} holds sequences at {rates.size} rates "
                             f"({', '.join(f'{r:g}' for r in rates[:5])} Hz): set "
                             "task.sample_rate_hz to the rate the model should see")
        sample_rate_hz = float(rates[0]) if rates.size else 1.0
    if max_seconds is None:
        offsets = np.asarray(offsets, dtype=np.int64)
        known = known_times(times, offsets, float(sample_rate_hz))
        starts, ends = offsets[:-1], offsets[1:]
        filled = ends > starts  # a summary-only store's videos have no frames
        durations = known[ends[filled] - 1] - known[starts[filled]]
        # the last sample's own interval too: the longest sequence keeps every step
        max_seconds = float(durations.max(initial=0.0)) + 1.0 / float(sample_rate_hz)
    return TimeBase(float(sample_rate_hz), float(max_seconds))


def uniform_times(n_frames: int, fps: float) -> np.ndarray:
    """``(n_frames,)`` float64 seconds of frames at a constant ``fps`` (NaN when fps is unknown)."""
    if not (math.isfinite(fps) and fps > 0):
        return np.full(n_frames, np.nan)
    return np.arange(n_frames, dtype=np.float64) / fps


def known_times(times: np.ndarray, offsets: np.ndarray, fallback_rate_hz: float) -> np.ndarray:
    """``times`` with every video of unknown timing (all NaN: a store of the user's own
    sequences without an fps) given one sample per step at ``fallback_rate_hz``: its samples are
    taken as already at the model rate, as a frame-count model would have taken them."""
    times = np.array(times, dtype=np.float64)
    for start, end in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True):
        if end > start and np.isnan(times[start]):
            times[start:end] = np.arange(end - start) / fallback_rate_hz
    return times


def resample(frames: np.ndarray, offsets: np.ndarray, times: np.ndarray,
             base: TimeBase) -> tuple[np.ndarray, np.ndarray]:
    """Ragged videos sampled at ``base.sample_rate_hz`` by time, cut to ``base.max_seconds``.

    ``frames`` is ``(sum T, F)`` with video ``i`` at rows ``offsets[i]:offsets[i+1]`` and
    ``times`` ``(sum T,)`` seconds, non-decreasing within a video (repeated times: duplicated
    frames, the later one is used). Step ``k`` of a video is at ``times[first] + k / rate``;
    steps run while they lie within the video and the window. Returns ``x (N, L, F)`` float32
    with zeros at padded steps and ``mask (N, L)`` (True = real step), ``L`` the longest video's
    steps. A step that falls on a frame takes that frame's values exactly.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    times = np.asarray(times, dtype=np.float64)
    if (frames.ndim != 2 or offsets.ndim != 1 or offsets[-1] != len(frames)
            or times.shape != (len(frames),)):
        raise ValueError(f"frames {frames.shape}, times {times.shape} and offsets "
                         f"{offsets.shape} (last {offsets[-1] if offsets.size else None}) do not "
                         "describe ragged videos")
    if not np.isfinite(times).all():
        raise ValueError("times must be finite (give videos of unknown timing known_times)")
    rate = base.sample_rate_hz
    starts, ends = offsets[:-1], offsets[1:]
    if (ends < starts).any():
        raise ValueError("offsets must never decrease")
    # A video without frames (a summary-only store: per-video features, no series) has no steps.
    has_frames = ends > starts
    first, last = np.where(has_frames, starts, 0), np.where(has_frames, ends - 1, 0)
    duration = (np.where(has_frames, times[last] - times[first], 0.0) if len(frames)
                else np.zeros(len(starts)))
    steps_per_video = np.where(has_frames, np.minimum(
        np.floor(duration * rate + _STEP_TOLERANCE).astype(np.int64) + 1, base.max_steps), 0)
    width = max(int(steps_per_video.max(initial=0)), 1)
    mask = np.arange(width)[None, :] < steps_per_video[:, None]                      # (N, L)
    lower = np.zeros(mask.shape, np.int64)
    weight = np.zeros(mask.shape, np.float64)
    for i, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        if end == start:
            continue
        video_times = times[start:end]
        query = video_times[0] + np.arange(steps_per_video[i]) / rate
        j = np.clip(np.searchsorted(video_times, query, side="right") - 1, 0, end - start - 1)
        upper = np.minimum(j + 1, end - start - 1)
        gap = video_times[upper] - video_times[j]
        w = np.where(gap > 0, (query - video_times[j]) / np.where(gap > 0, gap, 1.0), 0.0)
        w = np.where(w < _ON_FRAME, 0.0, np.where(w > 1 - _ON_FRAME, 1.0, w))
        lower[i, :len(j)], weight[i, :len(j)] = start + j, w
    if not len(frames):
        return np.zeros((*mask.shape, frames.shape[1]), np.float32), mask
    upper_rows = np.minimum(lower + 1, last[:, None])
    below, above = frames[lower], frames[upper_rows]                                # (N, L, F)
    w = weight[..., None].astype(frames.dtype)
    # Where a step falls on a frame take it as is: a NaN neighbour must not leak in.
    x = np.where(w == 0, below, np.where(w == 1, above, below + (above - below) * w))
    x[~mask] = 0.0
    return x.astype(np.float32, copy=False), mask


# ----------------------------------------------------------------------------------------------
# Frame timing QC


@dataclass(frozen=True)
class FrameTiming:
    """What a video's frame times say about its real rate."""

    fps_measured: float       # frames per second from the median frame interval
    interval_spread: float    # (p90 - p10) / median of the frame intervals (0 = constant rate)
    dropped_frames: int       # frames missing from the median rhythm (intervals > 1.5 x median)
    duplicated_frames: int    # frames repeating the previous one's time (interval <= 0.25 x median)

    @property
    def variable(self) -> bool:
        """True when intervals vary by more than :data:`VARIABLE_SPREAD` of the median."""
        return self.interval_spread > VARIABLE_SPREAD


def measure_timing(times: np.ndarray) -> FrameTiming:
    """Rate, spread, dropped and duplicated frames of one video's frame times (seconds)."""
    intervals = np.diff(np.asarray(times, dtype=np.float64))
    positive = intervals[intervals > 0]
    if not positive.size:
        return FrameTiming(math.nan, math.nan, 0, max(len(intervals), 0))
    median = float(np.median(positive))
    p10, p90 = np.percentile(positive, [10, 90])
    long = intervals[intervals > 1.5 * median]
    return FrameTiming(
        fps_measured=1.0 / median, interval_spread=float((p90 - p10) / median),
        dropped_frames=int(np.round(long / median).sum() - len(long)),
        duplicated_frames=int((intervals <= 0.25 * median).sum()))


def rate_problem(fps: float, fps_min: float, fps_max: float, what: str) -> str | None:
    """Why ``fps`` cannot be a camera's frame rate (outside ``[fps_min, fps_max]``), or None."""
    if math.isfinite(fps) and fps_min <= fps <= fps_max:
        return None
    return (f"{what} {fps:g} fps is implausible (outside prepare.video.fps_min..fps_max = "
            f"{fps_min:g}..{fps_max:g})")


def times_are_usable(times: np.ndarray) -> bool:
    """True when per-frame times from a container can be trusted: finite, non-decreasing and not
    all equal (some backends report 0 for every frame)."""
    times = np.asarray(times, dtype=np.float64)
    if len(times) < 2:
        return False
    steps = np.diff(times)
    return bool(np.isfinite(times).all() and (steps >= 0).all() and (steps > 0).any())
