"""The time base: resampling ragged videos by frame time, frame-timing QC, implausible rates.

Signals are analytic so every expected value can be computed by hand: a video whose channel is its
own frame time ``t`` must resample to exactly ``k / rate``; a sine sampled at 60 and at 30 fps must
give the same steps within linear-interpolation error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hawkeye.timebase import (
    TimeBase,
    known_times,
    measure_timing,
    rate_problem,
    resample,
    times_are_usable,
    uniform_times,
)


def ragged(*times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames whose channel 0 is the frame's time and channel 1 the video index."""
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in times])])
    all_times = np.concatenate(times)
    index = np.repeat(np.arange(len(times)), [len(t) for t in times])
    return np.column_stack([all_times, index]).astype(np.float32), offsets, all_times


def test_steps_fall_at_k_over_rate_whatever_the_native_rate() -> None:
    base = TimeBase(sample_rate_hz=10.0, max_seconds=100.0)
    frames, offsets, times = ragged(uniform_times(31, 30.0), uniform_times(61, 60.0),
                                    uniform_times(24, 24.0))
    x, mask = resample(frames, offsets, times, base)
    # 1 s at 30 and 60 fps -> 11 steps (0.0 .. 1.0 s); 24 frames at 24 fps = 0.958 s -> 10 steps
    assert mask.sum(axis=1).tolist() == [11, 11, 10]
    np.testing.assert_allclose(x[0, :11, 0], np.arange(11) / 10, atol=1e-6)
    np.testing.assert_allclose(x[1, :11, 0], np.arange(11) / 10, atol=1e-6)
    np.testing.assert_allclose(x[2, :10, 0], np.arange(10) / 10, atol=1e-6)
    assert x[2, :10, 1].tolist() == [2.0] * 10 and x[2, 10:].sum() == 0  # padded steps are zero


def test_the_window_keeps_the_first_max_seconds() -> None:
    base = TimeBase(sample_rate_hz=15.0, max_seconds=2.0)
    frames, offsets, times = ragged(uniform_times(300, 30.0))
    x, mask = resample(frames, offsets, times, base)
    assert base.max_steps == 30 and x.shape == (1, 30, 2) and mask.all()
    assert x[0, -1, 0] == pytest.approx(29 / 15)


def test_a_sine_at_60_and_30_fps_gives_the_same_steps() -> None:
    base = TimeBase(sample_rate_hz=15.0, max_seconds=4.0)
    slow, fast = uniform_times(120, 30.0), uniform_times(240, 60.0)
    signal = [np.column_stack([np.sin(2 * np.pi * 2.0 * t), np.cos(2 * np.pi * 1.3 * t)])
              for t in (slow, fast)]
    offsets = np.array([0, len(slow), len(slow) + len(fast)])
    x, mask = resample(np.concatenate(signal).astype(np.float32), offsets,
                       np.concatenate([slow, fast]), base)
    assert mask.sum(axis=1).tolist() == [60, 60]
    # every 15 Hz step falls on a frame of both videos: equal up to float32
    np.testing.assert_allclose(x[0], x[1], atol=1e-6)


def test_irregular_times_are_interpolated_and_ties_do_not_divide_by_zero() -> None:
    base = TimeBase(sample_rate_hz=4.0, max_seconds=10.0)
    times = np.array([0.0, 0.1, 0.1, 0.6, 1.0])   # a duplicated frame, then a dropped one
    frames, offsets, _ = ragged(times)
    x, mask = resample(frames, offsets, times, base)
    assert mask.sum() == 5
    np.testing.assert_allclose(x[0, :5, 0], [0.0, 0.25, 0.5, 0.75, 1.0], atol=1e-6)


def test_a_missing_frame_stays_missing_but_never_leaks_into_a_frame_hit_exactly() -> None:
    base = TimeBase(sample_rate_hz=10.0, max_seconds=10.0)
    times = uniform_times(5, 20.0)                      # 0, .05, .1, .15, .2
    frames = np.array([[0.0], [np.nan], [2.0], [3.0], [4.0]], np.float32)
    x, mask = resample(frames, np.array([0, 5]), times, base)
    assert mask.sum() == 3 and x[0, :3, 0].tolist() == [0.0, 2.0, 4.0]
    shifted = resample(frames, np.array([0, 5]), times + np.array([0, 0, 0.01, 0.01, 0.01]),
                       TimeBase(sample_rate_hz=12.0, max_seconds=10.0))[0]
    assert math.isnan(shifted[0, 1, 0])                 # 1/12 s lies between frames 1 and 2


def test_unknown_timing_is_one_sample_per_model_step() -> None:
    offsets = np.array([0, 3, 5])
    times = known_times(np.array([np.nan] * 3 + [0.0, 0.5]), offsets, fallback_rate_hz=4.0)
    np.testing.assert_allclose(times, [0.0, 0.25, 0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="finite"):
        resample(np.zeros((3, 1), np.float32), np.array([0, 3]), np.full(3, np.nan),
                 TimeBase(1.0, 5.0))


def test_bad_time_bases_are_refused_with_the_key_named() -> None:
    with pytest.raises(ValueError, match="task.sample_rate_hz"):
        TimeBase(sample_rate_hz=0.0, max_seconds=10.0)
    with pytest.raises(ValueError, match="task.max_seconds"):
        TimeBase(sample_rate_hz=15.0, max_seconds=0.01)
    assert TimeBase.from_task({"sample_rate_hz": 15, "max_seconds": 17}).max_steps == 255


def test_timing_qc_measures_rate_spread_dropped_and_duplicated_frames() -> None:
    steady = measure_timing(uniform_times(100, 29.97))
    assert steady.fps_measured == pytest.approx(29.97) and steady.interval_spread < 1e-6
    assert (steady.dropped_frames, steady.duplicated_frames) == (0, 0) and not steady.variable
    times = np.delete(uniform_times(100, 30.0), [10, 11, 50])       # 3 frames dropped
    times = np.insert(times, 20, times[20])                         # 1 duplicated
    gappy = measure_timing(times)
    assert gappy.fps_measured == pytest.approx(30.0) and gappy.dropped_frames == 3
    assert gappy.duplicated_frames == 1
    jitter = np.cumsum(np.random.default_rng(0).uniform(1 / 60, 1 / 20, 200))
    assert measure_timing(jitter).variable


def test_implausible_rates_and_unusable_timestamps_are_named() -> None:
    assert rate_problem(30.0, 1.0, 240.0, "x") is None
    problem = rate_problem(1e6, 1.0, 240.0, "the landmark file's")
    assert "1e+06 fps is implausible" in problem and "1..240" in problem
    assert rate_problem(math.nan, 1.0, 240.0, "x") is not None
    assert times_are_usable(np.array([0.0, 0.03, 0.07]))
    assert not times_are_usable(np.zeros(5))                # a backend that reports 0 throughout
    assert not times_are_usable(np.array([0.0, 0.5, 0.2]))  # going back in time


def test_a_rate_dividing_the_frame_rate_takes_every_kth_frame_bit_for_bit() -> None:
    """10 Hz of a 30 fps video is every 3rd frame, exactly as the frame-stride models took it."""
    frames = np.random.default_rng(1).normal(size=(384, 5)).astype(np.float32)
    x, mask = resample(frames, np.array([0, 384]), uniform_times(384, 30.0),
                       TimeBase(sample_rate_hz=10.0, max_seconds=12.8))
    assert mask.sum() == 128
    np.testing.assert_array_equal(x[0], frames[::3][:128])
