"""ONNX Runtime versus PyTorch eager on CPU: latency of every network, float and int8.

For each sequence model at its configured size (``conf/model/*.yaml``, regression head; the
autoencoder scores its reconstruction error), the fold's whole inference graph
(:class:`hawkeye.export.ScoringModule`: normalisation, network, head) is exported with
:func:`hawkeye.export.export_verified` (the parity check included) and timed, in this one
process, on the same inputs at batch 1 and batch 32, sequence length 300, against these ONNX
Runtime settings (:mod:`hawkeye.onnx_optimize`, what ``export.graph_optimization`` and
``export.quantize`` write):

- ``default``: ``model.onnx`` in the session predict opens without options (full optimisation at
  load, ``hawkeye.onnx_files.ort_session``);
- ``basic`` / ``extended``: the graph optimised at that level, saved, and opened without
  optimising again;
- ``int8``: dynamic int8 weights of MatMul, Gemm and LSTM (after the ``basic`` folding);
- ``int8 static``: the convolutions quantised with activation ranges calibrated on 32 random
  rows drawn like the timed ones (the export calibrates on the fold's training rows).

Each int8 file's largest |delta expected| (autoencoder: reconstruction error) against ``default``
on the timed inputs is printed beside it (an untrained network's: the export's own check uses
the fold's validation data).

"best float" is the fastest of default / basic / extended. The calls alternate in blocks (100 at
batch 1, 2 at batch 32), so a busy shared machine slows every runtime alike; the median is kept.
Every runtime uses ``--threads`` threads (``torch.set_num_threads``; ONNX Runtime intra-op, one
inter-op thread). Goal: ONNX Runtime latency <= 0.5 x PyTorch eager.

Also the source document's own setting: one telemetry window of 60 steps x 10 signals
(conf/task/telemetry.yaml: 60 s at 1 Hz; conf/experiment/telemetry.yaml: tcn with the continuous
head, lstm_ae) at batch 1, in milliseconds beside the source's figures (TCN 0.14 ms, LSTM-AE
1.68 ms, ONNX Runtime on its CPU).

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
from hawkeye.onnx_optimize import cpu_session, save_optimized, save_quantized
from hawkeye.prepare.features import SERIES_NAMES

MODELS = ("attention_lstm", "transformer", "conv_lstm", "tcn", "lstm_ae")
LENGTH, N_LEVELS = 300, 5
BATCHES = (1, 32)
FLOAT_SETTINGS = ("default", "basic", "extended")
GOAL = 0.5  # ONNX Runtime / PyTorch eager latency
# The source document's telemetry figures: one 60 x 10 window, ONNX Runtime on its CPU (ms).
TELEMETRY = {"tcn": 0.14, "lstm_ae": 1.68}
TELEMETRY_STEPS, TELEMETRY_SIGNALS = 60, 10


def scoring_module(model: str, n_features: int, head: str = "regression"
                   ) -> tuple[ScoringModule, int]:
    """``model`` at its configured size behind identity normalisation and ``head``."""
    cfg = compose([f"model={model}", f"head={head}"])
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


def exported(module: ScoringModule, n_features: int, path: Path, threads: int) -> float:
    """Export ``module`` to ``path`` through the real export (parity checked); seconds taken."""
    cfg = compose([f"export.ort_threads={threads}"])
    names = (list(SERIES_NAMES) if n_features == len(SERIES_NAMES)
             else [f"feature_{i}" for i in range(n_features)])
    started = time.perf_counter()
    export_verified(TrainedFold(module, {"input_names": names}), path, cfg.export)
    return time.perf_counter() - started


def sessions(path: Path, threads: int, length: int, n_features: int
             ) -> dict[str, ort.InferenceSession]:
    """Every ONNX Runtime setting of the table, opened on ``path`` (derived files beside it)."""
    opened = {"default": ort_session(path, threads)}
    for level in ("basic", "extended"):
        saved = path.with_suffix(f".{level}.onnx")
        save_optimized(path, saved, level)
        opened[level] = cpu_session(saved, threads, optimize=False)
    quantized = path.with_suffix(".int8.onnx")
    save_quantized(path.with_suffix(".basic.onnx"), quantized)
    opened["int8"] = cpu_session(quantized, threads)
    static = path.with_suffix(".int8s.onnx")
    rng = np.random.default_rng(1)  # calibration rows drawn like the timed ones (identity stats)
    calibration = [(rng.normal(size=(8, length, n_features)).astype(np.float32),
                    np.ones((8, length), dtype=bool)) for _ in range(4)]
    save_quantized(path.with_suffix(".basic.onnx"), static, calibration)
    opened["int8 static"] = cpu_session(static, threads)
    return opened


def option_sessions(path: Path) -> dict[str, ort.InferenceSession]:
    """``model.onnx`` under the session options tried besides the graph (``--session-options``):
    intra-op threads, parallel execution of independent nodes, thread-pool spinning."""
    variants = {"1 thread": (1, 1, "sequential", "1"), "2 threads": (2, 1, "sequential", "1"),
                "2 threads, no spinning": (2, 1, "sequential", "0"),
                "parallel, 2 inter-op": (1, 2, "parallel", "1")}
    opened = {}
    for name, (intra, inter, mode, spinning) in variants.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = intra, inter
        options.execution_mode = (ort.ExecutionMode.ORT_PARALLEL if mode == "parallel"
                                  else ort.ExecutionMode.ORT_SEQUENTIAL)
        options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
        options.log_severity_level = 3
        opened[name] = ort.InferenceSession(str(path), sess_options=options,
                                            providers=["CPUExecutionProvider"])
    return opened


def bench_options(model: str, n_features: int, runs: dict[int, int], workdir: Path) -> list[str]:
    """Markdown rows: eager (1 and 2 threads) and every :func:`option_sessions` variant."""
    module, _ = scoring_module(model, n_features)
    path = workdir / f"{model}_{n_features}.onnx"  # exported by bench_model
    opened = option_sessions(path)
    lines = []
    for batch, n_runs in runs.items():
        x = np.random.default_rng(0).normal(size=(batch, LENGTH, n_features)).astype(np.float32)
        mask = np.ones((batch, LENGTH), dtype=bool)
        xt, mt = torch.from_numpy(x), torch.from_numpy(mask)
        feeds = {"x": x, "mask": mask}
        calls: dict[str, Callable[[], object]] = {}
        for threads in (1, 2):
            def eager(threads: int = threads, xt: torch.Tensor = xt,
                      mt: torch.Tensor = mt) -> object:
                torch.set_num_threads(threads)
                with torch.inference_mode():
                    return module(xt, mt)
            calls[f"eager {threads}t"] = eager
        calls.update({name: (lambda s=s, feeds=feeds: s.run(None, feeds))
                      for name, s in opened.items()})
        times = alternate(calls, n_runs, warmup=max(3, n_runs // 20),
                          block=100 if batch == 1 else 2)
        ms = {name: float(np.median(t) * 1e3) for name, t in times.items()}
        lines.append(f"| {model} | {batch} | " + " | ".join(
            f"{v:.2f}" for v in ms.values()) + " |")
    torch.set_num_threads(1)
    return lines


def score_output(module: ScoringModule) -> int:
    """Index of the continuous score among the module's outputs (expected / reconstruction)."""
    names = list(module.output_names)
    return names.index("expected") if "expected" in names else names.index("reconstruction_error")


