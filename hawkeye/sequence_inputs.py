"""Inputs of :mod:`hawkeye.predict` that are sequences already, not videos: a ``.npz`` in the
``python -m hawkeye.store write`` layout (:data:`hawkeye.store.NPZ_LAYOUT`; ``scores`` and
``subjects`` may be left out, there is nothing to learn from them here) or a telemetry CSV, cut
into windows by the ``task.csv_import`` settings the run was trained with. Both become a store
in a scratch folder, then model inputs exactly as training built them
(:func:`hawkeye.data.model_frames`: resampled by their sample times to the fold's
``sample_rate_hz`` for its ``max_seconds``). Apart from predict.py so the video path there
stays as it was; predict imports this.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from hawkeye.data import channel_names, model_frames
from hawkeye.prepare.landmarks import PRECOMPUTED_SUFFIX
from hawkeye.store import StoreData, load_store, read_sequences_npz, write_sequences
from hawkeye.telemetry.csv_import import ImportConfig, import_csv
from hawkeye.timebase import TimeBase


@dataclass(frozen=True)
class SequenceInput:
    """One sequence of a sequence file: the file and the sequence's id in it."""

    path: Path
    id: str
    hand: str = ""   # sequences have no tapping side
    task: str = ""   # nor a clinical task of their own (scores.csv's task column stays empty)


def is_sequence_file(path: Path) -> bool:
    """A ``.npz`` that is not a ``.landmarks.npz``, or a CSV without a ``video`` column (a CSV
    with one lists videos to score)."""
    if path.suffix.lower() == ".npz":
        return not path.name.endswith(PRECOMPUTED_SUFFIX)
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    with open(path, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    return "video" not in [h.strip() for h in header]


def read_sequence_file(path: Path, fold_config: Path, scratch: Path) -> StoreData:
    """The sequences of ``path`` as a store (written under ``scratch``); ValueError naming the
    file when it cannot be read. A CSV is cut with ``task.csv_import`` of ``fold_config`` (the
    trained fold's config.yaml)."""
    store = scratch / "sequences.h5"
    if path.suffix.lower() == ".npz":
        write_sequences(store, **_npz_sequences(path, scratch), source=str(path))
        return load_store(store)
    settings = OmegaConf.select(OmegaConf.load(fold_config), "task.csv_import")
    if settings is None:
        raise ValueError(f"{path}: a CSV of signals is cut into windows by task.csv_import, but "
                         f"the run was not trained with one ({fold_config}); pass a .npz of "
                         "sequences (python -m hawkeye.store write --help) instead")
    import_csv(path, store, ImportConfig.from_mapping(OmegaConf.to_container(settings)))
    return load_store(store)


def _npz_sequences(path: Path, scratch: Path) -> dict:
    """:func:`read_sequences_npz` of ``path`` with the labels it may leave out filled in."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read as .npz ({err})") from err
    if "ids" in arrays:
        arrays.setdefault("scores", np.zeros(len(arrays["ids"]), np.int64))
        arrays.setdefault("subjects", np.asarray(arrays["ids"]))
    filled = scratch / "filled.npz"
    np.savez(filled, **arrays)
    try:
        return read_sequences_npz(filled)
    except ValueError as err:
        raise ValueError(str(err).replace(str(filled), str(path))) from None


def sequence_model_inputs(store: StoreData, input_features: str, input_names: list[str],
                          base: TimeBase, source: Path) -> tuple[np.ndarray, np.ndarray]:
    """``x (N, L, F)`` float32 and ``mask (N, L)`` of every sequence, as training built them
    (:func:`hawkeye.data.model_frames` at ``base``); ValueError when the channels are not the
    ones the model reads."""
    names = channel_names(store, input_features)
    if names != list(input_names):
        raise ValueError(f"{source}: the model reads channels {list(input_names)}, the file has "
                         f"{names}: write the sequences with the model's channels, in order")
    return model_frames(store, input_features, base)
