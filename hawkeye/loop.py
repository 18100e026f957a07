"""The epoch loop the network families share (:func:`fit_network`), and what it runs on: device,
mixed precision, CPU threads, halving the batch on CUDA out-of-memory, the learning-rate schedule.

One plain loop a newcomer can read top to bottom: batches by index (:func:`hawkeye.data.
batch_indices`), masks trimmed to the longest real length, early stopping on the validation
slice, and ONE checkpoint of the complete state per epoch (:mod:`hawkeye.checkpoint`), so a
killed job that starts again replays nothing and diverges nowhere. ``benchmarks/bench_train.py``
measures it against the same loop stripped bare.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from omegaconf import DictConfig
from torch import nn

from hawkeye.checkpoint import TrainState, load_checkpoint, save_best, save_checkpoint
from hawkeye.data import SequenceSet, balanced_sample_weights, batch_indices, trim_batch
from hawkeye.fold_data import FoldData

log = logging.getLogger("hawkeye.train")
T = TypeVar("T")


@dataclass
class NetworkRun:
    """The outcome of :func:`fit_network`; the model holds the best weights."""

    state: TrainState
    eval_batch_size: int


def fit_network(cfg: DictConfig, data: FoldData, model: nn.Module,
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                validate_fn: Callable[[torch.Tensor, torch.Tensor], dict[str, float]],
                device: torch.device, out: Path, monitor: str, meta: dict[str, Any],
                forward: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
                | None = None,
                on_epoch: Callable[[list[dict[str, Any]]], None] | None = None) -> NetworkRun:
    """Train ``model`` on ``data.train`` with early stopping on ``data.val``; resume from last.pt.

    ``forward(model, x, mask)`` gives what ``loss_fn(outputs, y)`` and ``validate_fn`` consume
    (default: ``model(x, mask)``). Each epoch ends with ONE checkpoint of the complete state (the
    best epoch's weights included), so a killed job that starts again replays nothing and diverges
    nowhere. At the end the best weights are loaded into ``model`` and written to ``best.pt``.
    """
    tc = cfg.train
    forward = forward or _call_model
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = _lr_scheduler(optimizer, tc.lr_schedule, tc.epochs)
    autocast, scaler = amp_setup(device, tc.amp)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    sample_weights = (balanced_sample_weights(data.train.y, data.n_levels)
                      if tc.balance == "sampling" else None)
    train_set, val_set = data.train.to(device), data.val.to(device)
    train_labels, val_labels = data.labels(train_set), data.labels(val_set)
    # train.monitor_mode is the direction of train.monitor; a family that monitors something
    # else (the autoencoder's val_loss) gets that metric's own direction
    signed = monitor_sign(monitor, tc.monitor_mode if monitor == tc.monitor else "auto")
    state = TrainState(batch_size=int(tc.batch_size))
    last = out / "last.pt"
    if last.exists():
        state = load_checkpoint(last, model, optimizer, scheduler, scaler, generator,
                                expected_hash=meta["config_hash"])
        log.info("resuming from %s after epoch %d (batch size %d)", last, state.epoch,
                 state.batch_size)

    def train_epoch(batch_size: int) -> float:
        model.train()
        total, count = torch.zeros((), device=device), 0
        for index in batch_indices(len(train_set), batch_size, generator,
                                   sample_weights=sample_weights):
            index = index.to(device)
            x, mask = trim_batch(train_set.x[index], train_set.mask[index])
            y = train_labels[index]
            with autocast():
                loss = loss_fn(forward(model, x, mask), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if tc.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            total += loss.detach() * len(index)  # a tensor: no device sync per step
            count += len(index)
        return float(total) / max(count, 1)

    while state.epoch < tc.epochs and state.bad_epochs < tc.patience:
        started = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train_loss, state.batch_size = halve_batch_on_oom(train_epoch, state.batch_size)
        outputs = predict_outputs(model, val_set, _eval_batch(tc, state), device, tc.amp, forward)
        scores = validate_fn(outputs, val_labels)
        scheduler.step()
        state.epoch += 1
        state.history.append({"epoch": state.epoch, "train_loss": train_loss, **scores, "lr": lr,
                              "seconds": round(time.perf_counter() - started, 3)})
        if monitor not in scores:
            raise ValueError(f"train.monitor={monitor!r} is not a validation metric of this "
                             f"task; choose one of {sorted(k for k in scores if k != 'lr')}")
        value = signed(scores[monitor])  # lower is better from here on
        if improves(value, scores["val_loss"], state.best, state.best_loss, tc.min_delta):
            state.best, state.best_loss = value, scores["val_loss"]
            state.best_epoch, state.bad_epochs = state.epoch, 0
            state.best_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            state.bad_epochs += 1
        save_checkpoint(last, model, optimizer, scheduler, scaler, generator, state, meta)
        if on_epoch is not None:  # trackers (hawkeye.tracking), after the epoch's checkpoint
            on_epoch(state.history)
        if state.epoch % tc.log_every == 0 or state.bad_epochs >= tc.patience:
            log.info("epoch %3d  train_loss %.4f  val_loss %.4f  %s %.4f  (%.1fs)%s",
                     state.epoch, train_loss, scores["val_loss"], monitor, scores[monitor],
                     state.history[-1]["seconds"],
                     "  best" if state.best_epoch == state.epoch else "")

    if state.best_model is None:
        raise RuntimeError(f"{out}: no epoch produced a finite {monitor} (train.epochs="
                           f"{tc.epochs}); check the data for NaN and lower train.lr")
    model.load_state_dict(state.best_model)
    save_best(out / "best.pt", model, state, meta)
    return NetworkRun(state=state, eval_batch_size=_eval_batch(tc, state))


# Metrics where lower is better (``monitor_mode: auto``); every other task metric (accuracy,
# F1, QWK, R², correlations) is better higher.
LOWER_IS_BETTER = ("val_loss", "val_mae", "val_mae_raw", "val_rmse")


def monitor_sign(monitor: str, mode: str) -> Callable[[float], float]:
    """The map that makes ``monitor`` lower-is-better: identity for ``min``, negation for
    ``max``; ``auto`` picks by :data:`LOWER_IS_BETTER`."""
    if mode == "auto":
        mode = "min" if monitor in LOWER_IS_BETTER else "max"
    if mode not in ("min", "max"):
        raise ValueError(f"train.monitor_mode must be auto, min or max, got {mode!r}")
    return (lambda v: float(v)) if mode == "min" else (lambda v: -float(v))


def improves(value: float, loss: float, best: float, best_loss: float, min_delta: float) -> bool:
    """Whether an epoch with (lower-is-better) ``value`` and validation ``loss`` beats the best.

    Better by more than ``min_delta``: yes. A tie (within ``min_delta``, e.g. an MAE or accuracy
    that has reached its limit): only when the loss also falls by more than ``min_delta``, so a
    loss that keeps shrinking by crumbs on data already separated does not reset the patience
    forever. NaN (an undefined metric) never improves.
    """
    if value < best - min_delta:
        return True
    return abs(value - best) <= min_delta and loss < best_loss - min_delta


@torch.no_grad()
def predict_outputs(model: nn.Module, part: SequenceSet, batch_size: int, device: torch.device,
                    amp: bool = False,
                    forward: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
                    | None = None) -> torch.Tensor:
    """The model's outputs for every video of ``part``, in order, in eval mode, in float32."""
    forward = forward or _call_model
    model.eval()
    autocast, _ = amp_setup(device, amp, quiet=True)
    chunks = []
    for index in batch_indices(len(part), batch_size, shuffle=False):
        x, mask = trim_batch(part.x[index].to(device), part.mask[index].to(device))
        with autocast():
            chunks.append(forward(model, x, mask).float())
    return torch.cat(chunks) if chunks else torch.empty(0)


def _call_model(model: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return model(x, mask)


def _eval_batch(tc: DictConfig, state: TrainState) -> int:
    return int(tc.eval_batch_size or state.batch_size)


# ----------------------------------------------------------------------------------------------
# Device, precision, threads, out-of-memory


def resolve_device(choice: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; ``cpu``/``cuda`` as asked (cuda must exist)."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device=cuda but no CUDA device is visible: use train.device=auto")
    return torch.device(choice)


def amp_setup(device: torch.device, amp: bool,
              quiet: bool = False) -> tuple[Callable[[], contextlib.AbstractContextManager],
                                            torch.amp.GradScaler]:
    """Autocast context factory and gradient scaler for ``train.amp`` on ``device``.

    CUDA: bf16 autocast where the GPU supports it (no scaler needed), else fp16 with a
    ``GradScaler``. CPU: full float32 (logged once), since CPU autocast gives no speed-up here.
    """
    if amp and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
        return (lambda: torch.autocast("cuda", dtype=dtype)), scaler
    if amp and not quiet:
        log.info("train.amp=true ignored on %s: training in float32", device.type)
    return contextlib.nullcontext, torch.amp.GradScaler(device.type, enabled=False)


def halve_batch_on_oom(run_epoch: Callable[[int], T], batch_size: int) -> tuple[T, int]:
    """Run ``run_epoch(batch_size)``; on CUDA out-of-memory halve the batch size and run it again.

    Returns the result and the batch size that worked (kept for the following epochs). Gives up
    (re-raises) when even a batch of one does not fit.
    """
    while True:
        try:
            return run_epoch(batch_size), batch_size
        except torch.cuda.OutOfMemoryError:
            if batch_size <= 1:
                raise
            log.warning("CUDA out of memory at batch size %d: retrying the epoch with %d",
                        batch_size, batch_size // 2)
            batch_size //= 2
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def set_num_threads(num_threads: int | None, cpus_per_task: int | None = None,
                    max_parallel: int | None = None) -> int:
    """Set torch's CPU threads: ``num_threads``, or (null) the CPUs this job has
    (:func:`job_threads` of this process's CPUs, Slurm's ``SLURM_CPUS_PER_TASK``, the launcher's
    ``cpus_per_task`` and ``max_parallel``)."""
    if num_threads is None:
        num_threads = job_threads(len(os.sched_getaffinity(0)),
                                  os.environ.get("SLURM_CPUS_PER_TASK"), cpus_per_task,
                                  max_parallel)
    torch.set_num_threads(int(num_threads))
    return int(num_threads)


def job_threads(cores: int, slurm_cpus: str | None, cpus_per_task: int | None,
                max_parallel: int | None) -> int:
    """Threads of one training job on ``cores`` usable CPUs: inside a Slurm job its
    ``SLURM_CPUS_PER_TASK``; else the launcher's ``cpus_per_task``; else, when ``max_parallel``
    jobs share this machine (the local launcher), an equal share of the cores (at least 1), so
    two jobs on two cores do not start two threads each; else every core."""
    if slurm_cpus:
        return max(1, min(cores, int(slurm_cpus)))
    if cpus_per_task:
        return max(1, min(cores, int(cpus_per_task)))
    if max_parallel:
        return max(1, cores // int(max_parallel))
    return max(1, cores)


def _lr_scheduler(optimizer: torch.optim.Optimizer, schedule: str,
                  epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(int(epochs), 1))
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    raise ValueError(f"train.lr_schedule must be cosine or constant, got {schedule!r}")
