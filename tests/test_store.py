"""The HDF5 feature store: round trips, validation errors, resumable merge, atomic writes, CLI.

Fixture geometry: video ``k`` of :func:`_entries` has ``20 + 7 * k`` frames and series value
``series[t, f] = 1000 * k + 10 * t + f``, so every row says which video and frame it came from.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from hawkeye.store import (
    SCHEMA_VERSION,
    StoreError,
    VideoEntry,
    load_store,
    merge_stores,
    stored_hashes,
    write_sequences,
    write_store,
)
from hawkeye.store_cli import main

F = 4
SERIES = [f"f{k}" for k in range(F)]
SUMMARY = ["taps", "frequency"]
REPO = Path(__file__).resolve().parents[1]


def _series(k: int) -> np.ndarray:
    t = np.arange(20 + 7 * k)[:, None]
    return (1000.0 * k + 10.0 * t + np.arange(F)[None, :]).astype(np.float32)


def _landmarks(k: int) -> np.ndarray:
    """Landmarks with the hand missing (NaN) in frames 2..4 of every video."""
    n = 20 + 7 * k
    lm = np.random.default_rng(k).random((n, 21, 3)).astype(np.float32)
    lm[2:5] = np.nan
    return lm


def _entries(ks, landmarks: bool = True, hash_suffix: str = "") -> list[VideoEntry]:
    splits = ["train", "test", "valid"]
    return [VideoEntry(id=f"15-{k:06d}_{'lr'[k % 2]}_{k // 2:03d}", subject=f"{k // 2:03d}",
                       score=k % 5, split=splits[k % 3], series=_series(k),
                       summary=np.array([k, 0.5 * k]), hand="lr"[k % 2], fps=30.0,
                       source=f"Videos/x/{k}.mp4", source_hash=f"hash{k}{hash_suffix}",
                       landmarks=_landmarks(k) if landmarks else None) for k in ks]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store.h5"
    write_store(path, _entries(range(6)), SERIES, SUMMARY, {"task": "demo", "prepare": {"a": 1}})
    return path


def _by_id(data, video_id):
    return int(np.flatnonzero(data.ids == video_id)[0])


def test_round_trip_variable_lengths_landmarks_and_nan(store: Path) -> None:
    data = load_store(store, require_landmarks=True)
    originals = {e.id: e for e in _entries(range(6))}
    assert len(data) == 6 and data.series_names == SERIES and data.summary_names == SUMMARY
    assert data.task == "demo" and data.attrs["prepare"] == {"a": 1}
    assert data.offsets[0] == 0 and data.offsets[-1] == len(data.series) == data.lengths.sum()
    for i, video_id in enumerate(data.ids):
        entry = originals[video_id]
        np.testing.assert_array_equal(data.sequence(i), entry.series)
        assert data.lengths[i] == len(entry.series)
        assert (data.subjects[i], data.hands[i], data.splits[i], data.scores[i]) == (
            entry.subject, entry.hand, entry.split, entry.score)
        np.testing.assert_array_equal(data.summary[i], entry.summary)
        rows = slice(data.offsets[i], data.offsets[i + 1])
        np.testing.assert_array_equal(data.landmarks[rows], entry.landmarks)  # NaN == NaN here
        expected_presence = np.ones(len(entry.series), bool)
        expected_presence[2:5] = False
        np.testing.assert_array_equal(data.presence[rows], expected_presence)
    assert data.series.dtype == np.float32 and data.scores.dtype == np.int64
    with h5py.File(store) as handle:
        assert handle.attrs["schema_version"] == SCHEMA_VERSION
        assert "numpy" in handle.attrs["created_with"]


def test_splits_are_contiguous_and_select_works(store: Path) -> None:
    test = load_store(store, splits="test")
    assert sorted(test.splits.tolist()) == ["test", "test"]
    both = load_store(store, splits=["train", "valid"])
    assert set(both.splits.tolist()) == {"train", "valid"} and len(both) == 4
    for data in (test, both):
        for i, video_id in enumerate(data.ids):
            k = int(video_id.split("_")[0].split("-")[1])
            np.testing.assert_array_equal(data.sequence(i), _series(k))
    full = load_store(store)
    picked = full.select([5, 0, 3])
    assert picked.ids.tolist() == [full.ids[5], full.ids[0], full.ids[3]]
    for j, i in enumerate([5, 0, 3]):
        np.testing.assert_array_equal(picked.sequence(j), full.sequence(i))
        np.testing.assert_array_equal(picked.presence[picked.offsets[j]:picked.offsets[j + 1]],
                                      full.presence[full.offsets[i]:full.offsets[i + 1]])
    mask = full.scores >= 3
    assert full.select(mask).ids.tolist() == full.ids[mask].tolist()
    with pytest.raises(StoreError, match="not in store"):
        load_store(store, splits="holdout")


def test_select_series_columns(store: Path) -> None:
    data = load_store(store).select_series(["f3", "f1"])
    assert data.series_names == ["f3", "f1"]
    np.testing.assert_array_equal(data.series[:, 0] % 10, 3)
    with pytest.raises(ValueError, match="not in store"):
        load_store(store).select_series(["nope"])


def test_write_sequences_any_channels_levels_and_lengths(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lengths = [5, 17, 40, 9, 23, 31, 12]
    sequences = [rng.standard_normal((n, 11)) for n in lengths]  # C = 11, not 63
    scores = np.arange(7)                                        # 7 score levels
    path = tmp_path / "byo.h5"
    report = write_sequences(path, [f"s{i}" for i in range(7)], sequences, scores,
                             [10, 10, 11, 11, 12, 12, 13], splits=["train"] * 5 + ["test"] * 2,
                             fps=25.0, channel_names=[f"imu{k}" for k in range(11)],
                             attrs={"task": "imu"})
    assert report.added == [f"s{i}" for i in range(7)] and report.written
    data = load_store(path)
    assert data.landmarks is None and data.presence is None and data.task == "imu"
    assert data.summary.shape == (7, 0) and data.n_features == 11
    for i, video_id in enumerate(data.ids):
        k = int(video_id[1:])
        np.testing.assert_allclose(data.sequence(i), sequences[k].astype(np.float32))
        assert data.scores[i] == k and data.subjects[i] == str([10, 10, 11, 11, 12, 12, 13][k])
        expected = hashlib.sha256(sequences[k].astype(np.float32).tobytes()).hexdigest()
        assert data.source_hashes[i] == expected
    assert np.all(data.fps == 25.0)
    with pytest.raises(StoreError, match="no landmarks"):
        load_store(path, require_landmarks=True)
    # Same sequences again: everything is skipped (resumable), the file is not rewritten.
    mtime = path.stat().st_mtime_ns
    again = write_sequences(path, [f"s{i}" for i in range(7)], sequences, scores,
                            [10, 10, 11, 11, 12, 12, 13], splits=["train"] * 5 + ["test"] * 2,
                            fps=25.0, channel_names=[f"imu{k}" for k in range(11)],
                            attrs={"task": "imu"})
    assert len(again.skipped) == 7 and not again.written and path.stat().st_mtime_ns == mtime


def test_write_sequences_defaults(tmp_path: Path) -> None:
    path = tmp_path / "byo.h5"
    write_sequences(path, ["a", "b"], [np.ones((3, 2)), np.zeros((4, 2))], [1.0, 2.0], ["x", "y"],
                    summary=np.array([[1.0], [2.0]]))
    data = load_store(path)
    assert data.series_names == ["c0", "c1"] and data.summary_names == ["s0"]
    assert data.splits.tolist() == ["train", "train"] and np.isnan(data.fps).all()
    assert data.scores.tolist() == [1, 2]


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(ids=["a"]), "ids has 1 values for 2"),
    (dict(subjects=["x"]), "subjects has 1 values for 2"),
    (dict(scores=[0, 1, 2]), "scores must have shape"),
    (dict(scores=[0, 1.5]), "scores must be integers"),
    (dict(scores=["mild", "severe"]), "scores must be integers"),
    (dict(ids=["a", "a"]), "duplicate ids"),
    (dict(sequences=[np.ones((3, 2)), np.ones((3, 5))]), "has 5 channels"),
    (dict(sequences=[np.ones((3, 2)), np.full((3, 2), np.nan)]), "NaN"),
    (dict(sequences=[np.ones(3), np.ones(3)]), "must be 2-D"),
    (dict(sequences=[np.ones((3, 2)), np.ones((0, 2))]), "T >= 1"),
    (dict(channel_names=["only_one"]), "channel_names has 1 names for 2"),
    (dict(splits=["train"]), "splits has 1 values"),
    (dict(hands=["left", "r"]), "hand must be 'l', 'r'"),
    (dict(summary=np.ones((2, 2)), summary_names=["a"]), "summary_names has 1"),
])
def test_write_sequences_rejects_bad_input(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = dict(ids=["a", "b"], sequences=[np.ones((3, 2)), np.ones((4, 2))], scores=[0, 1],
                subjects=["x", "y"])
    args.update(kwargs)
    path = tmp_path / "byo.h5"
    with pytest.raises(ValueError, match=message):
        write_sequences(path, args.pop("ids"), args.pop("sequences"), args.pop("scores"),
                        args.pop("subjects"), **args)
    assert not path.exists()


def _break(path: Path, how: str) -> None:
    with h5py.File(path, "a") as handle:
        if how == "missing":
            del handle["videos/scores"]
        elif how == "shape":
            del handle["series"]
            handle.create_dataset("series", data=np.zeros((10, F), np.float32))
        elif how == "nan":
            series = handle["series"]
            series[25, 1] = np.nan
        elif how == "summary_nan":
            handle["summary"][3, 0] = np.inf
        elif how == "version":
            handle.attrs["schema_version"] = 99
        elif how == "offsets":
            offsets = handle["videos/offsets"][()]
            offsets[2] += 1
            handle["videos/offsets"][...] = offsets
        elif how == "landmark_nan":
            presence = handle["presence"][()]
            frame = int(np.flatnonzero(presence)[0])
            handle["landmarks"][frame, 3, 1] = np.nan
        elif how == "names":
            del handle["series_names"]
            handle.create_dataset("series_names", data=np.array(["a", "b"], dtype=object),
                                  dtype=h5py.string_dtype())


@pytest.mark.parametrize(("how", "message"), [
    ("missing", r"missing dataset\(s\) \['videos/scores'\]"),
    ("shape", "dataset 'series' has shape"),
    ("names", "dataset 'series' has shape"),
    ("nan", "'series' has NaN/inf in video '.*' frame"),
    ("summary_nan", "'summary' has NaN/inf in video"),
    ("version", "unknown schema version 99"),
    ("offsets", "offsets' do not match"),
    ("landmark_nan", "marked present"),
])
def test_schema_errors_name_file_and_problem(store: Path, how: str, message: str) -> None:
    _break(store, how)
    with pytest.raises(StoreError, match=message) as err:
        load_store(store)
    assert str(store) in str(err.value)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty file"),
    (b"id,score\na,1\n", "not an HDF5 file"),
])
def test_not_a_store(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.h5"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=message) as err:
        load_store(path)
    assert str(path) in str(err.value)


def test_missing_file_and_foreign_hdf5(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such store file") as err:
        load_store(tmp_path / "nope.h5")
    assert "nope.h5" in str(err.value)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle.create_dataset("x", data=np.ones(3))
    with pytest.raises(StoreError, match="no 'schema_version'"):
        load_store(foreign)


def test_resumable_merge_skips_same_hash_and_replaces_changed(store: Path) -> None:
    assert stored_hashes(store) == {e.id: e.source_hash for e in _entries(range(6))}
    assert stored_hashes(store.parent / "absent.h5") == {}
    same = _entries([0, 1])
    changed = _entries([2], hash_suffix="-v2")
    changed[0].series = changed[0].series + 0.5
    relabelled = _entries([3])
    relabelled[0].score = 4 if relabelled[0].score != 4 else 0
    report = write_store(store, [*same, *changed, *relabelled, *_entries([6, 7])],
                         SERIES, SUMMARY)
    assert report.skipped == [e.id for e in same]
    assert report.replaced == [changed[0].id, relabelled[0].id]
    assert report.added == [e.id for e in _entries([6, 7])]
    assert report.written and report.n_videos == 8
    data = load_store(store)
    assert len(data) == 8 and data.task == "demo"  # attrs of the first write are kept
    np.testing.assert_array_equal(data.sequence(_by_id(data, changed[0].id)), _series(2) + 0.5)
    assert data.source_hashes[_by_id(data, changed[0].id)] == "hash2-v2"
    assert data.scores[_by_id(data, relabelled[0].id)] == relabelled[0].score
    np.testing.assert_array_equal(data.sequence(_by_id(data, _entries([7])[0].id)), _series(7))


def test_merge_refuses_mismatched_names_and_mixed_landmarks(store: Path) -> None:
    before = store.read_bytes()
    with pytest.raises(StoreError, match="existing store has series"):
        write_store(store, _entries([9]), ["a", "b", "c", "d"], SUMMARY)
    with pytest.raises(StoreError, match="existing store has summary features"):
        write_store(store, _entries([9]), SERIES, ["taps"])
    with pytest.raises(ValueError, match="landmarks for every video or for none"):
        write_store(store, _entries([9], landmarks=False), SERIES, SUMMARY)
    assert store.read_bytes() == before


def test_write_store_rejects_bad_entries(tmp_path: Path) -> None:
    bad = _entries([1])
    bad[0].series[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"video '15-000001_r_000': series has NaN"):
        write_store(tmp_path / "s.h5", bad, SERIES, SUMMARY)
    wrong = _entries([1])
    wrong[0].landmarks = wrong[0].landmarks[:-1]
    with pytest.raises(ValueError, match="landmarks must have shape"):
        write_store(tmp_path / "s.h5", wrong, SERIES, SUMMARY)
    with pytest.raises(ValueError, match="duplicate video ids"):
        write_store(tmp_path / "s.h5", _entries([1, 1]), SERIES, SUMMARY)
    assert not (tmp_path / "s.h5").exists()


def test_merge_stores_combines_shards(tmp_path: Path) -> None:
    shards = [tmp_path / "shard0.h5", tmp_path / "shard1.h5"]
    write_store(shards[0], _entries([0, 1, 2]), SERIES, SUMMARY, {"task": "demo"})
    write_store(shards[1], _entries([3, 4]), SERIES, SUMMARY, {"task": "demo"})
    report = merge_stores(tmp_path / "all.h5", shards)
    assert report.n_videos == 5
    data = load_store(tmp_path / "all.h5", require_landmarks=True)
    assert data.task == "demo" and len(data) == 5
    for i, video_id in enumerate(data.ids):
        k = int(video_id.split("_")[0].split("-")[1])
        np.testing.assert_array_equal(data.sequence(i), _series(k))


def test_exception_inside_write_leaves_old_store_and_no_temp(store: Path, monkeypatch) -> None:
    import hawkeye.store as store_module

    before = store.read_bytes()
    real = store_module._write_file

    def crash(path, *args, **kwargs):
        real(path, *args, **kwargs)
        raise RuntimeError("killed while writing")

    monkeypatch.setattr(store_module, "_write_file", crash)
    with pytest.raises(RuntimeError, match="killed while writing"):
        write_store(store, _entries([8]), SERIES, SUMMARY)
    assert store.read_bytes() == before
    assert len(load_store(store)) == 6
    # no temporary file; the writer lock file stays (hawkeye.faults.store_lock)
    assert sorted(p.name for p in store.parent.iterdir()) == [".store.h5.lock", "store.h5"]


_KILLED_WRITER = textwrap.dedent("""
    import sys, time
    import h5py
    import numpy as np
    from hawkeye.store import VideoEntry, write_store

    real = h5py.Group.create_dataset

    def pause_at_series(self, name, *args, **kwargs):
        if name == "series":  # the per-video group is written, the frames are not: hang here
            print("MIDWAY", flush=True)
            time.sleep(120)
        return real(self, name, *args, **kwargs)

    h5py.Group.create_dataset = pause_at_series
    entries = [VideoEntry(id=f"new{k}", subject="s", score=1, split="train",
                          series=np.ones((50, 4), np.float32), summary=np.zeros(2),
                          landmarks=np.zeros((50, 21, 3), np.float32)) for k in range(3)]
    write_store(sys.argv[1], entries, ["f0", "f1", "f2", "f3"], ["taps", "frequency"])
