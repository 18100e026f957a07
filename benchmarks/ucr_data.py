"""The UCR/UEA time-series sets bundled inside the aeon wheel, read offline: where they are and one
split of one set (shared by bench_rocket_ucr.py and bench_byo_ucr.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def data_dir() -> Path | None:
    """The folder of datasets bundled in the aeon wheel, or None when aeon or it is absent."""
    try:
        import aeon
    except ImportError:
        return None
    folder = Path(aeon.__file__).parent / "datasets" / "data"
    return folder if folder.is_dir() else None


def load(folder: Path, name: str, split: str, equal: bool = False) -> tuple[list[np.ndarray],
                                                                             np.ndarray]:
    """One split as a list of ``(channels, steps)`` arrays and its string labels."""
    from aeon.datasets import load_from_ts_file

    stem = f"{name}_eq" if equal else name
    x, y = load_from_ts_file(str(folder / name / f"{stem}_{split}.ts"))
    return [np.asarray(series, dtype=np.float32) for series in x], np.asarray(y)


def data_dir_or_skip() -> Path | None:
    """:func:`data_dir`, saying why the benchmark's rows are skipped when it is absent."""
    folder = data_dir()
    if folder is None:
        print("aeon or its bundled datasets (aeon/datasets/data) are absent: UCR rows skipped "
              "(make install brings aeon)")
    return folder
