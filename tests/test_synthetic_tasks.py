"""Demo data of the hand-movement, leg-agility and gait tasks (hawkeye/synthetic_tasks.py) through
prepare (precomputed landmarks): every trial stored with the task's landmark model, and the
movement slows with the score as the severity model says."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hawkeye import synthetic_tasks
from hawkeye.config import compose
from hawkeye.prepare.pipeline import prepare_from_config
from hawkeye.store import load_store
from hawkeye.synthetic_config import load_synthetic_config

SMALL = ["n_subjects=10", "min_frames=240", "max_frames=300"]
# task -> (landmark points, the summary feature that falls as the score rises)
EXPECTED = {"pd4t_hand_movement": (21, "cycle_frequency_hz"),
            "pd4t_leg_agility": (33, "cycle_frequency_hz"),
            "pd4t_gait": (33, "cadence_steps_per_min")}


@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_demo_data_of_each_task_prepares_into_its_store(tmp_path, task):
    root, store = tmp_path / "PD4T", tmp_path / f"{task}.h5"
    assert synthetic_tasks.main([task, f"out={root}", *SMALL]) == 0
    report = prepare_from_config(compose([
        f"task={task}", f"data_root={root}", f"paths.store={store}", "prepare.workers=1",
        "prepare.landmark_source=precomputed", "prepare.qc.overview=false"]))
    assert set(report.counts) == {"ok"}, report.counts
    data = load_store(store)
    points, slowing = EXPECTED[task]
    assert data.landmarks.shape[1:] == (points, 3)
    assert data.attrs["features"] == task.removeprefix("pd4t_")
    rate = data.summary[:, data.summary_names.index(slowing)]
    assert np.corrcoef(rate, data.scores)[0, 1] < -0.5


def test_demo_data_is_deterministic_and_the_command_line_names_the_tasks(tmp_path, capsys):
    for out in ("a", "b"):
        assert synthetic_tasks.main(["pd4t_gait", f"out={tmp_path / out}", "n_subjects=3"]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.npz"))
    assert files and all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
                         for f in files)
    # the uncalibrated tables (movements slow with the score) unless synthetic=... picks others
    assert synthetic_tasks.main(["pd4t_gait", f"out={tmp_path / 'c'}", "n_subjects=3",
                                 "synthetic=default"]) == 0
    tables = {out: tuple(json.loads((tmp_path / out / "synthetic_pd4t_gait.json").read_text())
                         ["config"]["kinematics"]["frequency_hz"]) for out in ("a", "c")}
    assert tables["a"] == load_synthetic_config(["synthetic=easy"]).kinematics.frequency_hz
    assert tables["c"] == load_synthetic_config().kinematics.frequency_hz != tables["a"]
    assert synthetic_tasks.main(["pd4t_toe_tapping", "out=x"]) == 2
    assert "pd4t_leg_agility" in capsys.readouterr().err
    assert synthetic_tasks.main(["pd4t_gait", "n_subjects=3"]) == 2  # no out=
