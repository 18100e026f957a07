"""Checkpoints of the training loop: the epoch-to-epoch state, ``last.pt`` / ``best.pt`` save and
load, and the RNG states that make a resumed job continue exactly where it stopped.

Plain state dicts, tensors and Python types only, so every file loads with
``torch.load(..., weights_only=True)`` (the keys: docs/architecture.md, "Fold outputs").
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hawkeye.io import atomic_path


@dataclass
class TrainState:
    """Everything that changes from epoch to epoch (and goes into ``last.pt``)."""

    epoch: int = 0                      # epochs completed
    best: float = math.inf              # best monitored value so far (negated when max is better)
    best_loss: float = math.inf         # validation loss at that epoch (breaks ties of the metric)
    best_epoch: int = 0                 # 1-based epoch of the best value (0 = none yet)
    bad_epochs: int = 0                 # epochs since the last improvement
    batch_size: int = 32                # current batch size (halved on CUDA out-of-memory)
    history: list[dict[str, float]] = field(default_factory=list)
    best_model: dict[str, torch.Tensor] | None = None  # weights of the best epoch


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, scaler: torch.amp.GradScaler, generator: torch.Generator,
                    state: TrainState, meta: dict[str, Any]) -> None:
    """Write the complete training state to ``path`` atomically."""
    checkpoint = {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
        "epoch": state.epoch, "best": state.best, "best_loss": state.best_loss,
        "best_epoch": state.best_epoch,
        "bad_epochs": state.bad_epochs, "batch_size": state.batch_size,
        "history": state.history, "best_model": state.best_model, "rng": rng_state(),
        "generator": generator.get_state(), **meta,
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def save_best(path: Path, model: nn.Module, state: TrainState, meta: dict[str, Any]) -> None:
    """Write ``best.pt``: the model's (best) weights, how it was chosen, and what rebuilds it."""
    checkpoint = {"model": model.state_dict(), "epoch": state.best_epoch, "best": state.best,
                  "best_loss": state.best_loss, "history": state.history, **meta}
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, scaler: torch.amp.GradScaler,
                    generator: torch.Generator, expected_hash: str | None = None) -> TrainState:
    """Restore what :func:`save_checkpoint` wrote; return the training state to continue from.

    With ``expected_hash``, refuse a checkpoint written under another configuration: resuming it
    would silently mix two experiments (or fail deep inside ``load_state_dict``).
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if expected_hash is not None and ckpt.get("config_hash") != expected_hash:
        raise ValueError(f"{path} was written by another configuration (hash "
                         f"{ckpt.get('config_hash')}, this job {expected_hash}): use a new "
                         f"run_dir, or delete {path.parent} to start this fold over")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    generator.set_state(ckpt["generator"])
    set_rng_state(ckpt["rng"])
    return TrainState(epoch=ckpt["epoch"], best=ckpt["best"], best_loss=ckpt["best_loss"],
                      best_epoch=ckpt["best_epoch"],
                      bad_epochs=ckpt["bad_epochs"], batch_size=ckpt["batch_size"],
                      history=list(ckpt["history"]), best_model=ckpt["best_model"])


def rng_state() -> dict[str, Any]:
    """torch, CUDA, numpy and Python RNG states as tensors and plain types (weights_only-safe)."""
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": torch.from_numpy(np_keys.astype(np.int64)), "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss), "numpy_gauss": float(np_gauss),
        "python": torch.tensor(py_internal, dtype=torch.int64), "python_version": int(py_version),
        "python_gauss": py_gauss,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNG states :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32),
                         state["numpy_pos"], state["numpy_has_gauss"], state["numpy_gauss"]))
    random.setstate((state["python_version"], tuple(int(v) for v in state["python"].tolist()),
                     state["python_gauss"]))


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (a family seeds before it builds its network)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
