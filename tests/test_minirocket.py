"""MiniRocket + ridge (hawkeye/models/minirocket.py): aeon parity, the three heads on generated
sequences whose answer is known, unequal lengths, save/load, ONNX, and bad input.

The generated sets (:func:`sines`): sequence ``i`` of level ``k`` is ``sin(2 pi f_k t + phase)``
plus Gaussian noise (sd 0.3) in channel 0, with ``f_k`` = 0.04, 0.08, 0.16, 0.32 cycles per step
(each level doubles the frequency: the score is monotone in it, and any two levels are separable by
eye), a random phase, and a random length of 30 to 80 steps right-padded to 80; channel 1 is pure
noise around 5 with sd 2 (uninformative, on another scale, so standardisation matters).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy.stats import spearmanr
from sklearn.linear_model import RidgeClassifierCV

from hawkeye.config import CONF_DIR, compose
from hawkeye.data import apply_normalization
from hawkeye.export import ScoringModule, ort_session, parity_inputs, parity_max_abs
from hawkeye.models import build_model, count_parameters
from hawkeye.models.heads import build_head
from hawkeye.models.minirocket import (
    MiniRocketFeatures,
    MiniRocketParameters,
    MiniRocketRidge,
    fit_ordinal_slope,
    fit_temperature,
)
from hawkeye.onnx_graph import export_onnx

torch.set_num_threads(1)

FREQUENCIES = (0.04, 0.08, 0.16, 0.32)  # cycles per step of levels 0..3
WIDTH = 80


def sines(n: int, n_levels: int, seed: int, min_len: int = 30,
          width: int = WIDTH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x (n, width, 2)``, ``mask (n, width)``, ``levels (n,)``: see the module docstring."""
    rng = np.random.default_rng(seed)
    levels = np.arange(n) % n_levels
    lengths = rng.integers(min_len, width + 1, n)
    x = np.zeros((n, width, 2), np.float32)
    mask = np.arange(width)[None, :] < lengths[:, None]
    for i, (level, length) in enumerate(zip(levels, lengths, strict=True)):
        t = np.arange(length)
        x[i, :length, 0] = (np.sin(2 * np.pi * FREQUENCIES[level] * t + rng.uniform(0, 2 * np.pi))
                            + 0.3 * rng.standard_normal(length))
        x[i, :length, 1] = 5 + 2 * rng.standard_normal(length)
    return x, mask, levels


def minirocket(head_name: str, n_levels: int, **overrides) -> MiniRocketRidge:
    """``conf/model/minirocket.yaml`` built for ``head_name`` as the training loop builds it."""
    cfg = compose(["model=minirocket", f"head={head_name}"])
    head = build_head(cfg.head, n_levels)
    model = build_model(OmegaConf.merge(cfg.model, overrides), 2, head.out_dim(n_levels))
    assert isinstance(model, MiniRocketRidge) and model.objective == head_name
    return model


def head_for(head_name: str, n_levels: int):
    return build_head(OmegaConf.load(f"{CONF_DIR}/head/{head_name}.yaml"), n_levels)


@pytest.fixture(scope="module")
def classes():
    """Three levels (0.04, 0.08, 0.16 cycles per step): a fitted classifier and fresh test data."""
    model = minirocket("classification", 3).fit(*sines(60, 3, seed=0))
    return model, sines(60, 3, seed=1)


# ---------------------------------------------------------------------------------------------
# The transform is aeon's


@pytest.mark.parametrize("channels", [1, 3])
def test_features_equal_aeons_transform(channels):
    """Same fitted parameters, same features: bit for bit with one channel, and for several up to
    float rounding of a sum that aeon takes in another order (a handful of bias ties)."""
    from aeon.transformations.collection.convolution_based import MiniRocket

    rng = np.random.default_rng(channels)
    x = rng.standard_normal((12, channels, 70)).astype(np.float32).cumsum(axis=2)
    rocket = MiniRocket(random_state=0).fit(x)
    ours = MiniRocketFeatures(MiniRocketParameters.from_aeon(rocket.parameters), channels, 70)
    with torch.no_grad():
        got = ours(torch.from_numpy(x.transpose(0, 2, 1).copy()),
                   torch.ones(12, 70, dtype=torch.bool)).numpy()
    want = rocket.transform(x)
    assert got.shape == want.shape == (12, 9996)
    if channels == 1:
        assert np.array_equal(got, want)
    else:
        assert np.mean(got != want) < 1e-4 and np.abs(got - want).max() <= 2 / 70


# ---------------------------------------------------------------------------------------------
# Three heads on data whose answer is known


