"""A user's own telemetry CSV -> windows in a Hawkeye store, with every dropped row accounted for.

Expected layout: a header row, then one row per time step::

    trip_id,time,speed,rpm,throttle,...,anomaly,fuel_consumption
    trip-a,0,52.1,1830,21.5,...,0,6.1

- ``id_column`` names the trip (or vehicle) of the row. Windows never cross trips and the store's
  ``subjects`` are these ids, so cross-validation groups by them. A trip's rows need not be
  contiguous in the file; they keep file order, or ``time_column`` order when one is given.
- ``signals`` are the model's input columns, in order (default: every column not used otherwise).
- ``label_column`` (optional) holds 0/1 per row; a window is anomalous when any of its rows is.
  The window label becomes the store's ``scores`` and ``targets/anomaly``.
- ``targets`` (optional) are per-row values; a window's target is their mean (``targets/<name>``).
- ``split_column`` (optional) gives the split per row, constant within a trip; without it, whole
  trips are dealt to train/valid/test by ``split_fractions`` (seeded).
- Windows of ``window`` rows start every ``stride`` rows; rows after the last full window of a trip
  and trips shorter than one window give no window (counted in the report).

Bad input is never a crash deep in numpy and never silently lost:

- an unparseable row (wrong number of fields, empty id, text or inf in a number column, a label
  other than 0/1, a repeated time stamp) is skipped and recorded with its file line and reason
  (``bad_rows: skip``), or stops the import with that message (``bad_rows: error``); more than
  ``max_skipped_fraction`` of the rows skipped is an error, since the file is then probably not
  in the expected layout. A skipped row is a gap: with a time column, windows spanning a time gap
  larger than 1.5 median steps are dropped (recorded); without one, its neighbours become adjacent.
- a missing value (an empty cell, ``nan``, ``NA``) in a signal or target is handled as ``missing``
  says: ``drop_window`` drops every window touching it (recorded), ``interpolate`` fills it
  linearly within its trip (edges take the nearest value), ``error`` stops with file, line and
  column.

The report (:class:`ImportReport`) and the store's ``attrs`` hold the skipped rows (first 1000),
the dropped windows and the counts.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hawkeye.config import section_values
from hawkeye.io import check_text_file
from hawkeye.store import WriteReport
from hawkeye.telemetry.generate import write_fresh_store

MISSING_POLICIES = ("drop_window", "interpolate", "error")
BAD_ROW_POLICIES = ("skip", "error")
_MISSING_WORDS = {"", "nan", "na", "n/a", "null", "none"}
_MAX_RECORDED = 1000


@dataclass(frozen=True)
class ImportConfig:
    """How to read the CSV (defaults live in ``conf/task/telemetry.yaml``, ``csv_import:``)."""

    id_column: str
    time_column: str | None
    signals: tuple[str, ...] | None
    label_column: str | None
    targets: tuple[str, ...]
    split_column: str | None
    split_fractions: tuple[float, float, float]
    split_seed: int
    window: int
    stride: int
    missing: str
    bad_rows: str
    max_skipped_fraction: float

    def __post_init__(self) -> None:
        if self.window < 1 or self.stride < 1:
            raise ValueError(f"window ({self.window}) and stride ({self.stride}) must be >= 1 rows")
        if self.missing not in MISSING_POLICIES:
            raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {self.missing!r}")
        if self.bad_rows not in BAD_ROW_POLICIES:
            raise ValueError(f"bad_rows must be one of {BAD_ROW_POLICIES}, got {self.bad_rows!r}")
        fractions = self.split_fractions
        if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0,
                                                                          abs_tol=1e-6):
            raise ValueError(f"split_fractions must be 3 non-negative shares (train, valid, test) "
                             f"summing to 1, got {list(fractions)}")
        if not 0.0 <= self.max_skipped_fraction <= 1.0:
            raise ValueError(f"max_skipped_fraction must lie in [0, 1], got "
                             f"{self.max_skipped_fraction}")

    @classmethod
    def from_mapping(cls, values: Any) -> ImportConfig:
        """Build from a plain dict (``task.csv_import`` as a container); lists become tuples."""
        return cls(**section_values(cls, values, "conf/task/telemetry.yaml, csv_import:"))


@dataclass(frozen=True)
class SkippedRow:
    """A CSV row that was not used: its 1-based line number in the file and why."""

    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import read, skipped, dropped and wrote."""

    csv_path: Path
    n_rows: int = 0                                   # data rows in the file
    n_trips: int = 0
    n_windows: int = 0
    skipped_rows: list[SkippedRow] = field(default_factory=list)
    dropped_windows: list[dict[str, Any]] = field(default_factory=list)
    short_trips: list[str] = field(default_factory=list)   # fewer rows than one window
    signals: list[str] = field(default_factory=list)
    store: WriteReport | None = None

    def __str__(self) -> str:
        lines = [f"{self.csv_path}: {self.n_rows} rows, {self.n_trips} trips -> "
                 f"{self.n_windows} windows of {len(self.signals)} signals",
                 f"skipped rows: {len(self.skipped_rows)}; dropped windows: "
                 f"{len(self.dropped_windows)}; trips shorter than a window: "
                 f"{len(self.short_trips)}"]
        lines += [f"  line {s.line}: {s.reason}" for s in self.skipped_rows[:10]]
        if len(self.skipped_rows) > 10:
            lines.append(f"  ... {len(self.skipped_rows) - 10} more (all in the store's attrs)")
        if self.store is not None:
            lines.append(str(self.store))
        return "\n".join(lines)


