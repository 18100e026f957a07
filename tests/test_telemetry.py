"""The telemetry task: store targets, the synthetic generator, the CSV importer, its CLI.

Generator fixtures are small (tens of windows) but run the real vehicle model; the CSV fixture's
geometry is stated where it is built so expected windows and line numbers can be counted by hand.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from hawkeye.config import compose
from hawkeye.data import model_frames
from hawkeye.metrics import f1_optimal_threshold
from hawkeye.models.heads import build_head
from hawkeye.store import StoreError, load_store, merge_stores, write_sequences, write_store
from hawkeye.telemetry.__main__ import main as telemetry_main
from hawkeye.telemetry.csv_import import ImportConfig, assign_splits, import_csv
from hawkeye.telemetry.generate import (
    ANOMALY_KINDS,
    GeneratorConfig,
    generate,
    generate_windows,
    harsh_braking,
)
from hawkeye.telemetry.vehicle import SIGNAL_NAMES
from hawkeye.timebase import TimeBase

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------
# store targets


def _byo(path: Path, fuel=(1.5, 2.5, 3.5), **kwargs):
    sequences = [np.full((4, 2), k, dtype=np.float32) for k in range(3)]
    return write_sequences(path, ["a", "b", "c"], sequences, [0, 1, 0], ["t1", "t1", "t2"],
                           splits=["train", "train", "test"],
                           targets={"fuel_consumption": list(fuel), "anomaly": [0, 1, 0]},
                           **kwargs)


def test_store_targets_round_trip_select_merge(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    _byo(path)
    data = load_store(path)
    assert sorted(data.targets) == ["anomaly", "fuel_consumption"]
    by_id = dict(zip(data.ids.tolist(), data.targets["fuel_consumption"].tolist(), strict=True))
    assert by_id == {"a": 1.5, "b": 2.5, "c": 3.5}
    assert data.targets["fuel_consumption"].dtype == np.float64
    with h5py.File(path) as handle:  # the documented layout: targets/<name>, (N,) float64
        assert handle["targets/anomaly"].shape == (3,)
    test = load_store(path, splits="test")
    assert test.targets["fuel_consumption"].tolist() == [3.5]
    picked = data.select(np.array([2, 0]))
    assert picked.targets["anomaly"].tolist() == [data.targets["anomaly"][2],
                                                  data.targets["anomaly"][0]]
    assert [e.targets for e in picked.entries()][1] == {
        "fuel_consumption": float(data.targets["fuel_consumption"][0]),
        "anomaly": float(data.targets["anomaly"][0])}
    merged = tmp_path / "merged.h5"
    merge_stores(merged, [path])
    again = load_store(merged)
    for name in data.targets:
        np.testing.assert_array_equal(again.targets[name], data.targets[name])


def test_store_target_change_replaces_and_unchanged_skips(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    _byo(path)
    same = _byo(path)
    assert len(same.skipped) == 3 and not same.written
    changed = _byo(path, fuel=(1.5, 9.0, 3.5))
    assert changed.replaced == ["b"]
    data = load_store(path)
    assert data.targets["fuel_consumption"][data.ids.tolist().index("b")] == 9.0


def test_store_without_targets_group_has_none(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    write_sequences(path, ["a"], [np.ones((3, 2))], [0], ["s"])
    data = load_store(path)
    assert data.targets == {} and data.select([0]).targets == {}


@pytest.mark.parametrize(("targets", "message"), [
    ({"fuel": [1.0, np.nan, 2.0]}, "must be a finite number"),
    ({"fuel": [1.0, 2.0]}, r"must have shape \(3,\)"),
    ({"a/b": [1.0, 2.0, 3.0]}, "without '/'"),
])
def test_store_rejects_bad_targets(tmp_path: Path, targets: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_sequences(tmp_path / "t.h5", ["a", "b", "c"], [np.ones((2, 1))] * 3, [0, 0, 0],
                        ["x", "y", "z"], targets=targets)
    assert not (tmp_path / "t.h5").exists()


def test_store_refuses_mixed_target_names(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    _byo(path)
    with pytest.raises(ValueError, match="different target names"):
        write_sequences(path, ["d"], [np.ones((4, 2))], [0], ["t3"])
    entries = list(load_store(path).entries())
    entries[0].targets = {"other": 1.0}
    with pytest.raises(ValueError, match="different target names"):
        write_store(tmp_path / "new.h5", entries, ["c0", "c1"], [])


def test_store_reports_malformed_targets_group(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    _byo(path)
    with h5py.File(path, "a") as handle:
        del handle["targets/anomaly"]
        handle["targets/anomaly"] = np.zeros(5)
    with pytest.raises(StoreError, match=r"targets/anomaly.*\(3,\)"):
        load_store(path)


def test_store_cli_reads_targets_from_npz(tmp_path: Path, capsys) -> None:
    from hawkeye.store_cli import main as store_main

    npz = tmp_path / "seqs.npz"
    np.savez(npz, ids=np.array(["a", "b"]), scores=np.array([0, 1]),
             subjects=np.array(["t1", "t2"]), seq_0=np.ones((5, 3)), seq_1=np.zeros((4, 3)),
             target_fuel_consumption=np.array([3.5, 7.0]))
    assert store_main(["write", str(npz), str(tmp_path / "s.h5")]) == 0
    data = load_store(tmp_path / "s.h5")
    assert data.targets["fuel_consumption"].tolist() == [3.5, 7.0]
    assert store_main(["info", str(tmp_path / "s.h5")]) == 0
    assert "target fuel_consumption: min 3.5" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# generator


def _generator_cfg(**changes) -> GeneratorConfig:
    """The task's real generator settings, shrunk: 40 train, 30 valid, 30 test windows."""
    settings = OmegaConf.to_container(compose(["task=telemetry"]).task.generator, resolve=True)
    settings.update({"n_train": 40, "n_valid": 30, "n_test": 30, "anomaly_rate_valid": 0.2,
                     "anomaly_rate_test": 0.14, "trip_windows": [3, 6], **changes})
    return GeneratorConfig.from_mapping(settings)


