"""Preparation QC: one row per video (or unusable annotation row), the CSV and Markdown report
beside the store, the per-video tap-trace figure and the overview figure.

Files beside a store ``<stem>.h5`` (:func:`qc_paths`): ``<stem>_qc.csv`` (:data:`QC_COLUMNS`),
``<stem>_qc.md``, ``<stem>_qc.png`` and the per-video figures in ``<stem>_qc/``. A shard store's
QC files sit beside the shard; the merge concatenates the shards' CSVs.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # Agg via Figure: no display, no pyplot state
from matplotlib.ticker import MaxNLocator

from hawkeye.io import atomic_path, save_png, write_text_atomic
from hawkeye.prepare.features import TapCycles
from hawkeye.prepare.pd4t import Problem, VideoItem
from hawkeye.timebase import VARIABLE_SPREAD

# QC statuses: stored now (ok / flagged with a warning), kept from an earlier run (cached,
# relabelled when only the annotation's labels changed), or not stored (skipped).
OK, FLAGGED, CACHED, RELABELLED, SKIPPED = "ok", "flagged", "cached", "relabelled", "skipped"


@dataclass
class QcRow:
    """One line of the QC report: a video (or an annotation row that named none usable)."""

    id: str
    split: str = ""
    subject: str = ""
    hand: str = ""
    score: str = ""
    status: str = SKIPPED              # ok | flagged | cached | relabelled | skipped
    reason: str = ""                   # why flagged or skipped (messages joined by " | ")
    source: str = ""                   # the file the landmarks came from
    frames: int = 0                    # frames decoded (or in the landmark file)
    frames_annotated: int = 0          # frame count of the annotation row
    fps: float = math.nan              # frames per second features use (timestamps' median rate)
    fps_reported: float = math.nan     # what the container (or landmark file) claims
    fps_note: str = ""                 # timestamps vs claim, variable rate, fallback used
    timing: str = ""                   # frame times from: timestamps | nominal | fallback | file
    fps_spread: float = math.nan       # (p90 - p10) / median frame interval; 0 = constant rate
    dropped_frames: int = 0            # frames missing from the median rhythm (by the timestamps)
    duplicated_frames: int = 0         # frames repeating the previous frame's timestamp
    width: int = 0                     # frame width, pixels
    height: int = 0                    # frame height, pixels
    detection_rate: float = math.nan   # share of frames with a detected hand
    longest_gap: int = 0               # longest run of frames without a hand
    filled_frames: int = 0             # frames interpolated by the gap filler
    taps: int = 0                      # cycles of the task trace: taps, openings, lifts, steps
    hand_choice: str = ""              # label | only_hand | ... | precomputed | annotated_side
    hand_detail: str = ""              # why that hand (pose: that side) was taken
    hash_s: float = 0.0                # seconds spent hashing the source file
    decode_s: float = 0.0              # seconds decoding frames (or reading the landmark file)
    detect_s: float = 0.0              # seconds in MediaPipe
    features_s: float = 0.0            # seconds choosing the hand, filling gaps, features
    total_s: float = 0.0               # seconds for the whole video in its worker


QC_COLUMNS = tuple(f.name for f in fields(QcRow))


def qc_row_for(item: VideoItem) -> QcRow:
    """A fresh QC row for an annotated video (status skipped until the video is stored)."""
    return QcRow(id=item.id, split=item.split, subject=item.subject, hand=item.hand,
                 score=str(item.score), frames_annotated=item.frame_count)


@dataclass(frozen=True)
class TraceStyle:
    """How a task's cycle trace is drawn: the same scale for every video, so two trials of one
    patient (or two patients) compare at a glance."""

    label: str                        # series 0 with its unit: "thumb-index distance (hand sizes)"
    limits: tuple[float, float]       # y range of the trace and of the per-cycle amplitude
    speed_limit: float                # top of the per-cycle speed axis, units per second
    seconds: float                    # time axis 0..seconds (a longer video extends it)

    @property
    def unit(self) -> str:
        """``hand sizes`` from ``thumb-index distance (hand sizes)``."""
        return self.label.rsplit("(", 1)[1].rstrip(")") if "(" in self.label else ""


@dataclass(frozen=True)
class VideoTrace:
    """What a video's trace figure shows (arrays only: it crosses the worker pool)."""

    times: np.ndarray     # (T,) s of each frame
    values: np.ndarray    # (T,) series 0 in the style's unit, NaN where no landmarks were seen
    cycles: TapCycles     # the detected cycles (taps, openings, heel lifts, steps)