def test_three_separable_classes_are_classified_well_above_chance(classes):
    model, (x, mask, levels) = classes
    head = head_for("classification", 3)
    raw = torch.from_numpy(model.predict(x, mask))
    assert raw.shape == (60, 3) and raw.dtype == torch.float32
    accuracy = float((head.predict(raw).numpy() == levels).mean())
    assert accuracy >= 0.9  # chance is 1/3
    # temperature-scaled probabilities: confident where right, not a flat softmax of ridge scores
    p_true = torch.softmax(raw, dim=1)[torch.arange(60), torch.from_numpy(levels)]
    assert float(p_true.mean()) > 0.7
    assert count_parameters(model) == 3 * (model.network.features.n_features + 1)


def test_classification_is_ridge_classifier_cv(classes):
    """The head's decision values and penalty are RidgeClassifierCV's on the same features."""
    model, (x, mask, _) = classes
    train_x, train_mask, train_levels = sines(60, 3, seed=0)
    features, head = model.network.features, model.network.head
    with torch.no_grad():
        z = apply_normalization(torch.from_numpy(train_x), torch.from_numpy(train_mask),
                                model.normalization)
        design = (features(z, torch.from_numpy(train_mask)).double()
                  / head.feature_scale).numpy()
    reference = RidgeClassifierCV(alphas=np.geomspace(1e-3, 1e3, 10)).fit(design, train_levels)
    ours = design @ head.coef.numpy().T + head.intercept.numpy()
    assert model.alpha == pytest.approx(reference.alpha_)
    np.testing.assert_allclose(ours, reference.decision_function(design), atol=1e-6)


@pytest.mark.parametrize("head_name", ["regression", "ordinal"])
def test_a_monotone_score_is_regressed(head_name):
    """Four levels, frequency doubling with each: held-out MAE well under the 1.0 of guessing the
    middle, and the expected score ranks the sequences like the truth."""
    model = minirocket(head_name, 4).fit(*sines(80, 4, seed=2))
    x, mask, levels = sines(80, 4, seed=3)
    head = head_for(head_name, 4)
    raw = torch.from_numpy(model.predict(x, mask))
    assert raw.shape == (80, head.out_dim(4))
    predicted = head.predict(raw).numpy()
    expected = head.expected(raw).numpy()
    assert np.abs(predicted - levels).mean() < 0.3
    assert spearmanr(expected, levels).statistic > 0.9
    assert ((expected >= 0) & (expected <= 3)).all()


def test_levels_missing_from_training_get_no_probability():
    x, mask, levels = sines(45, 3, seed=4)  # levels 0..2 of a 4-level head
    raw = minirocket("classification", 4).fit(x, mask, levels).predict(x, mask)
    assert raw.shape == (45, 4)
    assert np.exp(raw[:, 3]).max() < 1e-6
    with pytest.raises(ValueError, match="0..3"):
        minirocket("classification", 4).fit(x, mask, levels + 2)


def test_sample_weights_reach_the_ridge_fit():
    x, mask, levels = sines(45, 3, seed=5)
    plain = minirocket("regression", 3).fit(x, mask, levels).predict(x, mask)
    weights = np.where(levels == 2, 10.0, 1.0)
    weighted = minirocket("regression", 3).fit(x, mask, levels, sample_weight=weights)
    assert not np.array_equal(weighted.predict(x, mask), plain)
    with pytest.raises(ValueError, match="sample_weight"):
        minirocket("regression", 3).fit(x, mask, levels, sample_weight=-weights)


# ---------------------------------------------------------------------------------------------
# Lengths, padding, determinism


def test_a_sequence_scores_the_same_whatever_its_batch_and_padding(classes):
    """Unequal lengths are zero-padded (after standardising) to the training length: what the
    padded steps hold, how wide the batch is and who else is in it change nothing."""
    model, (x, mask, _) = classes
    full = model.predict(x, mask)
    i = int(np.argmin(mask.sum(axis=1)))
    length = int(mask[i].sum())
    alone = model.predict(x[i:i + 1, :length], mask[i:i + 1, :length])
    garbage = np.where(mask[..., None], x, np.float32(1e3))
    np.testing.assert_array_equal(alone[0], full[i])
    np.testing.assert_array_equal(model.predict(garbage, mask), full)


def test_sequences_longer_than_the_training_length_keep_their_first_steps(classes):
    model, _ = classes
    length = model.network.features.length
    assert length == int(sines(60, 3, seed=0)[1].sum(axis=1).max())  # the longest in training
    x, _, _ = sines(10, 3, seed=6, min_len=length + 40, width=length + 40)
    full = np.ones(x.shape[:2], bool)
    np.testing.assert_array_equal(model.predict(x, full),
                                  model.predict(x[:, :length], full[:, :length]))


def test_a_seeded_fit_is_deterministic_and_leaves_numpys_random_state_alone():
    data = sines(30, 3, seed=7)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = minirocket("ordinal", 3).fit(*data).predict(data[0], data[1])
    assert np.array_equal(np.random.get_state()[1], before)
    second = minirocket("ordinal", 3).fit(*data).predict(data[0], data[1])
    other_seed = minirocket("ordinal", 3, random_state=1).fit(*data).predict(data[0], data[1])
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other_seed)