@pytest.fixture(scope="module")
def windows():
    return generate_windows(_generator_cfg())


def test_generator_is_deterministic_and_seeded(windows) -> None:
    again = generate_windows(_generator_cfg())
    assert again.ids == windows.ids and again.kinds == windows.kinds
    np.testing.assert_array_equal(again.sequences, windows.sequences)
    np.testing.assert_array_equal(again.fuel, windows.fuel)
    other = generate_windows(_generator_cfg(seed=1))
    assert not np.array_equal(other.sequences, windows.sequences)


def test_generator_shapes_splits_and_anomaly_rates(windows) -> None:
    splits = np.asarray(windows.splits)
    assert windows.sequences.shape == (100, 60, len(SIGNAL_NAMES)) == (100, 60, 10)
    assert [int((splits == s).sum()) for s in ("train", "valid", "test")] == [40, 30, 30]
    assert windows.anomaly[splits == "train"].sum() == 0
    assert windows.anomaly[splits == "valid"].sum() == 6      # round(0.2 * 30)
    assert windows.anomaly[splits == "test"].sum() == 4       # round(0.14 * 30)
    assert set(windows.kinds) == {"", *ANOMALY_KINDS}         # dealt in turn: every kind appears
    trips_of = {s: set(np.asarray(windows.trips)[splits == s]) for s in ("train", "valid", "test")}
    assert not (trips_of["train"] & trips_of["valid"] or trips_of["train"] & trips_of["test"]
                or trips_of["valid"] & trips_of["test"])   # a trip lives in one split only
    assert np.isfinite(windows.sequences).all() and (windows.fuel >= 0).all()


def test_generated_anomalies_look_like_their_kind(windows) -> None:
    col = {name: k for k, name in enumerate(SIGNAL_NAMES)}
    normal = windows.sequences[windows.anomaly == 0]
    assert normal[:, :, col["long_accel"]].min() > -4.0      # normal braking stays gentle
    assert normal[:, :, col["coolant_temp"]].max() < 100.0
    for i, kind in enumerate(windows.kinds):
        x, detail = windows.sequences[i], windows.details.get(windows.ids[i])
        if kind == "harsh_braking":
            assert x[:, col["long_accel"]].min() < -5.0 and x[:, col["brake_pressure"]].max() > 40
        elif kind == "overheating":
            assert x[:, col["coolant_temp"]].max() > 108.0
        elif kind == "stuck":
            frozen = x[detail["onset"]:, [col[s] for s in detail["signals"]]]
            assert np.all(frozen == frozen[0]) and len(frozen) >= 30
            assert abs(frozen[0, col["long_accel"]]) > 0.5  # frozen while accelerating
        elif kind == "spike":
            assert x[detail["starts"][0], col[detail["signal"]]] == np.float32(
                detail["values"][0])


