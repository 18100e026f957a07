"""The PD4T dataset layout: annotation files, video ids, and where each video's files are.

A PD4T root holds, for each task (``Finger tapping``, ``Hand movement``, ``Leg agility``, ``Gait``;
the task folder name is the config value ``task.pd4t_task``, never a constant here)::

    Annotations/<task>/{train,test}.csv                     # split_layout: official
    Annotations_split/<task>/{train,valid,test}.csv|.txt    # split_layout: annotations_split
    Videos/<task>/<subject>/<visit>_<l|r>.mp4
    Videos/<task>/<subject>/<visit>_<l|r>.landmarks.npz     # optional, precomputed landmarks

Annotation rows have no header: ``<visit>_<l|r>_<subject>,<frame_count>,<score>``; the subject is
the final three-digit token of the id, ``l``/``r`` the side that performs the task.

:func:`load_annotations` reads the configured split files and validates them where they are read:
a bad row (malformed id, wrong field count, non-integer field, frame count < 1, score outside the
configured range, duplicate id within or across splits) or an empty file becomes a
:class:`Problem` with its file, line and reason, and loading goes on with the good rows; only a
missing file or folder raises (FileNotFoundError naming the path). Subjects that appear in more
than one split are logged loudly and, with ``on_subject_overlap: error``, stop the run
(:class:`SubjectOverlapError`); the official release is said to contain such a case.

Whether a video file exists or its frame count matches the annotation is checked later by
``hawkeye.prepare`` (which opens the files); :func:`frame_count_problem` gives it the same
:class:`Problem` record for the comparison.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hawkeye.io import check_text_file

log = logging.getLogger(__name__)

SPLIT_LAYOUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # layout name: (annotation folder under the root, split files in load order)
    "official": ("Annotations", ("train", "test")),
    "annotations_split": ("Annotations_split", ("train", "valid", "test")),
}
ANNOTATION_SUFFIXES = (".csv", ".txt")
VIDEO_SUFFIX = ".mp4"
LANDMARKS_SUFFIX = ".landmarks.npz"
OVERLAP_POLICIES = ("error", "warn")

# visit: anything without whitespace or path separators; hand: l | r; subject: three digits, last
VIDEO_ID = re.compile(r"^(?P<visit>[^\s/\\]+)_(?P<hand>[lr])_(?P<subject>\d{3})$")

# Problem kinds, one per reason a row or file is not used.
BAD_FIELD_COUNT = "bad_field_count"
BAD_ID = "bad_id"
NON_INTEGER = "non_integer"
BAD_FRAME_COUNT = "bad_frame_count"
SCORE_OUT_OF_RANGE = "score_out_of_range"
DUPLICATE_ID = "duplicate_id"
EMPTY_FILE = "empty_file"
FRAME_COUNT_MISMATCH = "frame_count_mismatch"
PROBLEM_KINDS = (BAD_FIELD_COUNT, BAD_ID, NON_INTEGER, BAD_FRAME_COUNT, SCORE_OUT_OF_RANGE,
                 DUPLICATE_ID, EMPTY_FILE, FRAME_COUNT_MISMATCH)


class SubjectOverlapError(ValueError):
    """A subject appears in more than one split and ``on_subject_overlap`` is ``error``."""


@dataclass(frozen=True)
class Pd4tConfig:
    """The PD4T layout keys of the ``task`` config section (``conf/task/pd4t_*.yaml``)."""

    pd4t_task: str           # task folder under Annotations*/ and Videos/, e.g. "Finger tapping"
    split_layout: str        # "official" or "annotations_split" (SPLIT_LAYOUTS)
    score_min: int           # lowest valid score
    score_max: int           # highest valid score
    on_subject_overlap: str  # "error" or "warn"

    def __post_init__(self) -> None:
        if not self.pd4t_task or self.pd4t_task != self.pd4t_task.strip() or "/" in self.pd4t_task:
            raise ValueError(f"task.pd4t_task must be a PD4T task folder name such as "
                             f"'Finger tapping', got {self.pd4t_task!r}")
        if self.split_layout not in SPLIT_LAYOUTS:
            raise ValueError(f"task.split_layout must be one of {sorted(SPLIT_LAYOUTS)}, "
                             f"got {self.split_layout!r}")
        if self.score_min > self.score_max:
            raise ValueError(f"task.score_min ({self.score_min}) > task.score_max "
                             f"({self.score_max})")
        if self.on_subject_overlap not in OVERLAP_POLICIES:
            raise ValueError(f"task.on_subject_overlap must be one of {OVERLAP_POLICIES}, "
                             f"got {self.on_subject_overlap!r}")

    @classmethod
    def from_config(cls, task_cfg: Mapping[str, Any]) -> Pd4tConfig:
        """Pick this dataclass's keys from the ``task`` section (other task keys are ignored)."""
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in task_cfg]
        if missing:
            raise ValueError(f"task config lacks {missing} (the PD4T layout block of "
                             "conf/task/pd4t_finger_tapping.yaml lists them)")
        values = {n: task_cfg[n] for n in names}
        for name in ("score_min", "score_max"):
            if isinstance(values[name], bool) or not isinstance(values[name], int):
                raise ValueError(f"task.{name} must be an integer, got {values[name]!r}")
        return cls(**{n: (v if n in ("score_min", "score_max") else str(v))
                      for n, v in values.items()})

    @property
    def splits(self) -> tuple[str, ...]:
        """The split files this layout has, in load order."""
        return SPLIT_LAYOUTS[self.split_layout][1]


