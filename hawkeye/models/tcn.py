"""TCN: residual dilated causal convolutions (Bai, Kolter & Koltun 2018), global average pooling.

The source's model: channels 64/128/256, dropout 0.2, 412,928 parameters with 10 input features;
its exact block layout is not given. Bai et al.'s block (two kernel-3 convolutions and a 1x1
residual convolution where the width changes) gives 426,049 with 10 features, 3% more.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hawkeye.models.heads import output_layer as make_output_layer
from hawkeye.models.layers import check_sequence_inputs, masked_mean, zero_padding


class CausalConv1d(nn.Conv1d):
    """A convolution whose output at step t reads only steps <= t (left zero padding)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left_padding = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, channels, time)
        return super().forward(F.pad(x, (self.left_padding, 0)))  # (batch, out_channels, time)


class TemporalBlock(nn.Module):
    """Two causal convolutions with ReLU and dropout, plus a residual (1x1 conv if widths differ)"""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, dropout: float
    ) -> None:
        super().__init__()
        self.conv1 = CausalConv1d(in_channels, out_channels, kernel_size, dilation)
        self.conv2 = CausalConv1d(out_channels, out_channels, kernel_size, dilation)
        self.dropout = nn.Dropout(dropout)
        self.residual = (
            nn.Conv1d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, in_channels, time)
        h = self.dropout(torch.relu(self.conv1(x)))  # (batch, out_channels, time)
        h = self.dropout(torch.relu(self.conv2(h)))  # (batch, out_channels, time)
        return torch.relu(h + self.residual(x))  # (batch, out_channels, time)


class TCN(nn.Module):
    """Blocks with dilations 1, 2, 4, ... then masked global average pooling and an output layer.

    Causal convolutions never read later steps, so padding at the end of a sequence cannot reach a
    real frame; the pooling averages the real frames only.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        *,
        channels: list[int],
        kernel_size: int,
        dropout: float,
        output_layer: str,
    ) -> None:
        super().__init__()
        self.input_dim = input_dim
        sizes = [input_dim, *channels]
        self.dilations = [2**i for i in range(len(channels))]
        self.blocks = nn.Sequential(
            *(
                TemporalBlock(c_in, c_out, kernel_size, dilation, dropout)
                for c_in, c_out, dilation in zip(sizes[:-1], sizes[1:], self.dilations, strict=True)
            )
        )
        # frames one output sees: two convolutions per block, each reaching (k - 1) * dilation back
        self.receptive_field = 1 + 2 * (kernel_size - 1) * sum(self.dilations)
        self.output = make_output_layer(sizes[-1], output_dim, output_layer)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        check_sequence_inputs(x, mask, self.input_dim)
        x = zero_padding(x, mask)  # (batch, time, features)
        h = self.blocks(x.transpose(1, 2)).transpose(1, 2)  # (batch, time, channels[-1])
        return self.output(masked_mean(h, mask))  # (batch, output_dim)