def test_fuel_target_follows_the_driving(windows) -> None:
    """More speed and more throttle burn more fuel: the target is not noise."""
    speed = windows.sequences[:, :, SIGNAL_NAMES.index("speed")].mean(axis=1)
    throttle = windows.sequences[:, :, SIGNAL_NAMES.index("throttle")].mean(axis=1)
    assert np.corrcoef(speed, windows.fuel)[0, 1] > 0.5
    assert np.corrcoef(throttle, windows.fuel)[0, 1] > 0.5
    standing = speed < 3.0
    if standing.any():  # idling burns well under a litre per hour
        assert windows.fuel[standing].max() < 1.5


def test_harsh_braking_rejoins_the_original_trace() -> None:
    speed = np.full(40, 25.0)  # m/s
    braked = harsh_braking(speed, onset=5, decel=8.0, end_ratio=0.0, hold=2, recover=2.5)
    assert braked[5] == 25.0 and braked[6] == 17.0 and braked[9] == 0.0   # 25 -> 0 at 8 m/s^2
    assert braked[10] == braked[11] == 0.0 and braked[12] == 2.5          # hold 2 s, then +2.5
    assert braked[-1] == 25.0 and (braked <= speed).all()


def test_generate_writes_store_with_targets_and_provenance(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.h5"
    generate(path, _generator_cfg())
    data = load_store(path)
    assert data.task == "telemetry" and data.series_names == list(SIGNAL_NAMES)
    assert sorted(data.targets) == ["anomaly", "fuel_consumption"]
    np.testing.assert_array_equal(data.scores, data.targets["anomaly"].astype(np.int64))
    assert all(s.startswith("veh") and "_trip" in s for s in data.subjects)
    kinds = {d["kind"] for d in data.attrs["anomalies"].values()}
    assert kinds == set(ANOMALY_KINDS) and data.attrs["generator"]["seed"] == 0
    # Generating again replaces the store: windows of an earlier, larger run do not linger.
    generate(path, _generator_cfg(n_train=20, n_valid=10, n_test=10, anomaly_rate_test=0.1))
    assert len(load_store(path)) == 40


def test_generator_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="anomaly_kinds"):
        _generator_cfg(anomaly_kinds=["spike", "gremlins"])
    with pytest.raises(ValueError, match="missing keys"):
        GeneratorConfig.from_mapping({"seed": 0})


