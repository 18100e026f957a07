"""The HDF5 feature store: the one file format between preparation and training.

Preparation (``hawkeye.prepare``) and users with their own sequences (:func:`write_sequences`, the
``hawkeye-write-sequences`` CLI) write it; training reads it with :func:`load_store`.

Layout (schema version 1)
-------------------------
Per-frame arrays of all videos are stored back to back (ragged arrays, one contiguous dataset each);
video ``i`` owns rows ``offsets[i]:offsets[i + 1]``. Reading a split is therefore a handful of
contiguous reads (videos are written sorted by split) and then index arithmetic in numpy, never one
HDF5 object per video. ``N`` = number of videos, ``T_i`` = frames of video ``i``.

=========================  =======================  ============================================
dataset                    shape, dtype             meaning
=========================  =======================  ============================================
``videos/ids``             (N,) utf-8 str           unique video id (PD4T ``<visit>_<l|r>_<subj>``)
``videos/subjects``        (N,) str                 subject id (folds group by it)
``videos/hands``           (N,) str                 ``l``, ``r`` or empty when unknown
``videos/splits``          (N,) str                 ``train``, ``valid``, ``test``, ... (non-empty)
``videos/sources``         (N,) str                 where the video came from (path), may be empty
``videos/source_hashes``   (N,) str                 SHA-256 of the source content (resume key)
``videos/scores``          (N,) int64               clinical score (MDS-UPDRS 3.4: 0-4; any ints)
``videos/fps``             (N,) float64             frames per second; NaN = unknown
``videos/lengths``         (N,) int64               frames T_i stored for the video (>= 1; 0 in a
                                                    summary-only store, see below)
``videos/offsets``         (N+1,) int64             row offsets into the per-frame arrays
``series``                 (sum T_i, F) float32     per-frame feature series; finite everywhere
``series_names``           (F,) str                 names of the series columns (unique)
``summary``                (N, S) float32           per-video summary features; finite (NaN =
                                                    missing only where attrs allow it, below);
                                                    S may be 0
``summary_names``          (S,) str                 names of the summary columns (unique)
``landmarks`` (optional)   (sum T_i, K, 3) float32  MediaPipe-normalised landmarks (K = 21 hand
                                                    points, 33 body-pose points; one K per store,
                                                    the model in ``attrs["landmarks"]``); NaN
                                                    only in frames where ``presence`` is False
``presence`` (optional)    (sum T_i,) bool          True = a hand was detected in the frame
``targets/<name>`` (opt.)  (N,) float64             named per-video target, finite (e.g. the
                                                    telemetry task's ``fuel_consumption`` in L/h
                                                    and ``anomaly`` 0/1)
``timestamps`` (opt.)      (sum T_i,) float64       seconds of each frame since the video's first
                                                    frame (container timestamps: variable frame
                                                    rates); non-decreasing within a video; all
                                                    NaN for a video of unknown timing
=========================  =======================  ============================================

``landmarks`` and ``presence`` come together or not at all (stores built from a user's own
sequences have neither). ``timestamps`` (addition, issue 11, schema still 1): every writer of
this version writes it; a store written before it existed reads as uniform ``1 / fps`` frame
times (NaN when fps is unknown), see :meth:`StoreData.frame_times`. The ``targets`` group is
optional too: absent (every store written before it existed) means no extra targets, so schema
version 1 still describes every file. When present, every video has a value for every target
name (a store holds a target for all videos or for none).
``videos/scores`` stays the integer class field that folds stratify by: PD4T's clinical score;
for telemetry the window's anomaly label (0/1, also in ``targets/anomaly``), 0 when unlabelled.

Summary-only stores (still schema version 1): a per-video feature table imported with
``python -m hawkeye.store import-table`` (:mod:`hawkeye.tables`) has summary features and no
per-frame series. Such a store has no series channels (F = 0, ``series`` is ``(0, 0)``), every
video has length 0, S >= 1, and no landmarks; :attr:`StoreData.summary_only` says so. Those three
go together: a video of length 0 anywhere else is an error. Only tabular models train on it;
sequence models refuse it. Missing summary values: the root ``attrs`` key ``summary_missing``
(:data:`SUMMARY_MISSING_KEY`) set to ``"nan"`` (:data:`MISSING_AS_NAN`) declares that ``summary``
may hold NaN for a missing value (the boosted trees and forests take NaN natively); without it a
NaN is an error, and inf is always one.

Root attributes: ``schema_version`` (int, :data:`SCHEMA_VERSION`), ``task``
(str), ``created_with`` (JSON: package versions and git commit of the last writer) and ``attrs``
(free-form JSON, e.g. the preparation config).

Writing (:func:`write_store`) always produces a complete new file beside the old one and renames it
into place (:func:`hawkeye.io.atomic_path`), so a killed writer leaves the previous store intact. It
merges with an existing store, which makes preparation resumable: see :func:`stored_hashes`.

Model inputs are resampled by time after loading (:func:`hawkeye.timebase.resample`, the first
``task.max_seconds`` at ``task.sample_rate_hz``); the store itself always holds every native frame
and its time.

One module on purpose (~970 lines): the schema, its validating reader, the atomic merging writer
and the bring-your-own-sequences entry point change together whenever the file format does.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hawkeye.faults import store_lock
from hawkeye.folds import check_disjoint
from hawkeye.io import atomic_path, git_commit, package_versions
from hawkeye.timebase import uniform_times

SCHEMA_VERSION = 1
N_LANDMARKS = 21  # hand landmarks: the shape of an empty store's landmark array

_VIDEO_STR_FIELDS = ("ids", "subjects", "hands", "splits", "sources", "source_hashes")
_VIDEO_NUM_FIELDS = ("scores", "fps", "lengths")
_REQUIRED = (
    *(f"videos/{name}" for name in (*_VIDEO_STR_FIELDS, *_VIDEO_NUM_FIELDS, "offsets")),
    "series", "series_names", "summary", "summary_names",
)
_HANDS = ("l", "r", "")
TARGETS_GROUP = "targets"  # optional group of named per-video targets
SUMMARY_MISSING_KEY = "summary_missing"  # attrs key: how missing summary values are stored
MISSING_AS_NAN = "nan"  # its one value: NaN in ``summary`` means missing (else NaN is an error)
# Above this many separate row ranges, one full read plus numpy fancy indexing beats small reads.
_MAX_RANGE_READS = 32


class StoreError(ValueError):
    """A store file that is not a valid Hawkeye store (the message names the file and problem)."""


@dataclass
class VideoEntry:
    """One video as a writer hands it to :func:`write_store`.

    ``series`` is ``(T, F)``, ``summary`` ``(S,)`` (None when the store has no summary features),
    ``landmarks`` ``(T, K, 3)`` (21 hand, 33 pose points) with NaN where none was seen;
    ``presence`` defaults to ``~isnan(landmarks[:, 0, 0])`` (give it explicitly when gaps were
    interpolated). ``targets``
    maps a target name to this video's finite value (every video of a store has the same names).
    ``timestamps`` ``(T,)`` seconds of each frame (None: uniform ``1 / fps``).
    """

    id: str
    subject: str
    score: int
    split: str
    series: np.ndarray
    summary: np.ndarray | None = None
    hand: str = ""
    fps: float = math.nan
    source: str = ""
    source_hash: str = ""
    landmarks: np.ndarray | None = None
    presence: np.ndarray | None = None
    targets: dict[str, float] = field(default_factory=dict)
    timestamps: np.ndarray | None = None

    def frame_times(self) -> np.ndarray:
        """``(T,)`` seconds of each frame: the timestamps, else uniform ``1 / fps``."""
        if self.timestamps is not None:
            return np.asarray(self.timestamps, dtype=np.float64)
        return uniform_times(len(self.series), float(self.fps))


@dataclass
class WriteReport:
    """What :func:`write_store` did: ids added, replaced (changed hash or labels) and skipped."""

    path: Path
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    n_videos: int = 0
    written: bool = False

    def __str__(self) -> str:
        state = "written" if self.written else "unchanged"
        return (f"{self.path}: {state}, {self.n_videos} videos ({len(self.added)} added, "
                f"{len(self.replaced)} replaced, {len(self.skipped)} skipped as already stored)")


@dataclass
class StoreData:
    """A loaded store (or a selection of it): per-video arrays of length N plus ragged frame arrays.

    Video ``i``'s frames are rows ``offsets[i]:offsets[i + 1]`` of ``series`` (and of ``landmarks``
    and ``presence`` when present); ``offsets[0] == 0`` and ``offsets[-1] == len(series)``.
    """

    path: str
    ids: np.ndarray            # (N,) str
    subjects: np.ndarray       # (N,) str
    hands: np.ndarray          # (N,) str
    splits: np.ndarray         # (N,) str
    sources: np.ndarray        # (N,) str
    source_hashes: np.ndarray  # (N,) str
    scores: np.ndarray         # (N,) int64
    fps: np.ndarray            # (N,) float64
    lengths: np.ndarray        # (N,) int64
    offsets: np.ndarray        # (N+1,) int64
    series: np.ndarray         # (sum T, F) float32
    series_names: list[str]
    summary: np.ndarray        # (N, S) float32
    summary_names: list[str]
    landmarks: np.ndarray | None = None  # (sum T, 21, 3) float32
    presence: np.ndarray | None = None   # (sum T,) bool
    task: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N,) float64
    timestamps: np.ndarray | None = None  # (sum T,) float64 seconds; None: uniform 1 / fps

    def __len__(self) -> int:
        return len(self.ids)

    def frame_times(self) -> np.ndarray:
        """``(sum T,)`` seconds of every frame since its video's first frame: the stored
        timestamps, else ``1 / fps`` apart (NaN for a video of unknown fps)."""
        if self.timestamps is not None:
            return self.timestamps
        lengths = np.diff(self.offsets)
        parts = [uniform_times(int(n), float(f)) for n, f in zip(lengths, self.fps, strict=True)]
        return np.concatenate(parts) if parts else np.zeros(0)

    @property
    def n_features(self) -> int:
        """F, the number of per-frame series channels."""
        return self.series.shape[1]

    @property
    def summary_only(self) -> bool:
        """True for a store of per-video summary features without per-frame series (a table)."""
        return not self.series_names and bool(self.summary_names) and not self.lengths.any()

    @property
    def summary_may_be_missing(self) -> bool:
        """True when NaN in ``summary`` means a missing value (attrs ``summary_missing: nan``)."""
        return allows_missing_summary(self.attrs, self.path)

    def sequence(self, i: int) -> np.ndarray:
        """The ``(T_i, F)`` series of video ``i`` (a view, no copy)."""
        return self.series[self.offsets[i]:self.offsets[i + 1]]

    def select(self, indices: Sequence[int] | np.ndarray) -> StoreData:
        """A new StoreData with the videos at ``indices`` (ints or a bool mask), in order."""
        idx = _as_indices(indices, len(self))
        frames, offsets = _ragged_take(self.offsets, idx)
        pick = {name: getattr(self, name)[idx]
                for name in (*_VIDEO_STR_FIELDS, *_VIDEO_NUM_FIELDS, "summary")}
        return StoreData(
            path=self.path, offsets=offsets, series=self.series[frames],
            series_names=list(self.series_names), summary_names=list(self.summary_names),
            landmarks=None if self.landmarks is None else self.landmarks[frames],
            presence=None if self.presence is None else self.presence[frames],
            task=self.task, attrs=dict(self.attrs),
            targets={name: values[idx] for name, values in self.targets.items()},
            timestamps=self.frame_times()[frames], **pick)

    def select_series(self, names: Sequence[str]) -> StoreData:
        """A new StoreData keeping only the named series columns, in the order given."""
        missing = [n for n in names if n not in self.series_names]
        if missing:
            raise ValueError(f"{self.path}: series {missing} not in store "
                             f"(it has {self.series_names})")
        cols = [self.series_names.index(n) for n in names]
        out = self.select(np.arange(len(self)))
        out.series = np.ascontiguousarray(self.series[:, cols])
        out.series_names = list(names)
        return out

    def entries(self) -> Iterator[VideoEntry]:
        """The videos as :class:`VideoEntry` records (views into the arrays), to merge stores."""
        times = self.frame_times()
        for i in range(len(self)):
            rows = slice(self.offsets[i], self.offsets[i + 1])
            yield VideoEntry(
                id=str(self.ids[i]), subject=str(self.subjects[i]), score=int(self.scores[i]),
                split=str(self.splits[i]), series=self.series[rows], summary=self.summary[i],
                hand=str(self.hands[i]), fps=float(self.fps[i]), source=str(self.sources[i]),
                source_hash=str(self.source_hashes[i]),
                landmarks=None if self.landmarks is None else self.landmarks[rows],
                presence=None if self.presence is None else self.presence[rows],
                targets={name: float(values[i]) for name, values in self.targets.items()},
                timestamps=times[rows])


# ---------------------------------------------------------------------------------------------
# ragged index arithmetic


def _as_indices(indices: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ValueError(f"boolean selection must have shape ({n},), got {idx.shape}")
        return np.flatnonzero(idx)
    idx = idx.astype(np.int64, copy=False).reshape(-1)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"video index out of range for {n} videos: {idx.min()}..{idx.max()}")
    return np.where(idx < 0, idx + n, idx)


def _ragged_take(offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame rows of videos ``idx`` (in order) and the new ``(len(idx)+1,)`` offsets."""
    lengths = offsets[idx + 1] - offsets[idx]
    new_offsets = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    frames = np.arange(new_offsets[-1]) + np.repeat(offsets[idx] - new_offsets[:-1], lengths)
    return frames, new_offsets


