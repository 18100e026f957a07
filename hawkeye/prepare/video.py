"""Video decoding with OpenCV: RGB frames, trustworthy metadata, clear errors for bad files.

Frames come out as ``(H, W, 3) uint8`` RGB arrays (MediaPipe's input format), one at a time from a
generator so a long video never sits in memory. Containers lie about their frame rate (0, NaN,
1000 fps from a broken time base): :func:`sane_fps` replaces an implausible value with a configured
fallback and says so. A frame can be shrunk before detection (:func:`resize_for_detection`); the
aspect ratio is kept, so MediaPipe's normalised coordinates (x / width, y / height) mean the same
thing at any size and the landmark contract does not change.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hawkeye.io import atomic_path


class VideoError(Exception):
    """A video that cannot be used: missing, empty, or not decodable. The message names the file."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class VideoInfo:
    """What a video file says about itself, after sanity checks."""

    path: Path
    fps: float              # frames per second used downstream (container value or fallback)
    fps_reported: float     # what the container claimed (may be 0 or NaN)
    fps_fallback_used: bool  # True when fps_reported was implausible and fps is the fallback
    frame_count: int        # container's frame count (an estimate for some codecs; 0 = unknown)
    width: int              # frame width in pixels, before any resize
    height: int             # frame height in pixels, before any resize


def sane_fps(reported: float, fallback: float, fps_min: float,
             fps_max: float) -> tuple[float, bool]:
    """``(fps, fallback_used)``: ``reported`` if in ``[fps_min, fps_max]``, else ``fallback``."""
    if reported is not None and math.isfinite(reported) and fps_min <= reported <= fps_max:
        return float(reported), False
    return float(fallback), True


def resized_shape(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """``(width, height)`` scaled so the longer side is at most ``max_side``; never enlarges."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_for_detection(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink ``frame`` (H, W, C) so its longer side is at most ``max_side`` pixels, same aspect."""
    height, width = frame.shape[:2]
    new_w, new_h = resized_shape(width, height, max_side)
    if (new_w, new_h) == (width, height):
        return frame
    return cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_AREA)