def test_cli_generate(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli.h5"
    generator = {"n_train": 12, "n_valid": 12, "n_test": 12, "anomaly_rate_valid": 0.34,
                 "anomaly_rate_test": 0.34, "trip_windows": "[2,4]"}
    assert telemetry_main(["generate", f"paths.store={out}",
                           *(f"task.generator.{k}={v}" for k, v in generator.items())]) == 0
    assert "36 videos" in capsys.readouterr().out and len(load_store(out)) == 36
    assert telemetry_main(["generate", f"paths.store={out}", "task.generator.no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err
    assert telemetry_main(["import", f"paths.store={out}"]) == 2
    assert "task.csv=FILE" in capsys.readouterr().err
    assert telemetry_main(["fly"]) == 2 and "usage:" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# CSV import


def _import_cfg(**changes) -> ImportConfig:
    settings = OmegaConf.to_container(compose(["task=telemetry"]).task.csv_import, resolve=True)
    settings.update({"time_column": "t", "label_column": "fault", "targets": ["fuel"],
                     "window": 10, "stride": 10, **changes})
    return ImportConfig.from_mapping(settings)


def _write_csv(path: Path, extra: list[str] = ()) -> Path:
    """Trips a (35 rows), b (30 rows), c (25 rows), t = 0..n-1; speed = 100 * trip + t,
    rpm = 1000 + t, fault = 1 only at trip b, t = 12; fuel = t. Data rows start at line 2,
    trip after trip, so trip a's row t is line t + 2, b's is 37 + t, c's is 67 + t. ``extra``
    lines are appended after line 91."""
    lines = ["trip_id,t,speed,rpm,fault,fuel"]
    for k, (trip, n) in enumerate((("a", 35), ("b", 30), ("c", 25))):
        lines += [f"{trip},{t},{100 * k + t},{1000 + t},{int(trip == 'b' and t == 12)},{t}"
                  for t in range(n)]
    path.write_text("\n".join(lines + list(extra)) + "\n")
    return path


def test_import_windows_labels_targets_and_trips(tmp_path: Path) -> None:
    report = import_csv(_write_csv(tmp_path / "d.csv"), tmp_path / "s.h5", _import_cfg())
    assert (report.n_rows, report.n_trips, report.n_windows) == (90, 3, 3 + 3 + 2)
    assert not report.skipped_rows and report.signals == ["speed", "rpm"]
    data = load_store(tmp_path / "s.h5")
    assert data.series_names == ["speed", "rpm"] and set(data.subjects) == {"a", "b", "c"}
    i = data.ids.tolist().index("b_r000010")  # rows t = 10..19 of trip b
    np.testing.assert_array_equal(data.sequence(i)[:, 0], 100 + np.arange(10, 20))
    assert data.scores[i] == 1 and data.targets["anomaly"][i] == 1.0
    assert data.targets["fuel"][i] == pytest.approx(14.5)        # mean of t = 10..19
    assert data.scores.sum() == 1


def test_import_skips_bad_rows_with_line_and_reason(tmp_path: Path) -> None:
    bad = ["a,35,abc,1000,0,5",       # line 92: text in a number
           "b,30,12,1000",            # line 93: wrong field count
           ",31,12,1000,0,5",         # line 94: empty id
           "c,25,10,1000,2,5",        # line 95: label not 0/1
           "c,26,inf,1000,0,5",       # line 96: infinite
           "a,3,7,7,0,7"]             # line 97: time 3 repeats trip a's line 5
    path = _write_csv(tmp_path / "d.csv", bad)
    report = import_csv(path, tmp_path / "s.h5", _import_cfg(max_skipped_fraction=0.1))
    reasons = {s.line: s.reason for s in report.skipped_rows}
    assert sorted(reasons) == [92, 93, 94, 95, 96, 97]
    assert "'speed' is 'abc'" in reasons[92] and "4 fields" in reasons[93]
    assert "empty 'trip_id'" in reasons[94] and "expected 0 or 1" in reasons[95]
    assert "infinite" in reasons[96] and "repeats line 5" in reasons[97]
    data = load_store(tmp_path / "s.h5")
    assert data.attrs["n_skipped_rows"] == 6 and data.attrs["skipped_rows"][0]["line"] == 92
    assert len(data) == 8  # the good rows still give every window
    with pytest.raises(ValueError, match=r"d\.csv: line 92: column 'speed' is 'abc'"):
        import_csv(path, tmp_path / "e.h5", _import_cfg(bad_rows="error"))
    with pytest.raises(ValueError, match="6 of 96 rows are unreadable"):
        import_csv(path, tmp_path / "e.h5", _import_cfg(max_skipped_fraction=0.05))
    assert not (tmp_path / "e.h5").exists()


def test_import_missing_values_policies(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "d.csv")
    text = path.read_text().splitlines()
    text[1 + 15] = "a,15,,1015,0,15"   # trip a, t = 15: speed missing (line 17)
    path.write_text("\n".join(text) + "\n")
    dropped = import_csv(path, tmp_path / "drop.h5", _import_cfg())
    assert dropped.n_windows == 7 and dropped.dropped_windows == [
        {"trip": "a", "first_line": 12, "reason": "'speed' missing at line 17"}]
    filled = import_csv(path, tmp_path / "fill.h5", _import_cfg(missing="interpolate"))
    data = load_store(tmp_path / "fill.h5")
    i = data.ids.tolist().index("a_r000010")
    assert filled.n_windows == 8 and data.sequence(i)[5, 0] == pytest.approx(15.0)
    with pytest.raises(ValueError, match=r"d\.csv: line 17: column 'speed' has no value"):
        import_csv(path, tmp_path / "err.h5", _import_cfg(missing="error"))


def test_import_time_gaps_splits_and_bad_files(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "d.csv")
    text = path.read_text().splitlines()
    del text[1 + 5]                    # trip a loses t = 5: a time gap inside its first window
    path.write_text("\n".join(text) + "\n")
    report = import_csv(path, tmp_path / "s.h5", _import_cfg())
    assert report.dropped_windows[0]["reason"].startswith("time gap of 2")
    with_split = tmp_path / "split.csv"
    rows = list(csv.reader(_write_csv(tmp_path / "x.csv").open()))
    rows = [rows[0] + ["split"]] + [r + ["test" if r[0] == "c" else "train"] for r in rows[1:]]
    rows[5][-1] = "valid"              # trip a, line 6, says another split
    with open(with_split, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    report = import_csv(with_split, tmp_path / "t.h5", _import_cfg(split_column="split",
                                                                   max_skipped_fraction=0.1))
    assert "is in split 'train' (line 2) and 'valid'" in report.skipped_rows[0].reason
    data = load_store(tmp_path / "t.h5")
    assert set(data.subjects[data.splits == "test"]) == {"c"}
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.csv: empty file"):
        import_csv(empty, tmp_path / "u.h5", _import_cfg())
    with pytest.raises(ValueError, match=r"column\(s\) \['vehicle'\] not in the header"):
        import_csv(path, tmp_path / "u.h5", _import_cfg(id_column="vehicle"))


def test_assign_splits_deals_whole_trips_by_fraction() -> None:
    trips = [f"trip{k:02d}" for k in range(20)]
    split_of = assign_splits(trips, (0.7, 0.15, 0.15), seed=0)
    counts = {s: sum(v == s for v in split_of.values()) for s in ("train", "valid", "test")}
    assert counts == {"train": 14, "valid": 3, "test": 3}
    assert split_of == assign_splits(list(reversed(trips)), (0.7, 0.15, 0.15), seed=0)
    assert assign_splits(["only"], (0.0, 0.5, 0.5), seed=0) == {"only": "train"}


def test_cli_import_module_entry_point(tmp_path: Path) -> None:
    csv_path = _write_csv(tmp_path / "d.csv")
    result = subprocess.run(
        [sys.executable, "-m", "hawkeye.telemetry", "import", f"task.csv={csv_path}",
         f"paths.store={tmp_path / 'cli.h5'}", "task.csv_import.time_column=t",
         "task.csv_import.label_column=fault", "task.csv_import.targets=[fuel]",
         "task.csv_import.window=10", "task.csv_import.stride=5"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "90 rows, 3 trips -> 15 windows of 2 signals" in result.stdout


# ------------------------------------------------------------------------------------------------
# what training needs for this task: the F1-optimal threshold, the continuous-target head


def test_f1_optimal_threshold_cuts_between_classes() -> None:
    labels = np.array([0, 0, 0, 1, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9, 1.5, 2.0])
    threshold, f1 = f1_optimal_threshold(labels, scores)
    # flag the top 2: F1 = 2*2/(2+3) = 0.8; top 3 (0.9 is normal): 4/6; top 4 (down to 0.8):
    # 2*3/(4+3) = 6/7, the best; the cut lies midway between 0.8 and the next score, 0.3
    assert f1 == pytest.approx(6 / 7) and threshold == pytest.approx((0.8 + 0.3) / 2)
    separable = f1_optimal_threshold([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9])
    assert separable == (pytest.approx(0.45), 1.0)
    everything = f1_optimal_threshold([1, 1], [0.5, 0.5])
    assert everything[1] == 1.0 and everything[0] < 0.5
    assert all(np.isnan(f1_optimal_threshold([0, 0], [0.1, 0.2])))


def test_continuous_head_standardises_and_reports_target_units() -> None:
    cfg = OmegaConf.load(REPO / "conf" / "head" / "continuous.yaml")
    head = build_head({**OmegaConf.to_container(cfg), "target_mean": 6.0, "target_std": 2.0},
                      n_levels=2)
    outputs = torch.tensor([[0.0], [1.5], [-1.0]])
    torch.testing.assert_close(head.expected(outputs), torch.tensor([6.0, 9.0, 4.0]))
    torch.testing.assert_close(head.predict(outputs), head.expected(outputs))
    y = torch.tensor([6.0, 9.0, 4.0])
    assert head.loss(outputs, y).item() == pytest.approx(0.0)
    assert head.loss(torch.zeros(3, 1), y).item() == pytest.approx((0 + 1.5**2 + 1) / 3)
    with pytest.raises(ValueError, match="real values"):
        head.loss(outputs, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="class weights"):
        head.loss(outputs, y, torch.ones(2))


# ------------------------------------------------------------------------------------------------
# the task through the same jobs: launch (local launcher) -> train -> collect -> ONNX export

# Tiny models and runs: the point is the path, not the accuracy.
TINY_TELEMETRY = ["+experiment=telemetry", "cv.n_folds=2", "train.epochs=2",
                  "train.model_overrides={tcn:{channels:[8,16]},lstm_ae:{hidden:8,latent_dim:4}}",
                  "collect.n_boot=50", "collect.figures=false",
                  "export.onnx=false"]  # exported explicitly in the ONNX test below


@pytest.fixture(scope="module")
def telemetry_run(tmp_path_factory):
    """A tiny generated store, launched for tcn and lstm_ae with the local launcher (background
    processes through submitit), collected, and every fold exported to ONNX (by the training job
    when export.onnx is on, else here: export_run skips folds that have their model.onnx)."""
    from hawkeye import launch
    from hawkeye.export import export_run

    root = tmp_path_factory.mktemp("telemetry_run")
    store = root / "telemetry.h5"
    generate(store, _generator_cfg())
    args = [*TINY_TELEMETRY, f"paths.store={store}", f"paths.runs={root / 'runs'}",
            "launcher=local", "launcher.max_parallel=2", "launch.wait=true"]
    assert launch.main(args) == 0
    (run_dir,) = [p.parent for p in (root / "runs").glob("*/run.json")]
    exports = export_run(run_dir, compose(TINY_TELEMETRY))
    return run_dir, store, exports


@pytest.mark.slow
def test_launch_trains_both_models_and_collects_task_columns(telemetry_run) -> None:
    run_dir, _, _ = telemetry_run
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = {row["model"]: row for row in summary["rows"]}
    assert set(rows) == {"tcn", "lstm_ae"} and all(r["complete"] for r in rows.values())
    assert rows["tcn"]["kind"] == "regression" and rows["lstm_ae"]["kind"] == "anomaly"
    assert {"r2", "mae", "rmse"} <= set(rows["tcn"]["cv"]) and "exact" not in rows["tcn"]["cv"]
    assert {"precision", "recall", "f1", "roc_auc", "pr_auc"} <= set(rows["lstm_ae"]["cv"])
    for row in rows.values():  # pooled over folds with a trip-level bootstrap interval
        for stats in row["cv"].values():
            assert {"pooled", "ci_low", "ci_high"} <= set(stats)
    markdown = (run_dir / "summary.md").read_text()
    assert "R²" in markdown and "F1" in markdown
    fold = json.loads((run_dir / "lstm_ae" / "fold_0" / "metrics.json").read_text())
    assert set(fold["thresholds"]) >= {"p95", "p90", "p85"}
    assert fold["threshold"] == fold["thresholds"][fold["threshold_choice"]]["threshold"]
    assert fold["anomaly_label"] == "anomaly"
    regression = json.loads((run_dir / "tcn" / "fold_1" / "metrics.json").read_text())
    assert regression["head"] == "continuous" and regression["target"] == "fuel_consumption"
    assert regression["test"]["n"] == 26  # target_windows=normal: the 30 - 4 normal test windows


@pytest.mark.slow
def test_onnx_exports_match_pytorch_on_telemetry_windows(telemetry_run) -> None:
    """Every fold exported with the export's own parity check, and the ONNX file alone, fed raw
    60 x 10 windows of the store, gives what training wrote to predictions.csv."""
    import onnxruntime as ort

    run_dir, store, exports = telemetry_run
    assert len(exports) == 4 and all(e["status"] in ("ok", "skipped") for e in exports)
    folds = [run_dir / m / f"fold_{k}" for m in ("tcn", "lstm_ae") for k in (0, 1)]
    for fold in folds:
        metrics = json.loads((fold / "metrics.json").read_text())
        assert (fold / "model.onnx").is_file() and 0 <= metrics["onnx_parity_max_abs"] <= 1e-4
    data = load_store(store, splits="test")
    x, mask = model_frames(data, "series", TimeBase(sample_rate_hz=1.0, max_seconds=60.0))
    for model in ("tcn", "lstm_ae"):
        fold = run_dir / model / "fold_0"
        rows = list(csv.DictReader((fold / "predictions.csv").open()))
        want = {r["id"]: (float(r["raw"]), float(r["pred"])) for r in rows if r["split"] == "test"}
        keep = np.isin(data.ids, list(want))
        session = ort.InferenceSession(str(fold / "model.onnx"),
                                       providers=["CPUExecutionProvider"])
        names = ["expected"] if model == "tcn" else ["reconstruction_error", "anomalous"]
        got = session.run(names, {"x": x[keep], "mask": mask[keep]})
        raw = np.array([want[i][0] for i in data.ids[keep]])
        np.testing.assert_allclose(got[0], raw, rtol=1e-4, atol=1e-4)
        if model == "lstm_ae":
            flagged = np.array([want[i][1] for i in data.ids[keep]]).astype(bool)
            assert (got[1] == flagged).mean() >= 0.99  # a tie at the threshold may flip one


# ------------------------------------------------------------------------------------------------
# training's pieces for this task


def test_anomaly_flags_from_label_or_score(tmp_path: Path) -> None:
    from hawkeye.data import anomaly_flags

    path = tmp_path / "t.h5"
    _byo(path)
    data = load_store(path)
    labelled = anomaly_flags(data, "anomaly", min_score=99)     # the label wins over the score
    assert data.ids[labelled].tolist() == ["b"]                  # labelled 1, score 1
    assert data.ids[anomaly_flags(data, None, min_score=1)].tolist() == ["b"]
    assert not anomaly_flags(data, None, min_score=2).any()
    with pytest.raises(ValueError, match="not a target"):
        anomaly_flags(data, "fault", min_score=1)
    with pytest.raises(ValueError, match="must hold 0 .normal. or 1"):
        anomaly_flags(data, "fuel_consumption", min_score=1)


def test_thresholds_side_by_side_and_the_choice() -> None:
    from hawkeye.fitting import anomaly_thresholds, choose_threshold

    cfg = compose(["+experiment=telemetry", "model=lstm_ae"])
    train_errors = np.arange(1, 101, dtype=float)          # percentiles are easy to read off
    errors = np.array([10.0, 20.0, 30.0, 150.0, 200.0])
    labels = np.array([0, 0, 0, 1, 1])
    table = anomaly_thresholds(train_errors, errors, labels, cfg)
    assert list(table) == ["p95", "p90", "p85", "val_f1"]
    assert table["p95"]["threshold"] == pytest.approx(np.percentile(train_errors, 95))
    assert table["val_f1"]["threshold"] == pytest.approx(90.0)   # midway between 30 and 150
    assert table["val_f1"]["validation"]["f1"] == 1.0
    assert choose_threshold(table, cfg) == "val_f1"
    percentile = compose(["+experiment=telemetry", "model=lstm_ae",
                          "task.anomaly_threshold=percentile", "model.threshold_percentile=90"])
    assert choose_threshold(table, percentile) == "p90"
    no_anomaly = anomaly_thresholds(train_errors, errors, np.zeros(5, int), cfg)
    assert "val_f1" not in no_anomaly and choose_threshold(no_anomaly, cfg) == "p95"


@pytest.mark.slow
def test_predict_scores_the_windows_of_a_telemetry_csv(telemetry_run, tmp_path) -> None:
    """New telemetry as a CSV (one row per second, a trip id column), cut into windows by the
    run's task.csv_import and scored by the tcn's fold ensemble: each window's mean expected
    fuel flow is the mean of the folds' predictions.csv value for the same samples."""
    from hawkeye.predict import run_predict

    run_dir, store, _ = telemetry_run
    data = load_store(store, splits="test")
    normal = [i for i in range(len(data)) if data.scores[i] == 0][:3]
    lines = [",".join(["trip_id", *data.series_names])]
    for i in normal:
        lines += [",".join([f"w{i}", *(f"{v:.9g}" for v in row)]) for row in data.sequence(i)]
    (tmp_path / "new.csv").write_text("\n".join(lines) + "\n")
    run = run_predict(tmp_path / "new.csv", run_dir, "tcn", compose(TINY_TELEMETRY).prepare,
                      tmp_path / "out")
    assert [p.status for p in run.predictions] == ["ok"] * 3
    folds = [list(csv.DictReader((run_dir / "tcn" / f"fold_{k}" / "predictions.csv").open()))
             for k in (0, 1)]
    for p, i in zip(run.predictions, normal, strict=True):
        want = np.mean([float(r["raw"]) for rows in folds for r in rows
                        if r["split"] == "test" and r["id"] == data.ids[i]])
        assert p.mean == pytest.approx(want, rel=1e-4, abs=1e-4) and p.frames == 60
