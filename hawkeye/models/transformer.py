"""TransformerModel: Transformer encoder over the frames with a key padding mask (source: ~1M)."""

from __future__ import annotations

import torch
from torch import nn

from hawkeye.models.heads import output_layer as make_output_layer
from hawkeye.models.layers import (
    SinusoidalPositionalEncoding,
    check_sequence_inputs,
    masked_mean,
    zero_padding,
)


class TransformerModel(nn.Module):
    """Linear projection + sinusoidal positions, pre-norm encoder layers, masked mean, output layer.

    Padded frames are keys no query may attend to (``src_key_padding_mask``), and the pooling skips
    them, so they change nothing. ``enable_nested_tensor=False`` keeps PyTorch's inference fast path
    from turning the batch into nested tensors: same maths on every path, and it exports to ONNX.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        *,
        d_model: int,
        num_heads: int,
        num_layers: int,
        dim_feedforward: int,
        dropout: float,
        output_layer: str,
    ) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.input_dim = input_dim
        self.input_projection = nn.Linear(input_dim, d_model)
        self.positions = SinusoidalPositionalEncoding(d_model)
        self.input_dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model,
            num_heads,
            dim_feedforward,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.dropout = nn.Dropout(dropout)
        self.output = make_output_layer(d_model, output_dim, output_layer)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        check_sequence_inputs(x, mask, self.input_dim)
        x = zero_padding(x, mask)  # (batch, time, features)
        h = self.input_dropout(self.positions(self.input_projection(x)))  # (batch, time, d_model)
        h = self.encoder(h, src_key_padding_mask=~mask)  # (batch, time, d_model), True = ignore key
        pooled = masked_mean(h, mask)  # (batch, d_model)
        return self.output(self.dropout(pooled))  # (batch, output_dim)