def video_trace(series: np.ndarray, presence: np.ndarray, times: np.ndarray,
                cycles: TapCycles) -> VideoTrace:
    """A :class:`VideoTrace` whose frames without landmarks are NaN: the figure breaks its line
    there instead of drawing the gap filler's interpolation as if it had been seen."""
    values = np.where(np.asarray(presence, dtype=bool), np.asarray(series, dtype=np.float64),
                      np.nan)
    return VideoTrace(np.asarray(times, dtype=np.float64), values, cycles)


def plot_video(path: Path, trace: VideoTrace, qc: QcRow, style: TraceStyle,
               score_text: str) -> None:
    """The per-video QC figure (:func:`tap_trace_figure`); a failure to draw is noted in the QC
    row, it never costs the video."""
    try:
        tap_trace_figure(path, trace, f"{qc.id} ({qc.status}): {score_text}", style)
    except Exception as err:  # noqa: BLE001 - a figure is optional, the features are not
        qc.reason = " | ".join(filter(None, [qc.reason, f"QC figure not drawn: {err}"]))


def qc_paths(store: str | os.PathLike[str]) -> dict[str, Path]:
    """QC files beside a store: ``<stem>_qc.csv``, ``.md``, ``.png`` and ``<stem>_qc/`` figures."""
    store = Path(store)
    base = f"{store.stem}_qc"  # not with_suffix: a shard's stem holds dots (x.shard-0-of-2)
    return {"csv": store.with_name(f"{base}.csv"), "md": store.with_name(f"{base}.md"),
            "png": store.with_name(f"{base}.png"), "dir": store.with_name(base)}


# ------------------------------------------------------------------------------------- QC files


