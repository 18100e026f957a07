"""Movement cycles of one 1-D trace, shared by the tasks other than finger tapping.

Hand movement (hand aperture), leg agility (heel height) and gait (ankle separation) all rate a
repeated movement the way finger tapping rates taps: count, rate, amplitude, speed, rhythm,
decrement, hesitations. :func:`cycle_trace` runs finger tapping's own, tested machinery
(:func:`hawkeye.prepare.features.detect_taps` and :func:`~hawkeye.prepare.features.summarize_taps`)
on another trace, so a cycle means the same thing in every task: a peak of the trace with the
valleys either side (definitions in docs/features.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hawkeye.prepare import features as ft

# The finger-tapping summary names, with the tap-specific words made generic.
_GENERIC = {"n_taps": "n_cycles", "tap_frequency_hz": "cycle_frequency_hz",
            "iti_mean_s": "interval_mean_s", "iti_cv": "interval_cv"}
CYCLE_SUMMARY_NAMES: tuple[str, ...] = tuple(_GENERIC.get(n, n) for n in ft.SUMMARY_NAMES)


@dataclass(frozen=True)
class CycleTrace:
    """One video's smoothed trace columns, the first column's derivatives and its cycles."""

    smooth: np.ndarray        # (T, C) float64: the raw columns gap-filled and low-passed
    velocity: np.ndarray      # (T,) d(column 0)/dt per second, 0 where no landmarks are usable
    acceleration: np.ndarray  # (T,) d(velocity)/dt per second, 0 where no landmarks are usable
    cycles: ft.TapCycles      # the cycles of column 0
    summary: np.ndarray       # (len(CYCLE_SUMMARY_NAMES),) float64, never NaN


def cycle_trace(raw: np.ndarray, usable: np.ndarray, fps: float,
                config: ft.FeatureConfig) -> CycleTrace:
    """Gap-fill and low-pass the ``(T, C)`` columns of ``raw`` together, then find the cycles of
    column 0 and summarise them (``prepare.features`` settings: cutoff, prominences, intervals).

    Derivatives of frames without usable landmarks are 0, as in finger tapping: a derivative of
    interpolated data is not reported.
    """
    smooth = ft.lowpass(ft.fill_gaps(raw, usable), fps, config.lowpass_hz, config.lowpass_order)
    velocity = ft.derivative(smooth[:, 0], fps)
    acceleration = ft.derivative(velocity, fps)
    velocity[~usable] = 0.0
    acceleration[~usable] = 0.0
    cycles = ft.detect_taps(smooth[:, 0], velocity, fps, usable, config)
    summary = ft.summarize_taps(cycles, fps, usable, config)
    return CycleTrace(smooth=smooth, velocity=velocity, acceleration=acceleration, cycles=cycles,
                      summary=summary)


def fully_observed(usable: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(n,) bool: every frame of ``start[i]..end[i]`` (inclusive) has usable landmarks."""
    missing_before = np.concatenate([[0], np.cumsum(~usable)])
    return (missing_before[end + 1] - missing_before[start]) == 0


def checked(series: np.ndarray, summary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 copies of ``series`` and ``summary``; ValueError if a value is not finite (a guard:
    the store must never receive NaN silently)."""
    if not (np.isfinite(series).all() and np.isfinite(summary).all()):
        raise ValueError("feature computation produced non-finite values from finite landmarks")
    return series.astype(np.float32), summary.astype(np.float32)