@dataclass
class _Trip:
    """The parsed rows of one trip, in file order until sorted."""

    lines: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    values: list[list[float]] = field(default_factory=list)   # signals then targets
    labels: list[int] = field(default_factory=list)
    split: str | None = None
    split_line: int = 0


# ------------------------------------------------------------------------------------------------
# reading


def _columns(header: list[str], cfg: ImportConfig, path: Path) -> tuple[list[str], dict[str, int]]:
    """The signal columns and the position of every column the import uses."""
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise ValueError(f"{path}: line 1: duplicate column names {dup}")
    special = [c for c in (cfg.id_column, cfg.time_column, cfg.label_column, cfg.split_column)
               if c is not None]
    used = special + list(cfg.targets)
    signals = (list(cfg.signals) if cfg.signals is not None
               else [h for h in header if h not in used])
    missing = [c for c in used + signals if c not in header]
    if missing:
        raise ValueError(f"{path}: line 1: column(s) {missing} not in the header {header}; set "
                         "the column names with id_column=, signals=[...], label_column=, ...")
    if not signals:
        raise ValueError(f"{path}: no signal columns left (header {header}); list them with "
                         "signals=[...]")
    overlap = sorted(set(signals) & set(used))
    if overlap:
        raise ValueError(f"{path}: column(s) {overlap} are both signals and id/time/label/"
                         "target/split columns")
    return signals, {name: header.index(name) for name in used + signals}


def _number(text: str, column: str) -> float:
    """A cell as float: NaN for a missing value; ValueError (with the reason) for anything else."""
    word = text.strip()
    if word.lower() in _MISSING_WORDS:
        return math.nan
    try:
        value = float(word)
    except ValueError:
        raise ValueError(f"column {column!r} is {text!r}, not a number") from None
    if math.isinf(value):
        raise ValueError(f"column {column!r} is {text!r} (infinite)")
    return value


def _label(text: str, column: str) -> int:
    word = text.strip().lower()
    if word in ("0", "1", "0.0", "1.0", "true", "false"):
        return int(word in ("1", "1.0", "true"))
    raise ValueError(f"label column {column!r} is {text!r}; expected 0 or 1")


def read_trips(path: Path, cfg: ImportConfig,
               report: ImportReport) -> tuple[dict[str, _Trip], list[str]]:
    """Parse the CSV into trips (``{trip id: rows}``, in order of first appearance).

    Bad rows are recorded in ``report.skipped_rows`` or raised (``cfg.bad_rows``).
    """
    if not path.is_file():
        raise ValueError(f"{path}: no such CSV file")
    trips: dict[str, _Trip] = {}
    check_text_file(path)  # Latin-1, UTF-16, random bytes: a message naming the file and line
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ValueError(f"{path}: empty file; expected a header row and one row per "
                             "time step") from None
        except csv.Error as err:
            raise ValueError(f"{path}: line 1: cannot parse the header ({err})") from err
        signals, at = _columns(header, cfg, path)
        numeric = signals + list(cfg.targets)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as err:  # e.g. an unterminated quote: the reader cannot go on
                raise ValueError(f"{path}: line {reader.line_num}: {err}") from err
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue  # blank line: not data
            report.n_rows += 1
            try:
                _parse_row(row, header, at, numeric, cfg, trips, line)
            except ValueError as reason:
                if cfg.bad_rows == "error":
                    raise ValueError(f"{path}: line {line}: {reason} (set bad_rows=skip to skip "
                                     "such rows with a record)") from None
                report.skipped_rows.append(SkippedRow(line, str(reason)))
    if report.n_rows == 0:
        raise ValueError(f"{path}: header but no data rows")
    return trips, signals


