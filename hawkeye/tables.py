"""Import a per-video feature table (CSV or XLSX) into a summary-only Hawkeye store.

Many groups already have kinematic features per video (PARK's pipeline, VisionMD's spreadsheet
export, their own scripts). :func:`import_table` turns such a table, one row per video, into a
store with summary features and no per-frame series (``hawkeye/store.py``, "Summary-only
stores"), which the tabular models (``model=gbm``, ``forest``, ``gbm_tuned``) train on through the
usual launch, folds and collector; sequence models refuse it.

What each column is (:class:`TableSpec`, ``python -m hawkeye.store import-table --help``):

- ``id``: the video id (unique); without an id column, ``<table stem>:<line>``.
- ``subject``: folds group by it. Taken from a column as it is (``subject_rule="column"``), or
  derived from a column's text by a named rule (:data:`SUBJECT_RULES`: ``park``, the PARK study's
  participant id from ``filename``) or by ``subject_rule="regex"`` with ``subject_regex`` (the
  first capture group, or the whole match when there is none).
- ``score``: the integer clinical score (``2`` and ``2.0`` both read as 2).
- ``hand`` (optional): ``l``/``r``/``left``/``right`` in any case, empty = unknown.
- ``split``: a column, or one constant for every row (default ``train``: everything is
  cross-validated, there is no held-out test split).
- features: explicit names and/or globs (``fnmatch``: ``period_*``), or by default every numeric
  column; ``exclude`` (names or globs) removes columns from either. A column counts as numeric when
  every non-missing cell parses as a number; the others are left out and listed in the report.
  Label columns (id, subject source, score, hand, split) are never features, and unnamed columns
  (an exported row index, named ``unnamed_<column number>``) are not picked automatically.
  Every name or pattern given must match a column, so a typo in ``exclude`` cannot silently let a
  column (say, a rater's score) in as a feature.

Missing and non-numeric feature cells (empty, ``NA``, ``NaN``, ``null``, ``none``, text, inf) are
never turned into NaN silently; ``missing`` picks one of three policies:

- ``error`` (default): stop at the first such cell, naming file, line and column;
- ``skip``: leave the row out, with the reason in the report;
- ``nan``: keep the cell as NaN (missing) and count it in the report. The store then says so
  (attrs ``summary_missing: nan``); the tree models take NaN natively (a split sends missing values
  to the side that fits best), so nothing is imputed.

A bad label cell (no id, score or subject; a score that is not an integer; an unknown hand) cannot
be kept as NaN: it stops the import under ``error`` and skips the row under ``skip`` and ``nan``.
Structural problems (missing columns, a CSV row with the wrong number of cells, duplicate ids, an
empty table, no row left) are errors under every policy.

Beside the store, ``<store stem>_import.csv`` lists every table row: line, id, status
(``imported`` | ``skipped``), reason, and the columns kept as NaN.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hawkeye.io import atomic_path
from hawkeye.store import MISSING_AS_NAN, SUMMARY_MISSING_KEY, VideoEntry, WriteReport, write_store

MISSING_POLICIES = ("error", "skip", "nan")
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})  # compared lower-cased
HANDS = {"l": "l", "left": "l", "r": "r", "right": "r", "": ""}
UNNAMED_PREFIX = "unnamed_"
XLSX_SUFFIXES = (".xlsx", ".xlsm")
REPORT_COLUMNS = ("line", "id", "status", "reason", "nan_columns")


class TableError(ValueError):
    """A table that cannot be imported (the message names the file, and line and column)."""


def park_participant(filename: str) -> str:
    """The PARK study's participant id from a recording file name (the authors' own rule).

    Names starting with ``NIH`` -> the first ``-``-separated token
    (``NIHXU164EVFHK-task2-2019-12-02T14-13-50-404Z--right.webm`` -> ``NIHXU164EVFHK``); any other
    name -> the third token from the end (``2019-05-03T17-09-33-963Z100-task2-right.webm`` ->
    ``963Z100``). Raises ValueError for a name with fewer than three tokens.
    """
    tokens = filename.split("-")
    if filename.startswith("NIH"):
        return tokens[0]
    if len(tokens) < 3:
        raise ValueError(f"{filename!r} has fewer than three '-'-separated tokens")
    return tokens[-3]


# Named rules deriving the subject from a column's text (subject_rule=<name>).
SUBJECT_RULES: dict[str, Callable[[str], str]] = {"park": park_participant}


@dataclass(frozen=True)
class TableSpec:
    """Which table column is what, and what to do with missing cells (module docstring)."""

    score_column: str                          # integer clinical score
    subject_column: str                        # subject, or the column a rule derives it from
    subject_rule: str = "column"               # column | regex | a name in SUBJECT_RULES (park)
    subject_regex: str | None = None           # subject_rule=regex: first group (or whole match)
    id_column: str | None = None               # unique video id; None = "<table stem>:<line>"
    hand_column: str | None = None             # l/r/left/right, empty = unknown; None = unknown
    split_column: str | None = None            # per-row split; None = `split` for every row
    split: str = "train"                       # the constant split when split_column is None
    features: tuple[str, ...] = ()             # names or globs; () = every numeric column
    exclude: tuple[str, ...] = ()              # names or globs never used as features
    missing: str = "error"                     # error | skip | nan (module docstring)
    sheet: str | None = None                   # XLSX: worksheet name (None = the first one)

    def __post_init__(self) -> None:
        if self.missing not in MISSING_POLICIES:
            raise TableError(f"missing policy must be one of {MISSING_POLICIES}, got "
                             f"{self.missing!r}")
        rules = ("column", "regex", *SUBJECT_RULES)
        if self.subject_rule not in rules:
            raise TableError(f"subject_rule must be one of {rules}, got {self.subject_rule!r}")
        if (self.subject_rule == "regex") != (self.subject_regex is not None):
            raise TableError("subject_regex goes with subject_rule=regex, and only with it")
        if self.subject_regex is not None:
            try:
                re.compile(self.subject_regex)
            except re.error as err:
                raise TableError(f"subject_regex {self.subject_regex!r} is not a valid regular "
                                 f"expression: {err}") from err
        if self.split_column is None and not self.split:
            raise TableError("split must be a non-empty name (e.g. train) when there is no "
                             "split column")

    def label_columns(self) -> list[str]:
        """The columns that carry labels, never features."""
        named = (self.id_column, self.subject_column, self.score_column, self.hand_column,
                 self.split_column)
        return [c for c in named if c is not None]


@dataclass
class Table:
    """A table as read: header names and ``(line number, cells)`` rows (blank rows dropped)."""

    path: Path
    columns: list[str]
    rows: list[tuple[int, list[Any]]]
    blank_rows: int = 0


@dataclass
class ImportReport:
    """What :func:`import_table` did, row by row (also written as ``<store stem>_import.csv``)."""

    table: Path
    features: list[str]
    left_out: dict[str, str]                          # column -> why it is not a feature
    imported: list[tuple[int, str]] = field(default_factory=list)        # (line, id)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)    # (line, id, reason)
    nan_cells: dict[str, list[int]] = field(default_factory=dict)        # column -> lines
    blank_rows: int = 0
    write: WriteReport | None = None
    report_path: Path | None = None

    def __str__(self) -> str:
        lines = [f"{self.table}: {len(self.imported)} rows imported, {len(self.skipped)} skipped, "
                 f"{len(self.features)} features"
                 + (f", {self.blank_rows} blank rows ignored" if self.blank_rows else "")]
        if self.left_out:
            lines.append("not features: " + ", ".join(f"{c} ({why})" for c, why
                                                       in self.left_out.items()))
        for line, video, reason in self.skipped:
            lines.append(f"  skipped line {line} ({video or 'no id'}): {reason}")
        for column, where in self.nan_cells.items():
            shown = ", ".join(map(str, where[:10])) + (" ..." if len(where) > 10 else "")
            lines.append(f"  kept as NaN: {column}: {len(where)} cells (lines {shown})")
        if self.write is not None:
            lines.append(str(self.write))
        if self.report_path is not None:
            lines.append(f"row report: {self.report_path}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# reading


def read_table(path: str | os.PathLike[str], sheet: str | None = None) -> Table:
    """Read a CSV (UTF-8 with or without a BOM, comma-separated, standard quoting) or an XLSX
    worksheet (cached cell values, not formulas) into a :class:`Table`.

    Empty header names become ``unnamed_<column number>``; duplicate names, a ragged CSV row, a
    missing or empty file are :class:`TableError` naming the file (and line).
    """
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{path}: no such table file")
    if path.suffix.lower() in XLSX_SUFFIXES:
        lines = list(_xlsx_lines(path, sheet))
    else:
        if sheet is not None:
            raise TableError(f"{path}: sheet={sheet!r} given, but this is not an XLSX file")
        lines = list(_csv_lines(path))
    if not lines:
        raise TableError(f"{path}: empty table (no header row)")
    (_, header), body = lines[0], lines[1:]
    columns = _column_names(path, header)
    table = Table(path=path, columns=columns, rows=[])
    for line, cells in body:
        if all(_is_blank(c) for c in cells):
            table.blank_rows += 1
            continue
        if len(cells) != len(columns):
            raise TableError(f"{path}:{line}: row has {len(cells)} cells, the header has "
                             f"{len(columns)} columns (a quoting problem or a stray separator?)")
        table.rows.append((line, list(cells)))
    if not table.rows:
        raise TableError(f"{path}: the table has a header but no data rows")
    return table


def _csv_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            start = 1
            for cells in reader:
                yield start, cells
                start = reader.line_num + 1  # a quoted cell may span lines
    except UnicodeDecodeError as err:
        raise TableError(f"{path}: not UTF-8 text ({err}); save the table as UTF-8 CSV or "
                         f"XLSX") from err
    except csv.Error as err:
        raise TableError(f"{path}: not a readable CSV ({err})") from err


def _xlsx_lines(path: Path, sheet: str | None) -> Iterator[tuple[int, list[Any]]]:
    import openpyxl  # imported here: only XLSX users need it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as err:
        raise TableError(f"{path}: cannot read as an XLSX workbook ({err})") from err
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise TableError(f"{path}: no worksheet {sheet!r} (it has {book.sheetnames})")
        worksheet = book[sheet] if sheet is not None else book.worksheets[0]
        width = 0
        for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
            cells = list(values)
            if number == 1:
                while cells and _is_blank(cells[-1]):  # trailing empty header cells
                    cells.pop()
                width = len(cells)
            elif len(cells) > width and all(_is_blank(c) for c in cells[width:]):
                cells = cells[:width]  # formatting can widen the used range beyond the data
            elif len(cells) < width:
                cells += [None] * (width - len(cells))
            yield number, cells
    finally:
        book.close()


def _column_names(path: Path, header: list[Any]) -> list[str]:
    names = [str(c).strip() if not _is_blank(c) else f"{UNNAMED_PREFIX}{k}"
             for k, c in enumerate(header, start=1)]
    seen: dict[str, int] = {}
    for k, name in enumerate(names, start=1):
        if name in seen:
            raise TableError(f"{path}: column name {name!r} appears twice (columns {seen[name]} "
                             f"and {k}); rename one")
        seen[name] = k
    return names


def _is_blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


# ---------------------------------------------------------------------------------------------
# cells


def number_or_problem(cell: Any) -> tuple[float, str | None]:
    """A cell as a finite float, or ``(nan, why)`` for a missing or non-numeric cell."""
    if cell is None:
        return math.nan, "empty"
    if isinstance(cell, bool):
        return math.nan, f"not a number ({cell!r})"
    if isinstance(cell, int | float):
        value = float(cell)
    else:
        text = str(cell).strip()
        if text.lower() in MISSING_TOKENS:
            return math.nan, "empty" if not text else f"missing ({text!r})"
        try:
            value = float(text)
        except ValueError:
            return math.nan, f"not a number ({text!r})"
    if not math.isfinite(value):
        return math.nan, f"not finite ({cell!r})"
    return value, None


def _text(cell: Any) -> str:
    """A label cell as text; an integral float from a spreadsheet (``12.0``) reads as ``12``."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _score(cell: Any) -> int:
    value, problem = number_or_problem(cell)
    if problem is not None:
        raise ValueError(f"score {problem}")
    if not value.is_integer():
        raise ValueError(f"score {cell!r} is not an integer")
    return int(value)


