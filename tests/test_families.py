"""Model families and the export / predict helpers that ask them: fast unit tests, no training, no
ONNX export (the end-to-end runs are in test_export.py and test_predict.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_model

from hawkeye.config import CONF_DIR, compose
from hawkeye.data import Normalization, apply_normalization
from hawkeye.ensemble import Ensemble, ExportedFold
from hawkeye.export import ScoringModule, _fold_family, parity_inputs
from hawkeye.families import (
    FAMILIES,
    Autoencoder,
    Rocket,
    SequenceNetwork,
    Tabular,
    family_of,
)
from hawkeye.predict import (
    Prediction,
    VideoInput,
    csv_columns,
    csv_row,
    describe,
    hand_from_name,
    resolve_inputs,
    score_ensemble,
)
from hawkeye.timebase import TimeBase

N_FEATURES, N_LEVELS = 3, 5


# ----------------------------------------------------------------------------------------------
# the registry


def test_every_model_config_names_a_registered_family() -> None:
    # composed, not loaded: a model config may extend another (gbm_tuned's defaults: [gbm])
    named = {compose([f"model={p.stem}"]).model.family
             for p in Path(CONF_DIR, "model").glob("*.yaml")}
    assert named == set(FAMILIES)


def test_an_unknown_family_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'recurrent'.*autoencoder.*sequence.*tabular"):
        family_of("recurrent", "mine")
    trees = family_of("tabular")
    assert isinstance(trees, Tabular) and trees.exported and trees.exported_when_fitted
    assert trees.scores_tables and not family_of("sequence").scores_tables


def test_the_rocket_family_exports_like_a_sequence_network_from_its_fitted_file() -> None:
    rocket = family_of("rocket")
    assert isinstance(rocket, Rocket) and isinstance(rocket, SequenceNetwork)
    assert rocket.exported and rocket.uses_head and rocket.needs_sequences
    assert rocket.onnx_outputs == SequenceNetwork.onnx_outputs
    assert rocket.checkpoint_keys == ("weights_file",)  # its best.pt holds no state dict
    assert not family_of("tabular").needs_sequences  # trees train on a summary-only store
    with pytest.raises(ValueError, match="minirocket has no untrained network"):
        rocket.network({"name": "minirocket"}, None, N_FEATURES, N_LEVELS)


# ----------------------------------------------------------------------------------------------
# the exported graph, without exporting


def module_for(model: str, head: str = "regression") -> ScoringModule:
    cfg = compose([*tiny_model(model), f"head={head}"])
    torch.manual_seed(0)
    norm = Normalization(torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 1.0, 4.0]))
    return ScoringModule.build(cfg.model, cfg.head, str(cfg.model.family), N_FEATURES, N_LEVELS,
                               norm).eval()


def test_a_sequence_module_outputs_what_its_family_says() -> None:
    module = module_for("tcn", "ordinal")
    assert module.output_names == (*SequenceNetwork.onnx_outputs, "probabilities")
    assert module_for("tcn", "regression").output_names == SequenceNetwork.onnx_outputs
    x, mask = torch.randn(2, 7, N_FEATURES), torch.ones(2, 7, dtype=torch.bool)
    raw, expected, level, probabilities = module(x, mask)
    z = apply_normalization(x, mask, Normalization(module.mean, module.std))
    with torch.no_grad():
        want = module.model(z, mask)
    torch.testing.assert_close(raw, want)  # normalisation happens inside the graph
    torch.testing.assert_close(expected, module.head.expected(want))
    assert raw.shape == (2, N_LEVELS - 1) and level.dtype == torch.int64
    torch.testing.assert_close(probabilities, module.head.probabilities(want))
    assert torch.equal(module.head.decide(probabilities), level)


def test_an_autoencoder_module_decides_with_its_threshold() -> None:
    module = module_for("lstm_ae")
    assert module.output_names == Autoencoder.onnx_outputs and module.head is None
    x, mask = torch.randn(3, 6, N_FEATURES), torch.ones(3, 6, dtype=torch.bool)
    with torch.no_grad():
        error, _ = module(x, mask)
        module.model.threshold.fill_(float(error[1]))
        _, anomalous = module(x, mask)
    assert anomalous.tolist() == (error > error[1]).tolist()
    assert module.family.threshold(module.model) == pytest.approx(float(error[1]))


def test_a_tree_family_has_no_scoring_module() -> None:
    cfg = compose(tiny_model("gbm"))  # its model.onnx comes from the fit (hawkeye.tree_export)
    with pytest.raises(ValueError, match="gbm is a scikit-learn tree model, not a network"):
        ScoringModule.build(cfg.model, cfg.head, "tabular", N_FEATURES, N_LEVELS,
                            Normalization(torch.zeros(3), torch.ones(3)))


def test_parity_inputs_cover_every_length_and_batch_with_real_frames_first() -> None:
    norm = Normalization(torch.zeros(N_FEATURES), torch.ones(N_FEATURES))
    pairs = parity_inputs(norm, lengths=[1, 9], batches=[1, 4], seed=3)
    assert [tuple(x.shape) for x, _ in pairs] == [(1, 1, 3), (4, 1, 3), (1, 9, 3), (4, 9, 3)]
    for x, mask in pairs:
        assert mask[0].all()  # row 0 is full length
        kept = mask.sum(1)
        assert (mask == (torch.arange(mask.shape[1]) < kept[:, None])).all()  # right padding
        assert (x[~mask] == 1e3).all()  # garbage in the padding: it must not matter
    again = parity_inputs(norm, lengths=[1, 9], batches=[1, 4], seed=3)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(pairs, again, strict=True))


def test_a_folds_family_comes_from_metrics_else_its_config(tmp_path) -> None:
    fold = tmp_path / "gbm" / "fold_0"
    fold.mkdir(parents=True)
    assert _fold_family(fold, {}) is None  # nothing says: the checkpoint decides
    (fold / "config.yaml").write_text("model:\n  family: tabular\n")
    assert isinstance(_fold_family(fold, {}), Tabular)
    assert isinstance(_fold_family(fold, {"family": "sequence"}), SequenceNetwork)


# ----------------------------------------------------------------------------------------------
# prediction: ensembles of fake sessions


@dataclass
class FakeSession:
    """Answers ``run(names, feeds)`` with fixed outputs (batch of one)."""

    outputs: dict[str, np.ndarray]

    def run(self, names, feeds):
        assert set(feeds) == {"x", "mask"}
        return [self.outputs[n] for n in names]


def ensemble(family: str, outputs: list[dict[str, np.ndarray]],
             meta: dict | None = None) -> Ensemble:
    folds = [ExportedFold(k, Path(f"fold_{k}/model.onnx"), FakeSession(o), meta or {})
             for k, o in enumerate(outputs)]
    return Ensemble(model="m", family=family, folds=folds, input_names=["a"],
                    input_features="series", time_base=TimeBase(1.0, 10.0),
                    score_levels=list(range(N_LEVELS)), prepare=None)


FEEDS = (np.zeros((1, 4, 1), np.float32), np.ones((1, 4), bool))


def test_a_sequence_ensemble_rounds_the_mean_expected_score() -> None:
    folds = [{"expected": np.array([v]), "level": np.array([lv])}
             for v, lv in ((1.2, 1), (1.9, 2), (2.2, 2))]
    result = score_ensemble(ensemble("sequence", folds), *FEEDS)
    assert result["mean"] == pytest.approx(1.7667, abs=1e-4) and result["score"] == 2
    assert result["std"] == pytest.approx(np.std([1.2, 1.9, 2.2]))
    assert result["fold_levels"] == {0: 1, 1: 2, 2: 2}
    clipped = score_ensemble(ensemble("sequence", [{"expected": np.array([7.0]),
                                                    "level": np.array([4])}]), *FEEDS)
    assert clipped["score"] == N_LEVELS - 1


def test_a_classifier_ensemble_is_the_soft_vote_of_the_folds_probabilities() -> None:
    # fold 0 sure of level 4, folds 1 and 2 lean to level 0: mean probabilities (0.3, 0.1, 0.1,
    # 0.1, 0.4) give level 4, where the mean expected level 2.1 would round to 2
    p = [[0.0, 0.0, 0.0, 0.1, 0.9], [0.45, 0.15, 0.15, 0.1, 0.15], [0.45, 0.15, 0.15, 0.1, 0.15]]
    folds = [{"expected": np.array([float(np.dot(q, range(5)))]),
              "level": np.array([int(np.argmax(q))]), "probabilities": np.array([q])} for q in p]
    meta = {"head": "classification",
            "outputs": ["raw", "expected", "level", "probabilities"]}
    result = score_ensemble(ensemble("sequence", folds, meta), *FEEDS)
    assert result["score"] == 4 and round(result["mean"]) == 2
    assert result["probabilities"] == pytest.approx([0.3, 0.1, 0.1, 0.1, 0.4])


def test_an_autoencoder_ensemble_counts_the_folds_that_flag() -> None:
    folds = [{"reconstruction_error": np.array([e]), "anomalous": np.array([a])}
             for e, a in ((0.5, True), (0.1, False), (0.7, True))]
    result = score_ensemble(ensemble("autoencoder", folds), *FEEDS)
    assert result["flagged"] == 2 and result["mean"] == pytest.approx(1.3 / 3)
    assert "score" not in result


@pytest.mark.parametrize(("family", "main", "per_fold"), [
    ("sequence", ["score", "expected_mean", "expected_std"],
     ["fold_0_expected", "fold_0_level", "fold_1_expected", "fold_1_level"]),
    ("autoencoder", ["error_mean", "error_std", "folds_flagging"],
     ["fold_0_error", "fold_1_error"]),
])
def test_scores_csv_columns_and_rows_follow_the_family(family, main, per_fold) -> None:
    ens = ensemble(family, [{}, {}])
    columns = csv_columns(ens)
    assert columns == ["input", "id", "model", "status", "reason", *main, "n_folds", *per_fold,
                       "task", "hand", "hand_choice", "hand_detail", "qc_status", "qc_reason",
                       "detection_rate", "taps", "frames", "fps", "timing", "model_rate_hz",
                       "rate_note", "trace_png"]
    p = Prediction(input=VideoInput(Path("v/1_l.mp4"), "l"), status="ok", frames=90, fps=30.0,
                   score=2, mean=1.75, std=0.25, flagged=1, fold_values={0: 1.5, 1: 2.0},
                   fold_levels={0: 1, 1: 2})
    row = csv_row(p, ens)
    assert set(row) == set(columns)
    assert row["n_folds"] == 2 and row["fps"] == "30"
    line = describe(p, ens)
    assert line.startswith("v/1_l.mp4: ") and ("score 2" in line or "flagged by 1" in line)
    failed = Prediction(input=p.input, reason="no hand")
    assert describe(failed, ens).endswith("FAILED: no hand")
    failed_row = csv_row(failed, ens)
    assert failed_row["n_folds"] == 0 and failed_row[main[1]] == ""  # no number made up


# ----------------------------------------------------------------------------------------------
# prediction: inputs


def test_inputs_from_a_folder_skip_a_landmark_file_beside_its_video(tmp_path) -> None:
    for name in ("1_l.mp4", "1_l.landmarks.npz", "2_r.landmarks.npz", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    inputs = resolve_inputs(tmp_path)
    assert [(i.path.name, i.hand, i.id) for i in inputs] == [
        ("1_l.mp4", "l", "1_l"), ("2_r.landmarks.npz", "r", "2_r")]
    assert hand_from_name("visit3_R") == "r" and hand_from_name("clip") == ""


def test_inputs_from_a_csv_are_relative_to_it_and_bad_rows_are_named(tmp_path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"")
    table = tmp_path / "list.csv"
    table.write_text("video,hand\na.mp4,r\n")
    (only,) = resolve_inputs(table)
    assert only.path == tmp_path / "a.mp4" and only.hand == "r"
    table.write_text("video,hand\na.mp4,x\n")
    with pytest.raises(Exception, match=r"line 2: hand must be l or r"):
        resolve_inputs(table)
