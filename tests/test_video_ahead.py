"""Decoding ahead in a thread (:func:`hawkeye.prepare.video.iter_timed_frames_ahead`): the same
frames, times and errors as the plain reader on real videos, and no thread left behind."""

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from hawkeye.prepare import video
from hawkeye.prepare.video import (
    VideoError,
    iter_timed_frames,
    iter_timed_frames_ahead,
    moving_image_frames,
    write_video,
)

ASSETS = Path(__file__).parent / "assets"


def _decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("decode ")]


@pytest.fixture
def hand_clip(tmp_path) -> Path:
    """30 frames of the real hand photo moving on a circle, 320 x 240, mp4v."""
    image = cv2.cvtColor(cv2.imread(str(ASSETS / "handDst.jpg")), cv2.COLOR_BGR2RGB)
    image = cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA)
    path = tmp_path / "hand.mp4"
    write_video(path, moving_image_frames(image, 30, shift=0.06, angle_deg=6.0), fps=25.0)
    return path


@pytest.mark.parametrize(("max_side", "ahead"), [(None, 1), (None, 4), (160, 2)])
def test_same_frames_and_times_as_the_plain_reader(hand_clip, max_side, ahead):
    plain = list(iter_timed_frames(hand_clip, max_side))
    threaded = list(iter_timed_frames_ahead(hand_clip, max_side, ahead))
    assert len(threaded) == len(plain) == 30
    for (frame, seconds), (expected, expected_seconds) in zip(threaded, plain, strict=True):
        assert seconds == expected_seconds
        assert frame.shape == expected.shape and frame.dtype == np.uint8
        assert np.array_equal(frame, expected)
    assert not _decode_threads()


def test_truncated_tail_gives_the_same_frames(tmp_path, hand_clip):
    """An AVI cut short still opens (no index needed) and decodes up to the cut: both readers
    stop at the same frame."""
    frames = [frame for frame, _ in iter_timed_frames(hand_clip)]
    avi = tmp_path / "hand.avi"
    write_video(avi, frames, fps=25.0, fourcc="MJPG")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(avi.read_bytes()[: avi.stat().st_size // 2])
    plain = [seconds for _, seconds in iter_timed_frames(cut)]
    threaded = [seconds for _, seconds in iter_timed_frames_ahead(cut)]
    assert 0 < len(threaded) == len(plain) < 30 and threaded == plain
    assert not _decode_threads()


def test_unopenable_video_raises_its_error_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match=r"garbage\.mp4: OpenCV cannot open it"):
        next(iter_timed_frames_ahead(garbage))
    with pytest.raises(VideoError, match=r"missing\.mp4: file not found"):
        list(iter_timed_frames_ahead(tmp_path / "missing.mp4"))
    assert not _decode_threads()


def test_error_in_mid_video_reaches_the_caller_after_the_frames_before_it(monkeypatch, tmp_path):
    path = tmp_path / "clip.mp4"

    def two_frames_then_fail(path, max_side):
        yield np.zeros((4, 4, 3), np.uint8), 0.0
        yield np.zeros((4, 4, 3), np.uint8), 0.04
        raise VideoError(path, "decoder failed at frame 2")

    monkeypatch.setattr(video, "iter_timed_frames", two_frames_then_fail)
    frames = iter_timed_frames_ahead(path, ahead=1)
    assert [seconds for _, seconds in (next(frames), next(frames))] == [0.0, 0.04]
    with pytest.raises(VideoError, match=r"clip\.mp4: decoder failed at frame 2"):
        next(frames)
    assert not _decode_threads()


def test_closing_early_stops_the_decode_thread(hand_clip):
    frames = iter_timed_frames_ahead(hand_clip, ahead=2)
    next(frames)
    assert _decode_threads()  # the thread is decoding ahead (blocked on the full queue)
    frames.close()
    assert not _decode_threads()


def test_ahead_must_be_a_positive_number_of_frames(hand_clip):
    with pytest.raises(ValueError, match="ahead must be >= 1"):
        next(iter_timed_frames_ahead(hand_clip, ahead=0))


def test_prepare_decodes_ahead_and_leaves_no_thread_for_good_or_bad_videos(tmp_path, hand_clip):
    """``process_video`` with the default config (``prepare.video.decode_ahead=4``): a real clip
    is stored with all its frames, a cut-short AVI with the frames before the cut, garbage is
    skipped with a reason naming the file; no decode thread survives any of them."""
    from hawkeye.config import compose
    from hawkeye.prepare.landmarks import close_process_detector
    from hawkeye.prepare.pd4t import VideoItem
    from hawkeye.prepare.worker import PrepareSettings, process_video

    settings = PrepareSettings.from_config(compose([]).prepare, None)
    assert settings.video["decode_ahead"] == 4

    def item(path: Path, frames: int) -> VideoItem:
        return VideoItem(id=path.stem, visit=path.stem, hand="r", subject="001",
                         frame_count=frames, score=1, split="train", video_path=path,
                         landmarks_path=path.with_suffix(".landmarks.npz"))

    avi = tmp_path / "hand.avi"
    write_video(avi, [frame for frame, _ in iter_timed_frames(hand_clip)], 25.0, fourcc="MJPG")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(avi.read_bytes()[: avi.stat().st_size // 2])
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    try:
        good = process_video(item(hand_clip, 30), None, settings)
        assert good.entry is not None and good.qc.frames == 30
        short = process_video(item(cut, 30), None, settings)
        assert 0 < short.qc.frames < 30 and "truncated file?" in short.qc.reason
        bad = process_video(item(garbage, 30), None, settings)
        assert bad.entry is None and "garbage.mp4: OpenCV cannot open it" in bad.qc.reason
    finally:
        close_process_detector()
    assert not _decode_threads()