# ---------------------------------------------------------------------------------------------
# which columns are features


def _match(pattern: str, columns: Sequence[str]) -> list[str]:
    if any(ch in pattern for ch in "*?["):
        return [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
    return [pattern] if pattern in columns else []


def _require(table: Table, names: Sequence[str | None], what: str) -> None:
    missing = [n for n in names if n is not None and n not in table.columns]
    if missing:
        raise TableError(f"{table.path}: no column {', '.join(map(repr, missing))} ({what}); "
                         f"its columns: {table.columns}")


def choose_features(table: Table, spec: TableSpec) -> tuple[list[str], dict[str, str]]:
    """The feature columns (in table order) and, for every other column, why it is left out."""
    _require(table, spec.label_columns(), "named as a label column")
    labels = set(spec.label_columns())
    for what, patterns in (("features", spec.features), ("exclude", spec.exclude)):
        for pattern in patterns:
            if not _match(pattern, table.columns):
                raise TableError(f"{table.path}: {what} entry {pattern!r} matches no column; "
                                 f"its columns: {table.columns}")
    excluded = {c for p in spec.exclude for c in _match(p, table.columns)}
    left_out: dict[str, str] = {}
    if spec.features:
        wanted = {c for p in spec.features for c in _match(p, table.columns)}
        clash = sorted(wanted & labels)
        if clash:
            raise TableError(f"{table.path}: label column(s) {clash} also named as features; a "
                             f"label must never be an input")
        features = [c for c in table.columns if c in wanted and c not in excluded]
        left_out = {c: "label" if c in labels else "excluded" for c in table.columns
                    if c in labels or (c in excluded and c in wanted)}
    else:
        features = []
        for j, column in enumerate(table.columns):
            why = ("label" if column in labels else "excluded" if column in excluded
                   else "unnamed" if column.startswith(UNNAMED_PREFIX)
                   else _not_numeric(table, j))
            if why is None:
                features.append(column)
            else:
                left_out[column] = why
    if not features:
        raise TableError(f"{table.path}: no feature columns left (left out: {left_out})")
    return features, left_out


def _not_numeric(table: Table, j: int) -> str | None:
    """Why column ``j`` is not numeric (its first text cell), or None when it is."""
    any_number = False
    for line, cells in table.rows:
        _, problem = number_or_problem(cells[j])
        if problem is None:
            any_number = True
        elif problem.startswith("not a number"):
            return f"not numeric: line {line} holds {_text(cells[j])!r}"
    return None if any_number else "no values"


# ---------------------------------------------------------------------------------------------
# rows


class _BadRow(ValueError):
    """One row's problem: the column and why (raised inside, turned into an error or a skip)."""

    def __init__(self, column: str, why: str) -> None:
        super().__init__(f"column {column!r}: {why}")
        self.column = column


def _subject(spec: TableSpec, text: str) -> str:
    if spec.subject_rule == "column":
        return text
    if spec.subject_rule == "regex":
        found = re.search(str(spec.subject_regex), text)
        if found is None:
            raise ValueError(f"subject_regex {spec.subject_regex!r} does not match {text!r}")
        return found.group(1) if found.re.groups else found.group(0)
    return SUBJECT_RULES[spec.subject_rule](text)


def _labels(spec: TableSpec, cell: Callable[[str], Any], default_id: str) -> dict[str, Any]:
    """id, subject, score, hand and split of one row; raises _BadRow naming the column."""
    def label(column: str, read: Callable[[Any], Any]) -> Any:
        try:
            return read(cell(column))
        except ValueError as err:
            raise _BadRow(column, str(err)) from err

    def non_empty(what: str) -> Callable[[Any], str]:
        def read(value: Any) -> str:
            text = _text(value)
            if not text:
                raise ValueError(f"{what} is empty")
            return text
        return read

    def hand(value: Any) -> str:
        text = _text(value).lower()
        if text not in HANDS:
            raise ValueError(f"hand {text!r} is not one of l, r, left, right (or empty)")
        return HANDS[text]

    def subject(value: Any) -> str:
        found = _subject(spec, non_empty("subject")(value))
        if not found:
            raise ValueError(f"subject rule {spec.subject_rule!r} gives an empty subject")
        return found

    return {
        "id": label(spec.id_column, non_empty("id")) if spec.id_column else default_id,
        "subject": label(spec.subject_column, subject),
        "score": label(spec.score_column, _score),
        "hand": label(spec.hand_column, hand) if spec.hand_column else "",
        "split": label(spec.split_column, non_empty("split")) if spec.split_column
        else spec.split,
    }


def _row_hash(labels: dict[str, Any], values: np.ndarray) -> str:
    """SHA-256 of what the store keeps of a row (labels and feature bytes): the resume key."""
    digest = hashlib.sha256(json.dumps(labels, sort_keys=True).encode())
    digest.update(np.ascontiguousarray(values, dtype=np.float32).tobytes())
    return digest.hexdigest()


def table_entries(table: Table, spec: TableSpec,
                  features: list[str]) -> tuple[list[VideoEntry], ImportReport]:
    """The store entries of the table's rows under ``spec.missing`` (module docstring)."""
    index = {c: j for j, c in enumerate(table.columns)}
    report = ImportReport(table=table.path, features=features, left_out={},
                          blank_rows=table.blank_rows)
    entries: list[VideoEntry] = []
    first_line: dict[str, int] = {}
    for line, cells in table.rows:
        where = f"{table.path}:{line}"
        try:
            labels = _labels(spec, lambda c, cells=cells: cells[index[c]],
                             f"{table.path.stem}:{line}")
            values, problems = _feature_values(cells, features, index)
        except _BadRow as bad:
            if spec.missing == "error":
                raise TableError(f"{where}: {bad}; fix the cell, or import with --missing skip "
                                 f"to leave such rows out") from None
            video = _text(cells[index[spec.id_column]]) if spec.id_column else ""
            report.skipped.append((line, video, str(bad)))
            continue
        if problems and spec.missing != "nan":
            column, why = problems[0]
            if spec.missing == "error":
                raise TableError(f"{where}: column {column!r}: {why}; fix the cell, or choose a "
                                 f"policy: --missing skip (leave the row out) or --missing nan "
                                 f"(keep it as missing, for the tree models)")
            report.skipped.append((line, labels["id"], "; ".join(
                f"column {c!r}: {w}" for c, w in problems)))
            continue
        if labels["id"] in first_line:
            raise TableError(f"{where}: id {labels['id']!r} already used on line "
                             f"{first_line[labels['id']]}; ids must be unique")
        first_line[labels["id"]] = line
        for column, _ in problems:
            report.nan_cells.setdefault(column, []).append(line)
        entries.append(VideoEntry(
            id=labels["id"], subject=labels["subject"], score=labels["score"],
            split=labels["split"], series=np.zeros((0, 0), np.float32), summary=values,
            hand=labels["hand"], source=where, source_hash=_row_hash(labels, values)))
        report.imported.append((line, labels["id"]))
    return entries, report


def _feature_values(cells: list[Any], features: list[str],
                    index: dict[str, int]) -> tuple[np.ndarray, list[tuple[str, str]]]:
    values = np.empty(len(features), np.float32)
    problems = []
    for k, column in enumerate(features):
        values[k], why = number_or_problem(cells[index[column]])
        if why is not None:
            problems.append((column, why))
    return values, problems


# ---------------------------------------------------------------------------------------------
# the import


def import_table(table_path: str | os.PathLike[str], store_path: str | os.PathLike[str],
                 spec: TableSpec, task: str | None = None) -> ImportReport:
    """Import a CSV/XLSX feature table into the summary-only store at ``store_path``.

    Writes the store atomically (merging with an existing one of the same features, as
    :func:`hawkeye.store.write_store` does) and ``<store stem>_import.csv`` beside it. Raises
    :class:`TableError` (a ``ValueError``) naming file, line and column on bad input, and when no
    row is left to import.
    """
    table = read_table(table_path, spec.sheet)
    features, left_out = choose_features(table, spec)
    entries, report = table_entries(table, spec, features)
    report.left_out = left_out
    if not entries:
        reasons = "; ".join(f"line {line}: {why}" for line, _, why in report.skipped[:5])
        raise TableError(f"{table.path}: no row could be imported ({len(report.skipped)} "
                         f"skipped: {reasons})")
    attrs: dict[str, Any] = {"source_table": str(table.path), "table_import": asdict(spec)}
    if task:
        attrs["task"] = task
    if spec.missing == "nan":
        attrs[SUMMARY_MISSING_KEY] = MISSING_AS_NAN
    report.write = write_store(store_path, entries, [], features, attrs)
    report.report_path = write_row_report(store_path, report)
    return report


def write_row_report(store_path: str | os.PathLike[str], report: ImportReport) -> Path:
    """``<store stem>_import.csv`` beside the store: one line per table row (atomic)."""
    store_path = Path(store_path)
    path = store_path.with_name(f"{store_path.stem}_import.csv")
    nan_by_line: dict[int, list[str]] = {}
    for column, lines in report.nan_cells.items():
        for line in lines:
            nan_by_line.setdefault(line, []).append(column)
    rows = [{"line": line, "id": video, "status": "imported", "reason": "",
             "nan_columns": " ".join(nan_by_line.get(line, []))}
            for line, video in report.imported]
    rows += [{"line": line, "id": video, "status": "skipped", "reason": why, "nan_columns": ""}
             for line, video, why in report.skipped]
    rows.sort(key=lambda row: row["line"])
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path