def _open_capture(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise VideoError(path, "file not found; check data_root and the annotation row naming it")
    if path.stat().st_size == 0:
        raise VideoError(path, "file is empty (0 bytes); re-copy it from the source")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoError(path, "OpenCV cannot open it (corrupt or unsupported container)")
    return capture


def probe_video(path: str | os.PathLike[str], fps_fallback: float, fps_min: float,
                fps_max: float) -> VideoInfo:
    """Read a video's metadata and check that at least one frame decodes.

    Raises :class:`VideoError` for a missing, empty, unopenable or undecodable file.
    """
    path = Path(path)
    capture = _open_capture(path)
    try:
        reported = float(capture.get(cv2.CAP_PROP_FPS))
        frame_count = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok or frame is None:
        raise VideoError(path, "no frame could be decoded (truncated or corrupt file)")
    fps, fallback_used = sane_fps(reported, fps_fallback, fps_min, fps_max)
    height, width = frame.shape[:2]
    return VideoInfo(path=path, fps=fps, fps_reported=reported, fps_fallback_used=fallback_used,
                     frame_count=frame_count, width=int(width), height=int(height))


def iter_timed_frames(path: str | os.PathLike[str], max_side: int | None = None
                      ) -> Iterator[tuple[np.ndarray, float]]:
    """Yield ``(frame, seconds)``: RGB ``(H, W, 3) uint8`` frames (shrunk to ``max_side`` if
    given) with the container's timestamp of each (``CAP_PROP_POS_MSEC``: the frame's
    presentation time, so a variable-frame-rate phone video gets its real timing).

    Decoding stops at the first frame OpenCV cannot read (end of file or a truncated tail); the
    caller compares the number of frames it got with the expected count, and checks the times
    (:func:`hawkeye.timebase.times_are_usable`: some containers report none).
    """
    path = Path(path)
    capture = _open_capture(path)
    try:
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                return
            seconds = float(capture.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
            frame = resize_for_detection(frame, max_side)
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), seconds
    finally:
        capture.release()


_END = object()  # the decode thread's last item: no more frames


def _decode_into(path: Path, max_side: int | None, frames: queue.Queue, stop: threading.Event
                 ) -> None:
    """Decode thread body: put ``(frame, seconds)`` items, then :data:`_END` or the exception."""
    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        for item in iter_timed_frames(path, max_side):
            if not put(item):
                return
        put(_END)
    except BaseException as err:  # noqa: BLE001 - the reader raises it in its own thread
        put(err)  # (the reader would otherwise wait for a frame that never comes)


def iter_timed_frames_ahead(path: str | os.PathLike[str], max_side: int | None = None,
                            ahead: int = 4) -> Iterator[tuple[np.ndarray, float]]:
    """:func:`iter_timed_frames`, decoded by a background thread up to ``ahead`` frames ahead.

    OpenCV releases the GIL while it decodes, converts and resizes, so the next frames are
    ready while the caller runs MediaPipe on this one. The same frames, times and errors as
    :func:`iter_timed_frames` (a :class:`VideoError` is raised here, in the caller's thread);
    the thread is stopped and joined when the iterator ends, fails or is closed early.
    """
    if ahead < 1:
        raise ValueError(f"iter_timed_frames_ahead({path}): ahead must be >= 1 frame, got {ahead}")
    frames: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()
    thread = threading.Thread(target=_decode_into, args=(Path(path), max_side, frames, stop),
                              name=f"decode {Path(path).name}", daemon=True)
    thread.start()
    try:
        while True:
            item = frames.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # a decode thread blocked on a full queue sees it within 0.1 s
        thread.join()


def iter_frames(path: str | os.PathLike[str], max_side: int | None = None) -> Iterator[np.ndarray]:
    """The frames of :func:`iter_timed_frames` without their times."""
    for frame, _ in iter_timed_frames(path, max_side):
        yield frame


def write_video(path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: float,
                fourcc: str = "mp4v") -> int:
    """Write RGB ``(H, W, 3) uint8`` frames to ``path`` atomically; return the number written.

    OpenCV picks the container from the file extension, so the writer gets a temporary name that
    ends in the real extension; it is moved onto :func:`hawkeye.io.atomic_path`'s temporary file
    once the writer is closed, and that is renamed into place.
    """
    path = Path(path)
    count = 0
    with atomic_path(path) as tmp:
        video_tmp = tmp.with_name(tmp.name + path.suffix)
        writer = None
        try:
            for frame in frames:
                if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                    raise ValueError(f"write_video({path}): frames must be (H, W, 3) uint8, got "
                                     f"{frame.shape} {frame.dtype}")
                if writer is None:
                    height, width = frame.shape[:2]
                    writer = cv2.VideoWriter(str(video_tmp), cv2.VideoWriter_fourcc(*fourcc), fps,
                                             (width, height))
                    if not writer.isOpened():
                        raise VideoError(path, f"OpenCV cannot write codec {fourcc!r} here")
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                count += 1
            if writer is None:
                raise ValueError(f"write_video({path}): no frames given")
            writer.release()
            writer = None
            os.replace(video_tmp, tmp)
        finally:
            if writer is not None:
                writer.release()
            video_tmp.unlink(missing_ok=True)
    return count


def moving_image_frames(image: np.ndarray, n_frames: int, shift: float = 0.06,
                        angle_deg: float = 8.0) -> Iterator[np.ndarray]:
    """Frames of a still ``image`` (H, W, 3) drifting on a small circle and rocking in rotation.

    Frame ``i`` is the image rotated by ``angle_deg * sin(2 pi i / n)`` about its centre and shifted
    by ``shift * (W, H) * (cos, sin)(2 pi i / n)``; borders replicate the edge pixels. Used to make
    real-pixel test and benchmark clips from the hand photographs in ``tests/assets``.
    """
    height, width = image.shape[:2]
    for i in range(n_frames):
        phase = 2 * math.pi * i / max(n_frames, 1)
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle_deg * math.sin(phase), 1.0)
        matrix[0, 2] += shift * width * math.cos(phase)
        matrix[1, 2] += shift * height * math.sin(phase)
        yield cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