@dataclass(frozen=True)
class VideoItem:
    """One annotated video of the PD4T layout."""

    id: str                # "<visit>_<l|r>_<subject>", unique over all splits
    visit: str             # visit token of the id (the video's file stem without the side)
    hand: str              # "l" or "r": the side performing the task
    subject: str           # three-digit subject id, the group for subject-wise folds
    frame_count: int       # frames according to the annotation row
    score: int             # MDS-UPDRS item score
    split: str             # "train", "valid" or "test"
    video_path: Path       # Videos/<task>/<subject>/<visit>_<hand>.mp4
    landmarks_path: Path   # the precomputed landmark file beside the video


@dataclass(frozen=True)
class Problem:
    """Why an annotation row, file or video is not used; one line of the QC report."""

    kind: str              # one of PROBLEM_KINDS
    message: str           # what is wrong and what to do, naming file and item
    path: Path             # the annotation file (or video) concerned
    line: int | None       # 1-based line in the annotation file, None for a whole file
    id: str | None         # the video id when one could be read
    split: str             # the split the row came from


@dataclass(frozen=True)
class Annotations:
    """What :func:`load_annotations` read: the usable items and a record of everything skipped."""

    items: list[VideoItem]                 # good rows in split order, then file order
    problems: list[Problem]                # one per skipped row or empty file
    overlap: dict[str, tuple[str, ...]]    # subject -> splits, for subjects in more than one split
    files: dict[str, Path]                 # split -> the annotation file read

    def split(self, name: str) -> list[VideoItem]:
        """The items of one split."""
        return [item for item in self.items if item.split == name]


def parse_video_id(video_id: str) -> tuple[str, str, str]:
    """Split ``<visit>_<l|r>_<subject>`` into ``(visit, hand, subject)``; ValueError if not."""
    match = VIDEO_ID.match(video_id)
    if match is None:
        raise ValueError(f"video id {video_id!r} is not '<visit>_<l|r>_<subject>' with a "
                         "three-digit subject")
    return match["visit"], match["hand"], match["subject"]


def video_paths(root: str | os.PathLike[str], pd4t_task: str, visit: str, hand: str,
                subject: str) -> tuple[Path, Path]:
    """``(video, landmarks)`` paths of one video under a PD4T root."""
    folder = Path(root) / "Videos" / pd4t_task / subject
    return folder / f"{visit}_{hand}{VIDEO_SUFFIX}", folder / f"{visit}_{hand}{LANDMARKS_SUFFIX}"


