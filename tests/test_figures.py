"""Every figure a clinician reads, drawn from a small run and read back from its matplotlib objects.

The collector's figures come from a sweep folder of two runs built by conftest.py's collector run
builders: ``model.hidden=128,train.lr=0.001/`` holds ``alpha`` and ``beta`` (ordinal MDS-UPDRS 3.4
scores, 3 folds, best epoch 3 of 4) and ``anomaly/`` holds ``ae`` (2 folds of an anomaly model);
each run has the ``config.yaml`` launch writes, with the finger-tapping task's score label.
``hawkeye.figures.save_png`` is wrapped so each test sees the Figure that was written to disk.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import make_run, write_anomaly_model
from omegaconf import OmegaConf

from hawkeye import figures as drawing
from hawkeye import report
from hawkeye.collect import CollectOptions, collect
from hawkeye.config import compose
from hawkeye.plotting import LABEL_WIDTH, score_scale, wrap_label
from hawkeye.prepare.features import FeatureConfig, detect_taps
from hawkeye.prepare.qc import tap_trace_figure, video_trace
from hawkeye.prepare.tasks import FEATURE_SETS

POINT = "model.hidden=128,train.lr=0.001"
SCORE = "MDS-UPDRS 3.4 score"


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> dict[str, object]:
    """Collect the sweep with figures once; ``{file name: Figure}`` of every PNG written."""
    figures: dict[str, object] = {}
    real_save = drawing.save_png

    def keep(fig, path, dpi):
        real_save(fig, path, dpi)
        figures[Path(path).name] = fig

    grid = tmp_path_factory.mktemp("figures") / "grid"
    task = OmegaConf.to_container(compose([]).task)
    scores = make_run(grid / POINT)
    anomaly = grid / "anomaly"
    anomaly.mkdir(parents=True)
    (anomaly / "run.json").write_text(json.dumps({"models": ["ae"], "n_folds": 2}))
    write_anomaly_model(anomaly)
    for run in (scores, anomaly):
        (run / "config.yaml").write_text(OmegaConf.to_yaml({"task": task}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(drawing, "save_png", keep)
        assert collect(grid, CollectOptions(n_boot=40, alpha=0.05, seed=0, figures=True)) == 0
    assert json.loads((grid / "summary.json").read_text())["notes"] == []  # all drawn
    assert set(figures) == {p.name for p in (grid / "figures").iterdir()}
    return figures


def _stem(model: str, point: str = POINT) -> str:
    return report._file_stem(f"{point}/{model}")


def test_confusion_cells_show_count_and_row_rate(drawn):
    ax = drawn[f"{_stem('alpha')}_confusion.png"].axes[0]
    assert ax.get_xlabel() == f"predicted {SCORE}" and ax.get_ylabel() == f"true {SCORE}"
    cells = [t.get_text().split("\n") for t in ax.texts]
    assert len(cells) == 25 and all(len(c) == 2 and c[1].endswith("%") for c in cells)
    counts = np.array([int(c[0]) for c in cells]).reshape(5, 5)
    assert counts.sum() == 24  # every pooled out-of-fold video once
    rates = np.array([float(c[1][:-1]) for c in cells]).reshape(5, 5)
    totals = counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(rates, np.round(100 * counts / totals), atol=0.5)


def test_pred_vs_true_shows_folds_and_the_headline_metric(drawn):
    ax = drawn[f"{_stem('alpha')}_pred_vs_true.png"].axes[0]
    assert ax.get_xlabel() == f"true {SCORE} (0-4)"
    assert ax.get_ylabel().startswith(f"predicted {SCORE}")
    assert [len(c.get_offsets()) for c in ax.collections] == [6, 8, 10]  # one per fold
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:3] == ["fold 0 (n=6)", "fold 1 (n=8)", "fold 2 (n=10)"]
    assert len({c.get_facecolor()[0][:3].tobytes() for c in ax.collections}) == 3
    corner = [t.get_text() for t in ax.texts]
    assert len(corner) == 1 and corner[0].startswith("pooled CV MAE 0.125 [")


def test_learning_curves_star_each_folds_best_epoch(drawn):
    loss, metric = drawn[f"{_stem('alpha')}_learning_curves.png"].axes
    for ax in (loss, metric):
        stars = [line for line in ax.lines if line.get_marker() == "*"]
        assert len(stars) == 3 and all(list(s.get_xdata()) == [3] for s in stars)
    assert "best epoch" in [t.get_text() for t in loss.get_legend().get_texts()]
    assert metric.get_ylabel() == f"validation MAE ({SCORE} points)"


def test_comparison_is_ranked_with_the_baseline_bar_and_whole_labels(drawn):
    figure = drawn["comparison_scores.png"]
    assert [ax.get_title() for ax in figure.axes] == ["MAE", "Exact", "Pearson"]
    mae = figure.axes[0]
    assert len(mae.patches) == 3  # alpha, beta, the baseline
    baseline = mae.patches[-1]
    assert baseline.get_label() == "baseline: training median of each fold"
    assert baseline.get_hatch() == "//"
    labels = [t.get_text() for t in mae.get_yticklabels()]
    assert [label.replace("\n", "") for label in labels[:2]] == [f"{POINT}/alpha",
                                                                 f"{POINT}/beta"]  # ranked
    assert all(len(line) <= LABEL_WIDTH for label in labels for line in label.split("\n"))
    assert mae.yaxis_inverted()  # rank 1 on top
    widths = [p.get_width() for p in mae.patches]
    assert widths[0] == pytest.approx(0.125) and widths[1] == pytest.approx(1.0)
    assert mae.get_xlabel() == f"MAE ({SCORE} points; lower is better)"
    assert figure.axes[1].get_xlabel() == "Exact (%; higher is better)"
    assert figure.axes[1].patches[0].get_width() == pytest.approx(87.5)
    assert [t.get_text() for t in mae.texts] == ["0.125", "1", "1.17"]  # every bar's number


def test_anomaly_rows_get_roc_and_precision_recall_and_no_score_panels(drawn):
    stem = _stem("ae", "anomaly")
    assert f"{stem}_pred_vs_true.png" not in drawn  # no scatter of an anomaly score
    roc, pr = drawn[f"{stem}_roc_pr.png"].axes
    assert roc.get_xlabel().startswith("False positive rate (share of normal rows")
    assert roc.get_ylabel().startswith("True positive rate (share of anomalies")
    assert pr.get_xlabel().startswith("Recall") and pr.get_ylabel().startswith("Precision")
    assert [line.get_label() for line in roc.lines][:2] == ["pooled CV (AUC = 0.81)",
                                                             "Chance level (AUC = 0.5)"]
    assert any(t.get_text().startswith("pooled CV ROC-AUC") for t in roc.texts)
    assert any(t.get_text().startswith("pooled CV PR-AUC") for t in pr.texts)
    # the folds' own thresholds as one operating point: TP 3, FP 2, FN 1 of 4 normal, 4 anomalous
    (point,) = [line for line in pr.lines if line.get_label() == "fold thresholds"]
    assert (point.get_xdata()[0], point.get_ydata()[0]) == pytest.approx((3 / 4, 3 / 5))
    confusion = drawn[f"{stem}_confusion.png"].axes[0]
    assert [t.get_text() for t in confusion.get_xticklabels()] == ["normal", "anomaly"]
    comparison = drawn["comparison_anomaly.png"]
    assert [ax.get_title() for ax in comparison.axes] == ["F1", "ROC-AUC", "PR-AUC"]
    assert "comparison_scores.png" in drawn  # the score rows have their own chart


@pytest.mark.parametrize(("task", "label"), [
    ("pd4t_finger_tapping", "MDS-UPDRS 3.4 score (0-4)"),
    ("pd4t_hand_movement", "MDS-UPDRS 3.5 score (0-4)"),
    ("pd4t_leg_agility", "MDS-UPDRS 3.8 score (0-4)"),
    ("pd4t_gait", "MDS-UPDRS 3.10 score (0-4)"),
])
def test_every_pd4t_task_names_its_item_and_levels(task, label):
    scale = score_scale(compose([f"task={task}"]).task)
    assert scale.label == label and scale.target_label == label


def test_telemetry_axes_name_the_target_in_litres_per_hour():
    scale = score_scale(compose(["task=telemetry"]).task)
    assert scale.target_label == "fuel consumption (L/h)"
    assert report._metric_axis(report.COLUMNS["mae"], "regression", scale) == \
        "MAE (L/h; lower is better)"
    assert report._metric_axis(report.COLUMNS["rmse"], "regression", scale) == \
        "RMSE (L/h; lower is better)"


def test_wrap_label_breaks_at_separators_and_keeps_every_character():
    text = "model.hidden=128,train.lr=0.001,train.batch_size=32/attention_lstm"
    wrapped = wrap_label(text)
    assert wrapped.replace("\n", "") == text
    assert all(len(line) <= LABEL_WIDTH for line in wrapped.split("\n"))
    assert wrapped.split("\n")[-1] == "attention_lstm"


def _tapping(seconds: float, amplitude: tuple[float, float], gap: slice | None):
    """A 30 fps finger-tapping trace: 2 taps/s whose opening falls linearly from
    ``amplitude[0]`` to ``amplitude[1]`` hand sizes; frames in ``gap`` had no hand."""
    fps = 30.0
    t = np.arange(int(seconds * fps)) / fps
    opening = np.linspace(*amplitude, t.size)
    distance = 0.05 + opening * (1 - np.cos(2 * np.pi * 2.0 * t)) / 2
    presence = np.ones(t.size, dtype=bool)
    if gap is not None:
        presence[gap] = False
    return t, distance, np.gradient(distance) * fps, presence


def test_tapping_traces_share_one_scale_and_show_gaps_taps_and_decrement(tmp_path):
    config = FeatureConfig.from_config(compose([]).prepare.features)
    style = FEATURE_SETS["finger_tapping"].trace
    figures, taps = [], []
    for name, seconds, amplitude, gap in (("long", 6.0, (1.2, 0.6), slice(60, 76)),
                                          ("short", 4.0, (0.4, 0.4), None)):
        t, distance, velocity, presence = _tapping(seconds, amplitude, gap)
        cycles = detect_taps(distance, velocity, 30.0, np.ones(t.size, dtype=bool), config)
        trace = video_trace(distance, presence, t, cycles)
        figures.append(tap_trace_figure(tmp_path / f"{name}.png", trace,
                                        f"{name}: {SCORE} 2 (rated)", style))
        taps.append(cycles)
    (long_trace, long_amplitude, long_speed), (short_trace, short_amplitude, _) = \
        (f.axes for f in figures)
    assert long_trace.get_ylim() == short_trace.get_ylim() == style.limits
    assert long_trace.get_xlim() == short_trace.get_xlim() == (0.0, style.seconds)
    assert long_amplitude.get_ylim() == short_amplitude.get_ylim()
    assert long_trace.get_ylabel() == "thumb-index distance (hand sizes)"
    assert long_trace.get_xlabel() == "time (s)"
    assert f"{SCORE} 2 (rated)" in long_trace.get_title()
    line = long_trace.lines[0].get_ydata()
    assert np.isnan(line[60:76]).all() and np.isfinite(line[:60]).all()  # a gap, not a bridge
    markers = long_trace.lines[1]
    assert len(markers.get_xdata()) == taps[0].n >= 10
    assert len(long_amplitude.lines[0].get_xdata()) == taps[0].n
    assert long_speed.get_ylabel() == "speed (hand sizes/s)"
    assert len(long_speed.lines) == 2  # opening and closing speed per tap
    decrement = [t.get_text() for t in long_amplitude.get_legend().get_texts()][1]
    slope = float(re.search(r"decrement ([-+][\d.]+) hand sizes/cycle", decrement).group(1))
    assert slope < 0 and "% over the trial" in decrement  # the opening shrinks over the trial
