"""Hawkeye's models, one small file each, built from their config group ``conf/model/<name>.yaml``.

| config | class | family |
|---|---|---|
| ``attention_lstm`` | :class:`~hawkeye.models.attention_lstm.AttentionLSTM` | sequence |
| ``transformer`` | :class:`~hawkeye.models.transformer.TransformerModel` | sequence |
| ``conv_lstm`` | :class:`~hawkeye.models.conv_lstm.ConvLSTM` | sequence |
| ``tcn`` | :class:`~hawkeye.models.tcn.TCN` | sequence |
| ``lstm_ae`` | :class:`~hawkeye.models.lstm_ae.LSTMAutoencoder` | autoencoder |
| ``gbm``, ``gbm_tuned`` | :class:`~hawkeye.models.gbm.GradientBoostedTrees` | tabular |
| ``forest`` | :class:`~hawkeye.models.forest.RandomForest` | tabular |
| ``minirocket`` | :class:`~hawkeye.models.minirocket.MiniRocketRidge` | rocket |

Shared parts live in :mod:`hawkeye.models.layers`, the score heads in :mod:`hawkeye.models.heads`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import nn

from hawkeye.models.trees import TreeEnsemble

if TYPE_CHECKING:  # types only: minirocket imports hawkeye.models.layers, i.e. this package
    from hawkeye.models.minirocket import MiniRocketRidge

METADATA_KEYS = ("name", "family")  # describe a model config; never passed to the constructor


def build_model(
    model_cfg: DictConfig | dict[str, Any], input_dim: int, output_dim: int
) -> nn.Module | TreeEnsemble | MiniRocketRidge:
    """Instantiate ``model_cfg._target_`` with the config's hyper-parameters.

    ``input_dim`` is the number of per-frame features (sequence models, the autoencoder,
    ``rocket``) or of summary features (``tabular``); ``output_dim`` is
    ``head.out_dim(n_levels)``. A model class with ``reconstructs_input = True`` (the
    autoencoder) rebuilds its input and takes no ``output_dim``. What the ``family`` key
    means is :mod:`hawkeye.families`' business.
    """
    params = (
        OmegaConf.to_container(model_cfg, resolve=True)
        if isinstance(model_cfg, DictConfig)
        else dict(model_cfg)
    )
    name = params.get("name", "<unnamed>")
    if "_target_" not in params:
        raise ValueError(f"model config {name!r} has no _target_ naming the class to build")
    # Called directly rather than through hydra's instantiate, so a model's own ValueError reaches
    # the caller as it is instead of wrapped in an InstantiationException.
    model_class = get_class(params.pop("_target_"))
    reconstructs = bool(getattr(model_class, "reconstructs_input", False))
    if input_dim < 1 or (not reconstructs and output_dim < 1):
        raise ValueError(
            f"model {name!r} needs input_dim >= 1 and output_dim >= 1, "
            f"got {input_dim} and {output_dim}"
        )
    for key in METADATA_KEYS:
        params.pop(key, None)
    if reconstructs:
        return model_class(input_dim, **params)
    return model_class(input_dim, output_dim, **params)


def count_parameters(model: nn.Module | TreeEnsemble | MiniRocketRidge) -> int:
    """Trainable parameters of a network; for a tree ensemble, its number of fitted trees; for
    MiniRocket, its fitted ridge weights (the transform's parameters are drawn, not learned)."""
    if isinstance(model, TreeEnsemble):
        return model.n_trees
    if isinstance(model, nn.Module):
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model.n_parameters
