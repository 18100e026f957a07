"""cProfile of one training fold (hawkeye.train, fold 0 of 5) on bench_train's synthetic stores:
where the time of the epoch loop, the final scoring and the ONNX export goes, function by function.

Not a benchmark (no ratio; ``make bench`` runs ``bench_*.py`` only): the profile behind
``bench_train.py``'s ratios. ``--size demo`` is the throughput store (300 videos, 6 channels,
``+experiment=demo`` sizes, 1 thread), ``--size source`` the source-size store (806 x 255 x 63,
conf/model defaults, 2 threads). cProfile slows Python-heavy code (the exporter) more than kernels.

    python benchmarks/profile_train.py MODEL [--size demo|source] [--epochs N] [--export]
                                       [--top N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_train import throughput_store

from hawkeye import train as train_module
from hawkeye.config import compose


def profile_fold(model: str, size: str, epochs: int, export: bool, work: Path) -> pstats.Stats:
    """Train fold 0 of ``model`` under cProfile; print its wall time and return the profile."""
    if size == "source":
        store, sizes, threads = work / "source_806.h5", [], 2
        if not store.exists():
            throughput_store(store, 806, frames=(255, 255), channels=63, fps=15.0)
    else:
        store, sizes, threads = work / "throughput.h5", ["+experiment=demo"], 1
        if not store.exists():
            throughput_store(store, 300)
    run_dir = work / f"run_{model}_{size}"
    shutil.rmtree(run_dir, ignore_errors=True)
    cfg = compose([f"paths.store={store}", f"model={model}", *sizes, f"train.epochs={epochs}",
                   f"train.patience={epochs + 1}", f"train.num_threads={threads}", "cv.n_folds=5",
                   "fold=0", f"run_dir={run_dir}", f"export.onnx={str(export).lower()}"])
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    metrics = train_module.train(cfg)
    profiler.disable()
    print(f"{model} ({size} size): {time.perf_counter() - started:.1f} s wall under cProfile, "
          f"{metrics['epochs_run']} epochs, export {metrics.get('export_seconds', '-')} s")
    return pstats.Stats(profiler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a conf/model name, e.g. conv_lstm")
    parser.add_argument("--size", choices=("demo", "source"), default="demo")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--export", action="store_true", help="export the fold to ONNX too")
    parser.add_argument("--top", type=int, default=25, help="rows of each listing")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the store here (default: a temporary folder)")
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="profile_train_"))
    work.mkdir(parents=True, exist_ok=True)
    stats = profile_fold(args.model, args.size, args.epochs, args.export, work)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
