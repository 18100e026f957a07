"""ONNX Runtime versus PyTorch eager on CPU: latency per sequence and throughput, every model.

For each sequence model at its configured size (``conf/model/*.yaml``, regression head; the
autoencoder scores its reconstruction error), the fold's whole inference graph
(:class:`hawkeye.export.ScoringModule`: normalisation, network, head) is exported with
:func:`hawkeye.export.export_verified` (the parity check included) and then timed, in this one
process, on the same inputs:

- latency at batch 1, sequence length 300: median and 95th percentile over ``--runs`` calls after
  a warm-up; ONNX Runtime and PyTorch alternate in blocks of 100 calls, so a busy shared machine
  slows both alike;
- throughput at batch 64 (sequences per second, from the median batch time).

Both use ``--threads`` threads (``torch.set_num_threads``; ONNX Runtime ``intra_op_num_threads``,
one inter-op thread). Goal: ONNX Runtime latency <= 0.5 x PyTorch eager at batch 1. The table has
the source document's columns (model, size MB, latency ms, throughput/s) for both runtimes.

    python benchmarks/bench_onnx.py [--quick] [--threads N] [--runs N] [--models tcn lstm_ae]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from hawkeye.config import compose
from hawkeye.data import Normalization
from hawkeye.export import ScoringModule, TrainedFold, export_verified, ort_session
from hawkeye.models import count_parameters
from hawkeye.prepare.features import SERIES_NAMES

MODELS = ("attention_lstm", "transformer", "conv_lstm", "tcn", "lstm_ae")
LENGTH, BATCH, N_LEVELS = 300, 64, 5
GOAL = 0.5  # ONNX Runtime / PyTorch eager latency at batch 1


def scoring_module(model: str, n_features: int) -> tuple[ScoringModule, int]:
    """``model`` at its configured size behind identity normalisation and the regression head."""
    cfg = compose([f"model={model}", "head=regression"])
    torch.manual_seed(0)
    family = str(cfg.model.family)
    norm = Normalization(torch.zeros(n_features), torch.ones(n_features))
    module = ScoringModule.build(cfg.model, cfg.head, family, n_features, N_LEVELS, norm).eval()
    if module.family.threshold(module.model) is not None:  # an untrained threshold: any value
        module.model.threshold.fill_(1.0)
    return module, count_parameters(module.model)


def alternate(calls: dict[str, Callable[[], object]], runs: int, warmup: int,
              block: int = 100) -> dict[str, np.ndarray]:
    """Seconds per call of each callable, ``runs`` each, alternating blocks of ``block`` calls."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    done = 0
    while done < runs:
        n = min(block, runs - done)
        for name, call in calls.items():
            for _ in range(n):
                started = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - started)
        done += n
    return {name: np.array(t) for name, t in times.items()}


