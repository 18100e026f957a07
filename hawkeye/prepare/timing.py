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
from pathlib import Path
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
    """:func:`resolve_timing` of a decoded video: its frames' container timestamps and the
    container's nominal rate."""
    return resolve_timing(len(stamps), stamps, info.fps_reported, "the container's", NOMINAL,
                          video_cfg, qc)


def file_timing(path: Path, n_frames: int, fps: float, stamps: np.ndarray | None,
                video_cfg: Mapping[str, Any], qc: QcRow) -> tuple[np.ndarray, float, list[str]]:
    """:func:`resolve_timing` of the precomputed landmark file ``path`` (named in its notes): its
    optional ``timestamps`` and its ``fps`` (a file saying 1e6 fps would otherwise give 0 taps
    and a 0.2 ms long video)."""
    return resolve_timing(n_frames, stamps, fps, f"{path}: the landmark file's", FILE,
                          video_cfg, qc)


def resolve_timing(n_frames: int, stamps: np.ndarray | None, claimed_fps: float, claimed_by: str,
                   claimed_source: str, video_cfg: Mapping[str, Any], qc: QcRow
                   ) -> tuple[np.ndarray, float, list[str]]:
    """``(times, fps, notes)``: frame times in seconds from the first frame, the rate the
    features use and the notes that flag the video (no plausible rate anywhere).

    Per-frame ``stamps`` are used when usable and their median rate is plausible; otherwise
    frames are taken as ``1 / fps`` apart at the claimed rate, or at ``prepare.video.fps_fallback``
    when that is implausible too (flagged: the timing is then a guess). Fills the QC timing fields.
    """
    fps_min, fps_max = float(video_cfg["fps_min"]), float(video_cfg["fps_max"])
    qc.fps_reported = claimed_fps
    claim_problem = rate_problem(claimed_fps, fps_min, fps_max, claimed_by)
    notes: list[str] = []
    usable = stamps is not None and times_are_usable(stamps)
    if usable:
        times = np.asarray(stamps, dtype=np.float64) - float(stamps[0])
        timing = measure_timing(times)
        problem = rate_problem(timing.fps_measured, fps_min, fps_max,
                               "the frame timestamps' rate")
        if problem is None:
            _record(qc, timing, TIMESTAMPS)
            agrees = (claim_problem is None
                      and abs(timing.fps_measured / claimed_fps - 1) < _SAME_RATE)
            fps = claimed_fps if agrees else timing.fps_measured
            if not agrees:
                _note(qc, f"{claimed_by} {claimed_fps:.4g} fps, frame timestamps give {fps:.4g} "
                          "fps (used)")
            if timing.variable:
                _note(qc, f"variable frame rate (interval spread {timing.interval_spread:.0%} of "
                          "the median): model inputs follow the timestamps")
            if timing.dropped_frames or timing.duplicated_frames:
                _note(qc, f"{timing.dropped_frames} dropped, {timing.duplicated_frames} "
                          "duplicated frame(s) by the timestamps")
            return times, fps, notes
        notes.append(problem)
    if stamps is not None and not usable:
        _note(qc, "frame timestamps unusable (missing, constant or going back): frames taken as "
                  "evenly spaced")
    fps, source = claimed_fps, claimed_source
    if claim_problem is not None:
        fps, source = float(video_cfg["fps_fallback"]), FALLBACK
        without = "" if usable or stamps is None else " and the frames carry no usable timestamps"
        notes.append(f"{claim_problem}{without}: used prepare.video.fps_fallback={fps:g} (the "
                     "timing is a guess)")
    times = uniform_times(n_frames, fps)
    _record(qc, measure_timing(times), source)
    _note(qc, *notes)
    return times, fps, notes
