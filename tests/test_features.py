"""Clinical features against analytic signals (hawkeye/prepare/features.py).

The synthetic hand used throughout, in pixels (image y grows downwards):
wrist (0) at (400, 500); index MCP (5) at (400, 350) with the index finger pointing straight up in
three 40-pixel segments, so PIP (6) = (400, 310), DIP (7) = (400, 270), tip (8) = (400, 230) and
the index-finger length (the default hand size) is exactly 120 px; middle MCP (9) at (420, 350), so
the palm size is sqrt(20^2 + 150^2) px. The thumb tip (4) sits ``d`` pixels to the right of the
index tip, so the thumb–index distance is ``d`` and, normalised, ``d / 120``. Other landmarks rest
on the wrist. Pixels become MediaPipe coordinates by x / width and y / height.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from hawkeye.prepare.features import (
    SERIES_NAMES,
    SUMMARY_NAMES,
    FeatureConfig,
    compute_features,
    hand_size,
    lowpass,
    thumb_index_angle,
    to_pixels,
)

PREPARE_YAML = Path(__file__).resolve().parents[1] / "conf" / "prepare" / "default.yaml"
INDEX_LENGTH_PX = 120.0
WRIST_PX = np.array([400.0, 500.0])
INDEX_MCP_PX = np.array([400.0, 350.0])
MIDDLE_MCP_PX = np.array([420.0, 350.0])


@pytest.fixture(scope="module")
def config() -> FeatureConfig:
    """The defaults exactly as the YAML block gives them."""
    return FeatureConfig.from_config(OmegaConf.load(PREPARE_YAML).features)


def hand_pixels(d_px: np.ndarray) -> np.ndarray:
    """The synthetic hand of the module docstring, ``(T, 21, 2)`` pixels, thumb–index distance d."""
    d_px = np.asarray(d_px, dtype=np.float64)
    px = np.broadcast_to(WRIST_PX, (d_px.size, 21, 2)).copy()
    segment = INDEX_LENGTH_PX / 3
    for k, landmark in enumerate((5, 6, 7, 8)):
        px[:, landmark] = INDEX_MCP_PX + [0.0, -segment * k]
    px[:, 9] = MIDDLE_MCP_PX
    px[:, 4, 0] = px[:, 8, 0] + d_px
    px[:, 4, 1] = px[:, 8, 1]
    return px


def to_landmarks(px: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixels to the landmark contract: (T, 21, 3) float32, x / width, y / height, z = 0."""
    lm = np.zeros(px.shape[:2] + (3,), dtype=np.float32)
    lm[..., 0] = px[..., 0] / width
    lm[..., 1] = px[..., 1] / height
    return lm