def _check_skipped(path: Path, cfg: ImportConfig, report: ImportReport) -> None:
    """Too many skipped rows means a wrong layout or settings, not a few bad rows: stop."""
    skipped = len(report.skipped_rows)
    if skipped > cfg.max_skipped_fraction * report.n_rows:
        first = "; ".join(f"line {s.line}: {s.reason}" for s in report.skipped_rows[:3])
        raise ValueError(f"{path}: {skipped} of {report.n_rows} rows are unreadable (more than "
                         f"max_skipped_fraction={cfg.max_skipped_fraction}); first: {first}. "
                         "Check the column settings (signals=[...], id_column=...)")


def _parse_row(row: list[str], header: list[str], at: dict[str, int], numeric: list[str],
               cfg: ImportConfig, trips: dict[str, _Trip], line: int) -> None:
    if len(row) != len(header):
        raise ValueError(f"{len(row)} fields, the header has {len(header)}")
    trip_id = row[at[cfg.id_column]].strip()
    if not trip_id:
        raise ValueError(f"empty {cfg.id_column!r}")
    values = [_number(row[at[c]], c) for c in numeric]
    label = _label(row[at[cfg.label_column]], cfg.label_column) if cfg.label_column else 0
    time = math.nan
    if cfg.time_column:
        time = _number(row[at[cfg.time_column]], cfg.time_column)
        if math.isnan(time):
            raise ValueError(f"time column {cfg.time_column!r} is empty")
    split = row[at[cfg.split_column]].strip() if cfg.split_column else None
    if cfg.split_column and not split:
        raise ValueError(f"empty split column {cfg.split_column!r}")
    trip = trips.setdefault(trip_id, _Trip())
    if split is not None:
        if trip.split is None:
            trip.split, trip.split_line = split, line
        elif split != trip.split:
            raise ValueError(f"trip {trip_id!r} is in split {trip.split!r} (line "
                             f"{trip.split_line}) and {split!r} here; a trip belongs to one split")
    trip.lines.append(line)
    trip.times.append(time)
    trip.values.append(values)
    trip.labels.append(label)


# ------------------------------------------------------------------------------------------------
# windows


@dataclass
class _Windows:
    ids: list[str] = field(default_factory=list)
    trips: list[str] = field(default_factory=list)
    sequences: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)


def _ordered(trip_id: str, trip: _Trip, cfg: ImportConfig, report: ImportReport
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lines, times, values, labels) of a trip sorted by time, repeated time stamps skipped."""
    lines, times = np.asarray(trip.lines), np.asarray(trip.times, dtype=np.float64)
    values = np.asarray(trip.values, dtype=np.float64).reshape(len(lines), -1)
    labels = np.asarray(trip.labels, dtype=np.int64)
    if cfg.time_column:
        order = np.argsort(times, kind="stable")
        lines, times, values, labels = lines[order], times[order], values[order], labels[order]
        repeated = np.concatenate([[False], times[1:] == times[:-1]])
        for index in np.flatnonzero(repeated):
            reason = (f"trip {trip_id!r}: time {times[index]:g} repeats line "
                      f"{lines[index - 1]}")
            if cfg.bad_rows == "error":
                raise ValueError(f"line {lines[index]}: {reason} (set bad_rows=skip to skip "
                                 "such rows with a record)")
            report.skipped_rows.append(SkippedRow(int(lines[index]), reason))
        keep = ~repeated
        lines, times, values, labels = lines[keep], times[keep], values[keep], labels[keep]
    return lines, times, values, labels


def _interpolate(values: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Fill NaN linearly along ``position`` per column (edges: nearest); columns that are all NaN
    are returned as they are, with their indices."""
    out = values.copy()
    empty = []
    for col in range(values.shape[1]):
        known = np.isfinite(values[:, col])
        if not known.any():
            empty.append(col)
        elif not known.all():
            out[:, col] = np.interp(position, position[known], values[known, col])
    return out, empty


def cut_windows(trip_id: str, lines: np.ndarray, times: np.ndarray, values: np.ndarray,
                labels: np.ndarray, names: Sequence[str], n_signals: int, cfg: ImportConfig,
                out: _Windows, report: ImportReport) -> None:
    """Append the trip's windows to ``out``; record the windows dropped and why."""
    if len(lines) < cfg.window:
        report.short_trips.append(trip_id)
        return
    if cfg.missing == "interpolate":
        position = times if cfg.time_column else np.arange(len(lines), dtype=np.float64)
        values, empty = _interpolate(values, position)
        for col in empty:
            report.dropped_windows.append({"trip": trip_id, "first_line": int(lines[0]),
                                           "reason": f"column {names[col]!r} has no value in "
                                                     "the whole trip (nothing to interpolate)"})
        if empty:
            return
    step = np.median(np.diff(times)) if cfg.time_column and len(times) > 1 else math.nan
    for start in range(0, len(lines) - cfg.window + 1, cfg.stride):
        rows = slice(start, start + cfg.window)
        reason = _window_problem(lines[rows], times[rows], values[rows], names, step, cfg)
        if reason:
            report.dropped_windows.append({"trip": trip_id, "first_line": int(lines[start]),
                                           "reason": reason})
            continue
        out.ids.append(f"{trip_id}_r{start:06d}")
        out.trips.append(trip_id)
        out.sequences.append(values[rows, :n_signals].astype(np.float32))
        out.labels.append(int(labels[rows].max()))
        out.targets.append(values[rows, n_signals:].mean(axis=0))


