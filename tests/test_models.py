"""Models: shapes on ragged batches, padding invariance, parameter counts, learning, ONNX parity,
configs.

Models are built from their real ``conf/model/*.yaml`` (shrunk with overrides for speed), so a test
fails when a config and its class drift apart. Threads are limited: the test machine's cores are
shared.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import TINY_MODELS
from omegaconf import OmegaConf
from torch import nn

from hawkeye.config import CONF_DIR, compose
from hawkeye.models import build_model, count_parameters
from hawkeye.models.gbm import GradientBoostedTrees
from hawkeye.models.heads import CoralLayer, build_head
from hawkeye.models.layers import (
    AdditiveAttentionPooling,
    MaskedLSTM,
    SinusoidalPositionalEncoding,
    check_sequence_inputs,
    masked_max,
    masked_mean,
    reverse_padded,
)
from hawkeye.models.lstm_ae import LSTMAutoencoder
from hawkeye.models.trees import TreeEnsemble

torch.set_num_threads(1)

SEQUENCE_MODELS = ("attention_lstm", "transformer", "conv_lstm", "tcn")
NETWORKS = (*SEQUENCE_MODELS, "lstm_ae")
ALL_MODELS = (*NETWORKS, "gbm", "gbm_tuned", "forest")
HEADS = ("regression", "classification", "ordinal")

NO_DROPOUT = {"dropout": 0.0}

# Parameter counts at default size from the source's model table, for input_dim=63 (21 landmarks x 3
# coordinates) and one output; each model must lie within +-25% of it.
SOURCE_PARAMETERS = {
    "attention_lstm": 500_000,
    "transformer": 1_000_000,
    "conv_lstm": 600_000,
    "tcn": 413_000,
    "lstm_ae": 478_000,
}
IN_FEATURES = 6
OUT_DIM = 3


def model_config(name: str, **overrides):
    """``conf/model/<name>.yaml`` on its own (no head: the output layer falls back to linear)."""
    cfg = OmegaConf.load(f"{CONF_DIR}/model/{name}.yaml")
    return OmegaConf.merge(cfg, overrides)


def tiny_model(name: str, input_dim: int = IN_FEATURES, output_dim: int = OUT_DIM, **overrides):
    """The model at the shared tiny size (tests/conftest.py), composed from the real config."""
    torch.manual_seed(0)
    cfg = OmegaConf.merge(compose([f"model={name}", *TINY_MODELS[name]]).model, overrides)
    return build_model(cfg, input_dim, output_dim)


def ragged_batch(lengths: list[int], features: int = IN_FEATURES, seed: int = 0):
    """Random ``x`` right-padded to the longest length (padding filled with noise), and its mask."""
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    x = torch.randn(len(lengths), t, features, generator=g)
    mask = torch.arange(t).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return x, mask


def run(model: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x, mask)


# ---------------------------------------------------------------------------------------------
# Shared layers


def test_reverse_padded_reverses_real_steps_and_keeps_padding_in_place():
    x = torch.tensor([[1.0, 2, 3, 4], [5, 6, 7, 8]]).unsqueeze(-1)  # (2, 4, 1)
    lengths = torch.tensor([3, 1])
    out = reverse_padded(x, lengths).squeeze(-1)
    assert out.tolist() == [[3, 2, 1, 4], [5, 6, 7, 8]]
    assert torch.equal(reverse_padded(reverse_padded(x, lengths), lengths), x)


def test_masked_lstm_matches_packed_bidirectional_lstm():
    """The export-friendly BiLSTM computes what ``pack_padded_sequence`` + ``nn.LSTM`` does."""
    torch.manual_seed(0)
    ours = MaskedLSTM(4, 5, num_layers=2, bidirectional=True, dropout=0.0)
    reference = nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True)
    for layer in range(2):
        for direction, lstms in (("", ours.forward_layers), ("_reverse", ours.backward_layers)):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(reference, f"{kind}_l{layer}{direction}").data.copy_(
                    getattr(lstms[layer], f"{kind}_l0")
                )
    x, mask = ragged_batch([6, 2, 4], features=4)
    lengths = mask.sum(1)
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True)
    with torch.no_grad():
        got = ours(x, mask)
    assert ours.output_size == 10
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in reference.parameters()
    )


def test_masked_pooling_ignores_padding():
    h = torch.tensor([[[1.0], [3.0], [100.0]], [[-2.0], [float("nan")], [float("inf")]]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert masked_mean(h, mask).flatten().tolist() == [2.0, -2.0]
    assert masked_max(h, mask).flatten().tolist() == [3.0, -2.0]


def test_attention_pooling_gives_padded_steps_zero_weight():
    torch.manual_seed(0)
    pool = AdditiveAttentionPooling(3, 4)
    h, mask = ragged_batch([2, 4], features=3)
    h_changed = h.clone()
    h_changed[0, 2:] = 1e6  # padded steps of row 0
    with torch.no_grad():
        torch.testing.assert_close(pool(h, mask), pool(h_changed, mask), atol=0, rtol=0)
        one = pool(h[:, :1], mask[:, :1])
    torch.testing.assert_close(one, h[:, 0])  # a single real step gets all the weight


def test_sinusoidal_positions_follow_the_formula():
    pe = SinusoidalPositionalEncoding(4)
    code = pe(torch.zeros(1, 3, 4))[0]  # (time, dim): sin(p w0), cos(p w0), sin(p w1), cos(p w1)
    p = torch.arange(3.0)
    expected = torch.stack([p.sin(), p.cos(), (p / 100).sin(), (p / 100).cos()], dim=1)
    torch.testing.assert_close(code, expected)
    with pytest.raises(ValueError, match="even"):
        SinusoidalPositionalEncoding(5)


@pytest.mark.parametrize(
    ("x_shape", "mask", "message"),
    [
        ((2, 5, 4), torch.ones(2, 5, dtype=torch.bool), r"\(batch, time, 6\).*\(2, 5, 4\)"),
        ((2, 5, 6), torch.ones(2, 4, dtype=torch.bool), r"mask must be \(batch, time\).*\(2, 4\)"),
        ((2, 5, 6), torch.ones(2, 5), "bool"),
        ((2, 3, 6), torch.tensor([[True, True, True], [False, True, True]]), r"rows \[1\]"),
        ((2, 3, 6), torch.tensor([[True, False, True], [True, True, True]]), r"rows \[0\]"),
        ((2, 0, 6), torch.ones(2, 0, dtype=torch.bool), "no time steps"),
    ],
)
def test_input_checks_name_the_offending_shape(x_shape, mask, message):
    with pytest.raises(ValueError, match=message):
        check_sequence_inputs(torch.zeros(x_shape), mask, input_dim=6)


# ---------------------------------------------------------------------------------------------
# Every network: shapes, padding invariance


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_forward_shapes_on_variable_lengths(name):
    model = tiny_model(name).eval()
    x, mask = ragged_batch([7, 3, 5, 1])
    out = run(model, x, mask)
    assert out.shape == (4, OUT_DIM) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match=r"\(4, 7, 5\)"):
        model(x[..., :5], mask)


def _padding_changed(x: torch.Tensor, mask: torch.Tensor, extra: int):
    """Same real frames; padded values replaced (NaN, huge), ``extra`` padded steps appended."""
    b, _, f = x.shape
    x2 = torch.cat([x, torch.zeros(b, extra, f)], dim=1)
    mask2 = torch.cat([mask, torch.zeros(b, extra, dtype=torch.bool)], dim=1)
    noise = torch.randn_like(x2) * 1e3
    noise[0, -1, 0] = float("nan")
    return torch.where(mask2.unsqueeze(-1), x2, noise), mask2


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_padded_steps_never_change_the_output(name):
    model = tiny_model(name).eval()
    lengths = [7, 3, 5, 1]
    x, mask = ragged_batch(lengths)
    out = run(model, x, mask)
    torch.testing.assert_close(
        run(model, *_padding_changed(x, mask, extra=6)), out, atol=1e-5, rtol=0
    )
    for i, length in enumerate(lengths):  # a sequence alone, unpadded, vs inside the padded batch
        alone = run(model, x[i : i + 1, :length], mask[i : i + 1, :length])
        torch.testing.assert_close(alone, out[i : i + 1], atol=1e-5, rtol=0)


def test_conv_lstm_edge_frames_see_the_same_zeros_as_an_unpadded_sequence():
    """Centred convolutions: the last real frames read the padding zone; it must look unpadded."""
    model = tiny_model("conv_lstm", kernel_size=5).eval()
    x, mask = ragged_batch([9, 4])
    seen = []
    model.convs[0].register_forward_hook(lambda module, args, out: seen.append(args[0]) and None)
    run(model, x, mask)
    conv_in = seen[0].transpose(1, 2)  # (batch, time, features) as the first convolution saw it
    assert torch.equal(conv_in[1, 4:], torch.zeros(5, IN_FEATURES))
    torch.testing.assert_close(
        run(model, x[1:, :4], mask[1:, :4]), run(model, x, mask)[1:], atol=1e-6, rtol=0
    )


def test_autoencoder_reconstruction_and_error_ignore_padding():
    model = tiny_model("lstm_ae").eval()
    lengths = [7, 3, 5, 1]
    x, mask = ragged_batch(lengths)
    recon = run(model, x, mask)
    assert recon.shape == x.shape
    assert torch.equal(recon[~mask], torch.zeros_like(recon[~mask]))
    x2, mask2 = _padding_changed(x, mask, extra=6)
    torch.testing.assert_close(run(model, x2, mask2)[:, :7], recon, atol=1e-5, rtol=0)
    with torch.no_grad():
        errors = model.reconstruction_error(x, mask)
        torch.testing.assert_close(model.reconstruction_error(x2, mask2), errors, atol=1e-5, rtol=0)
        for i, length in enumerate(lengths):
            alone = model.reconstruction_error(x[i : i + 1, :length], mask[i : i + 1, :length])
            torch.testing.assert_close(alone, errors[i : i + 1], atol=1e-5, rtol=0)
    by_hand = ((recon[0, :7] - x[0, :7]) ** 2).mean()
    torch.testing.assert_close(errors[0], by_hand)


def test_autoencoder_threshold_is_the_configured_percentile_and_is_saved():
    model = tiny_model("lstm_ae", threshold_percentile=90)
    x, mask = ragged_batch([5, 5, 4])
    with pytest.raises(ValueError, match="fit_threshold"):
        model.is_anomaly(x, mask)
    assert model.fit_threshold(np.arange(101.0)) == pytest.approx(90.0)
    assert float(model.state_dict()["threshold"]) == pytest.approx(90.0)
    assert not model.is_anomaly(x, mask).any()  # errors of random data are far below 90
    model.fit_threshold(torch.zeros(3))
    assert model.is_anomaly(x, mask).all()
    with pytest.raises(ValueError, match="finite"):
        model.fit_threshold(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="threshold_percentile"):
        tiny_model("lstm_ae", threshold_percentile=100)


# ---------------------------------------------------------------------------------------------
# Sizes: the source's model table


@pytest.mark.parametrize("name", NETWORKS)
def test_parameter_counts_match_the_source_table(name):
    model = build_model(model_config(name), input_dim=63, output_dim=1)
    n = count_parameters(model)
    print(
        f"{name}: {n:,} parameters (input_dim=63, output_dim=1; "
        f"source ~{SOURCE_PARAMETERS[name]:,})"
    )
    assert abs(n - SOURCE_PARAMETERS[name]) <= 0.25 * SOURCE_PARAMETERS[name]


def test_source_models_with_their_ten_telemetry_features():
    """The telemetry report's own counts (10 input features): LSTM-AE exactly, TCN within 5%."""
    lstm_ae = count_parameters(build_model(model_config("lstm_ae"), input_dim=10, output_dim=1))
    tcn = count_parameters(build_model(model_config("tcn"), input_dim=10, output_dim=1))
    print(f"lstm_ae {lstm_ae:,} (source 477,610), tcn {tcn:,} (source 412,928)")
    assert lstm_ae == 477_610
    assert abs(tcn - 412_928) <= 0.05 * 412_928
    assert build_model(model_config("tcn"), 10, 1).receptive_field == 29