def tapping(amplitude, frequency_hz: float, duration_s: float, fps: float,
            closed: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Normalised distance A(t) (1 - cos 2 pi f t) / 2 + c and its time axis (starts closed)."""
    t = np.arange(int(round(duration_s * fps))) / fps
    amp = amplitude(t) if callable(amplitude) else amplitude
    return amp * (1 - np.cos(2 * np.pi * frequency_hz * t)) / 2 + closed, t


def features_of(distance: np.ndarray, fps: float, config: FeatureConfig, width=1280, height=720,
                presence=None):
    lm = to_landmarks(hand_pixels(distance * INDEX_LENGTH_PX), width, height)
    return compute_features(lm, presence, fps, width, height, config)


def summary_dict(result) -> dict[str, float]:
    return dict(zip(result.summary_names, result.summary.tolist(), strict=True))


# --------------------------------------------------------------------------- config


def test_config_is_built_from_the_yaml_block_and_rejects_typos(config):
    block = OmegaConf.to_container(OmegaConf.load(PREPARE_YAML).features)
    assert set(block) == {f.name for f in dataclasses.fields(FeatureConfig)}
    assert config.hand_size == block["hand_size"] and config.halt_s == block["halt_s"]
    with pytest.raises(ValueError, match="missing keys \\['halt_s'\\]"):
        FeatureConfig.from_config({k: v for k, v in block.items() if k != "halt_s"})
    with pytest.raises(ValueError, match="unknown keys \\['lowpas_hz'\\]"):
        FeatureConfig.from_config({**block, "lowpas_hz": 5})
    with pytest.raises(ValueError, match="hand_size"):
        FeatureConfig.from_config({**block, "hand_size": "thumb"})
    with pytest.raises(ValueError, match="lowpass_hz"):
        FeatureConfig.from_config({**block, "lowpass_hz": 0})


# --------------------------------------------------------------------------- taps of a sine


@pytest.mark.parametrize(("frequency_hz", "fps"), [(1.5, 30.0), (2.0, 30.0), (3.2, 60.0),
                                                   (4.5, 60.0)])
def test_tapping_sine_gives_its_count_frequency_amplitude_and_speeds(config, frequency_hz, fps):
    amplitude, duration = 0.8, 12.0
    distance, _ = tapping(amplitude, frequency_hz, duration, fps)
    s = summary_dict(features_of(distance, fps, config))

    assert abs(s["n_taps"] - frequency_hz * duration) <= 1
    assert s["tap_frequency_hz"] == pytest.approx(frequency_hz, rel=0.03)
    assert s["iti_mean_s"] == pytest.approx(1 / frequency_hz, rel=0.03)
    assert s["iti_cv"] < 0.05
    assert s["amplitude_mean"] == pytest.approx(amplitude, rel=0.03)
    assert s["amplitude_cv"] < 0.03
    # opening lasts half a period: mean speed A / (T/2) = 2 A f; peak velocity pi A f
    assert s["open_speed_mean"] == pytest.approx(2 * amplitude * frequency_hz, rel=0.03)
    assert s["close_speed_mean"] == pytest.approx(2 * amplitude * frequency_hz, rel=0.03)
    # peak velocity pi A f, seen through the filter's gain |H(f)|^2 = 1 / (1 + (f / fc)^(2N)), the
    # central difference's sin(w h) / (w h) and the sample nearest the maximum (cos(w h / 2) worst)
    w, h = 2 * np.pi * frequency_hz, 1 / fps
    gain = 1 / (1 + (frequency_hz / config.lowpass_hz) ** (2 * config.lowpass_order))
    highest = np.pi * amplitude * frequency_hz * gain * np.sin(w * h) / (w * h)
    for name in ("open_speed_max", "close_speed_max"):
        assert highest * np.cos(w * h / 2) * 0.995 <= s[name] <= highest * 1.005, name
    assert abs(s["amplitude_slope_per_s"]) < 0.005 * amplitude
    assert s["amplitude_ratio_last_first"] == pytest.approx(1.0, abs=0.03)
    assert s["n_hesitations"] == 0 and s["n_halts"] == 0
    assert s["longest_interval_s"] == pytest.approx(1 / frequency_hz, rel=0.05)
    assert s["cycle_duration_range_s"] <= 2 / fps + 1e-6


def test_tap_frames_are_the_peaks_of_the_sine(config):
    fps, f = 30.0, 1.5  # period 20 frames: peaks exactly at frames 10, 30, 50, ...
    distance, _ = tapping(0.8, f, 10.0, fps)
    taps = features_of(distance, fps, config).taps
    np.testing.assert_array_equal(taps.peak, np.arange(10, distance.size, 20))
    np.testing.assert_array_equal(taps.start[1:], np.arange(20, distance.size - 10, 20))
    np.testing.assert_array_equal(taps.end[:-1], taps.start[1:])


def test_amplitude_scales_with_the_hand_not_the_camera(config):
    """The same tapping filmed closer (everything 2x larger in pixels) gives the same features."""
    fps = 30.0
    distance, _ = tapping(0.7, 2.0, 8.0, fps)
    near = hand_pixels(distance * INDEX_LENGTH_PX)
    far = (near - WRIST_PX) * 0.5 + WRIST_PX
    a = compute_features(to_landmarks(near, 1280, 720), None, fps, 1280, 720, config)
    b = compute_features(to_landmarks(far, 1280, 720), None, fps, 1280, 720, config)
    np.testing.assert_allclose(a.summary, b.summary, rtol=1e-4, atol=1e-5)
    assert a.hand_size_px == pytest.approx(2 * b.hand_size_px)


def test_linearly_decaying_amplitude_gives_a_negative_slope(config):
    fps, f, duration, a0 = 30.0, 2.0, 12.0, 0.9
    decay = 0.6  # amplitude falls from a0 to 0.4 a0 over the trial
    distance, _ = tapping(lambda t: a0 * (1 - decay * t / duration), f, duration, fps)
    s = summary_dict(features_of(distance, fps, config))
    assert abs(s["n_taps"] - f * duration) <= 1
    expected_slope = -decay * a0 / duration  # hand sizes per second
    assert s["amplitude_slope_per_s"] == pytest.approx(expected_slope, rel=0.15)
    # thirds of the trial: mean amplitude at t ~ 10 s over mean at t ~ 2 s
    expected_ratio = (1 - decay * 10 / duration) / (1 - decay * 2 / duration)
    assert s["amplitude_ratio_last_first"] == pytest.approx(expected_ratio, rel=0.1)
    assert s["amplitude_cv"] > 0.1


def test_an_inserted_hesitation_is_counted_as_hesitation_and_halt(config):
    """Tap at 2 Hz for 4 s, rest closed for 1.2 s, tap 4 s more: one interval of 0.5 + 1.2 s."""
    fps, f, pause = 30.0, 2.0, 1.2
    t = np.arange(int(9.2 * fps)) / fps
    tau = np.where(t < 4.0, t, np.where(t < 4.0 + pause, 4.0, t - pause))  # motion's own clock
    distance = 0.8 * (1 - np.cos(2 * np.pi * f * tau)) / 2 + 0.1
    s = summary_dict(features_of(distance, fps, config))
    assert s["n_taps"] == pytest.approx(16, abs=1)
    assert s["n_hesitations"] == 1
    assert s["n_halts"] == 1
    assert s["longest_interval_s"] == pytest.approx(0.5 + pause, abs=2 / fps)
    # the rhythm is no longer regular
    assert s["iti_cv"] > 0.2

    shorter = dataclasses.replace(config, halt_s=2.0)  # a 1.7 s interval is no halt at 2 s
    assert summary_dict(features_of(distance, fps, shorter))["n_halts"] == 0


def test_a_still_hand_has_no_taps_and_defined_summary(config):
    rng = np.random.default_rng(0)
    distance = 0.3 + 0.002 * rng.standard_normal(300)  # tracker jitter, no tapping
    result = features_of(distance, 30.0, config)
    s = summary_dict(result)
    assert s["n_taps"] == 0 and result.taps.n == 0
    assert np.isfinite(result.summary).all()
    assert s["amplitude_ratio_last_first"] == 1.0
    others = {k: v for k, v in s.items() if k != "amplitude_ratio_last_first"}
    assert all(v == 0.0 for v in others.values()), others


def test_a_single_tap_has_amplitude_but_no_intervals(config):
    fps = 30.0
    t = np.arange(90) / fps
    bump = np.where((t > 1.0) & (t < 2.0), (1 - np.cos(2 * np.pi * (t - 1.0))) / 2, 0.0)
    s = summary_dict(features_of(0.1 + 0.6 * bump, fps, config))
    assert s["n_taps"] == 1
    assert s["amplitude_mean"] == pytest.approx(0.6, rel=0.03)
    assert s["tap_frequency_hz"] > 0
    assert s["iti_mean_s"] == s["iti_cv"] == s["amplitude_slope_per_s"] == 0.0
    assert s["n_hesitations"] == s["n_halts"] == s["longest_interval_s"] == 0.0
    assert s["amplitude_ratio_last_first"] == 1.0
    assert s["cycle_duration_range_s"] == 0.0


# --------------------------------------------------------------------------- per-frame geometry


def test_non_square_frames_give_the_same_features_as_the_square_equivalent(config):
    fps = 30.0
    distance, _ = tapping(0.8, 2.0, 6.0, fps)
    px = hand_pixels(distance * INDEX_LENGTH_PX)  # fits in 720 x 720
    wide = compute_features(to_landmarks(px, 1280, 720), None, fps, 1280, 720, config)
    square = compute_features(to_landmarks(px, 720, 720), None, fps, 720, 720, config)
    np.testing.assert_allclose(wide.series, square.series, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(wide.summary, square.summary, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(wide.series[:, 0], lowpass(distance, fps, config.lowpass_hz,
                                                          config.lowpass_order), atol=1e-4)
    # scaling x and y by one factor would be wrong, and this geometry would show it
    naive = compute_features(to_landmarks(px, 1280, 720), None, fps, 720, 720, config)
    assert not np.allclose(naive.series[:, 0], wide.series[:, 0], atol=1e-2)


def test_velocity_of_a_linear_ramp_is_constant_and_acceleration_zero(config):
    fps = 30.0
    t = np.arange(120) / fps
    rate = 0.25  # hand sizes per second
    result = features_of(0.1 + rate * t, fps, config)
    velocity = result.series[:, SERIES_NAMES.index("thumb_index_velocity")]
    acceleration = result.series[:, SERIES_NAMES.index("thumb_index_acceleration")]
    np.testing.assert_allclose(velocity, rate, rtol=2e-3)
    np.testing.assert_allclose(velocity[20:-20], rate, rtol=1e-5)
    np.testing.assert_allclose(acceleration[20:-20], 0.0, atol=1e-3)


@pytest.mark.parametrize("degrees", [0.0, 30.0, 90.0, 135.0, 180.0])
def test_thumb_index_angle_of_known_geometry(degrees):
    """Wrist at the origin, index tip 200 px straight up, thumb tip 150 px ``degrees`` from it."""
    px = np.zeros((1, 21, 2))
    px[0, 8] = [0.0, -200.0]
    a = np.radians(degrees)
    px[0, 4] = [150.0 * np.sin(a), -150.0 * np.cos(a)]
    assert thumb_index_angle(px)[0] == pytest.approx(degrees, abs=1e-9)


def test_angle_series_is_measured_in_pixels_of_a_non_square_frame(config):
    """A 60-degree thumb–index angle stays 60 degrees once x and y are normalised differently."""
    px = hand_pixels(np.zeros(60))
    arm = px[:, 8] - px[:, 0]  # wrist -> index tip, straight up
    c, s = np.cos(np.radians(60)), np.sin(np.radians(60))
    px[:, 4] = px[:, 0] + arm @ np.array([[c, s], [-s, c]])  # rotated 60 degrees
    result = compute_features(to_landmarks(px, 1920, 480), None, 30.0, 1920, 480, config)
    angle = result.series[:, SERIES_NAMES.index("thumb_index_angle")]
    np.testing.assert_allclose(angle, 60.0, atol=1e-3)


def test_wrist_speed_is_normalised_by_hand_size(config):
    """The whole hand drifts right at 60 px/s = 0.5 index-finger lengths per second."""
    fps = 30.0
    t = np.arange(90) / fps
    px = hand_pixels(np.full(t.size, 30.0)) + np.stack([60.0 * t, 0 * t], axis=1)[:, None, :]
    result = compute_features(to_landmarks(px, 1280, 720), None, fps, 1280, 720, config)
    wrist = result.series[:, SERIES_NAMES.index("wrist_speed")]
    np.testing.assert_allclose(wrist, 60.0 / INDEX_LENGTH_PX, rtol=2e-3)


def test_hand_size_measures_are_robust_medians():
    px = hand_pixels(np.full(50, 30.0))
    usable = np.ones(50, bool)
    assert hand_size(px, usable, "index_finger") == pytest.approx(INDEX_LENGTH_PX)
    assert hand_size(px, usable, "palm") == pytest.approx(np.hypot(20.0, 150.0))
    px[:5, 8] += [0.0, -300.0]  # the tracker misplaces the fingertip in 10 % of the frames
    assert hand_size(px, usable, "index_finger") == pytest.approx(INDEX_LENGTH_PX)


def test_palm_size_option_changes_only_the_normaliser(config):
    fps = 30.0
    distance, _ = tapping(0.8, 2.0, 6.0, fps)
    index = features_of(distance, fps, config)
    palm = features_of(distance, fps, dataclasses.replace(config, hand_size="palm"))
    ratio = INDEX_LENGTH_PX / np.hypot(20.0, 150.0)
    np.testing.assert_allclose(palm.series[:, 0], index.series[:, 0] * ratio, rtol=1e-4)
    assert summary_dict(palm)["n_taps"] == summary_dict(index)["n_taps"]


def test_pixels_scale_x_and_y_separately():
    lm = np.zeros((3, 21, 3), np.float32)
    lm[..., 0], lm[..., 1] = 0.5, 0.25
    px = to_pixels(lm.astype(np.float64), 1280, 720)
    np.testing.assert_allclose(px[0, 0], [640.0, 180.0])


def test_lowpass_removes_jitter_above_the_cutoff(config):
    fps = 60.0
    t = np.arange(600) / fps
    slow = np.sin(2 * np.pi * 2.0 * t)
    jitter = 0.2 * np.sin(2 * np.pi * 20.0 * t)
    out = lowpass(slow + jitter, fps, config.lowpass_hz, config.lowpass_order)
    assert np.abs(out - slow)[30:-30].max() < 0.01  # 20 Hz jitter gone, 2 Hz motion kept in phase
    # cutoff at or above Nyquist: nothing to remove, the signal is returned as is
    np.testing.assert_array_equal(lowpass(slow, 10.0, 7.5, 4), slow)


# --------------------------------------------------------------------------- gaps and bad input


def test_nan_gaps_are_filled_masked_and_do_not_count_as_halts(config):
    fps, f = 30.0, 2.0
    distance, _ = tapping(0.8, f, 12.0, fps)
    lm = to_landmarks(hand_pixels(distance * INDEX_LENGTH_PX), 1280, 720)
    gap = slice(150, 195)  # 1.5 s without a hand: longer than halt_s, but no evidence of a halt
    lm[gap] = np.nan
    lm[40] = np.nan  # and one lost frame
    result = compute_features(lm, None, fps, 1280, 720, config)
    series = result.series
    assert np.isfinite(series).all()
    present = series[:, SERIES_NAMES.index("hand_present")]
    assert present[gap].sum() == 0 and present[40] == 0 and present.sum() == distance.size - 46
    for name in ("thumb_index_velocity", "thumb_index_acceleration", "wrist_speed"):
        assert np.all(series[gap, SERIES_NAMES.index(name)] == 0), name
    d = series[:, 0]
    assert d[gap].min() >= 0.1 - 0.02 and d[gap].max() <= 0.9 + 0.02  # interpolated, in range
    s = summary_dict(result)
    assert abs(s["n_taps"] - (f * 12.0 - f * 1.5)) <= 1.5
    assert s["n_halts"] == 0 and s["n_hesitations"] == 0
    assert s["iti_mean_s"] == pytest.approx(1 / f, rel=0.03)
    assert s["tap_frequency_hz"] == pytest.approx(f, rel=0.05)
    assert not np.any(np.isin(result.taps.peak, np.arange(150, 195)))


def test_frames_filled_by_the_landmark_stage_are_used_but_flagged_absent(config):
    fps = 30.0
    distance, _ = tapping(0.8, 2.0, 6.0, fps)
    lm = to_landmarks(hand_pixels(distance * INDEX_LENGTH_PX), 1280, 720)
    presence = np.ones(distance.size, bool)
    presence[50:53] = False  # interpolated upstream: finite coordinates, not detected
    result = compute_features(lm, presence, fps, 1280, 720, config)
    full = compute_features(lm, None, fps, 1280, 720, config)
    np.testing.assert_array_equal(result.series[:, :5], full.series[:, :5])
    assert result.series[50:53, SERIES_NAMES.index("hand_present")].tolist() == [0, 0, 0]
    lm[60] = np.nan
    presence[60] = True
    with pytest.raises(ValueError, match="presence is True at frames \\[60\\]"):
        compute_features(lm, presence, fps, 1280, 720, config)


def test_short_sequences_are_computed_without_filtering(config):
    distance = np.array([0.1, 0.5, 0.9, 0.5, 0.1, 0.5, 0.9, 0.5, 0.1, 0.5])
    result = features_of(distance, 30.0, config)
    assert result.series.shape == (10, len(SERIES_NAMES))
    np.testing.assert_allclose(result.series[:, 0], distance, atol=1e-6)  # too short to filter
    assert np.isfinite(result.summary).all()


@pytest.mark.parametrize(("landmarks", "message"), [
    (np.zeros((0, 21, 3), np.float32), "at least 3"),
    (np.zeros((2, 21, 3), np.float32), "at least 3"),
    (np.zeros((10, 21, 2), np.float32), r"\(10, 21, 2\)"),
    (np.zeros((10, 63), np.float32), r"\(10, 63\)"),
    (np.full((10, 21, 3), np.nan, np.float32), "no frame of 10 has a hand"),
])
def test_bad_landmarks_raise_a_clear_value_error(config, landmarks, message):
    with pytest.raises(ValueError, match=message):
        compute_features(landmarks, None, 30.0, 640, 480, config)


def test_bad_fps_size_presence_and_degenerate_hand_raise(config):
    lm = to_landmarks(hand_pixels(np.full(20, 30.0)), 640, 480)
    with pytest.raises(ValueError, match="fps"):
        compute_features(lm, None, 0.0, 640, 480, config)
    with pytest.raises(ValueError, match="width and height"):
        compute_features(lm, None, 30.0, 0, 480, config)
    with pytest.raises(ValueError, match="presence must have shape \\(20,\\)"):
        compute_features(lm, np.ones(19, bool), 30.0, 640, 480, config)
    with pytest.raises(ValueError, match="degenerate"):
        compute_features(np.zeros((20, 21, 3), np.float32), None, 30.0, 640, 480, config)


def test_output_layout_matches_the_published_names(config):
    distance, _ = tapping(0.8, 2.0, 5.0, 30.0)
    result = features_of(distance, 30.0, config)
    assert result.series.dtype == np.float32 and result.summary.dtype == np.float32
    assert result.series.shape == (distance.size, len(SERIES_NAMES))
    assert result.summary.shape == (len(SUMMARY_NAMES),)
    assert result.series_names == SERIES_NAMES and result.summary_names == SUMMARY_NAMES
    assert len(set(SERIES_NAMES)) == len(SERIES_NAMES)
    assert len(set(SUMMARY_NAMES)) == len(SUMMARY_NAMES)
