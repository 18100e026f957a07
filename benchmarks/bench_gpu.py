"""GPU readiness of hawkeye.train's loop: samples/s with and without AMP, peak memory, OOM back-off.

For attention_lstm, transformer and conv_lstm at their conf/model default sizes (0.5-1M
parameters), batch 32, on fold 0 of 806 synthetic videos of 255 steps (15 Hz x 17 s) and 63
channels, each run through :func:`hawkeye.train.train` (so :func:`hawkeye.loop.fit_network`,
:func:`hawkeye.loop.amp_setup` and :func:`hawkeye.loop.halve_batch_on_oom` are the ones timed):

1. Samples/s of the training pass (fastest epoch, wall time; the loop's ``float(total)`` at the
   end of an epoch synchronises the device) with ``train.amp=true`` against ``train.amp=false``,
   and peak memory (``torch.cuda.max_memory_allocated``) of each.
2. The OOM back-off: the caching allocator is capped at 1.25 x the float32 run's peak and the fold
   started at 8 x the batch; the loop must halve the batch until an epoch fits and keep training.
   A back-off that was not forced (the big batch fitted) or that failed is an error (exit 1).

Without a visible CUDA device it prints why and exits 0 (nothing to measure on this machine).

    python benchmarks/bench_gpu.py [--quick] [--epochs N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from bench_train import CV_MODELS, throughput_store

from hawkeye import loop
from hawkeye import train as train_module
from hawkeye.config import compose

BATCH = 32                 # the source's batch size (conf/train default)
OOM_BATCH_FACTOR = 8       # the back-off run starts at 8 x BATCH ...
OOM_CAP = 1.25             # ... under a cap of 1.25 x the float32 peak at BATCH


@contextmanager
def recorded_epochs() -> Iterator[list[tuple[float, int]]]:
    """(wall seconds, batch size that worked) of every training pass
    (:func:`hawkeye.loop.halve_batch_on_oom`, one call per epoch) run inside the block."""
    original, epochs = loop.halve_batch_on_oom, []

    def timed(run_epoch, batch_size):
        started = time.perf_counter()
        result, used = original(run_epoch, batch_size)
        epochs.append((time.perf_counter() - started, used))
        return result, used

    loop.halve_batch_on_oom = timed
    try:
        yield epochs
    finally:
        loop.halve_batch_on_oom = original


def run_fold(model: str, store: Path, run_dir: Path, amp: bool, epochs: int,
             batch_size: int = BATCH) -> tuple[list[tuple[float, int]], int]:
    """Train fold 0 on CUDA; (the epochs' (seconds, batch size), peak bytes allocated)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    overrides = [f"paths.store={store}", f"model={model}", f"run_dir={run_dir}", "fold=0",
                 "train.device=cuda", f"train.amp={str(amp).lower()}",
                 f"train.batch_size={batch_size}", f"train.epochs={epochs}",
                 f"train.patience={epochs + 1}", "export.onnx=false"]
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    with recorded_epochs() as recorded:
        train_module.train(compose(overrides))
    return recorded, torch.cuda.max_memory_allocated()


def n_training_videos(store: Path, model: str, run_dir: Path) -> int:
    """Videos in fold 0's training part (what one training pass goes through); the folds are
    assigned in ``run_dir`` as a training job assigns them."""
    cfg = compose([f"paths.store={store}", f"model={model}", "fold=0", f"run_dir={run_dir}"])
    return len(train_module.load_fold_data(cfg).train)


def oom_back_off(model: str, store: Path, run_dir: Path, fp32_peak: int) -> tuple[int, int, float]:
    """(batch asked for, batch the loop kept, seconds of the epoch that backed off) with the
    allocator capped at ``OOM_CAP`` x ``fp32_peak``."""
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, OOM_CAP * fp32_peak / total))
    asked = BATCH * OOM_BATCH_FACTOR
    try:
        recorded, _ = run_fold(model, store, run_dir, amp=False, epochs=1, batch_size=asked)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    seconds, kept = recorded[0]
    return asked, kept, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs per run instead of 3")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per timed run")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep data here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_gpu: skipped, no CUDA device is visible (torch.cuda.is_available() is "
              "False); run `python benchmarks/bench_gpu.py` on a machine with a GPU")
        return 0
    epochs = args.epochs or (2 if args.quick else 3)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    work.mkdir(parents=True, exist_ok=True)
    store = work / "source_806.h5"
    if not store.exists():
        throughput_store(store, 806, frames=(255, 255), channels=63, fps=15.0)
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}; fold 0 of 806 "
          f"videos x 255 steps x 63 channels, conf/model default sizes, batch {BATCH}, "
          f"{epochs} epochs per run, fastest training pass kept")
    print(f"{'model':<16}{'fp32 seq/s':>11}{'AMP seq/s':>11}{'ratio':>7}{'fp32 MiB':>10}"
          f"{'AMP MiB':>9}   OOM back-off (cap {OOM_CAP} x fp32 peak)")
    failed = []
    for model in CV_MODELS:
        n_train = n_training_videos(store, model, work / model / "probe")
        fp32, fp32_peak = run_fold(model, store, work / model / "fp32", False, epochs)
        amp, amp_peak = run_fold(model, store, work / model / "amp", True, epochs)
        fp32_rate = n_train / min(s for s, _ in fp32)
        amp_rate = n_train / min(s for s, _ in amp)
        asked, kept, seconds = oom_back_off(model, store, work / model / "oom", fp32_peak)
        halvings = int(math.log2(asked // kept))
        print(f"{model:<16}{fp32_rate:11.0f}{amp_rate:11.0f}{amp_rate / fp32_rate:7.2f}"
              f"{fp32_peak / 2**20:10.0f}{amp_peak / 2**20:9.0f}   batch {asked} -> {kept} "
              f"({halvings} halvings, epoch {seconds:.1f} s)", flush=True)
        print(f"BENCH | gpu_amp_throughput_{model} | {amp_rate:.0f} seq/s | {fp32_rate:.0f} seq/s "
              f"| {amp_rate / fp32_rate:.2f} | > 1")
        print(f"BENCH | gpu_amp_peak_memory_{model} | {amp_peak / 2**20:.0f} MiB | "
              f"{fp32_peak / 2**20:.0f} MiB | {amp_peak / fp32_peak:.2f} | < 1")
        if kept == asked:
            failed.append(f"{model}: batch {asked} fitted under the cap, the back-off was not "
                          "forced (raise OOM_BATCH_FACTOR)")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    for problem in failed:
        print(f"bench_gpu: {problem}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