# ---------------------------------------------------------------------------------------------
# Learning


def _regression_problem(n: int = 32, seed: int = 0):
    """Ragged sequences whose target is the mean of feature 0 over the real frames (learnable)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 12, (n,), generator=g).tolist()
    x, mask = ragged_batch(lengths, seed=seed)
    y = masked_mean(x, mask)[:, :1] * 3  # (n, 1)
    return x, mask, y


def _constant_sequences(n: int = 32, seed: int = 0):
    """Ragged sequences repeating one frame from a 2-D subspace (an autoencoder can learn it)."""
    g = torch.Generator().manual_seed(seed)
    _, mask = ragged_batch(torch.randint(3, 12, (n,), generator=g).tolist())
    basis = torch.randn(2, IN_FEATURES, generator=g)
    frames = torch.randn(n, 2, generator=g) @ basis  # (n, features)
    return frames.unsqueeze(1).expand(-1, mask.shape[1], -1).contiguous(), mask


@pytest.mark.parametrize("name", NETWORKS)
def test_a_few_adam_steps_lower_the_loss(name):
    model = tiny_model(name, output_dim=1, **NO_DROPOUT)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    if name == "lstm_ae":
        x, mask = _constant_sequences()

        def loss() -> torch.Tensor:
            return model.reconstruction_error(x, mask).mean()
    else:
        x, mask, y = _regression_problem()

        def loss() -> torch.Tensor:
            return nn.functional.mse_loss(model(x, mask), y)

    with torch.no_grad():
        first = loss().item()
    for _ in range(40):
        optimiser.zero_grad()
        loss().backward()
        optimiser.step()
    with torch.no_grad():
        last = loss().item()
    print(f"{name}: loss {first:.4f} -> {last:.4f}")
    assert last < 0.7 * first


def test_coral_output_layer_is_built_when_the_head_asks_for_it():
    model = tiny_model("tcn", output_dim=4, output_layer="coral")
    assert isinstance(model.output, CoralLayer)
    # one shared weight vector over the last 16 channels (conftest: channels=[16,16]) + K-1 biases
    assert count_parameters(model.output) == 16 + 4
    with pytest.raises(ValueError, match="output_layer"):
        tiny_model("tcn", output_layer="softmax")


# ---------------------------------------------------------------------------------------------
# ONNX export (dynamo) and ONNX Runtime parity


def _export(model: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> ort.InferenceSession:
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (x, mask),
            dynamo=True,
            verbose=False,
            dynamic_shapes=({0: batch, 1: time}, {0: batch, 1: time}),
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # the exported LSTM declares the example's length on outputs
    return ort.InferenceSession(
        program.model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
def test_onnx_export_matches_pytorch_at_other_batch_sizes_and_lengths(name):
    model = tiny_model(name).eval()
    session = _export(model, *ragged_batch([9, 6]))
    for lengths in ([17, 5, 11], [40]):
        x, mask = ragged_batch(lengths, seed=1)
        (got,) = session.run(None, {"x": x.numpy(), "mask": mask.numpy()})
        expected = run(model, x, mask).numpy()
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-4, f"{name}: lengths {lengths}"


# ---------------------------------------------------------------------------------------------
# Configs: every model and head composes and instantiates


@pytest.mark.parametrize("head_name", HEADS)
@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_config_builds_with_every_head(name, head_name):
    cfg = compose([f"model={name}", f"head={head_name}"])
    head = build_head(cfg.head, n_levels=5)
    model = build_model(cfg.model, input_dim=IN_FEATURES, output_dim=head.out_dim(5))
    assert cfg.model.name == name and cfg.model.family in ("sequence", "autoencoder", "tabular")
    if cfg.model.family == "tabular":
        assert isinstance(model, TreeEnsemble) and model.objective == head_name
        return
    x, mask = ragged_batch([4, 2])
    out = run(model.eval(), x, mask)
    if name == "lstm_ae":
        assert isinstance(model, LSTMAutoencoder) and out.shape == x.shape
        assert model.threshold_percentile == cfg.model.threshold_percentile
        return
    assert out.shape == (2, head.out_dim(5))
    assert isinstance(model.output, CoralLayer) == (head_name == "ordinal")
    assert head.predict(out).shape == (2,)


def test_build_model_rejects_bad_configs():
    with pytest.raises(ValueError, match="_target_"):
        build_model({"name": "x", "family": "sequence"}, 4, 1)
    with pytest.raises(ValueError, match="output_dim"):
        build_model(model_config("tcn"), 4, 0)


# ---------------------------------------------------------------------------------------------
# Gradient-boosted trees on a tiny table


def _table(n: int = 120, seed: int = 0):
    """Two informative features: score = how many of x0 > 0, x1 > 0, x0 + x1 > 1 hold (0..3)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 3))
    scores = (
        (features[:, 0] > 0).astype(int)
        + (features[:, 1] > 0)
        + (features[:, 0] + features[:, 1] > 1)
    )
    return features, scores


