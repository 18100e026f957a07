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

from hawkeye.io import atomic_path, save_png, write_text_atomic
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


def plot_video(path: Path, features: Any, times: np.ndarray, qc: QcRow,
               label: str = "thumb-index distance (hand sizes)") -> None:
    """The per-video QC figure: the task's cycle trace (series 0, ``label`` with its units) over
    the frame times (s) and its cycles; a failure to draw is noted, it never costs the video."""
    try:
        tap_trace_figure(path, features.series[:, 0], features.taps.peak, features.presence,
                         times, title=f"{qc.id} ({qc.status})", label=label)
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


def tap_trace_figure(path: Path, distance: np.ndarray, peaks: np.ndarray, presence: np.ndarray,
                     times: np.ndarray, title: str,
                     label: str = "thumb-index distance (hand sizes)") -> None:
    """PNG of a cycle trace over time (``times``, seconds per frame; finger tapping: the
    thumb–index distance; ``label`` names it with its units) with the detected cycles and the
    frames without landmarks."""
    from matplotlib.figure import Figure  # Agg via Figure: no display, no pyplot state

    t = np.asarray(times, dtype=np.float64)
    fig = Figure(figsize=(8, 2.6))
    ax = fig.add_subplot()
    ax.plot(t, distance, lw=1, color="C0", label=label.split(" (")[0])
    ax.plot(t[peaks], distance[peaks], "v", color="C3", ms=5, label=f"cycles ({len(peaks)})")
    missing = ~presence
    if missing.any():
        ax.fill_between(t, 0, 1, where=missing, transform=ax.get_xaxis_transform(),
                        color="0.85", label="no landmarks detected")
    ax.set(xlabel="time (s)", ylabel=label, title=title)
    ax.legend(loc="upper right", fontsize=7)
    save_png(fig, path, dpi=100)


def overview_figure(path: Path, rows: Sequence[QcRow]) -> None:
    """PNG overview: detection rate and taps per video, coloured by QC status."""
    from matplotlib.figure import Figure

    videos = [row for row in rows if row.frames]
    fig = Figure(figsize=(9, 3.2))
    left, right = fig.subplots(1, 2)
    colours = {OK: "C2", FLAGGED: "C1", SKIPPED: "C3", CACHED: "0.5", RELABELLED: "0.5"}
    for status in colours:
        chosen = [r for r in videos if r.status == status]
        if chosen:
            left.scatter([r.detection_rate for r in chosen], [r.taps for r in chosen], s=12,
                         color=colours[status], label=f"{status} ({len(chosen)})")
    left.set(xlabel="detection rate", ylabel="taps detected", title="per video")
    if videos:
        left.legend(fontsize=7)
    counts = Counter(row.status for row in rows)
    right.bar(list(counts), list(counts.values()), color=[colours.get(s, "C0") for s in counts])
    right.set(ylabel="rows", title="QC status")
    save_png(fig, path, dpi=100)


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
