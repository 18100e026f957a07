"""Heads: losses, predictions and expected scores on hand-made outputs, answers worked out here."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from hawkeye.config import CONF_DIR, compose
from hawkeye.models.heads import (
    ClassificationHead,
    CoralLayer,
    OrdinalHead,
    RegressionHead,
    build_head,
    output_layer,
)

torch.set_num_threads(1)


def head_from_yaml(name: str, n_levels: int = 5, **overrides):
    cfg = OmegaConf.merge(OmegaConf.load(f"{CONF_DIR}/head/{name}.yaml"), overrides)
    return build_head(cfg, n_levels)


# ---------------------------------------------------------------------------------------------
# Regression


def test_regression_predicts_the_rounded_clipped_output():
    head = head_from_yaml("regression")
    outputs = torch.tensor([[-0.7], [0.4], [1.6], [3.5], [9.0]])
    assert head.out_dim(5) == 1
    assert head.predict(outputs).tolist() == [0, 0, 2, 4, 4]  # 3.5 -> 4: round half to even
    assert head.predict(outputs).dtype == torch.int64
    torch.testing.assert_close(head.expected(outputs), torch.tensor([0.0, 0.4, 1.6, 3.5, 4.0]))


def test_regression_losses_by_hand():
    outputs = torch.tensor([[1.0], [3.0]])
    y = torch.tensor([0, 3])
    assert head_from_yaml("regression").loss(outputs, y).item() == pytest.approx(0.5)  # (1 + 0) / 2
    huber = head_from_yaml("regression", criterion="huber", huber_delta=0.5)
    # |error| 1 > delta: delta * (|e| - delta / 2) = 0.5 * 0.75 = 0.375; second sample 0
    assert huber.loss(torch.tensor([[1.0], [3.0]]), y).item() == pytest.approx(0.375 / 2)
    with pytest.raises(ValueError, match="criterion"):
        head_from_yaml("regression", criterion="mae")


def test_regression_class_weights_weight_each_sample_by_its_level():
    head = head_from_yaml("regression", n_levels=3)
    outputs = torch.tensor([[1.0], [2.0], [2.0]])
    y = torch.tensor([0, 2, 1])  # squared errors 1, 0, 1
    weights = torch.tensor([3.0, 1.0, 1.0])
    assert head.loss(outputs, y).item() == pytest.approx(2 / 3)
    assert head.loss(outputs, y, weights).item() == pytest.approx((3 * 1 + 1 * 0 + 1 * 1) / 5)


# ---------------------------------------------------------------------------------------------
# Classification


def test_classification_predicts_argmax_and_expected_mean_level():
    head = head_from_yaml("classification", n_levels=3)
    outputs = torch.log(torch.tensor([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]]))
    assert head.out_dim(3) == 3
    assert head.predict(outputs).tolist() == [1, 2]
    torch.testing.assert_close(head.expected(outputs), torch.tensor([0.5 + 0.6, 0.1 + 1.6]))


def test_classification_loss_is_cross_entropy_and_class_weights_change_it():
    head = head_from_yaml("classification", n_levels=3)
    outputs = torch.log(torch.tensor([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]]))
    y = torch.tensor([0, 2])
    plain = head.loss(outputs, y).item()
    assert plain == pytest.approx(-(math.log(0.2) + math.log(0.8)) / 2)
    weights = torch.tensor([4.0, 1.0, 1.0])
    weighted = head.loss(outputs, y, weights).item()
    assert weighted == pytest.approx(-(4 * math.log(0.2) + math.log(0.8)) / 5)
    assert weighted > plain  # the badly predicted level 0 counts more


# ---------------------------------------------------------------------------------------------
# Ordinal (CORAL)


def test_coral_predictions_count_thresholds_passed():
    head = head_from_yaml("ordinal", n_levels=5)
    assert head.out_dim(5) == 4
    assert head.predict(torch.full((2, 4), 50.0)).tolist() == [4, 4]
    assert head.predict(torch.full((2, 4), -50.0)).tolist() == [0, 0]
    outputs = torch.tensor([[3.0, 1.0, -1.0, -3.0]])  # passes thresholds 0 and 1
    assert head.predict(outputs).tolist() == [2]
    expected = torch.sigmoid(outputs).sum()
    torch.testing.assert_close(head.expected(outputs), expected.reshape(1))
    assert head.expected(torch.full((1, 4), 50.0)).item() == pytest.approx(4.0)


def test_coral_loss_by_hand():
    head = head_from_yaml("ordinal", n_levels=5)
    # Zero logits: each of the K-1 binary tasks costs log 2, whatever the level.
    assert head.loss(torch.zeros(3, 4), torch.tensor([0, 2, 4])).item() == pytest.approx(
        4 * math.log(2)
    )
    # Level 2 = targets (1, 1, 0, 0): logits agreeing strongly cost ~0, disagreeing ~sum |logit|.
    good = torch.tensor([[20.0, 20.0, -20.0, -20.0]])
    assert head.loss(good, torch.tensor([2])).item() < 1e-6
    assert head.loss(-good, torch.tensor([2])).item() == pytest.approx(80.0, rel=1e-4)
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    logits = torch.tensor([[0.3, -0.2, 0.5, -1.0]])
    by_hand = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
    assert head.loss(logits, torch.tensor([2])).item() == pytest.approx(by_hand.item())


def test_coral_class_weights_change_the_loss():
    head = head_from_yaml("ordinal", n_levels=3)
    outputs = torch.tensor([[2.0, -2.0], [2.0, -2.0]])  # both predict level 1
    y = torch.tensor([1, 2])
    plain = head.loss(outputs, y)
    weighted = head.loss(outputs, y, torch.tensor([1.0, 1.0, 5.0]))
    per_sample = F.binary_cross_entropy_with_logits(
        outputs, torch.tensor([[1.0, 0.0], [1.0, 1.0]]), reduction="none"
    ).sum(1)
    assert plain.item() == pytest.approx(per_sample.mean().item())
    assert weighted.item() == pytest.approx(((per_sample[0] + 5 * per_sample[1]) / 6).item())
    assert weighted > plain


def test_coral_layer_shares_weights_so_probabilities_are_rank_consistent():
    torch.manual_seed(0)
    layer = output_layer(6, 4, "coral")
    assert isinstance(layer, CoralLayer)
    assert sum(p.numel() for p in layer.parameters()) == 6 + 4
    probabilities = torch.sigmoid(layer(torch.randn(50, 6)))  # biases start ordered b_0 > b_1 > ...
    assert (probabilities[:, 1:] <= probabilities[:, :-1]).all()
    assert isinstance(output_layer(6, 4, "linear"), torch.nn.Linear)


def test_coral_learns_an_ordinal_toy_problem():
    """Score = bin of a scalar feature; CORAL layer + loss should recover the bins."""
    torch.manual_seed(0)
    head = head_from_yaml("ordinal", n_levels=4)
    x = torch.linspace(-2, 2, 200).unsqueeze(1)
    y = torch.bucketize(x.squeeze(1), torch.tensor([-1.0, 0.0, 1.0]))  # levels 0..3
    layer = output_layer(1, head.out_dim(4), head.output_layer)
    optimiser = torch.optim.Adam(layer.parameters(), lr=0.1)
    for _ in range(300):
        optimiser.zero_grad()
        head.loss(layer(x), y).backward()
        optimiser.step()
    with torch.no_grad():
        accuracy = (head.predict(layer(x)) == y).float().mean().item()
    assert accuracy > 0.9


# ---------------------------------------------------------------------------------------------
# Checks and construction


@pytest.mark.parametrize("name", ["regression", "classification", "ordinal"])
def test_heads_reject_wrong_shapes_and_out_of_range_targets(name):
    head = head_from_yaml(name, n_levels=4)
    width = head.out_dim(4)
    with pytest.raises(ValueError, match=rf"\(batch, {width}\).*\(2, 7\)"):
        head.predict(torch.zeros(2, 7))
    with pytest.raises(ValueError, match="0..3"):
        head.loss(torch.zeros(2, width), torch.tensor([1, 4]))
    with pytest.raises(ValueError, match="integer"):
        head.loss(torch.zeros(2, width), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"class_weights must be \(4,\)"):
        head.loss(torch.zeros(2, width), torch.tensor([1, 2]), torch.ones(3))
    with pytest.raises(ValueError, match="n_levels"):
        head_from_yaml(name, n_levels=1)


@pytest.mark.parametrize(
    ("name", "cls", "width"),
    [
        ("regression", RegressionHead, 1),
        ("classification", ClassificationHead, 6),
        ("ordinal", OrdinalHead, 5),
    ],
)
def test_composed_head_configs_build(name, cls, width):
    cfg = compose([f"head={name}"])
    head = build_head(cfg.head, n_levels=6)
    assert type(head) is cls and head.name == cfg.head.name == name
    assert head.n_levels == 6 and head.out_dim(6) == width
    assert head.output_layer == ("coral" if name == "ordinal" else "linear")


def test_build_head_rejects_a_config_without_target():
    with pytest.raises(ValueError, match="_target_"):
        build_head({"name": "regression"}, n_levels=5)


# ---------------------------------------------------------------------------------------------
# Probabilities and the ensemble's decision rule


@pytest.mark.parametrize("name", ["classification", "ordinal"])
def test_probabilities_sum_to_one_and_decide_as_predict_does(name):
    head = head_from_yaml(name, n_levels=4)
    outputs = torch.randn(64, head.out_dim(4), generator=torch.Generator().manual_seed(0)) * 3
    probabilities = head.probabilities(outputs)
    assert probabilities.shape == (64, 4)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(64), atol=1e-6)
    assert torch.equal(head.decide(probabilities), head.predict(outputs))
    levels = torch.arange(4, dtype=torch.float32)
    assert torch.allclose(probabilities @ levels, head.expected(outputs), atol=1e-5)


def test_soft_vote_of_two_classifiers_is_the_argmax_of_their_mean_probabilities():
    # Two folds: one sure of class 2 (0.0, 0.1, 0.9), one leaning to class 0 (0.5, 0.4, 0.1).
    # Mean (0.25, 0.25, 0.5): class 2, where the mean expected index (1.85 + 0.6) / 2 = 1.225
    # would round to class 1, which neither fold chose.
    folds = torch.tensor([[[0.0, 0.1, 0.9]], [[0.5, 0.4, 0.1]]])
    assert int(ClassificationHead.decide(folds.mean(dim=0))[0]) == 2


def test_coral_ensemble_averages_cumulative_probabilities():
    # P(score > k) of two folds: (0.9, 0.6, 0.2) and (0.7, 0.3, 0.1); mean (0.8, 0.45, 0.15):
    # one threshold passed, although the first fold alone passes two.
    head = head_from_yaml("ordinal", n_levels=4)
    cumulative = torch.tensor([[0.9, 0.6, 0.2], [0.7, 0.3, 0.1]])
    probabilities = head.probabilities(torch.logit(cumulative))
    assert head.decide(probabilities).tolist() == [2, 1]
    assert int(head.decide(probabilities.mean(dim=0, keepdim=True))[0]) == 1


def test_regression_heads_have_no_probabilities():
    head = head_from_yaml("regression")
    assert head.probabilities(torch.zeros(2, 1)) is None
    with pytest.raises(TypeError, match="value"):
        head.decide(torch.zeros(2, 1))
