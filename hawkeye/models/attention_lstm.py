"""AttentionLSTM: bidirectional LSTM read out by additive attention pooling (source: ~500K)."""

from __future__ import annotations

import torch
from torch import nn

from hawkeye.models.heads import output_layer as make_output_layer
from hawkeye.models.layers import (
    AdditiveAttentionPooling,
    MaskedLSTM,
    check_sequence_inputs,
    zero_padding,
)


class AttentionLSTM(nn.Module):
    """Stacked BiLSTM over the frames, attention-weighted sum of its states, one output layer.

    Attention lets the score rest on the few frames that show a hesitation or a halt instead of an
    average over the whole trial.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        *,
        hidden: int,
        num_layers: int,
        attention_dim: int,
        dropout: float,
        output_layer: str,
    ) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.lstm = MaskedLSTM(input_dim, hidden, num_layers, bidirectional=True, dropout=dropout)
        self.pool = AdditiveAttentionPooling(self.lstm.output_size, attention_dim)
        self.dropout = nn.Dropout(dropout)
        self.output = make_output_layer(self.lstm.output_size, output_dim, output_layer)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        check_sequence_inputs(x, mask, self.input_dim)
        x = zero_padding(x, mask)  # (batch, time, features)
        h = self.lstm(x, mask)  # (batch, time, 2 * hidden)
        pooled = self.pool(h, mask)  # (batch, 2 * hidden)
        return self.output(self.dropout(pooled))  # (batch, output_dim)
