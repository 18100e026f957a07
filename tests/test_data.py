"""Store -> tensors: feature choice, resampling by time, padding, masked normalisation, batches,
weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hawkeye.data import (
    SequenceSet,
    apply_normalization,
    balanced_sample_weights,
    batch_at,
    batch_indices,
    channel_names,
    class_weights,
    fit_normalization,
    frame_features,
    model_frames,
    n_score_levels,
    sequence_set,
)
from hawkeye.store import load_store, write_sequences
from hawkeye.timebase import TimeBase


def ramp_store(tmp_path, lengths=(5, 3, 8), fps=None):
    """Videos whose channel 0 is the frame number and channel 1 is 100 * video index, so every
    padded value can be checked by hand (``fps`` None: unknown timing)."""
    sequences = [
        np.stack([np.arange(n), np.full(n, 100.0 * i)], axis=1) for i, n in enumerate(lengths)
    ]
    path = tmp_path / "ramp.h5"
    write_sequences(
        path,
        [f"v{i}" for i in range(len(lengths))],
        sequences,
        np.arange(len(lengths)) % 3,
        [f"s{i}" for i in range(len(lengths))],
        channel_names=["frame", "video"],
        fps=fps,
        summary=np.arange(2 * len(lengths)).reshape(-1, 2),
    )
    return load_store(path)


def test_model_frames_resample_by_time_truncate_and_mask(tmp_path) -> None:
    store = ramp_store(tmp_path, fps=2.0)
    x, mask = model_frames(store, "series", TimeBase(sample_rate_hz=1.0, max_seconds=3.0))
    # 2 fps at 1 Hz = every 2nd frame: lengths 5, 3, 8 -> steps 3, 2, 4 -> 3 s window: 3, 2, 3
    assert x.shape == (3, 3, 2) and mask.tolist() == [[1, 1, 1], [1, 1, 0], [1, 1, 1]]
    assert x[0, :, 0].tolist() == [0, 2, 4]
    assert x[1, :, 0].tolist() == [0, 2, 0]  # padded step is zero
    assert x[2, :, 0].tolist() == [0, 2, 4]  # the first max_seconds kept
    assert x[2, :, 1].tolist() == [200, 200, 200]  # rows come from the right video


def test_unknown_timing_takes_samples_at_the_model_rate(tmp_path) -> None:
    store = ramp_store(tmp_path)  # no fps: every sample is one model step
    x, mask = model_frames(store, "series", TimeBase(sample_rate_hz=15.0, max_seconds=100.0))
    assert x.shape == (3, 8, 2) and mask.sum(1).tolist() == [5, 3, 8]
    assert x[2, :, 0].tolist() == list(range(8))


def test_feature_sets_select_and_flatten_landmarks(tmp_path) -> None:
    store = ramp_store(tmp_path)
    assert channel_names(store, "series") == ["frame", "video"]
    with pytest.raises(ValueError, match="has none"):
        frame_features(store, "landmarks")
    with pytest.raises(ValueError, match="one of"):
        frame_features(store, "pixels")
    total = int(store.offsets[-1])
    store.landmarks = np.arange(total * 63, dtype=np.float32).reshape(total, 21, 3)
    both = frame_features(store, "both")
    assert both.shape == (total, 65) and len(channel_names(store, "both")) == 65
    assert both[1, 2:].tolist() == list(range(63, 126))  # frame 1's 21x3 landmarks, row-major


def test_normalisation_uses_real_finite_frames_only() -> None:
    x = torch.tensor([[[1.0], [3.0], [999.0]], [[float("nan")], [5.0], [7.0]]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    norm = fit_normalization(x, mask)
    values = torch.tensor([1.0, 3.0, 5.0, 7.0])  # padding (999) and NaN left out
    assert norm.mean.item() == pytest.approx(values.mean().item())
    assert norm.std.item() == pytest.approx(values.std(unbiased=False).item())
    z = apply_normalization(x, mask, norm)
    assert z[0, 2].item() == 0.0 and z[1, 0].item() == 0.0  # padding and NaN become 0
    assert z[mask & torch.isfinite(x[..., 0])].mean().item() == pytest.approx(0.0, abs=1e-6)


def test_constant_and_empty_channels_get_unit_std() -> None:
    x = torch.stack([torch.full((2, 4), 3.0), torch.full((2, 4), float("nan"))], dim=-1)
    norm = fit_normalization(x, torch.ones(2, 4, dtype=torch.bool))
    assert norm.std.tolist() == [1.0, 1.0] and norm.mean.tolist() == [3.0, 0.0]


def test_normalisation_of_a_part_uses_only_that_part(tmp_path) -> None:
    """Statistics fitted on videos 0-1 (channel 1 = 0 and 100) ignore videos 2-3 (200, 300)."""
    store = ramp_store(tmp_path, lengths=(4, 4, 4, 4))
    full = sequence_set(store, "series", TimeBase(1.0, 4.0))
    norm = fit_normalization(full.take(np.array([0, 1])).x, full.take(np.array([0, 1])).mask)
    assert norm.mean[1].item() == pytest.approx(50.0) and norm.std[1].item() == pytest.approx(50.0)
    held_out = full.take(np.array([2, 3])).normalized(norm)
    assert held_out.x[:, :, 1].unique().tolist() == pytest.approx([3.0, 5.0])


def test_sequence_set_take_and_to(tmp_path) -> None:
    store = ramp_store(tmp_path)
    full = sequence_set(store, "series", TimeBase(1.0, 10.0))
    part = full.take(np.array([False, True, True]))
    assert isinstance(part, SequenceSet) and len(part) == 2
    assert part.ids.tolist() == ["v1", "v2"] and part.subjects.tolist() == ["s1", "s2"]
    assert part.summary.tolist() == [[2.0, 3.0], [4.0, 5.0]]
    assert part.to("cpu").x.data_ptr() == part.x.data_ptr()


def test_sequence_set_target_is_the_score_or_a_named_store_target(tmp_path) -> None:
    path = tmp_path / "targets.h5"
    write_sequences(path, ["a", "b"], [np.zeros((3, 1)), np.ones((4, 1))], [0, 1], ["s0", "s1"],
                    targets={"fuel": [2.5, 7.0]})
    store = load_store(path)
    assert sequence_set(store, "series", TimeBase(1.0, 4.0)).target.tolist() == [0.0, 1.0]
    fuel = sequence_set(store, "series", TimeBase(1.0, 4.0), target="fuel")
    assert fuel.target.tolist() == [2.5, 7.0] and fuel.y.tolist() == [0, 1]
    assert fuel.take(np.array([1])).target.tolist() == [7.0]
    with pytest.raises(ValueError, match=r"\['score', 'fuel'\]"):
        sequence_set(store, "series", TimeBase(1.0, 4.0), target="speed")


def test_batch_at_takes_the_videos_without_their_shared_padding() -> None:
    x = torch.randn(3, 6, 3)
    mask = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]],
                        dtype=torch.bool)
    index = torch.tensor([2, 0])
    tx, tm = batch_at(x, mask, index, mask.sum(dim=1))
    assert tx.shape == (2, 3, 3)
    assert torch.equal(tm, mask[index][:, :3]) and torch.equal(tx, x[index][:, :3])


def test_batch_indices_cover_each_video_once_and_replay_from_a_generator_state() -> None:
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    batches = batch_indices(10, 4, gen)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    gen.set_state(state)
    assert all(torch.equal(a, b) for a, b in zip(batches, batch_indices(10, 4, gen), strict=True))
    assert torch.cat(batch_indices(5, 2, shuffle=False)).tolist() == [0, 1, 2, 3, 4]


def test_balanced_sampling_draws_levels_equally() -> None:
    y = torch.tensor([0] * 90 + [1] * 10)
    weights = balanced_sample_weights(y, 2)
    drawn = torch.cat(
        batch_indices(100, 10, torch.Generator().manual_seed(0), sample_weights=weights.repeat(1))
    )
    counts = torch.bincount(y[drawn], minlength=2)
    assert len(drawn) == 100 and 30 < counts[1] < 70  # not 10 of 100 as in the data


def test_class_weights_balance_and_skip_absent_levels() -> None:
    w = class_weights(np.array([0, 0, 0, 1]), n_levels=3)
    assert w.tolist() == pytest.approx([4 / 6, 2.0, 0.0])
    with pytest.raises(ValueError, match="0..2"):
        class_weights(np.array([0, 3]), n_levels=3)


def test_n_score_levels_comes_from_the_data() -> None:
    assert n_score_levels([0, 2, 1]) == 3
    assert n_score_levels(np.array([4, 0])) == 5
    with pytest.raises(ValueError, match="empty"):
        n_score_levels([])
