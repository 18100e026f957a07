"""ConvLSTM: a 1D convolutional front end over time, then an LSTM (source model ~600K)."""

from __future__ import annotations

import torch
from torch import nn

from hawkeye.models.heads import output_layer as make_output_layer
from hawkeye.models.layers import (
    MaskedLSTM,
    check_sequence_inputs,
    masked_max,
    masked_mean,
    zero_padding,
)


class ConvLSTM(nn.Module):
    """Convolutions for local motion, a (Bi)LSTM for the rhythm across taps, mean + max pooling.

    A tap spans a few frames, which is what the convolutions see; the LSTM reads the sequence of
    taps (their rhythm, hesitations, decrement) and masked mean and max pooling summarise it.

    The convolutions are centred ('same' zero padding), so a real frame near the end of a sequence
    sees the steps after it. Padded steps are set to 0 before every convolution: a real frame then
    sees zeros there, exactly the zeros the convolution's own padding shows it when the sequence is
    not padded at all, so the real frames' outputs do not depend on the padding.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        *,
        conv_channels: list[int],
        kernel_size: int,
        hidden: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
        output_layer: str,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd for same-length convolutions, got {kernel_size}"
            )
        self.input_dim = input_dim
        sizes = [input_dim, *conv_channels]
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2)
            for c_in, c_out in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.dropout = nn.Dropout(dropout)
        self.lstm = MaskedLSTM(
            sizes[-1], hidden, num_layers, bidirectional=bidirectional, dropout=dropout
        )
        self.output = make_output_layer(2 * self.lstm.output_size, output_dim, output_layer)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        check_sequence_inputs(x, mask, self.input_dim)
        h = x  # (batch, time, features)
        for conv in self.convs:
            h = zero_padding(h, mask)  # padded steps read as the convolution's own zero padding
            h = torch.relu(conv(h.transpose(1, 2))).transpose(1, 2)  # (batch, time, channels)
            h = self.dropout(h)
        h = self.lstm(zero_padding(h, mask), mask)  # (batch, time, lstm output)
        pooled = torch.cat([masked_mean(h, mask), masked_max(h, mask)], dim=-1)  # (batch, 2 * out)
        return self.output(self.dropout(pooled))  # (batch, output_dim)
