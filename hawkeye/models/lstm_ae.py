"""LSTM autoencoder: unsupervised; the reconstruction error of a sequence is its anomaly score.

The source's model: encoder and decoder LSTMs of 2 layers x 128, latent 32, 477,610 parameters with
10 input features (this file reproduces that count exactly). A sequence is flagged when its error
exceeds the ``threshold_percentile``-th percentile of the training errors (95 by default; 90/85
raise recall).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hawkeye.models.layers import (
    MaskedLSTM,
    check_sequence_inputs,
    last_real_step,
    sequence_lengths,
    zero_padding,
)


class LSTMAutoencoder(nn.Module):
    """Encode a sequence to a latent vector at its last real frame, decode it frame by frame."""

    reconstructs_input = True  # build_model passes no output_dim: the output is the input's shape

    def __init__(
        self,
        input_dim: int,
        *,
        hidden: int,
        num_layers: int,
        latent_dim: int,
        dropout: float,
        threshold_percentile: float,
    ) -> None:
        super().__init__()
        if not 0 < threshold_percentile < 100:
            raise ValueError(
                f"threshold_percentile must lie in (0, 100), got {threshold_percentile}"
            )
        self.input_dim = input_dim
        self.threshold_percentile = float(threshold_percentile)
        self.encoder = MaskedLSTM(
            input_dim, hidden, num_layers, bidirectional=False, dropout=dropout
        )
        self.to_latent = nn.Linear(hidden, latent_dim)
        self.from_latent = nn.Linear(latent_dim, hidden)
        self.decoder = MaskedLSTM(hidden, hidden, num_layers, bidirectional=False, dropout=dropout)
        self.reconstruct = nn.Linear(hidden, input_dim)
        # Set by fit_threshold on training errors; a buffer so it travels with the state dict.
        self.register_buffer("threshold", torch.tensor(float("nan")))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        check_sequence_inputs(x, mask, self.input_dim)
        x = zero_padding(x, mask)  # (batch, time, features)
        h = self.encoder(x, mask)  # (batch, time, hidden)
        latent = self.to_latent(last_real_step(h, sequence_lengths(mask)))  # (batch, latent)
        # the decoder reads the latent code, widened to hidden, at every step: (batch, time, hidden)
        seed = self.from_latent(latent).unsqueeze(1).expand(-1, x.shape[1], -1)
        d = self.decoder(seed, mask)  # (batch, time, hidden)
        return zero_padding(self.reconstruct(d), mask)  # (batch, time, features), 0 on padded steps

    def reconstruction_error(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error over each sequence's real frames and features, ``(batch,)``."""
        squared = (
            self(x, mask) - zero_padding(x, mask)
        ) ** 2  # (batch, time, features), 0 on padding
        return squared.sum(dim=(1, 2)) / (mask.sum(dim=1).clamp(min=1) * x.shape[-1]).to(x.dtype)

    def fit_threshold(self, errors: torch.Tensor | np.ndarray) -> float:
        """Set and return the threshold: ``threshold_percentile`` of the training ``errors``."""
        errors = np.asarray(
            errors.detach().cpu() if isinstance(errors, torch.Tensor) else errors, dtype=np.float64
        )
        if errors.ndim != 1 or errors.size == 0 or not np.isfinite(errors).all():
            raise ValueError(
                f"fit_threshold needs a non-empty 1-D array of finite errors, got shape "
                f"{errors.shape} with {np.count_nonzero(~np.isfinite(errors))} non-finite"
            )
        value = float(np.percentile(errors, self.threshold_percentile))
        self.threshold.fill_(value)
        return value

    def is_anomaly(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """True where a reconstruction error exceeds the fitted threshold, ``(batch,)`` bool."""
        if torch.isnan(self.threshold):
            raise ValueError(
                "the anomaly threshold is not set: call fit_threshold(training errors) first"
            )
        return self.reconstruction_error(x, mask) > self.threshold