def bench_model(model: str, n_features: int, runs: int, batch_runs: int, threads: int,
                workdir: Path) -> dict[str, float | str]:
    """Export one model and time both runtimes; one row of the table."""
    module, n_params = scoring_module(model, n_features)
    cfg = compose([f"export.ort_threads={threads}"])
    path = workdir / f"{model}.onnx"
    started = time.perf_counter()
    names = (list(SERIES_NAMES) if n_features == len(SERIES_NAMES)
             else [f"feature_{i}" for i in range(n_features)])
    parity = export_verified(TrainedFold(module, {"input_names": names}), path, cfg.export)
    export_s = time.perf_counter() - started
    session: ort.InferenceSession = ort_session(path, threads)
    rng = np.random.default_rng(0)
    row: dict[str, float | str] = {"model": model, "params": n_params,
                                   "size_mb": path.stat().st_size / 1e6, "export_s": export_s,
                                   "parity": parity}
    for batch, n_runs, key in [(1, runs, "b1"), (BATCH, batch_runs, "b64")]:
        x = rng.normal(size=(batch, LENGTH, n_features)).astype(np.float32)
        mask = np.ones((batch, LENGTH), dtype=bool)
        xt, mt = torch.from_numpy(x), torch.from_numpy(mask)
        feeds = {"x": x, "mask": mask}

        def torch_call(xt: torch.Tensor = xt, mt: torch.Tensor = mt) -> object:
            with torch.inference_mode():
                return module(xt, mt)

        def ort_call(feeds: dict = feeds) -> object:
            return session.run(None, feeds)

        times = alternate({"ort": ort_call, "torch": torch_call}, n_runs,
                          warmup=max(3, n_runs // 20), block=100 if batch == 1 else 2)
        for name, t in times.items():
            row[f"{name}_{key}_median_ms"] = float(np.median(t) * 1e3)
            row[f"{name}_{key}_p95_ms"] = float(np.percentile(t, 95) * 1e3)
            row[f"{name}_{key}_seq_s"] = batch / float(np.median(t))
    row["ratio"] = row["ort_b1_median_ms"] / row["torch_b1_median_ms"]
    return row


def print_table(rows: list[dict], threads: int, runs: int, batch_runs: int,
                n_features: int) -> None:
    print(f"\nONNX Runtime {ort.__version__} vs PyTorch {torch.__version__} eager, CPU, "
          f"{threads} thread(s); sequence length {LENGTH}, {n_features} features; latency at "
          f"batch 1 over {runs} runs after warm-up; throughput at batch {BATCH} over {batch_runs} "
          "runs\n")
    print("| model | params | size MB | ORT latency ms (median / p95) | PyTorch latency ms "
          "(median / p95) | ORT / PyTorch | ORT throughput seq/s | PyTorch throughput seq/s | "
          "export s | parity max abs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['size_mb']:.2f} | "
              f"{r['ort_b1_median_ms']:.2f} / {r['ort_b1_p95_ms']:.2f} | "
              f"{r['torch_b1_median_ms']:.2f} / {r['torch_b1_p95_ms']:.2f} | {r['ratio']:.2f} | "
              f"{r['ort_b64_seq_s']:.0f} | {r['torch_b64_seq_s']:.0f} | {r['export_s']:.1f} | "
              f"{r['parity']:.1e} |")
    print("\nShaped like the source document's table (ONNX Runtime, CPU; the source timed one "
          "60 x 10 window: TCN 0.48 MB, 0.14 ms; LSTM-AE 1.84 MB, 1.68 ms; here one "
          f"{LENGTH} x {n_features} sequence, throughput at batch {BATCH}):")
    print("| model | size MB | latency ms | throughput/s |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['size_mb']:.2f} | {r['ort_b1_median_ms']:.2f} | "
              f"{r['ort_b64_seq_s']:.0f} |")
    print()
    for r in rows:
        print(f"BENCH | onnx latency {r['model']} b1 L{LENGTH} {threads}t | "
              f"{r['ort_b1_median_ms']:.2f} ms | {r['torch_b1_median_ms']:.2f} ms torch eager | "
              f"{r['ratio']:.2f} | <= {GOAL}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 latency runs, 5 batch runs")
    parser.add_argument("--threads", type=int, default=1, help="threads of both runtimes")
    parser.add_argument("--runs", type=int, default=None, help="latency runs (default 1000)")
    parser.add_argument("--batch-runs", type=int, default=None, help="batch-64 runs (default 10)")
    parser.add_argument("--features", type=int, default=len(SERIES_NAMES),
                        help="features per frame (default: the prepared series)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    args = parser.parse_args()
    runs = args.runs or (200 if args.quick else 1000)
    batch_runs = args.batch_runs or (5 if args.quick else 10)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as workdir:
        for model in args.models:
            row = bench_model(model, args.features, runs, batch_runs, args.threads,
                              Path(workdir))
            print(f"{model}: ORT {row['ort_b1_median_ms']:.2f} ms, PyTorch "
                  f"{row['torch_b1_median_ms']:.2f} ms at batch 1 (ratio {row['ratio']:.2f}); "
                  f"export {row['export_s']:.1f} s", flush=True)
            rows.append(row)
    print_table(rows, args.threads, runs, batch_runs, args.features)


if __name__ == "__main__":
    main()