""")


def test_sigkilled_writer_leaves_previous_store_intact(store: Path) -> None:
    before = store.read_bytes()
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(store)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "MIDWAY", proc.stderr.read()
        temps = [p for p in store.parent.iterdir() if p.name not in ("store.h5", ".store.h5.lock")]
        assert len(temps) == 1 and temps[0].name.startswith(".store.h5.")  # the half-written file
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert store.read_bytes() == before
    data = load_store(store)
    assert len(data) == 6 and "new0" not in data.ids
    with pytest.raises(StoreError):  # the abandoned temporary file is not a valid store
        load_store(temps[0])
    # A later writer still works on the intact store, and removes the killed one's leftover.
    assert write_store(store, _entries([6]), SERIES, SUMMARY).added == [_entries([6])[0].id]
    assert not temps[0].exists()


def _npz_inputs(rng: np.random.Generator) -> dict:
    lengths = np.array([6, 13, 8])
    return dict(ids=np.array(["p1", "p2", "p3"]), scores=np.array([0, 2, 5]),
                subjects=np.array([7, 7, 9]), lengths=lengths,
                sequences=rng.standard_normal((lengths.sum(), 3)).astype(np.float32),
                splits=np.array(["train", "train", "test"]), hands=np.array(["l", "r", ""]),
                fps=np.float64(60.0), channel_names=np.array(["ax", "ay", "az"]))


def test_cli_write_and_info_round_trip(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(1)
    inputs = _npz_inputs(rng)
    np.savez(tmp_path / "stacked.npz", **inputs)
    per_seq = {k: v for k, v in inputs.items() if k not in ("sequences", "lengths")}
    parts = np.split(inputs["sequences"], np.cumsum(inputs["lengths"])[:-1])
    np.savez(tmp_path / "separate.npz", **per_seq, **{f"seq_{i}": p for i, p in enumerate(parts)})
    for name in ("stacked", "separate"):
        out = tmp_path / f"{name}.h5"
        assert main(["write", str(tmp_path / f"{name}.npz"), str(out), "--task", "imu"]) == 0
        data = load_store(out)
        assert data.task == "imu" and data.series_names == ["ax", "ay", "az"]
        for i, video_id in enumerate(data.ids):
            k = ["p1", "p2", "p3"].index(video_id)
            np.testing.assert_array_equal(data.sequence(i), parts[k])
            assert data.scores[i] == [0, 2, 5][k] and data.hands[i] == ["l", "r", ""][k]
            assert data.subjects[i] == ["7", "7", "9"][k] and data.splits[i] == inputs["splits"][k]
        assert np.all(data.fps == 60.0)
    capsys.readouterr()
    assert main(["info", str(tmp_path / "stacked.h5")]) == 0
    text = capsys.readouterr().out
    assert "videos: 3" in text and "F=3" in text and "score 5" in text
    assert "test" in text and "train" in text


def test_cli_module_entry_point(tmp_path: Path) -> None:
    np.savez(tmp_path / "in.npz", **_npz_inputs(np.random.default_rng(2)))
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    write = subprocess.run([sys.executable, "-m", "hawkeye.store", "write",
                            str(tmp_path / "in.npz"), str(tmp_path / "out.h5")],
                           capture_output=True, text=True, env=env)
    assert write.returncode == 0, write.stderr
    assert "3 added" in write.stdout
    info = subprocess.run([sys.executable, "-m", "hawkeye.store", "info", str(tmp_path / "out.h5")],
                          capture_output=True, text=True, env=env)
    assert info.returncode == 0 and "videos: 3" in info.stdout


@pytest.mark.parametrize(("arrays", "message"), [
    (dict(ids=np.array(["a", "b"], dtype=object), scores=np.array([0, 1]),
          subjects=np.array(["x", "y"]), seq_0=np.ones((2, 2)), seq_1=np.ones((2, 2))),
     "object array"),
    (dict(ids=np.array(["a"]), scores=np.array([0]), subjects=np.array(["x"]),
          seq_0=np.ones((2, 2)), split=np.array(["train"])), "unknown keys"),
    (dict(ids=np.array(["a"]), subjects=np.array(["x"]), seq_0=np.ones((2, 2))),
     "missing required keys"),
    (dict(ids=np.array(["a", "b"]), scores=np.array([0, 1]), subjects=np.array(["x", "y"]),
          sequences=np.ones((5, 2)), lengths=np.array([2, 2])), "sum to"),
    (dict(ids=np.array(["a", "b"]), scores=np.array([0, 1]), subjects=np.array(["x", "y"]),
          seq_0=np.ones((2, 2))), "expected arrays seq_0 .. seq_1"),
])
def test_cli_reports_bad_npz(tmp_path: Path, capsys, arrays: dict, message: str) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    assert main(["write", str(tmp_path / "bad.npz"), str(tmp_path / "out.h5")]) == 2
    err = capsys.readouterr().err
    assert message in err and "bad.npz" in err
    assert not (tmp_path / "out.h5").exists()


def test_cli_refuses_a_subject_in_both_cv_and_test_splits(tmp_path: Path, capsys) -> None:
    def arrays(ids, subjects, splits):
        return dict(ids=np.array(ids), scores=np.zeros(len(ids), int), subjects=np.array(subjects),
                    splits=np.array(splits), sequences=np.ones((2 * len(ids), 1)),
                    lengths=np.full(len(ids), 2))

    np.savez(tmp_path / "shared.npz", **arrays(["a", "b"], ["s1", "s1"], ["train", "test"]))
    assert main(["write", str(tmp_path / "shared.npz"), str(tmp_path / "out.h5")]) == 2
    err = capsys.readouterr().err
    assert "shared.npz" in err and "both the cross-validation splits and" in err and "s1" in err
    assert not (tmp_path / "out.h5").exists()
    # the same leak across two writes into one store: the stored videos count too
    np.savez(tmp_path / "first.npz", **arrays(["a"], ["s1"], ["train"]))
    np.savez(tmp_path / "second.npz", **arrays(["b"], ["s1"], ["test"]))
    assert main(["write", str(tmp_path / "first.npz"), str(tmp_path / "out.h5")]) == 0
    assert main(["write", str(tmp_path / "second.npz"), str(tmp_path / "out.h5")]) == 2
    assert "s1" in capsys.readouterr().err and len(load_store(tmp_path / "out.h5")) == 1


def test_empty_store_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "empty.h5"
    write_store(path, [], SERIES, SUMMARY, {"task": "demo"})
    data = load_store(path)
    assert len(data) == 0 and data.series.shape == (0, F) and data.offsets.tolist() == [0]


def test_scattered_reads_match_numpy_indexing(tmp_path: Path) -> None:
    """The reader merges adjacent videos into ranges and falls back to one full read when the
    selection is scattered; both must give exactly numpy's ragged indexing."""
    from hawkeye.store import _ragged_take, _read_rows

    lengths = np.arange(1, 81) % 7 + 1
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    rows = np.arange(offsets[-1] * 3, dtype=np.float32).reshape(-1, 3)
    with h5py.File(tmp_path / "rows.h5", "w") as handle:
        handle.create_dataset("rows", data=rows)
    with h5py.File(tmp_path / "rows.h5") as handle:
        for idx in (np.arange(10, 30), np.array([3, 4, 5, 40, 41, 7]), np.arange(0, 80, 2),
                    np.array([], dtype=np.int64), np.arange(80)):
            frames, _ = _ragged_take(offsets, idx)
            np.testing.assert_array_equal(_read_rows(handle["rows"], offsets, idx), rows[frames])