def _read_rows(dataset: h5py.Dataset, offsets: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rows of the videos ``idx`` from a ragged dataset, in as few contiguous reads as possible."""
    n_total = len(offsets) - 1
    if len(idx) == n_total and np.array_equal(idx, np.arange(n_total)):
        return dataset[()]
    starts, ends = offsets[idx], offsets[idx + 1]
    # Merge videos that are adjacent in the file into one range (a split is usually one range).
    breaks = np.flatnonzero(starts[1:] != ends[:-1]) + 1
    run_starts = starts[np.concatenate([[0], breaks])] if len(idx) else starts
    run_ends = ends[np.concatenate([breaks - 1, [len(idx) - 1]])] if len(idx) else ends
    if len(run_starts) > _MAX_RANGE_READS:
        frames, _ = _ragged_take(offsets, idx)
        return dataset[()][frames]
    out = np.empty((int((ends - starts).sum()), *dataset.shape[1:]), dtype=dataset.dtype)
    pos = 0
    for a, b in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
        if b > a:
            dataset.read_direct(out, source_sel=np.s_[a:b], dest_sel=np.s_[pos:pos + b - a])
        pos += b - a
    return out


# ---------------------------------------------------------------------------------------------
# reading


def _open_checked(path: Path) -> h5py.File:
    if not path.exists():
        raise StoreError(f"{path}: no such store file; build it with `make prepare` or "
                         f"`python -m hawkeye.store write` (bring your own sequences)")
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, expected an HDF5 store file")
    if path.stat().st_size == 0:
        raise StoreError(f"{path}: empty file (0 bytes), not a store; delete it and rebuild "
                         f"the store")
    if not h5py.is_hdf5(path):
        raise StoreError(f"{path}: not an HDF5 file; expected a Hawkeye store written by "
                         f"hawkeye.store (rebuild it with `make prepare`)")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise StoreError(f"{path}: cannot open as HDF5 ({err}); the file may be truncated, "
                         f"rebuild it") from err
    try:
        version = handle.attrs.get("schema_version")
        if version is None:
            raise StoreError(f"{path}: no 'schema_version' attribute; not a Hawkeye store")
        if not isinstance(version, int | np.integer):
            raise StoreError(f"{path}: 'schema_version' attribute is {version!r}, not an integer; "
                             f"not a store written by hawkeye.store (rebuild it)")
        if int(version) != SCHEMA_VERSION:
            raise StoreError(f"{path}: unknown schema version {int(version)} (this Hawkeye reads "
                             f"version {SCHEMA_VERSION}); rebuild the store with this version")
        missing = [name for name in _REQUIRED if name not in handle]
        if missing:
            raise StoreError(f"{path}: missing dataset(s) {missing}; the store is incomplete or "
                             f"from another program, rebuild it")
    except BaseException:
        handle.close()
        raise
    return handle


def _strings(handle: h5py.File, name: str) -> np.ndarray:
    dataset = handle[name]
    if dataset.dtype.kind not in "OS":
        raise StoreError(f"{handle.filename}: dataset '{name}' should hold strings, "
                         f"has dtype {dataset.dtype}")
    return np.asarray(dataset.asstr()[()], dtype=str).reshape(dataset.shape)


def _shape_error(path: Any, name: str, shape: tuple[int, ...], expected: str) -> StoreError:
    return StoreError(f"{path}: dataset '{name}' has shape {shape}, expected {expected}; "
                      f"the store is inconsistent, rebuild it")


def _read_index(handle: h5py.File) -> dict[str, Any]:
    """Per-video arrays and names, with every shape checked against N and the offsets."""
    path = handle.filename
    meta: dict[str, Any] = {f: _strings(handle, f"videos/{f}") for f in _VIDEO_STR_FIELDS}
    meta["scores"] = handle["videos/scores"][()]
    meta["fps"] = handle["videos/fps"][()].astype(np.float64)
    meta["lengths"] = handle["videos/lengths"][()]
    meta["offsets"] = handle["videos/offsets"][()]
    n = len(meta["ids"])
    for name in (*_VIDEO_STR_FIELDS, *_VIDEO_NUM_FIELDS):
        if meta[name].shape != (n,):
            raise _shape_error(path, f"videos/{name}", meta[name].shape, f"({n},) like videos/ids")
    if meta["offsets"].shape != (n + 1,):
        raise _shape_error(path, "videos/offsets", meta["offsets"].shape, f"({n + 1},)")
    for name in ("scores", "lengths", "offsets"):
        if meta[name].dtype.kind not in "iu":
            raise StoreError(f"{path}: dataset 'videos/{name}' must be integer, "
                             f"has dtype {meta[name].dtype}")
        meta[name] = meta[name].astype(np.int64)
    offsets, lengths = meta["offsets"], meta["lengths"]
    if n and (offsets[0] != 0 or not np.array_equal(np.diff(offsets), lengths)):
        raise StoreError(f"{path}: 'videos/offsets' do not match 'videos/lengths' "
                         f"(offsets must start at 0 and step by each video's length)")
    if len(set(meta["ids"].tolist())) != n:
        dup = [k for k, c in Counter(meta["ids"].tolist()).items() if c > 1][:5]
        raise StoreError(f"{path}: duplicate video ids {dup}")
    bad_hands = sorted(set(meta["hands"].tolist()) - set(_HANDS))
    if bad_hands:
        raise StoreError(f"{path}: 'videos/hands' holds {bad_hands}; allowed: 'l', 'r', ''")
    total = int(offsets[-1]) if n else 0

    series, summary = handle["series"], handle["summary"]
    meta["series_names"] = _strings(handle, "series_names").tolist()
    meta["summary_names"] = _strings(handle, "summary_names").tolist()
    n_series, n_summary = len(meta["series_names"]), len(meta["summary_names"])
    summary_only = n_series == 0 and n_summary > 0 and not lengths.any()
    if n and lengths.min() < 1 and not summary_only:
        bad = meta["ids"][int(np.argmin(lengths))]
        raise StoreError(f"{path}: video '{bad}' has no frames (length {lengths.min()}); only a "
                         f"summary-only store (no series channels, summary features, every "
                         f"length 0) holds videos without frames")
    if series.shape != (total, n_series):
        raise _shape_error(path, "series", series.shape,
                           f"({total}, {n_series}) = (sum of lengths, len(series_names))")
    if summary.shape != (n, n_summary):
        raise _shape_error(path, "summary", summary.shape,
                           f"({n}, {n_summary}) = (videos, len(summary_names))")
    for name in ("series", "summary"):
        if handle[name].dtype.kind != "f":
            raise StoreError(f"{path}: dataset '{name}' must be float, has {handle[name].dtype}")
    has = ["landmarks" in handle, "presence" in handle]
    if has[0] != has[1]:
        raise StoreError(f"{path}: 'landmarks' and 'presence' must be stored together, "
                         f"found only {'landmarks' if has[0] else 'presence'}")
    if has[0]:
        shape = handle["landmarks"].shape
        if len(shape) != 3 or shape[0] != total or shape[2] != 3 or shape[1] < 1:
            raise _shape_error(path, "landmarks", shape, f"({total}, K, 3)")
        if handle["presence"].shape != (total,):
            raise _shape_error(path, "presence", handle["presence"].shape, f"({total},)")
    meta["has_landmarks"] = has[0]
    meta["targets"] = _read_targets(handle, n)
    return meta


def _read_targets(handle: h5py.File, n: int) -> dict[str, np.ndarray]:
    """The optional ``targets/<name>`` datasets, each checked to be ``(N,)`` float (or int)."""
    if TARGETS_GROUP not in handle:
        return {}
    group = handle[TARGETS_GROUP]
    if not isinstance(group, h5py.Group):
        raise StoreError(f"{handle.filename}: '{TARGETS_GROUP}' must be a group of (N,) datasets")
    targets = {}
    for name, dataset in group.items():
        if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind not in "fiub":
            raise StoreError(f"{handle.filename}: '{TARGETS_GROUP}/{name}' must be a numeric "
                             f"dataset of shape ({n},)")
        if dataset.shape != (n,):
            raise _shape_error(handle.filename, f"{TARGETS_GROUP}/{name}", dataset.shape,
                               f"({n},) like videos/ids")
        targets[name] = dataset[()].astype(np.float64)
    return targets


def _check_finite(path: Any, name: str, values: np.ndarray, offsets: np.ndarray | None,
                  ids: np.ndarray) -> None:
    """Raise naming the first video with a non-finite value (and frame, when given offsets)."""
    flat = values.reshape(len(values), int(np.prod(values.shape[1:])))
    bad_rows = np.flatnonzero(~np.isfinite(flat).all(axis=1))
    if not len(bad_rows):
        return
    row = int(bad_rows[0])
    if offsets is None:
        where = f"video '{ids[row]}'"
    else:
        video = int(np.searchsorted(offsets, row, side="right") - 1)
        where = f"video '{ids[video]}' frame {row - int(offsets[video])}"
    raise StoreError(f"{path}: '{name}' has NaN/inf in {where} ({len(bad_rows)} bad rows); the "
                     f"schema allows NaN only in landmarks where presence is False. Fix the "
                     f"writer (fill or interpolate gaps) and rebuild the store")


def _select_splits(meta: dict[str, Any], splits: str | Sequence[str] | None, path: Path
                   ) -> np.ndarray:
    n = len(meta["ids"])
    if splits is None:
        return np.arange(n)
    wanted = [splits] if isinstance(splits, str) else list(splits)
    present = sorted(set(meta["splits"].tolist()))
    unknown = [s for s in wanted if s not in present]
    if unknown:
        raise StoreError(f"{path}: split(s) {unknown} not in store (it has {present})")
    return np.flatnonzero(np.isin(meta["splits"], wanted))


def load_store(path: str | os.PathLike[str], splits: str | Sequence[str] | None = None,
               require_landmarks: bool = False) -> StoreData:
    """Load the videos of ``splits`` (all when None) into contiguous arrays, validating the schema.

    Raises :class:`StoreError` naming the file and the problem: missing/empty/non-HDF5 file,
    unknown schema version, missing datasets, inconsistent shapes, NaN where not allowed, unknown
    split, or no landmarks when ``require_landmarks`` is set.
    """
    path = Path(path)
    with _open_checked(path) as handle:
        meta = _read_index(handle)
        if require_landmarks and not meta["has_landmarks"]:
            raise StoreError(f"{path}: store has no landmarks (built from bring-your-own "
                             f"sequences?); this step needs a store made by `make prepare`")
        idx = _select_splits(meta, splits, path)
        offsets = meta["offsets"] if len(meta["ids"]) else np.zeros(1, np.int64)
        series = _read_rows(handle["series"], offsets, idx).astype(np.float32, copy=False)
        summary = handle["summary"][()].astype(np.float32, copy=False)[idx]
        landmarks = presence = None
        if meta["has_landmarks"]:
            landmarks = _read_rows(handle["landmarks"], offsets, idx).astype(np.float32, copy=False)
            presence = _read_rows(handle["presence"], offsets, idx).astype(bool, copy=False)
        timestamps = _read_timestamps(handle, offsets, idx)
        task = str(handle.attrs.get("task", ""))
        attrs = json.loads(handle.attrs.get("attrs", "{}"))
    _, new_offsets = _ragged_take(offsets, idx)
    ids = meta["ids"][idx]
    _check_finite(path, "series", series, new_offsets, ids)
    if allows_missing_summary(attrs, path):
        _check_finite(path, "summary", np.nan_to_num(summary, nan=0.0, posinf=np.inf,
                                                     neginf=-np.inf), None, ids)
    else:
        _check_finite(path, "summary", summary, None, ids)
    targets = {name: values[idx] for name, values in meta["targets"].items()}
    for name, values in targets.items():
        _check_finite(path, f"{TARGETS_GROUP}/{name}", values, None, ids)
    if landmarks is not None and presence is not None:
        _check_finite(path, "landmarks (frames marked present)", landmarks[presence],
                      _present_offsets(new_offsets, presence), ids)
    return StoreData(
        path=str(path), offsets=new_offsets, series=series, series_names=meta["series_names"],
        summary=summary, summary_names=meta["summary_names"], landmarks=landmarks,
        presence=presence, task=task, attrs=attrs, targets=targets,
        timestamps=None if timestamps is None else _checked_times(path, timestamps, new_offsets,
                                                                  ids),
        **{name: meta[name][idx] for name in (*_VIDEO_STR_FIELDS, *_VIDEO_NUM_FIELDS)})


def _read_timestamps(handle: h5py.File, offsets: np.ndarray, idx: np.ndarray
                     ) -> np.ndarray | None:
    """The selected rows of the optional ``timestamps`` dataset (None when the store has none)."""
    if "timestamps" not in handle:
        return None
    dataset = handle["timestamps"]
    if dataset.dtype.kind != "f" or dataset.shape != (int(offsets[-1]),):
        raise _shape_error(handle.filename, "timestamps", dataset.shape,
                           f"({int(offsets[-1])},) float = (sum of lengths,)")
    return _read_rows(dataset, offsets, idx).astype(np.float64, copy=False)


def _checked_times(path: Any, times: np.ndarray, offsets: np.ndarray,
                   ids: np.ndarray) -> np.ndarray:
    """``times`` unless a video mixes NaN and numbers or goes back in time (StoreError)."""
    for i, (start, end) in enumerate(zip(offsets[:-1].tolist(), offsets[1:].tolist(),
                                         strict=True)):
        video = times[start:end]
        unknown = np.isnan(video)
        if unknown.all():
            continue
        if unknown.any() or not np.isfinite(video).all() or (np.diff(video) < 0).any():
            raise StoreError(f"{path}: 'timestamps' of video '{ids[i]}' must be finite and "
                             "non-decreasing (or all NaN = unknown timing); rebuild the store")
    return times


def _present_offsets(offsets: np.ndarray, presence: np.ndarray) -> np.ndarray:
    """Offsets of each video's present frames within ``landmarks[presence]`` (for messages)."""
    counts = np.concatenate([[0], np.cumsum(presence)])
    return counts[offsets]


def stored_hashes(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{video id: source_hash}`` of a store, or ``{}`` when the file does not exist yet.

    Preparation calls this first and processes only videos whose hash is missing or different.
    """
    path = Path(path)
    if not path.exists():
        return {}
    with _open_checked(path) as handle:
        ids = _strings(handle, "videos/ids")
        hashes = _strings(handle, "videos/source_hashes")
    if ids.shape != hashes.shape:
        raise _shape_error(path, "videos/source_hashes", hashes.shape, f"{ids.shape}")
    return dict(zip(ids.tolist(), hashes.tolist(), strict=True))


# ---------------------------------------------------------------------------------------------
# writing


def allows_missing_summary(attrs: dict[str, Any], where: Any = "store") -> bool:
    """Whether store ``attrs`` declare NaN in ``summary`` a missing value (see the schema)."""
    value = attrs.get(SUMMARY_MISSING_KEY)
    if value not in (None, MISSING_AS_NAN):
        raise StoreError(f"{where}: attrs {SUMMARY_MISSING_KEY!r} must be {MISSING_AS_NAN!r} "
                         f"or absent, got {value!r}")
    return value == MISSING_AS_NAN


def _check_entry(entry: VideoEntry, n_series: int, n_summary: int,
                 missing_summary: bool = False) -> VideoEntry:
    """Validate one entry and return it with arrays in their stored dtypes (raises ValueError).

    ``n_series == 0`` admits a summary-only entry (series ``(0, 0)``); ``missing_summary`` admits
    NaN (never inf) in the summary.
    """
    name = f"video '{entry.id}'"
    if not isinstance(entry.id, str) or not entry.id:
        raise ValueError(f"video id must be a non-empty string, got {entry.id!r}")
    if not isinstance(entry.split, str) or not entry.split:
        raise ValueError(f"{name}: split must be a non-empty name such as 'train', "
                         f"got {entry.split!r}")
    if entry.hand not in _HANDS:
        raise ValueError(f"{name}: hand must be 'l', 'r' or '', got {entry.hand!r}")
    if isinstance(entry.score, bool) or not isinstance(entry.score, int | np.integer):
        raise ValueError(f"{name}: score must be an integer, got {entry.score!r}")
    series = np.asarray(entry.series, dtype=np.float32)
    min_frames = 0 if n_series == 0 else 1  # no channels: a summary-only store's (0, 0) is legal
    if series.ndim != 2 or series.shape[0] < min_frames or series.shape[1] != n_series:
        raise ValueError(f"{name}: series must have shape (T >= {min_frames}, {n_series}), got "
                         f"{series.shape}")
    if not np.isfinite(series).all():
        frame = int(np.flatnonzero(~np.isfinite(series).all(axis=1))[0])
        raise ValueError(f"{name}: series has NaN/inf (first at frame {frame}); fill or "
                         f"interpolate gaps before writing")
    summary = np.zeros(0, np.float32) if entry.summary is None else np.asarray(entry.summary,
                                                                             dtype=np.float32)
    if summary.shape != (n_summary,):
        raise ValueError(f"{name}: summary must have shape ({n_summary},), got {summary.shape}")
    bad = np.isinf(summary) if missing_summary else ~np.isfinite(summary)
    if bad.any():
        allowed = " (NaN = missing is allowed here, inf is not)" if missing_summary else (
            f"; a store that keeps missing values as NaN needs attrs "
            f"{{{SUMMARY_MISSING_KEY!r}: {MISSING_AS_NAN!r}}}")
        raise ValueError(f"{name}: summary has NaN/inf at {np.flatnonzero(bad).tolist()}{allowed}")
    landmarks, presence = entry.landmarks, entry.presence
    if landmarks is not None:
        landmarks = np.asarray(landmarks, dtype=np.float32)
        if landmarks.ndim != 3 or landmarks.shape[0] != len(series) or landmarks.shape[2] != 3:
            raise ValueError(f"{name}: landmarks must have shape ({len(series)}, K, 3) "
                             f"to match the series, got {landmarks.shape}")
        presence = (~np.isnan(landmarks[:, 0, 0]) if presence is None
                    else np.asarray(presence, dtype=bool))
        if presence.shape != (len(series),):
            raise ValueError(f"{name}: presence must have shape ({len(series)},), "
                             f"got {presence.shape}")
        if not np.isfinite(landmarks[presence]).all():
            raise ValueError(f"{name}: landmarks have NaN/inf in frames marked present")
    elif presence is not None:
        raise ValueError(f"{name}: presence given without landmarks")
    fps = float(entry.fps)
    if not (math.isnan(fps) or (math.isfinite(fps) and fps > 0)):
        raise ValueError(f"{name}: fps must be positive (or NaN when unknown), got {entry.fps}")
    targets = _check_targets(name, entry.targets)
    checked = VideoEntry(id=entry.id, subject=str(entry.subject), score=int(entry.score),
                         split=entry.split, series=series, summary=summary, hand=entry.hand,
                         fps=fps, source=str(entry.source), source_hash=str(entry.source_hash),
                         landmarks=landmarks, presence=presence, targets=targets,
                         timestamps=entry.timestamps)
    times = checked.frame_times()
    if times.shape != (len(series),):
        raise ValueError(f"{name}: timestamps must have shape ({len(series)},) to match the "
                         f"series, got {times.shape}")
    if not np.isnan(times).all() and (not np.isfinite(times).all()
                                       or (np.diff(times) < 0).any()):
        raise ValueError(f"{name}: timestamps must be finite seconds that never decrease")
    return replace(checked, timestamps=times)


def _check_targets(name: str, targets: dict[str, Any] | None) -> dict[str, float]:
    """Target names must be non-empty without '/', values finite numbers (raises ValueError)."""
    checked = {}
    for key, value in (targets or {}).items():
        if not isinstance(key, str) or not key or "/" in key:
            raise ValueError(f"{name}: target names must be non-empty strings without '/', "
                             f"got {key!r}")
        if isinstance(value, str) or not np.isscalar(value) or not math.isfinite(float(value)):
            raise ValueError(f"{name}: target {key!r} must be a finite number, got {value!r}; "
                             f"drop the video or fill the value before writing")
        checked[key] = float(value)
    return checked


def _same_labels(a: VideoEntry, b: VideoEntry) -> bool:
    return ((a.subject, int(a.score), a.split, a.hand, a.targets)
            == (b.subject, int(b.score), b.split, b.hand, b.targets))


def _check_names(names: Sequence[str], what: str) -> list[str]:
    names = [str(n) for n in names]
    dup = [k for k, c in Counter(names).items() if c > 1]
    if dup:
        raise ValueError(f"{what} must be unique, duplicates: {dup}")
    return names


def write_store(path: str | os.PathLike[str], entries: Iterable[VideoEntry],
                series_names: Sequence[str], summary_names: Sequence[str],
                attrs: dict[str, Any] | None = None) -> WriteReport:
    """Write ``entries`` into the store at ``path`` atomically, merging with what is already there.

    An id already stored with the same ``source_hash`` and the same labels (subject, score, split,
    hand, targets) is skipped; the same id with a different hash or labels is replaced; new ids
    are added. The merged store is written as a complete new file and renamed over the old one,
    so a killed writer never damages it. When nothing changes the file is left untouched.
    ``attrs`` (JSON-serialisable, its ``task`` key names the task) are merged into the stored
    attrs. Writers of one store take turns (:func:`hawkeye.faults.store_lock`): the merge reads
    the store as the previous writer left it, so concurrent writers never lose each other's videos.
    """
    with store_lock(path):
        return _merge_and_write(Path(path), entries, series_names, summary_names, attrs)


def _merge_and_write(path: Path, entries: Iterable[VideoEntry], series_names: Sequence[str],
                     summary_names: Sequence[str], attrs: dict[str, Any] | None) -> WriteReport:
    """:func:`write_store`'s work, under the store's writer lock."""
    series_names = _check_names(series_names, "series_names")
    summary_names = _check_names(summary_names, "summary_names")
    report = WriteReport(path=path)
    merged: dict[str, VideoEntry] = {}
    stored_attrs: dict[str, Any] = {}
    task = ""
    if path.exists():
        old = load_store(path)
        if old.series_names != series_names:
            raise StoreError(f"{path}: existing store has series {old.series_names}, the new "
                             f"entries have {series_names}; write to a new store file or delete "
                             f"this one")
        if old.summary_names != summary_names:
            raise StoreError(f"{path}: existing store has summary features {old.summary_names}, "
                             f"the new entries have {summary_names}; write to a new store file")
        merged = {e.id: e for e in old.entries()}
        stored_attrs, task = old.attrs, old.task
    # A JSON round trip now, so that comparing with the stored attrs sees what will be stored.
    new_attrs = {**stored_attrs, **json.loads(json.dumps(attrs or {}, default=str))}
    missing_summary = allows_missing_summary(new_attrs, path)
    new = [_check_entry(e, len(series_names), len(summary_names), missing_summary)
           for e in entries]
    dup = [k for k, c in Counter(e.id for e in new).items() if c > 1]
    if dup:
        raise ValueError(f"{path}: duplicate video ids in the entries to write: {dup[:5]}")
    for entry in new:
        previous = merged.get(entry.id)
        if previous is None:
            report.added.append(entry.id)
        elif (entry.source_hash and previous.source_hash == entry.source_hash
              and _same_labels(previous, entry)):
            report.skipped.append(entry.id)
            continue
        else:
            report.replaced.append(entry.id)
        merged[entry.id] = entry
    with_landmarks = {e.landmarks is not None for e in merged.values()}
    if len(with_landmarks) > 1:
        example = next(e.id for e in merged.values() if e.landmarks is None)
        raise ValueError(f"{path}: some videos have landmarks and some (e.g. '{example}') do not; "
                         f"a store holds landmarks for every video or for none")
    counts = {e.landmarks.shape[1] for e in merged.values() if e.landmarks is not None}
    if len(counts) > 1:
        raise ValueError(f"{path}: videos have landmarks of {sorted(counts)} points (hand and "
                         f"body pose?); a store holds one landmark model: write to a new store")
    _check_summary_only(path, list(merged.values()), series_names, summary_names)
    target_names = {tuple(sorted(e.targets)) for e in merged.values()}
    if len(target_names) > 1:
        first, *others = sorted(target_names)
        raise ValueError(f"{path}: videos have different target names ({list(first)} vs "
                         f"{list(others[0])}); a store holds each target for every video or for "
                         f"none: write to a new store file")
    task = str(new_attrs.get("task", task))
    report.n_videos = len(merged)
    if path.exists() and not report.added and not report.replaced and new_attrs == stored_attrs:
        return report
    # Sorted by split so that a split is one contiguous range of rows (one read per dataset).
    ordered = sorted(merged.values(), key=lambda e: (e.split, e.id))
    with atomic_path(path) as tmp:
        _write_file(tmp, ordered, series_names, summary_names, task, new_attrs)
    report.written = True
    return report


def _check_summary_only(path: Path, entries: list[VideoEntry], series_names: list[str],
                        summary_names: list[str]) -> None:
    """Videos without frames only in a summary-only store: no series channels, S >= 1, every
    video without frames and without landmarks (raises ValueError naming an offending video)."""
    empty = [e for e in entries if len(e.series) == 0]
    if not empty:
        return
    framed = next((e.id for e in entries if len(e.series)), None)
    with_landmarks = next((e.id for e in empty if e.landmarks is not None), None)
    if series_names or not summary_names or framed is not None or with_landmarks is not None:
        raise ValueError(f"{path}: video '{empty[0].id}' has no frames; only a summary-only store "
                         f"holds such videos (no series channels, at least one summary feature, "
                         f"no video with frames (found '{framed}'), no landmarks "
                         f"(found '{with_landmarks}'))")


def _write_file(path: Path, entries: list[VideoEntry], series_names: list[str],
                summary_names: list[str], task: str, attrs: dict[str, Any]) -> None:
    """Write a complete store to ``path`` (a temporary file; the caller renames it into place).

    The HDF5 file is built in memory and then written with plain file I/O: HDF5 itself crashes
    the process (segmentation fault) when the disk fills up under it; a plain write raises
    ``OSError`` (ENOSPC) that the callers report.
    """
    image = io.BytesIO()
    _build_file(image, entries, series_names, summary_names, task, attrs)
    with open(path, "wb") as handle:
        handle.write(image.getbuffer())


def _build_file(target: io.BytesIO, entries: list[VideoEntry], series_names: list[str],
                summary_names: list[str], task: str, attrs: dict[str, Any]) -> None:
    n = len(entries)
    lengths = np.array([len(e.series) for e in entries], dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    text = h5py.string_dtype("utf-8")
    with h5py.File(target, "w") as handle:
        handle.attrs["schema_version"] = SCHEMA_VERSION
        handle.attrs["task"] = task
        handle.attrs["created_with"] = json.dumps({"packages": package_versions(),
                                                   "git_commit": git_commit()})
        handle.attrs["attrs"] = json.dumps(attrs)
        videos = handle.create_group("videos")
        columns = {"ids": "id", "subjects": "subject", "hands": "hand", "splits": "split",
                   "sources": "source", "source_hashes": "source_hash"}
        for name, attr in columns.items():
            videos.create_dataset(name, data=np.array([getattr(e, attr) for e in entries],
                                                      dtype=object), dtype=text)
        videos.create_dataset("scores", data=np.array([e.score for e in entries], np.int64))
        videos.create_dataset("fps", data=np.array([e.fps for e in entries], np.float64))
        videos.create_dataset("lengths", data=lengths)
        videos.create_dataset("offsets", data=offsets)
        handle.create_dataset("timestamps", data=_concat([e.frame_times() for e in entries], (0,),
                                                         np.float64))
        handle.create_dataset("series", data=_concat([e.series for e in entries],
                                                     (0, len(series_names)), np.float32))
        handle.create_dataset("series_names", data=np.array(series_names, dtype=object), dtype=text)
        summary = np.stack([e.summary for e in entries]) if n else np.zeros((0, len(summary_names)))
        handle.create_dataset("summary", data=summary.astype(np.float32).reshape(
            n, len(summary_names)))
        handle.create_dataset("summary_names", data=np.array(summary_names, dtype=object),
                              dtype=text)
        if n and entries[0].landmarks is not None:
            handle.create_dataset("landmarks", data=_concat(
                [e.landmarks for e in entries], (0, N_LANDMARKS, 3), np.float32))
            handle.create_dataset("presence", data=_concat(
                [e.presence for e in entries], (0,), bool))
        if n and entries[0].targets:
            group = handle.create_group(TARGETS_GROUP)
            for name in sorted(entries[0].targets):
                group.create_dataset(name, data=np.array([e.targets[name] for e in entries],
                                                         dtype=np.float64))


def _concat(arrays: list[Any], empty_shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(empty_shape,
                                                                                   dtype)


def merge_stores(path: str | os.PathLike[str], shards: Sequence[str | os.PathLike[str]],
                 attrs: dict[str, Any] | None = None) -> WriteReport:
    """Merge shard stores (e.g. one per Slurm array task) into ``path`` with :func:`write_store`."""
    if not shards:
        raise ValueError(f"{path}: no shard stores to merge")
    loaded = [load_store(shard) for shard in shards]
    first = loaded[0]
    entries = [entry for data in loaded for entry in data.entries()]
    merged_attrs = {k: v for data in loaded for k, v in data.attrs.items()}
    if first.task and "task" not in merged_attrs:
        merged_attrs["task"] = first.task
    return write_store(path, entries, first.series_names, first.summary_names,
                       {**merged_attrs, **(attrs or {})})


# ---------------------------------------------------------------------------------------------
# bring your own sequences


def sequence_hash(sequence: np.ndarray) -> str:
    """SHA-256 of a sequence's float32 bytes (the resume key of bring-your-own sequences)."""
    return hashlib.sha256(np.ascontiguousarray(sequence, dtype=np.float32).tobytes()).hexdigest()


def _per_video(values: Any, n: int, what: str, default: Any) -> list[Any]:
    if values is None:
        return [default] * n
    if np.ndim(values) == 0:  # one value for every video (e.g. fps=30)
        return [values.item() if isinstance(values, np.ndarray) else values] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{what} has {len(values)} values for {n} sequences")
    return values


def _integer_scores(scores: Any, n: int) -> list[int]:
    values = np.asarray(scores)
    if values.shape != (n,):
        raise ValueError(f"scores must have shape ({n},) (one per sequence), got {values.shape}")
    if values.dtype.kind in "iu":
        return [int(v) for v in values]
    integral = values.dtype.kind == "f" and np.isfinite(values).all() and (
        values == np.round(values)).all()
    if not integral:
        bad = [v for v in values.tolist()
               if not (isinstance(v, int | float) and float(v).is_integer())]
        raise ValueError(f"scores must be integers (one per sequence), got e.g. {bad[:5]}")
    return [int(v) for v in values]


def write_sequences(path: str | os.PathLike[str], ids: Sequence[Any], sequences: Sequence[Any],
                    scores: Sequence[Any] | np.ndarray, subjects: Sequence[Any], *,
                    splits: Sequence[str] | str | None = None,
                    hands: Sequence[str] | None = None,
                    fps: float | Sequence[float] | None = None,
                    channel_names: Sequence[str] | None = None,
                    summary: np.ndarray | None = None,
                    summary_names: Sequence[str] | None = None,
                    attrs: dict[str, Any] | None = None,
                    source: str = "",
                    targets: dict[str, Sequence[float] | np.ndarray] | None = None
                    ) -> WriteReport:
    """Build (or extend) a store from sequences a user already has: any channels, any lengths.

    ``sequences`` are ``(T_i, C)`` arrays with the same ``C``; ``scores`` integers (any number of
    levels); ``splits`` defaults to ``"train"`` for every video; ``fps`` None means unknown (NaN);
    ``channel_names`` default to ``c0 .. c{C-1}``; ``summary`` is an optional ``(N, S)`` array;
    ``targets`` maps a target name to ``(N,)`` finite values (stored under ``targets/<name>``).
    The resume key (``source_hash``) of each video is :func:`sequence_hash` of its sequence.
    Raises ValueError on length mismatches, NaN, non-integer scores, ragged channels or duplicates.
    """
    n = len(sequences)
    for what, values in (("ids", ids), ("subjects", subjects)):
        if len(values) != n:
            raise ValueError(f"{what} has {len(values)} values for {n} sequences")
    if n == 0:
        raise ValueError("write_sequences: no sequences given")
    ids = [str(i) for i in ids]
    dup = [k for k, c in Counter(ids).items() if c > 1]
    if dup:
        raise ValueError(f"duplicate ids: {dup[:5]}")
    score_list = _integer_scores(scores, n)
    arrays = []
    for i, seq in enumerate(sequences):
        arr = np.asarray(seq, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] < 1:
            raise ValueError(f"sequence {i} ('{ids[i]}') must be 2-D (T >= 1, channels), got shape "
                             f"{arr.shape}; reshape a single channel to (T, 1)")
        if arrays and arr.shape[1] != arrays[0].shape[1]:
            raise ValueError(f"sequence {i} ('{ids[i]}') has {arr.shape[1]} channels, sequence 0 "
                             f"has {arrays[0].shape[1]}; every sequence needs the same channels")
        if not np.isfinite(arr).all():
            frame = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
            raise ValueError(f"sequence {i} ('{ids[i]}') has NaN/inf (first at frame {frame}); "
                             f"interpolate or drop those frames first")
        arrays.append(arr)
    n_channels = arrays[0].shape[1]
    names = [f"c{k}" for k in range(n_channels)] if channel_names is None else list(channel_names)
    if len(names) != n_channels:
        raise ValueError(f"channel_names has {len(names)} names for {n_channels} channels")
    if summary is None:
        if summary_names:
            raise ValueError("summary_names given without summary values")
        summary_arr, summary_names = np.zeros((n, 0), np.float32), []
    else:
        summary_arr = np.asarray(summary, dtype=np.float32)
        if summary_arr.ndim != 2 or summary_arr.shape[0] != n:
            raise ValueError(f"summary must have shape ({n}, S), got {summary_arr.shape}")
        summary_names = (list(summary_names) if summary_names is not None
                         else [f"s{k}" for k in range(summary_arr.shape[1])])
        if len(summary_names) != summary_arr.shape[1]:
            raise ValueError(f"summary_names has {len(summary_names)} names for "
                             f"{summary_arr.shape[1]} summary columns")
    target_columns = {}
    for key, values in (targets or {}).items():
        column = np.asarray(values, dtype=np.float64)
        if column.shape != (n,):
            raise ValueError(f"target {key!r} must have shape ({n},) (one per sequence), got "
                             f"{column.shape}")
        target_columns[key] = column
    split_list = _per_video(splits if not isinstance(splits, str) else [splits] * n, n, "splits",
                            "train")
    hand_list = _per_video(hands, n, "hands", "")
    fps_list = _per_video(fps, n, "fps", math.nan)
    entries = [
        VideoEntry(id=ids[i], subject=str(subject), score=score_list[i], split=str(split_list[i]),
                   series=arrays[i], summary=summary_arr[i], hand=str(hand_list[i]),
                   fps=float(fps_list[i]), source=f"{source}#{ids[i]}" if source else "",
                   source_hash=sequence_hash(arrays[i]),
                   targets={key: float(column[i]) for key, column in target_columns.items()})
        for i, subject in enumerate(subjects)]
    return write_store(path, entries, names, summary_names, attrs)


# ---------------------------------------------------------------------------------------------
# command line: build a store from an .npz file, print a store summary

NPZ_LAYOUT = """\
.npz layout (numpy.savez, no pickled objects; strings as fixed-width unicode arrays):
  ids        (N,) str    unique sequence ids                          required
  scores     (N,) int    integer score per sequence                   required
  subjects   (N,) str    subject per sequence (ints are accepted)     required
  sequences  (sum T, C)  all sequences stacked along time, plus
  lengths    (N,) int    frames of each sequence                      } one of these
  seq_<i>    (T_i, C)    or one array per sequence, i = 0 .. N-1      } two layouts
  splits     (N,) str    train / valid / test ...                     optional (default train)
  hands      (N,) str    l / r / ''                                   optional
  fps        () or (N,)  frames per second                            optional (unknown = NaN)
  channel_names (C,) str names of the C channels                      optional (c0 .. c{C-1})
  summary    (N, S)      per-sequence summary features, with
  summary_names (S,) str their names                                  optional
  target_<name> (N,)     a named per-sequence target (float), e.g.
                         target_fuel_consumption                      optional, any number
"""
_NPZ_KEYS = {"ids", "scores", "subjects", "sequences", "lengths", "splits", "hands", "fps",
             "channel_names", "summary", "summary_names"}


def read_sequences_npz(npz_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check an ``.npz`` in :data:`NPZ_LAYOUT`; returns :func:`write_sequences` kwargs."""
    npz_path = Path(npz_path)
    try:
        archive = np.load(npz_path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{npz_path}: cannot read as .npz ({err})") from err
    try:
        data = {key: archive[key] for key in archive.files}
    except ValueError as err:  # an object array needs pickle, which we never enable
        raise ValueError(f"{npz_path}: holds an object array ({err}); save strings as unicode "
                         f"arrays (np.array(ids, dtype=str))\n{NPZ_LAYOUT}") from err
    finally:
        archive.close()
    seq_keys = sorted((k for k in data if k.startswith("seq_")), key=lambda k: (len(k), k))
    target_keys = sorted(k for k in data if k.startswith("target_") and len(k) > len("target_"))
    unknown = sorted(set(data) - _NPZ_KEYS - set(seq_keys) - set(target_keys))
    if unknown:
        raise ValueError(f"{npz_path}: unknown keys {unknown}\n{NPZ_LAYOUT}")
    missing = [k for k in ("ids", "scores", "subjects") if k not in data]
    if missing:
        raise ValueError(f"{npz_path}: missing required keys {missing}\n{NPZ_LAYOUT}")
    n = len(data["ids"])
    if n == 0:
        raise ValueError(f"{npz_path}: 'ids' is empty: the file holds no sequences to store")
    if "sequences" in data:
        if seq_keys:
            raise ValueError(f"{npz_path}: holds both 'sequences' and seq_<i> arrays; "
                             f"use one layout")
        if "lengths" not in data:
            raise ValueError(f"{npz_path}: 'sequences' needs 'lengths' (frames per sequence)")
        lengths = data["lengths"].astype(np.int64)
        stacked = data["sequences"]
        if lengths.shape != (n,) or lengths.min(initial=1) < 1 or lengths.sum() != len(stacked):
            raise ValueError(f"{npz_path}: 'lengths' must be ({n},) positive and sum to "
                             f"len(sequences) = {len(stacked)}; got shape {lengths.shape}, "
                             f"sum {lengths.sum()}")
        sequences = np.split(stacked, np.cumsum(lengths)[:-1])
    else:
        expected = [f"seq_{i}" for i in range(n)]
        if seq_keys != expected:
            raise ValueError(f"{npz_path}: expected arrays seq_0 .. seq_{n - 1} (one per id), "
                             f"found {len(seq_keys)} seq_ arrays\n{NPZ_LAYOUT}")
        sequences = [data[k] for k in expected]
    kwargs: dict[str, Any] = {"ids": data["ids"].tolist(), "sequences": sequences,
                              "scores": data["scores"], "subjects": data["subjects"].tolist()}
    for key in ("splits", "hands", "channel_names", "summary_names"):
        if key in data:
            kwargs[key] = data[key].tolist()
    if "fps" in data:
        kwargs["fps"] = data["fps"].tolist()
    if "summary" in data:
        kwargs["summary"] = data["summary"]
    if target_keys:
        kwargs["targets"] = {k[len("target_"):]: data[k] for k in target_keys}
    return kwargs


def check_test_subjects(subjects: Sequence[Any], splits: Sequence[Any] | None,
                        source: str) -> None:
    """Refuse a subject that is in the ``test`` split and in any other (cross-validation) split:
    the check training makes (:func:`hawkeye.folds.check_disjoint`), made before the store is
    written. ``ValueError`` naming ``source`` and the subjects."""
    if splits is None:
        return
    subject_array = np.asarray(subjects).astype(str)
    is_test = np.asarray(splits).astype(str) == "test"
    try:
        check_disjoint(subject_array[~is_test], subject_array[is_test])
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None


def describe(data: StoreData) -> str:
    """A short human-readable summary of a loaded store: counts per split and score, lengths."""
    lines = [f"store: {data.path}",
             f"task: {data.task or '-'}   videos: {len(data)}   subjects: "
             f"{len(set(data.subjects.tolist()))}   series channels F={data.n_features}   "
             f"summary features S={len(data.summary_names)}   landmarks: "
             f"{'yes' if data.landmarks is not None else 'no'}"]
    if data.summary_only:
        lines.append("summary only: per-video features, no per-frame series (tabular models)")
        if data.summary_may_be_missing:
            missing = np.isnan(data.summary).sum(axis=0)
            shown = ", ".join(f"{data.summary_names[j]} {int(missing[j])}"
                              for j in np.flatnonzero(missing)[:12])
            lines.append(f"missing summary values (NaN): {int(missing.sum())}"
                         + (f" ({shown})" if shown else ""))
    elif len(data):
        q = np.percentile(data.lengths, [0, 50, 100]).astype(int)
        lines.append(f"frames per video: min {q[0]}  median {q[1]}  max {q[2]}  "
                     f"total {int(data.lengths.sum())}")
    levels = sorted(set(data.scores.tolist()))
    lines.append(f"{'split':<10}{'videos':>8}{'subjects':>10}  " +
                 "  ".join(f"score {s}" for s in levels))
    for split in sorted(set(data.splits.tolist())):
        sel = data.splits == split
        counts = Counter(data.scores[sel].tolist())
        lines.append(f"{split:<10}{int(sel.sum()):>8}{len(set(data.subjects[sel].tolist())):>10}  "
                     + "  ".join(f"{counts.get(s, 0):>7}" for s in levels))
    if data.series_names:
        shown = ", ".join(data.series_names[:12]) + (" ..." if data.n_features > 12 else "")
        lines.append(f"series: {shown}")
    for name, values in data.targets.items():
        low, mid, high = np.percentile(values, [0, 50, 100]) if len(values) else (np.nan,) * 3
        lines.append(f"target {name}: min {low:.4g}  median {mid:.4g}  max {high:.4g}")
    return "\n".join(lines)


# The command line lives in hawkeye.store_cli, which imports hawkeye.tables (built on this module).
if __name__ == "__main__":
    from hawkeye.store_cli import main

    sys.exit(main())