# ---------------------------------------------------------------------------------------------
# Saving without pickle, ONNX


@pytest.mark.parametrize("head_name", ["classification", "ordinal", "regression"])
def test_a_saved_model_reloads_and_predicts_identically(head_name, tmp_path):
    x, mask, levels = sines(36, 3, seed=8)
    model = minirocket(head_name, 3).fit(x, mask, levels)
    path = tmp_path / "fold" / "minirocket.npz"
    model.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["minirocket.npz"]  # no temporary left
    loaded = MiniRocketRidge.load(path)
    test_x, test_mask, _ = sines(20, 3, seed=9)
    np.testing.assert_array_equal(loaded.predict(test_x, test_mask),
                                  model.predict(test_x, test_mask))
    assert loaded.alpha == model.alpha and loaded.hyperparameters == model.hyperparameters


def test_a_file_that_is_not_a_saved_model_is_named(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_text("not an archive")
    with pytest.raises(ValueError, match="model.npz: not a saved minirocket model"):
        MiniRocketRidge.load(bad)
    np.savez(tmp_path / "other.npz", header=np.array('{"format": "other", "version": 1}'))
    with pytest.raises(ValueError, match="other.npz: format 'other'"):
        MiniRocketRidge.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="not fitted"):
        minirocket("regression", 3).save(tmp_path / "unfitted.npz")


@pytest.mark.slow
def test_onnx_export_behind_the_scoring_module_matches_pytorch(tmp_path):
    """The network slots into ``hawkeye.export.ScoringModule`` (normalisation and head in the
    graph, dynamic batch and time) and ONNX Runtime matches PyTorch within the export tolerance,
    padding and sequences longer than the training length included."""
    x, mask, levels = sines(36, 3, seed=10)
    model = minirocket("ordinal", 3).fit(x, mask, levels)
    module = ScoringModule(model.network, model.normalization, "sequence",
                           head_for("ordinal", 3)).eval()
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(module, 2, path, opset=18, max_batch=64, max_frames=1000)
    inputs = parity_inputs(model.normalization, lengths=[17, 150], batches=[1, 3], seed=0)
    assert parity_max_abs(ort_session(path, 1), module, inputs) <= 1e-4
    session = ort_session(path, 1)
    (raw,) = session.run(["raw"], {"x": x, "mask": mask})
    np.testing.assert_allclose(raw, model.predict(x, mask), atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Bad input, calibration


def test_bad_input_raises_a_clear_value_error():
    x, mask, levels = sines(20, 3, seed=11)
    model = minirocket("classification", 3)
    short = mask.copy()
    short[4, 8:] = False  # 8 real steps
    with pytest.raises(ValueError, match=r"at least 9 real steps .*rows \[4\], lengths \[8\]"):
        model.fit(x, short, levels)
    holes = x.copy()
    holes[2, 5, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN/inf at real steps .* row 2, step 5, channel 1"):
        model.fit(holes, mask, levels)
    padded_nan = x.copy()
    padded_nan[~mask] = np.nan  # NaN in padding is padding
    model.fit(padded_nan, mask, levels)
    with pytest.raises(ValueError, match=r"x must be \(batch, time, 2\).*\(20, 80, 3\)"):
        model.predict(np.zeros((20, WIDTH, 3), np.float32), mask)
    with pytest.raises(ValueError, match="right padded"):
        model.predict(x, mask[:, ::-1].copy())
    with pytest.raises(ValueError, match="at least 2 training sequences"):
        model.fit(x[:1], mask[:1], levels[:1])
    with pytest.raises(ValueError, match="integer levels"):
        minirocket("ordinal", 3).fit(x, mask, levels.astype(float))
    with pytest.raises(ValueError, match="objective must be one of"):
        minirocket("regression", 3, objective="continuous")


def test_calibration_recovers_a_known_temperature_and_slope():
    """Labels drawn from softmax(3 d) and from cumulative logits 2 (s - k - 1/2): the fitted
    temperature and slope come back within 15%."""
    rng = np.random.default_rng(12)
    decision = rng.uniform(-1, 1, (4000, 3))
    logits = 3.0 * decision
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = (rng.uniform(size=(4000, 1)) > p.cumsum(axis=1)).sum(axis=1)
    assert fit_temperature(decision, labels) == pytest.approx(3.0, rel=0.15)
    scores = rng.uniform(-0.5, 3.5, 4000)
    # a cumulative-logit draw: P(level > k) = sigmoid(2 (score - k - 1/2))
    latent = scores + rng.logistic(size=4000) / 2.0
    levels = (latent[:, None] > np.array([0.5, 1.5, 2.5])).sum(axis=1)
    assert fit_ordinal_slope(scores, levels, 4) == pytest.approx(2.0, rel=0.15)