# ---------------------------------------------------------------------------------------------
# frame timestamps (issue 11)


def test_frame_timestamps_round_trip_and_survive_select_and_merge(tmp_path: Path) -> None:
    irregular = np.cumsum(np.r_[0.0, np.random.default_rng(3).uniform(0.01, 0.05, 19)])
    entries = _entries(range(3))
    entries[0].timestamps = irregular
    path = tmp_path / "timed.h5"
    write_store(path, entries, SERIES, SUMMARY)
    data = load_store(path)
    k = _by_id(data, entries[0].id)
    rows = slice(data.offsets[k], data.offsets[k + 1])
    np.testing.assert_array_equal(data.frame_times()[rows], irregular)
    other = _by_id(data, entries[1].id)
    np.testing.assert_allclose(data.frame_times()[data.offsets[other]:data.offsets[other + 1]],
                               np.arange(27) / 30.0)  # no timestamps given: uniform 1 / fps
    np.testing.assert_array_equal(data.select([k]).frame_times(), irregular)
    write_store(path, _entries([5]), SERIES, SUMMARY)  # a merge keeps the stored times
    np.testing.assert_array_equal(load_store(path).select([k]).frame_times(), irregular)


def test_a_store_without_timestamps_reads_as_uniform_frames(store: Path) -> None:
    with h5py.File(store, "a") as handle:  # what every store written before issue 11 looks like
        del handle["timestamps"]
    data = load_store(store)
    assert data.timestamps is None
    np.testing.assert_allclose(data.frame_times()[:data.lengths[0]],
                               np.arange(data.lengths[0]) / 30.0)


def test_unknown_fps_gives_nan_times_and_bad_timestamps_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "own.h5"
    write_sequences(path, ["a"], [np.zeros((4, 1))], [0], ["s"])
    assert np.isnan(load_store(path).frame_times()).all()
    backwards = _entries([0])
    backwards[0].timestamps = np.arange(20)[::-1] / 30.0
    with pytest.raises(ValueError, match="never decrease"):
        write_store(tmp_path / "bad.h5", backwards, SERIES, SUMMARY)
    good = tmp_path / "good.h5"
    write_store(good, _entries([0]), SERIES, SUMMARY)
    with h5py.File(good, "a") as handle:
        handle["timestamps"][3] = -1.0
    with pytest.raises(StoreError, match="'timestamps' of video"):
        load_store(good)