def write_qc_csv(path: Path, rows: Sequence[QcRow]) -> None:
    """The QC table as CSV (one row per video or bad annotation row), written atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=QC_COLUMNS)
        writer.writeheader()
        for row in rows:
            values = asdict(row)
            for key, value in values.items():
                if isinstance(value, float):
                    values[key] = "" if math.isnan(value) else f"{value:.4g}"
            writer.writerow(values)


def read_qc_csv(path: Path) -> list[QcRow]:
    """Rows of a QC CSV written by :func:`write_qc_csv` ([] when the file does not exist)."""
    if not path.exists():
        return []
    types = {f.name: f.type for f in fields(QcRow)}
    rows = []
    with open(path, newline="") as handle:
        for record in csv.DictReader(handle):
            values: dict[str, Any] = {}
            for key, text in record.items():
                if key not in types:
                    continue
                kind = types[key]
                if kind == "int":
                    values[key] = int(float(text)) if text else 0
                elif kind == "float":
                    values[key] = float(text) if text else math.nan
                else:
                    values[key] = text or ""
            rows.append(QcRow(**values))
    return rows


def qc_markdown(rows: Sequence[QcRow], store: Path, problems_note: str = "") -> str:
    """A short Markdown summary: counts by status and hand choice, then every row with a reason."""
    counts = Counter(row.status for row in rows)
    videos = [row for row in rows if row.frames]
    lines = [f"# Preparation QC: `{store.name}`", "",
             f"{len(rows)} rows: " + ", ".join(f"{counts[s]} {s}" for s in
                                               (OK, FLAGGED, CACHED, RELABELLED, SKIPPED)), ""]
    if videos:
        rates = np.array([row.detection_rate for row in videos])
        lines += [f"Videos read this run: {len(videos)}; frames {sum(r.frames for r in videos)}; "
                  f"detection rate median {np.nanmedian(rates):.1%}, min {np.nanmin(rates):.1%}; "
                  f"cycles (taps, hand openings, heel lifts or steps) per video median "
                  f"{int(np.median([r.taps for r in videos]))}.", ""]
        choice = Counter(row.hand_choice for row in videos)
        lines += ["Hand or side choice: " + ", ".join(f"{k} {v}" for k, v in
                                                      sorted(choice.items())), ""]
        lines += [timing_line(videos), ""]
    if problems_note:
        lines += [problems_note, ""]
    issues = [row for row in rows if row.status in (SKIPPED, FLAGGED) or row.reason]
    if issues:
        lines += ["| id | status | reason |", "|---|---|---|"]
        lines += [f"| {row.id} | {row.status} | {row.reason.replace('|', '/')} |" for row in issues]
    else:
        lines.append("No video was skipped or flagged, no row has a warning.")
    return "\n".join(lines) + "\n"


def timing_line(videos: Sequence[QcRow]) -> str:
    """One sentence on the frame rates of ``videos``: range, where the times came from, how many
    have a variable rate, dropped or duplicated frames."""
    rates = np.array([row.fps for row in videos], dtype=np.float64)
    sources = Counter(row.timing or "unknown" for row in videos)
    variable = sum(1 for row in videos if row.fps_spread > VARIABLE_SPREAD)
    gaps = sum(1 for row in videos if row.dropped_frames or row.duplicated_frames)
    return (f"Frame rates: {np.nanmin(rates):.4g}-{np.nanmax(rates):.4g} fps (median "
            f"{np.nanmedian(rates):.4g}); times from " + ", ".join(
                f"{k} {v}" for k, v in sorted(sources.items())) +
            f"; {variable} with a variable rate, {gaps} with dropped or duplicated frames.")


def tap_trace_figure(path: Path, trace: VideoTrace, title: str, style: TraceStyle) -> Figure:
    """PNG of a cycle trace in VisionMD's view: the trace over time with each detected cycle
    numbered (top), each cycle's amplitude with the fitted decrement over the trial (bottom
    left) and its opening and closing speed (bottom right). Every axis is on ``style``'s fixed
    scale; frames without landmarks are gaps (shaded, the line broken), never interpolated."""
    cycles, t = trace.cycles, trace.times
    fig = Figure(figsize=(9.0, 5.6))
    grid = fig.add_gridspec(2, 2, height_ratios=[1.2, 1.0])
    trace_ax = fig.add_subplot(grid[0, :])
    amplitude_ax, speed_ax = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    trace_ax.plot(t, trace.values, lw=1, color="C0", label=style.label.split(" (")[0])
    trace_ax.plot(t[cycles.peak], trace.values[cycles.peak], "v", color="C3", ms=5,
                  label=f"cycles ({cycles.n})")
    for number, peak in enumerate(cycles.peak, start=1):
        if np.isfinite(trace.values[peak]):
            trace_ax.annotate(str(number), (t[peak], trace.values[peak]), fontsize=6,
                              xytext=(0, 4), textcoords="offset points", ha="center")
    missing = ~np.isfinite(trace.values)
    if missing.any():
        trace_ax.fill_between(t, 0, 1, where=missing, transform=trace_ax.get_xaxis_transform(),
                              color="0.85", label="no landmarks detected (gap)")
    end = max(style.seconds, float(t[-1]) if t.size else 0.0)
    trace_ax.set(xlabel="time (s)", ylabel=style.label, title=title, xlim=(0.0, end),
                 ylim=style.limits)
    trace_ax.legend(loc="upper right", fontsize=7)
    number = np.arange(1, cycles.n + 1)
    amplitude_ax.plot(number, cycles.amplitude, "o", color="C0", ms=4, label="amplitude")
    slope = decrement(cycles.amplitude)
    if slope is not None:
        per_cycle, start, change = slope
        amplitude_ax.plot(number, start + per_cycle * (number - 1), "--", color="C3",
                          label=f"decrement {per_cycle:+.3f} {style.unit}/cycle "
                                f"({change:+.0f}% over the trial)")
    amplitude_ax.set(xlabel="cycle number", ylabel=f"amplitude ({style.unit})",
                     ylim=(0.0, style.limits[1] - style.limits[0]), title="amplitude per cycle")
    speed_ax.plot(number, cycles.open_speed, "o-", color="C2", ms=3, lw=0.8, label="opening")
    speed_ax.plot(number, cycles.close_speed, "s-", color="C4", ms=3, lw=0.8, label="closing")
    speed_ax.set(xlabel="cycle number", ylabel=f"speed ({style.unit}/s)",
                 ylim=(0.0, style.speed_limit), title="speed per cycle")
    for ax in (amplitude_ax, speed_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # cycles are counted
        ax.set_xlim(0.5, max(cycles.n, 1) + 0.5)
        if cycles.n:
            ax.legend(loc="upper right", fontsize=7)
    save_png(fig, path, dpi=100)
    return fig


def decrement(amplitude: np.ndarray) -> tuple[float, float, float] | None:
    """Least-squares line through the amplitudes of cycles 1..n: (slope per cycle, fitted first
    amplitude, change from the first to the last cycle in % of the first); None for fewer than 3
    cycles, where a slope says nothing, or a fitted first amplitude of 0."""
    a = np.asarray(amplitude, dtype=np.float64)
    if a.size < 3:
        return None
    slope, start = np.polyfit(np.arange(a.size), a, 1)
    if start <= 0:
        return None
    return float(slope), float(start), float(100.0 * slope * (a.size - 1) / start)


def overview_figure(path: Path, rows: Sequence[QcRow]) -> Figure:
    """PNG overview: detection rate and cycles per video, coloured by QC status."""
    videos = [row for row in rows if row.frames]
    fig = Figure(figsize=(9, 3.2))
    left, right = fig.subplots(1, 2)
    colours = {OK: "C2", FLAGGED: "C1", SKIPPED: "C3", CACHED: "0.5", RELABELLED: "0.5"}
    for status in colours:
        chosen = [r for r in videos if r.status == status]
        if chosen:
            left.scatter([r.detection_rate for r in chosen], [r.taps for r in chosen], s=12,
                         color=colours[status], label=f"{status} ({len(chosen)})")
    left.set(xlabel="detection rate (share of frames with landmarks)",
             ylabel="cycles detected (taps, openings, lifts, steps)", title="per video")
    if videos:
        left.legend(fontsize=7)
    counts = Counter(row.status for row in rows)
    right.bar(list(counts), list(counts.values()), color=[colours.get(s, "C0") for s in counts])
    right.set(ylabel="videos and annotation rows", title="QC status")
    save_png(fig, path, dpi=100)
    return fig


def write_qc(store: Path, rows: Sequence[QcRow], overview: bool, problems_note: str = "") -> None:
    """The QC csv and md beside ``store`` (and the overview PNG when asked), each atomically."""
    paths = qc_paths(store)
    ordered = sorted(rows, key=lambda r: (r.id, r.source))
    write_qc_csv(paths["csv"], ordered)
    write_text_atomic(paths["md"], qc_markdown(ordered, store, problems_note))
    if overview:
        overview_figure(paths["png"], ordered)



def problem_row(problem: Problem) -> QcRow:
    """The QC row of an annotation row that names no usable video."""
    where = f"{problem.path.name}:{problem.line}" if problem.line else problem.path.name
    return QcRow(id=problem.id or where, split=problem.split, status=SKIPPED,
                 reason=f"{problem.kind}: {problem.message}", source=str(problem.path))