def time_settings(module: ScoringModule, opened: dict[str, ort.InferenceSession], batch: int,
                  length: int, n_features: int, runs: int
                  ) -> tuple[dict[str, float], dict[str, float]]:
    """Median ms per call of eager PyTorch and every session; each int8 file's max |delta
    score| against the default session."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, length, n_features)).astype(np.float32)
    mask = np.ones((batch, length), dtype=bool)
    xt, mt = torch.from_numpy(x), torch.from_numpy(mask)
    feeds = {"x": x, "mask": mask}

    def eager() -> object:
        with torch.inference_mode():
            return module(xt, mt)

    calls: dict[str, Callable[[], object]] = {"eager": eager}
    calls.update({name: (lambda s=s: s.run(None, feeds)) for name, s in opened.items()})
    times = alternate(calls, runs, warmup=max(3, runs // 20), block=100 if batch == 1 else 2)
    index = score_output(module)
    want = opened["default"].run(None, feeds)[index]
    delta = {name: float(np.max(np.abs(opened[name].run(None, feeds)[index] - want)))
             for name in ("int8", "int8 static")}
    return {name: float(np.median(t) * 1e3) for name, t in times.items()}, delta


def bench_model(model: str, n_features: int, length: int, runs: dict[int, int], threads: int,
                workdir: Path, head: str = "regression") -> list[dict]:
    """Export one model and time every runtime at every batch; one row per batch."""
    module, n_params = scoring_module(model, n_features, head)
    path = workdir / f"{model}_{n_features}.onnx"
    export_s = exported(module, n_features, path, threads)
    opened = sessions(path, threads, length, n_features)
    rows = []
    for batch, n_runs in runs.items():
        ms, delta = time_settings(module, opened, batch, length, n_features, n_runs)
        best = min(FLOAT_SETTINGS, key=ms.__getitem__)
        rows.append({"model": model, "params": n_params, "batch": batch, "ms": ms,
                     "best": best, "int8_delta": delta, "export_s": export_s,
                     "size_mb": path.stat().st_size / 1e6,
                     "int8_mb": path.with_suffix(".int8.onnx").stat().st_size / 1e6})
    return rows


def ratio(row: dict, setting: str) -> float:
    return row["ms"][setting] / row["ms"]["eager"]


def print_table(rows: list[dict], threads: int, runs: dict[int, int], n_features: int) -> None:
    print(f"\nONNX Runtime {ort.__version__} vs PyTorch {torch.__version__} eager, CPU, "
          f"{threads} thread(s); sequence length {LENGTH}, {n_features} features; median over "
          + ", ".join(f"{n} runs at batch {b}" for b, n in runs.items()) + "\n")
    print("| model | params | batch | eager ms | ORT default ms (ratio) | ORT basic ms | ORT "
          "extended ms | best float (ratio) | int8 ms (ratio) | int8 static ms (ratio) | max abs "
          "delta score int8 / static | MB float / int8 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ms = r["ms"]
        print(f"| {r['model']} | {r['params']:,} | {r['batch']} | {ms['eager']:.2f} | "
              f"{ms['default']:.2f} ({ratio(r, 'default'):.2f}) | {ms['basic']:.2f} | "
              f"{ms['extended']:.2f} | {r['best']} ({ratio(r, r['best']):.2f}) | "
              f"{ms['int8']:.2f} ({ratio(r, 'int8'):.2f}) | "
              f"{ms['int8 static']:.2f} ({ratio(r, 'int8 static'):.2f}) | "
              f"{r['int8_delta']['int8']:.3f} / {r['int8_delta']['int8 static']:.3f} | "
              f"{r['size_mb']:.2f} / {r['int8_mb']:.2f} |")
    print()
    for r in rows:
        name = f"onnx latency {r['model']} b{r['batch']} L{LENGTH} {threads}t"
        print(f"BENCH | {name} ({r['best']}) | {r['ms'][r['best']]:.2f} ms | "
              f"{r['ms']['eager']:.2f} ms torch eager | {ratio(r, r['best']):.2f} | <= {GOAL}")
        for quantized in ("int8", "int8 static"):
            print(f"BENCH | {name} {quantized} | {r['ms'][quantized]:.2f} ms | "
                  f"{r['ms']['eager']:.2f} ms torch eager | {ratio(r, quantized):.2f} | "
                  f"<= {GOAL}")


def print_telemetry(rows: list[dict], threads: int, runs: int) -> None:
    print(f"\nThe source's setting: one telemetry window of {TELEMETRY_STEPS} steps x "
          f"{TELEMETRY_SIGNALS} signals, batch 1, {threads} thread(s), median of {runs} runs "
          "(the source: ONNX Runtime on its own CPU)\n")
    print("| model | params | eager ms | ORT default ms | best float ms | int8 ms | int8 static "
          "ms | source ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ms = r["ms"]
        print(f"| {r['model']} | {r['params']:,} | {ms['eager']:.3f} | {ms['default']:.3f} | "
              f"{ms[r['best']]:.3f} ({r['best']}) | {ms['int8']:.3f} | {ms['int8 static']:.3f} | "
              f"{TELEMETRY[r['model']]:.2f} |")
    print()
    for r in rows:
        print(f"BENCH | onnx telemetry {TELEMETRY_STEPS}x{TELEMETRY_SIGNALS} {r['model']} b1 "
              f"{threads}t ({r['best']}) | {r['ms'][r['best']]:.3f} ms | "
              f"{TELEMETRY[r['model']]:.2f} ms source | "
              f"{r['ms'][r['best']] / TELEMETRY[r['model']]:.2f} | -")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 batch-1 runs, 6 batch-32 runs")
    parser.add_argument("--threads", type=int, default=1, help="threads of both runtimes")
    parser.add_argument("--runs", type=int, default=None, help="batch-1 runs (default 1000)")
    parser.add_argument("--batch-runs", type=int, default=None, help="batch-32 runs (default 20)")
    parser.add_argument("--features", type=int, default=len(SERIES_NAMES),
                        help="features per frame (default: the prepared series)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--no-telemetry", action="store_true",
                        help="skip the 60 x 10 telemetry window")
    parser.add_argument("--session-options", action="store_true",
                        help="also time threads, parallel execution and spinning (2 cores)")
    args = parser.parse_args()
    runs = {1: args.runs or (200 if args.quick else 1000),
            32: args.batch_runs or (6 if args.quick else 20)}
    torch.set_num_threads(args.threads)
    rows, telemetry = [], []
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as workdir:
        for model in args.models:
            for row in bench_model(model, args.features, LENGTH, runs, args.threads,
                                   Path(workdir)):
                print(f"{model} b{row['batch']}: eager {row['ms']['eager']:.2f} ms, ORT "
                      f"{row['best']} {ratio(row, row['best']):.2f}, int8 "
                      f"{ratio(row, 'int8'):.2f}", flush=True)
                rows.append(row)
        options = ([line for model in args.models
                    for line in bench_options(model, args.features, runs, Path(workdir))]
                   if args.session_options else [])
        if not args.no_telemetry:
            for model in (m for m in TELEMETRY if m in args.models):
                telemetry += bench_model(model, TELEMETRY_SIGNALS, TELEMETRY_STEPS,
                                         {1: runs[1]}, args.threads, Path(workdir),
                                         head="continuous")
    print_table(rows, args.threads, runs, args.features)
    if telemetry:
        print_telemetry(telemetry, args.threads, runs[1])
    if options:
        print("\nSession options on model.onnx (ms, median; eager PyTorch at 1 and 2 threads "
              "beside them)\n")
        print("| model | batch | eager 1t | eager 2t | ORT 1 thread | ORT 2 threads | ORT 2 "
              "threads, no spinning | ORT parallel, 2 inter-op |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        print("\n".join(options))


if __name__ == "__main__":
    main()