def _window_problem(lines: np.ndarray, times: np.ndarray, values: np.ndarray,
                    names: Sequence[str], step: float, cfg: ImportConfig) -> str:
    """Why a window cannot be used ('' when it can): a missing value or a gap in time."""
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        where = f"{names[col]!r} missing at line {lines[row]}"
        if cfg.missing == "error":
            raise ValueError(f"line {lines[row]}: column {names[col]!r} has no value (set "
                             "missing=drop_window or missing=interpolate to handle gaps)")
        return where
    if np.isfinite(step) and step > 0 and len(times) > 1:
        gaps = np.flatnonzero(np.diff(times) > 1.5 * step)
        if len(gaps):
            return (f"time gap of {times[gaps[0] + 1] - times[gaps[0]]:g} (median step {step:g}) "
                    f"before line {lines[gaps[0] + 1]}")
    return ""


def assign_splits(trip_ids: Sequence[str], fractions: Sequence[float], seed: int) -> dict[str, str]:
    """Whole trips to train/valid/test by ``fractions`` (seeded; at least one trip in train)."""
    order = sorted(trip_ids)
    shuffled = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    n = len(shuffled)
    n_valid, n_test = round(fractions[1] * n), round(fractions[2] * n)
    n_train = max(1, n - n_valid - n_test)
    n_valid = min(n_valid, n - n_train)
    return {trip: ("train" if k < n_train else "valid" if k < n_train + n_valid else "test")
            for k, trip in enumerate(shuffled)}


# ------------------------------------------------------------------------------------------------
# the import


def import_csv(csv_path: str | Path, out: str | Path, cfg: ImportConfig,
               task: str = "telemetry") -> ImportReport:
    """Read ``csv_path``, cut windows, write them as a new store at ``out`` (atomically).

    Raises ValueError naming the file and line for input it cannot use (see the module doc).
    """
    path = Path(csv_path)
    report = ImportReport(csv_path=path)
    trips, signals = read_trips(path, cfg, report)
    report.signals = signals
    names = signals + list(cfg.targets)
    windows = _Windows()
    try:  # errors below name a line; the file is added here
        ordered = {trip_id: _ordered(trip_id, trip, cfg, report)
                   for trip_id, trip in trips.items()}
        _check_skipped(path, cfg, report)
        for trip_id, (lines, times, values, labels) in ordered.items():
            cut_windows(trip_id, lines, times, values, labels, names, len(signals), cfg, windows,
                        report)
    except ValueError as err:
        message = str(err)
        raise ValueError(message if message.startswith(str(path)) else f"{path}: {message}") \
            from None
    report.n_trips = len(trips)
    report.n_windows = len(windows.ids)
    if not windows.ids:
        raise ValueError(f"{path}: no complete window of {cfg.window} rows ({len(trips)} trips, "
                         f"{len(report.short_trips)} shorter than a window, "
                         f"{len(report.dropped_windows)} windows dropped); lower window=")
    if cfg.split_column:
        split_of = {t: str(trips[t].split) for t in trips}
    else:
        split_of = assign_splits(sorted(set(windows.trips)), cfg.split_fractions, cfg.split_seed)
    targets = {name: np.array([t[k] for t in windows.targets])
               for k, name in enumerate(cfg.targets)}
    if cfg.label_column:
        targets["anomaly"] = np.asarray(windows.labels, dtype=np.float64)
    attrs = {"task": task, "source_csv": str(path), "csv_import": _plain(cfg),
             "n_rows": report.n_rows, "n_skipped_rows": len(report.skipped_rows),
             "skipped_rows": [dataclasses.asdict(s) for s in report.skipped_rows[:_MAX_RECORDED]],
             "dropped_windows": report.dropped_windows[:_MAX_RECORDED],
             "n_dropped_windows": len(report.dropped_windows), "short_trips": report.short_trips}
    report.store = write_fresh_store(
        out, ids=windows.ids, sequences=windows.sequences, scores=np.asarray(windows.labels),
        subjects=windows.trips, splits=[split_of[t] for t in windows.trips],
        channel_names=signals, attrs=attrs, source=str(path), targets=targets)
    return report


def _plain(cfg: ImportConfig) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}