def _gbm(objective: str, output_dim: int) -> GradientBoostedTrees:
    cfg = model_config("gbm", objective=objective, max_iter=30, min_samples_leaf=5)
    return build_model(cfg, input_dim=3, output_dim=output_dim)


@pytest.mark.parametrize("head_name", HEADS)
def test_gbm_fits_and_predicts_in_the_heads_output_space(head_name):
    head = build_head(OmegaConf.load(f"{CONF_DIR}/head/{head_name}.yaml"), n_levels=4)
    features, scores = _table()
    model = _gbm(head_name, head.out_dim(4))
    with pytest.raises(ValueError, match="not fitted"):
        model.predict(features)
    outputs = model.fit(features, scores).predict(features)
    assert outputs.shape == (len(scores), head.out_dim(4)) and outputs.dtype == np.float32
    predicted = head.predict(torch.from_numpy(outputs)).numpy()
    assert np.mean(predicted == scores) > 0.8  # training fit of an easy rule
    assert count_parameters(model) > 0
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        model.predict(features[:, :2])


def test_gbm_handles_levels_missing_from_the_training_data():
    features, scores = _table()
    scores = np.minimum(scores, 2)  # level 3 (of 4) never seen
    classifier = _gbm("classification", 4).fit(features, scores)
    probabilities = np.exp(classifier.predict(features))
    assert probabilities.shape == (len(scores), 4)
    assert probabilities[:, 3].max() < 1e-5
    ordinal = _gbm("ordinal", 3).fit(features, scores)
    assert ordinal.estimators[2] is None  # "score > 2" has no positive example: a constant prior
    assert (ordinal.predict(features)[:, 2] < -4).all()
    with pytest.raises(ValueError, match="0..3"):
        _gbm("classification", 4).fit(features, scores + 2)
