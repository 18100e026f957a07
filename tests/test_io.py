"""Atomic writes, hashes and provenance from hawkeye.io."""

import hashlib
import json
import os

import pytest

from hawkeye.io import (
    atomic_path,
    file_sha256,
    git_commit,
    package_versions,
    write_json_atomic,
    write_text_atomic,
)


def test_atomic_path_replaces_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write_text_atomic(target, "first")
    write_text_atomic(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_atomic_path_keeps_previous_file_when_block_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("previous")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"], "temporary file left behind"


def test_write_json_atomic_writes_nan_as_null(tmp_path):
    target = tmp_path / "m.json"
    write_json_atomic(target, {"pearson": float("nan"), "folds": [1.0, float("nan")]})
    assert json.loads(target.read_text()) == {"pearson": None, "folds": [1.0, None]}


def test_file_sha256_matches_hashlib(tmp_path):
    target = tmp_path / "blob.bin"
    payload = bytes(range(256)) * 5000
    target.write_bytes(payload)
    assert file_sha256(target, chunk_bytes=4096) == hashlib.sha256(payload).hexdigest()


def test_provenance_is_recorded():
    assert git_commit() != ""
    versions = package_versions()
    assert versions["torch"].startswith("2.")
    assert "h5py" in versions


def test_atomic_files_get_umask_permissions_not_0600(tmp_path):
    target = tmp_path / "shared.txt"
    write_text_atomic(target, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
