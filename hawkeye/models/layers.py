"""Pieces every sequence model shares: input checks, padding-aware pooling and recurrence.

Batches are right padded: ``x`` is ``(batch, time, features)`` and ``mask`` is ``(batch, time)``
bool with True on the real frames, which come first in each row (at least one per row). Every piece
here keeps the promise the models make: **a padded step never changes the output** — whatever values
it holds and however many padded steps follow the real ones. That is how a sequence gives the same
score alone and inside a padded batch, and why an exported model can be run on any batch size and
length.

Nothing here uses ``pack_padded_sequence`` or data-dependent Python control flow, so the models
export with ``torch.onnx.export(dynamo=True)`` and dynamic batch and time axes.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def check_sequence_inputs(x: torch.Tensor, mask: torch.Tensor, input_dim: int) -> None:
    """Raise ``ValueError`` naming the offending shape unless ``x``/``mask`` form a padded batch.

    Shapes are always checked. The mask's values (real frames first, at least one per row) are
    checked only in eager mode: reading them needs a host sync and is data-dependent control flow,
    which ``torch.export`` cannot trace.
    """
    if x.dim() != 3 or x.shape[-1] != input_dim:
        raise ValueError(
            f"x must be (batch, time, {input_dim}) float: got shape {tuple(x.shape)}; "
            "check the configured input features against the model's input_dim"
        )
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating point tensor, got dtype {x.dtype}")
    if mask.dim() != 2 or mask.shape[0] != x.shape[0] or mask.shape[1] != x.shape[1]:
        raise ValueError(
            f"mask must be (batch, time) = {tuple(x.shape[:2])} to match x {tuple(x.shape)}, "
            f"got shape {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor (True = real frame), got dtype {mask.dtype}")
    if x.shape[1] == 0:
        raise ValueError(f"x has no time steps: shape {tuple(x.shape)}")
    if torch.compiler.is_compiling():
        return
    # a row is bad if it starts with padding or has a real frame after a padded one (one host sync)
    bad_rows = ~mask[:, 0] | (mask[:, 1:] & ~mask[:, :-1]).any(dim=1)  # (batch,)
    if bool(bad_rows.any()):
        bad = torch.nonzero(bad_rows).flatten().tolist()
        raise ValueError(
            f"mask rows {bad[:10]} are not right padded with at least one real frame "
            "(True must come first in each row): pad sequences at the end"
        )


def zero_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` with every padded step set to 0 (NaN-safe: ``where``, not a multiplication)."""
    return torch.where(mask.unsqueeze(-1), x, torch.zeros_like(x))


def sequence_lengths(mask: torch.Tensor) -> torch.Tensor:
    """Number of real frames per row, ``(batch,)`` int64."""
    return mask.sum(dim=1)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row of ``x`` ``(batch, time, ...)`` within its first ``lengths[b]`` steps.

    Padded steps stay where they are, so a forward-direction recurrence over the result reads the
    real frames last-to-first and only then the padding: this is the backward half of a
    bidirectional LSTM without ``pack_padded_sequence``. Applying it twice gives ``x`` back.
    """
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, time)
    lengths = lengths.unsqueeze(1)  # (batch, 1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (batch, time)
    # expand with -1 on (batch, time): the index keeps its own symbolic sizes, whereas an LSTM
    # output's traced shape may carry the example's fixed length and break the exported graph.
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return torch.gather(x, 1, index)


def last_real_step(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The last real step of each row: ``(batch, time, dim) -> (batch, dim)``."""
    index = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, x.shape[-1])  # (batch, 1, dim)
    return torch.gather(x, 1, index).squeeze(1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real steps: ``(batch, time, dim) -> (batch, dim)``."""
    total = zero_padding(x, mask).sum(dim=1)  # (batch, dim)
    count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)  # (batch, 1)
    return total / count


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Maximum over the real steps: ``(batch, time, dim) -> (batch, dim)``."""
    lowest = torch.full_like(x, torch.finfo(x.dtype).min)
    return torch.where(mask.unsqueeze(-1), x, lowest).amax(dim=1)


class AdditiveAttentionPooling(nn.Module):
    """Bahdanau-style attention pooling: ``score_t = v . tanh(W h_t + b)``, softmax over real steps.

    Padded steps get the lowest finite score, so their weight is exactly 0 (``exp`` underflows) and
    the weighted sum neither sees them nor how many there are.
    """

    def __init__(self, dim: int, attention_dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # h: (batch, time, dim), mask: (batch, time)
        scores = self.score(torch.tanh(self.project(h))).squeeze(-1)  # (batch, time)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=1)  # (batch, time), 0 on padded steps
        return torch.einsum("bt,btd->bd", weights, zero_padding(h, mask))  # (batch, dim)


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sine/cosine position code of Vaswani et al. (2017) to ``(batch, time, dim)``.

    Computed for the batch's own length on every call (no table, no maximum length), so an exported
    model accepts any sequence length. A real frame's code depends only on its position, never on
    the padding after it.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"sinusoidal positional encoding needs an even dimension, got {dim}")
        frequencies = torch.exp(
            torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(1e4) / dim)
        )
        self.register_buffer("frequencies", frequencies, persistent=False)  # (dim / 2,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, time, dim)
        positions = torch.arange(x.shape[1], device=x.device, dtype=torch.float32)  # (time,)
        angles = positions.unsqueeze(1) * self.frequencies  # (time, dim / 2)
        # (time, dim): sin and cos interleaved
        code = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)
        return x + code.to(x.dtype)  # (batch, time, dim)


class MaskedLSTM(nn.Module):
    """A stacked (optionally bidirectional) LSTM over right-padded batches.

    Each layer runs a forward-direction ``nn.LSTM``; the backward direction runs the same kind of
    LSTM on the sequence reversed within its real length (:func:`reverse_padded`) and is reversed
    back. Trailing padding is read only after every real frame in both directions, so it cannot
    change a real step's output. Same parameter count as ``nn.LSTM(..., bidirectional=True)``;
    dropout between layers as there.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"an LSTM needs num_layers >= 1, got {num_layers}")
        directions = 2 if bidirectional else 1
        sizes = [input_size] + [hidden_size * directions] * (num_layers - 1)
        self.forward_layers = nn.ModuleList(
            nn.LSTM(size, hidden_size, batch_first=True) for size in sizes
        )
        self.backward_layers = nn.ModuleList(
            nn.LSTM(size, hidden_size, batch_first=True)
            for size in (sizes if bidirectional else [])
        )
        self.dropout = nn.Dropout(dropout)
        self.output_size = hidden_size * directions

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x: (batch, time, input_size), mask: (batch, time)
        lengths = sequence_lengths(mask)  # (batch,)
        h = x
        for layer, forward_lstm in enumerate(self.forward_layers):
            if layer > 0:
                h = self.dropout(h)
            out, _ = forward_lstm(h)  # (batch, time, hidden)
            if len(self.backward_layers):
                backward_lstm = self.backward_layers[layer]
                back, _ = backward_lstm(reverse_padded(h, lengths))  # (batch, time, hidden)
                back = reverse_padded(back, lengths)  # back in time order
                out = torch.cat([out, back], dim=-1)  # (batch, time, 2 * hidden)
            h = out
        return zero_padding(h, mask)  # (batch, time, output_size), 0 on padded steps