def annotation_file(root: str | os.PathLike[str], config: Pd4tConfig, split: str) -> Path:
    """The annotation file of ``split``: ``<split>.csv`` or ``<split>.txt``, exactly one existing.

    Raises FileNotFoundError naming the paths looked for (and the task folders that do exist, the
    usual mistake being the task name's spelling).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"PD4T root {root} does not exist or is not a folder; set "
                                "data_root to the folder holding Annotations/ and Videos/")
    folder_name = SPLIT_LAYOUTS[config.split_layout][0]
    folder = root / folder_name / config.pd4t_task
    if not folder.is_dir():
        parent = root / folder_name
        present = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
        raise FileNotFoundError(
            f"annotation folder {folder} not found (task.split_layout={config.split_layout}, "
            f"task.pd4t_task={config.pd4t_task!r}); task folders present in {parent}: {present}")
    candidates = [folder / f"{split}{suffix}" for suffix in ANNOTATION_SUFFIXES]
    found = [path for path in candidates if path.is_file()]
    if not found:
        raise FileNotFoundError(f"annotation file for split {split!r} not found: looked for "
                                f"{' and '.join(str(c) for c in candidates)}")
    if len(found) > 1:
        raise FileNotFoundError(f"both {found[0]} and {found[1]} exist for split {split!r}: "
                                "remove one so it is clear which annotations are meant")
    return found[0]


def read_annotation_file(path: Path, split: str, root: str | os.PathLike[str],
                         config: Pd4tConfig) -> tuple[list[VideoItem], list[Problem]]:
    """Parse one annotation file into items and problems (duplicates across files not checked here).

    Blank lines are ignored; every other line is an item or a problem.
    """
    items: list[VideoItem] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}

    def problem(kind: str, line: int | None, video_id: str | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        problems.append(Problem(kind, f"{where}: {message}", path, line, video_id, split))

    check_text_file(path)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [(number, row) for number, row in enumerate(csv.reader(handle), start=1)
                if any(cell.strip() for cell in row)]
    if not rows:
        problem(EMPTY_FILE, None, None, f"annotation file for split {split!r} has no rows")
        return items, problems

    for line, row in rows:
        cells = [cell.strip() for cell in row]
        if len(cells) != 3:
            problem(BAD_FIELD_COUNT, line, cells[0] or None,
                    f"expected 3 fields '<id>,<frame_count>,<score>', got {len(cells)}: {row}")
            continue
        video_id, frames_text, score_text = cells
        try:
            visit, hand, subject = parse_video_id(video_id)
        except ValueError as err:
            problem(BAD_ID, line, video_id, f"{err}; row skipped")
            continue
        try:
            frame_count, score = int(frames_text), int(score_text)
        except ValueError:
            problem(NON_INTEGER, line, video_id, f"frame count {frames_text!r} and score "
                    f"{score_text!r} must be integers; row skipped")
            continue
        if frame_count < 1:
            problem(BAD_FRAME_COUNT, line, video_id,
                    f"frame count {frame_count} must be at least 1; row skipped")
            continue
        if not config.score_min <= score <= config.score_max:
            problem(SCORE_OUT_OF_RANGE, line, video_id,
                    f"score {score} outside [{config.score_min}, {config.score_max}] "
                    "(task.score_min/score_max); row skipped")
            continue
        if video_id in seen:
            problem(DUPLICATE_ID, line, video_id,
                    f"id {video_id} already on line {seen[video_id]}; the later row is skipped")
            continue
        seen[video_id] = line
        video, landmarks = video_paths(root, config.pd4t_task, visit, hand, subject)
        items.append(VideoItem(video_id, visit, hand, subject, frame_count, score, split,
                               video, landmarks))
    return items, problems


def subject_overlap(items: list[VideoItem]) -> dict[str, tuple[str, ...]]:
    """Subjects whose videos are in more than one split, mapped to those splits (in load order)."""
    splits_of: dict[str, list[str]] = {}
    for item in items:
        splits = splits_of.setdefault(item.subject, [])
        if item.split not in splits:
            splits.append(item.split)
    return {subject: tuple(splits) for subject, splits in sorted(splits_of.items())
            if len(splits) > 1}


def load_annotations(root: str | os.PathLike[str], config: Pd4tConfig) -> Annotations:
    """Read and validate every split file of the configured layout under the PD4T ``root``.

    Ids duplicated across splits keep their first occurrence (split load order train, valid,
    test) and record the later one as a ``duplicate_id`` problem. Subject overlap between splits is
    logged as a warning listing the subjects, and raises :class:`SubjectOverlapError` when
    ``config.on_subject_overlap`` is ``error``.
    """
    files = {split: annotation_file(root, config, split) for split in config.splits}
    items: list[VideoItem] = []
    problems: list[Problem] = []
    first_split: dict[str, VideoItem] = {}
    for split, path in files.items():
        split_items, split_problems = read_annotation_file(path, split, root, config)
        problems.extend(split_problems)
        for item in split_items:
            earlier = first_split.get(item.id)
            if earlier is not None:
                problems.append(Problem(
                    DUPLICATE_ID,
                    f"{path}: id {item.id} is also in split {earlier.split!r} "
                    f"({files[earlier.split]}); kept there, skipped in {split!r}",
                    path, None, item.id, split))
                continue
            first_split[item.id] = item
            items.append(item)
    for found in problems:
        log.warning("annotation problem (%s): %s", found.kind, found.message)

    overlap = subject_overlap(items)
    if overlap:
        listing = ", ".join(f"{subject} ({'/'.join(splits)})"
                            for subject, splits in overlap.items())
        message = (f"{len(overlap)} subject(s) appear in more than one split of "
                   f"{SPLIT_LAYOUTS[config.split_layout][0]}/{config.pd4t_task}: {listing}. "
                   "Scores of a subject seen in training leak into the evaluation")
        if config.on_subject_overlap == "error":
            raise SubjectOverlapError(f"{message}; use task.split_layout=annotations_split (the "
                                      "subject-disjoint split) or set "
                                      "task.on_subject_overlap=warn to continue anyway")
        log.warning("SUBJECT OVERLAP: %s (continuing: task.on_subject_overlap=warn)", message)
    return Annotations(items=items, problems=problems, overlap=overlap, files=files)


def frame_count_problem(item: VideoItem, frames_read: int, tolerance: int) -> Problem | None:
    """A ``frame_count_mismatch`` problem when the frames read from the video (or landmark file)
    differ from the annotated count by more than ``tolerance`` frames, else None."""
    difference = frames_read - item.frame_count
    if abs(difference) <= tolerance:
        return None
    return Problem(FRAME_COUNT_MISMATCH,
                   f"{item.video_path}: {frames_read} frames read but the annotation of {item.id} "
                   f"says {item.frame_count} (difference {difference:+d}, tolerance {tolerance})",
                   item.video_path, None, item.id, item.split)
