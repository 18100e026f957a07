"""Video decoding: metadata sanity, resizing, frame round trips and clear errors for bad files."""

import math

import numpy as np
import pytest

from hawkeye.prepare.video import (
    VideoError,
    iter_frames,
    moving_image_frames,
    probe_video,
    resize_for_detection,
    resized_shape,
    sane_fps,
    write_video,
)

FPS_LIMITS = dict(fps_fallback=30.0, fps_min=1.0, fps_max=240.0)


def _colour_frames(n: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """Frame i is solid red for even i, solid blue for odd i (RGB): channel order is testable."""
    frames = []
    for i in range(n):
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        frame[..., 0 if i % 2 == 0 else 2] = 220
        frames.append(frame)
    return frames


@pytest.mark.parametrize(
    ("reported", "expected", "fallback_used"),
    [
        (25.0, 25.0, False),
        (29.97, 29.97, False),
        (0.0, 30.0, True),
        (float("nan"), 30.0, True),
        (1000.0, 30.0, True),
        (-5.0, 30.0, True),
    ],
)
def test_sane_fps_replaces_implausible_rates(reported, expected, fallback_used):
    fps, used = sane_fps(reported, 30.0, 1.0, 240.0)
    assert math.isclose(fps, expected) and used is fallback_used


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((640, 480), 320, (320, 240)),
        ((480, 640), 320, (240, 320)),
        ((1920, 1080), 640, (640, 360)),
        ((200, 100), 640, (200, 100)),  # never enlarged
        ((640, 480), None, (640, 480)),
    ],
)
def test_resized_shape_keeps_aspect(size, max_side, expected):
    assert resized_shape(*size, max_side) == expected


def test_resize_for_detection_returns_same_frame_when_small_enough():
    frame = np.zeros((48, 64, 3), dtype=np.uint8)
    assert resize_for_detection(frame, 100) is frame
    assert resize_for_detection(frame, 32).shape == (24, 32, 3)


def test_write_probe_and_decode_round_trip(tmp_path):
    path = tmp_path / "clip.mp4"
    assert write_video(path, _colour_frames(12), fps=25.0) == 12
    info = probe_video(path, **FPS_LIMITS)
    assert (info.width, info.height, info.frame_count) == (64, 48, 12)
    assert info.fps == pytest.approx(25.0) and not info.fps_fallback_used
    frames = list(iter_frames(path))
    assert len(frames) == 12
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    # RGB order: even frames red, odd frames blue (lossy codec: compare channel means)
    assert frames[0][..., 0].mean() > 150 > frames[0][..., 2].mean()
    assert frames[1][..., 2].mean() > 150 > frames[1][..., 0].mean()
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"


def test_iter_frames_resizes_before_detection(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, _colour_frames(3, width=128, height=96), fps=25.0)
    assert {f.shape for f in iter_frames(path, max_side=64)} == {(48, 64, 3)}


def test_container_fps_that_lies_falls_back(tmp_path):
    path = tmp_path / "fast.mp4"
    write_video(path, _colour_frames(3), fps=1000.0)
    info = probe_video(path, **FPS_LIMITS)
    assert info.fps_reported == pytest.approx(1000.0)
    assert info.fps == 30.0 and info.fps_fallback_used


def test_missing_video_is_named(tmp_path):
    path = tmp_path / "Videos" / "001" / "15-001_l.mp4"
    with pytest.raises(VideoError, match="15-001_l.mp4: file not found"):
        probe_video(path, **FPS_LIMITS)
    with pytest.raises(VideoError, match="file not found"):
        next(iter_frames(path))


def test_zero_byte_video_is_named(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(VideoError, match=r"empty\.mp4: file is empty \(0 bytes\)"):
        probe_video(path, **FPS_LIMITS)


def test_garbage_bytes_are_not_a_video(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match="garbage.mp4"):
        probe_video(path, **FPS_LIMITS)


def test_truncated_video_is_named(tmp_path):
    """mp4v writes its index (moov atom) last, so a file cut short cannot be opened at all."""
    good = tmp_path / "good.mp4"
    write_video(good, _colour_frames(30), fps=25.0)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(VideoError, match=r"cut\.mp4: OpenCV cannot open it"):
        probe_video(cut, **FPS_LIMITS)


def test_write_video_rejects_bad_frames_and_leaves_nothing(tmp_path):
    path = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        write_video(path, [np.zeros((4, 4), dtype=np.uint8)], fps=25.0)
    with pytest.raises(ValueError, match="no frames"):
        write_video(path, [], fps=25.0)
    assert list(tmp_path.iterdir()) == []


def test_moving_image_frames_moves_the_image():
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[15:25, 25:35] = 255  # a white square in the middle
    frames = list(moving_image_frames(image, 8, shift=0.1, angle_deg=0.0))
    assert len(frames) == 8 and frames[0].shape == image.shape
    centres = [np.argwhere(f[..., 0] > 128).mean(axis=0) for f in frames]
    # frame 0: shifted +0.1 * width in x; frame 2 (a quarter turn): +0.1 * height in y
    assert centres[0][1] - 29.5 == pytest.approx(6.0, abs=1.0)
    assert centres[2][0] - 19.5 == pytest.approx(4.0, abs=1.0)
