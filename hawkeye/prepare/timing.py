"""The frame timing of one video for preparation: container timestamps checked against the
nominal rate, an implausible rate flagged (never silently used), the QC timing fields filled.

Per-frame timestamps (``CAP_PROP_POS_MSEC``, :func:`hawkeye.prepare.video.iter_timed_frames`) are
the truth when the container has them: a phone's variable frame rate, a dropped frame or a
container whose nominal rate is wrong all show there. The store keeps those times
(``hawkeye.store`` ``timestamps``) and model inputs are resampled by them
(:mod:`hawkeye.timebase`); the clinical features use the median rate of the same times.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hawkeye.prepare.qc import QcRow
from hawkeye.prepare.video import VideoInfo
from hawkeye.timebase import (
    FrameTiming,
    measure_timing,
    rate_problem,
    times_are_usable,
    uniform_times,
)

# A measured rate this close to the container's nominal one is that rate (29.97 stays 29.97).
_SAME_RATE = 1e-3

TIMESTAMPS, NOMINAL, FALLBACK, FILE = "timestamps", "nominal", "fallback", "file"


def _record(qc: QcRow, timing: FrameTiming, source: str) -> None:
    qc.timing, qc.fps_spread = source, timing.interval_spread
    qc.dropped_frames, qc.duplicated_frames = timing.dropped_frames, timing.duplicated_frames


def _note(qc: QcRow, *parts: str) -> None:
    qc.fps_note = "; ".join(filter(None, [qc.fps_note, *parts]))


def container_timing(stamps: np.ndarray, info: VideoInfo, video_cfg: Mapping[str, Any],
                     qc: QcRow) -> tuple[np.ndarray, float, list[str]]:
    """``(times, fps, notes)`` of a decoded video: frame times in seconds from the first frame,
    the rate the features use and the notes that flag the video (an implausible rate).

    Timestamps are used when usable and their median rate is plausible; otherwise frames are
    taken as ``1 / fps`` apart at the container's rate, or at ``prepare.video.fps_fallback``
    when that is implausible too (flagged: the timing is then a guess).
    """
    fps_min, fps_max = float(video_cfg["fps_min"]), float(video_cfg["fps_max"])
    qc.fps_reported = info.fps_reported
    notes: list[str] = []
    if times_are_usable(stamps):
        times = stamps - stamps[0]
        timing = measure_timing(times)
        problem = rate_problem(timing.fps_measured, fps_min, fps_max, "frame timestamps give")
        if problem is None:
            _record(qc, timing, TIMESTAMPS)
            nominal_agrees = (not info.fps_fallback_used and abs(
                timing.fps_measured / info.fps_reported - 1) < _SAME_RATE)
            fps = info.fps_reported if nominal_agrees else timing.fps_measured
            if not nominal_agrees:
                _note(qc, f"container says {info.fps_reported:.4g} fps, frame timestamps give "
                          f"{fps:.4g} fps (used)")
            if timing.variable:
                _note(qc, f"variable frame rate (interval spread {timing.interval_spread:.0%} of "
                          "the median): model inputs follow the timestamps")
            if timing.dropped_frames or timing.duplicated_frames:
                _note(qc, f"{timing.dropped_frames} dropped, {timing.duplicated_frames} "
                          "duplicated frame(s) by the timestamps")
            return times, fps, notes
        notes.append(problem)
    n = len(stamps)
    if info.fps_fallback_used:
        notes.append(f"container fps {info.fps_reported:g} is implausible and the frames carry no "
                     f"usable timestamps: used prepare.video.fps_fallback={info.fps:g} (the "
                     "timing is a guess)")
    _record(qc, measure_timing(uniform_times(n, info.fps)),
            FALLBACK if info.fps_fallback_used else NOMINAL)
    _note(qc, *notes)
    return uniform_times(n, info.fps), info.fps, notes


def file_timing(n_frames: int, fps: float, video_cfg: Mapping[str, Any], qc: QcRow
                ) -> tuple[np.ndarray, float, list[str]]:
    """``(times, fps, notes)`` of a precomputed landmark file: frames ``1 / fps`` apart, or
    ``prepare.video.fps_fallback`` apart (flagged) when the file's fps is implausible (a file
    saying 1e6 fps would give 0 taps and a 0.2 ms long video)."""
    qc.fps_reported = fps
    problem = rate_problem(fps, float(video_cfg["fps_min"]), float(video_cfg["fps_max"]),
                           "the landmark file's")
    notes = []
    if problem is not None:
        fps = float(video_cfg["fps_fallback"])
        notes.append(f"{problem}: used prepare.video.fps_fallback={fps:g} (the timing is a "
                     "guess)")
        _note(qc, notes[0])
    times = uniform_times(n_frames, fps)
    _record(qc, measure_timing(times), FALLBACK if problem else FILE)
    return times, fps, notes
