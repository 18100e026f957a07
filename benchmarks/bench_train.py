"""Training throughput of hawkeye.train's loop versus a bare PyTorch loop, and the whole demo CV.

1. Throughput (always): for each model, sequences per second of :func:`hawkeye.train.train`'s
   epoch loop (the whole of :func:`hawkeye.loop.fit_network`: batches by index, masks trimmed,
   validation pass, checkpoint every epoch) versus the plainest early-stopping loop over the SAME
   in-memory tensors (the fold's normalised training part and validation slice), same model and
   initial weights, same training recipe (AdamW learning rate and weight decay, gradient
   clipping), batch size and one thread: ``randperm`` -> ``model(x[i], mask[i])`` -> loss ->
   clip -> step, then a no-grad forward over the validation slice, no more (the
   checkpoint that makes a fold resumable is hawkeye's only extra work). The training passes alone
   are compared too ("pass ratio": per-step overhead).
   Timed per epoch in CPU seconds of this process (``time.process_time``), so other users of a
   shared machine count less; the two alternate and the fastest epoch of each is kept (one-off
   costs of a run, e.g. building the optimiser, are not throughput).
   Goal: hawkeye / bare >= 0.95. Beside it, each model's ONNX export of that fold in wall
   seconds: afresh (what every fold paid before ``export.reuse_graph``) and again with the graph the
   first export kept (what a later fold of the same model pays).
2. Whole CV (``--full-cv``, not in ``--quick``): 5 folds x {attention_lstm, transformer,
   conv_lstm} with ``+experiment=demo`` on a PD4T-sized synthetic set (806 videos, 200-500 frames,
   made with hawkeye.synthetic + hawkeye.prepare), run as the local launcher runs it: two worker
   processes, one thread each, tasks dealt round-robin. Reports the wall time against the 20-minute
   goal (the source needed 2-3 h on a CPU) and where the time goes (loading and folds, training
   epochs, validation, checkpoints, final scoring), plus CV MAE / exact / Pearson per model.

3. Source sizes (``--source-size``, instead of 1 and 2): the conf/model defaults (0.5-1M
   parameters) at batch 32 on 806 videos of 255 steps (15 Hz x 17 s) and 63 channels, 2 threads,
   wall time: fold 0 through hawkeye's loop and the bare loop (goal >= 0.95), the fold's ONNX
   export (afresh, its parity check, and again reusing the kept graph) and its share of the fold,
   and the 5-fold x 3-model CV wall time extrapolated for stated epoch counts against the source's
   2-3 h on a CPU.

    python benchmarks/bench_train.py [--quick] [--full-cv] [--source-size [--source-epochs N]]
                                     [--workdir DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from hawkeye import export as export_module
from hawkeye import families, loop
from hawkeye import train as train_module
from hawkeye.config import compose
from hawkeye.export import export_fold
from hawkeye.models import build_model
from hawkeye.models.heads import build_head
from hawkeye.onnx_graph import GRAPH_PREFIX
from hawkeye.store import write_sequences
from hawkeye.synthetic import aperture_trace, draw_style, tapping_params
from hawkeye.synthetic_config import load_synthetic_config

REPO = Path(__file__).resolve().parents[1]
# The demo generator's easy variant (learnable in a few epochs), each trial exactly at its score.
TAPPING = load_synthetic_config(["synthetic=easy", "kinematics.severity_sd=0"])
MODELS = ("attention_lstm", "transformer", "conv_lstm", "tcn", "lstm_ae")
CV_MODELS = ("attention_lstm", "transformer", "conv_lstm")


# ----------------------------------------------------------------------------------------------
# 1. throughput


def throughput_store(path: Path, n_videos: int, seed: int = 0, frames: tuple[int, int] = (200, 500),
                     channels: int = 6, fps: float | None = None) -> Path:
    """Videos of ``frames`` (lowest, highest) steps and ``channels`` channels, score 0-4, from the
    synthetic kinematics: aperture, velocity, the rest noise (default: demo-shaped, 6 channels)."""
    rng = np.random.default_rng(seed)
    sequences, scores = [], []
    for _ in range(n_videos):
        score = int(rng.integers(0, 5))
        n = int(rng.integers(frames[0], frames[1] + 1))
        params = tapping_params(score, draw_style(rng, TAPPING.subjects), rng, TAPPING.kinematics)
        aperture = aperture_trace(params, n, fps or 30.0, rng, TAPPING.kinematics)
        velocity = np.gradient(aperture) * (fps or 30.0)
        extra = rng.normal(size=(n, channels - 2))
        sequences.append(np.column_stack([aperture, velocity, extra]))
        scores.append(score)
    subjects = [f"{i // 4:03d}" for i in range(n_videos)]
    write_sequences(path, [f"v{i}" for i in range(n_videos)], sequences, np.array(scores),
                    subjects, fps=fps)
    return path


def bare_loop(model: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor,
              loss_fn, batch_size: int, epochs: int, recipe: DictConfig,
              validation: tuple[torch.Tensor, torch.Tensor, int],
              clock=time.process_time) -> list[tuple[float, float]]:
    """The plainest early-stopping loop over in-memory tensors with the run's training recipe
    (``recipe``: cfg.train's AdamW learning rate and weight decay, gradient-norm clipping): a
    training pass, then a no-grad pass over ``validation`` (x, mask, batch size), the forward an
    early stop needs; ``clock`` seconds of each epoch's (training pass, validation pass)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(recipe.lr),
                                  weight_decay=float(recipe.weight_decay))
    val_x, val_mask, val_batch = validation
    seconds = []
    for _ in range(epochs):
        started = clock()
        model.train()
        for index in torch.randperm(len(y)).split(batch_size):
            loss = loss_fn(model, x[index], mask[index], y[index])
            optimizer.zero_grad()
            loss.backward()
            if recipe.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(recipe.grad_clip))
            optimizer.step()
        trained = clock()
        model.eval()
        with torch.no_grad():
            for index in torch.arange(len(val_x)).split(val_batch):
                model(val_x[index], val_mask[index])
        seconds.append((trained - started, clock() - trained))
    return seconds


def hawkeye_loop(overrides: list[str], run_dir: Path,
                 clock=time.process_time) -> list[dict[str, float]]:
    """``clock`` seconds of each epoch of hawkeye.train's loop: the training pass, the validation
    pass and the checkpoint that every epoch of :func:`hawkeye.loop.fit_network` is made of.
    The fold's outputs stay in ``run_dir`` (:func:`export_seconds` exports them)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    timer = PhaseTimer(clock=clock)
    timer.wrap(loop, "halve_batch_on_oom", "train")      # one call per epoch
    timer.wrap(loop, "predict_outputs", "validate")      # one per epoch
    timer.wrap(loop, "save_checkpoint", "checkpoint")    # last.pt, one per epoch
    try:
        metrics = train_module.train(compose([*overrides, f"run_dir={run_dir}"]))
    finally:
        timer.unwrap_all()
    return [{phase: timer.calls[phase][k] for phase in ("train", "validate", "checkpoint")}
            for k in range(int(metrics["epochs_run"]))]


def throughput(model_name: str, store: Path, work: Path, epochs: int, rounds: int,
               sizes: tuple[str, ...] = ("+experiment=demo",), threads: int = 1,
               clock=time.process_time,
               export: bool = False) -> tuple[float, float, float, dict[str, float]]:
    """Training sequences per ``clock`` second of an epoch: hawkeye's whole epoch, the bare
    loop's training pass alone, the bare loop's training + validation passes (the same work but
    the checkpoint); and the phases of hawkeye's fastest epoch in seconds. ``sizes`` are the
    overrides that size the run, and
    hawkeye's last fold is left in ``<work>/hawkeye/<model_name>/fold_0`` (exported if
    ``export``)."""
    overrides = [f"paths.store={store}", f"model={model_name}", *sizes,
                 f"train.epochs={epochs}", f"train.patience={epochs + 1}",
                 f"train.num_threads={threads}", "cv.n_folds=5", "fold=0",
                 f"export.onnx={str(export).lower()}"]
    cfg = train_module.with_model_overrides(compose([*overrides, f"run_dir={work / 'probe'}"]))
    family = families.family_of(cfg.model.family, cfg.model.name)
    data = train_module.load_fold_data(cfg, keep_anomalous=family.learns_anomalies)
    if not family.uses_head:  # the autoencoder: reconstruct the normal videos
        model = build_model(cfg.model, len(data.input_names), len(data.input_names))

        def loss_fn(m, x, mask, y):
            return m.reconstruction_error(x, mask).mean()
        part = data.train.take(~data.train.anomalous)
    else:
        head = build_head(cfg.head, data.n_levels)
        model = build_model(cfg.model, len(data.input_names), head.out_dim(data.n_levels))

        def loss_fn(m, x, mask, y):
            return head.loss(m(x, mask), y)
        part = data.train
    # the autoencoder validates on its normal videos too, the others on the whole slice
    val = data.val.take(~data.val.anomalous) if not family.uses_head else data.val
    validation = (val.x, val.mask, int(cfg.train.eval_batch_size or cfg.train.batch_size))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    best_bare: tuple[float, float] = (float("inf"), float("inf"))
    best_hawkeye = {"train": float("inf")}
    for _ in range(rounds):  # alternate, keep the best epoch of each: both see the same machine
        best_hawkeye = min([best_hawkeye, *hawkeye_loop(overrides, work / "hawkeye", clock)],
                           key=lambda phases: sum(phases.values()))
        model.load_state_dict(initial)
        torch.set_num_threads(threads)
        best_bare = min([best_bare, *bare_loop(model, part.x, part.mask, part.y, loss_fn,
                                               int(cfg.train.batch_size), epochs,
                                               cfg.train, validation, clock)],
                        key=sum)
    return (len(part) / sum(best_hawkeye.values()), len(part) / best_bare[0],
            len(part) / sum(best_bare), best_hawkeye)


def export_seconds(fold: Path) -> tuple[float, float]:
    """Wall seconds of exporting the trained ``fold`` (parity check included) afresh, with no
    graph kept, then again with the graph that export kept (``export.reuse_graph``)."""
    cfg = compose([])  # export_fold reads the export section only: its defaults
    for kept in fold.parent.glob(f"{GRAPH_PREFIX}*"):
        kept.unlink()
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        export_fold(fold, cfg)
        seconds.append(time.perf_counter() - started)
    return seconds[0], seconds[1]


# ----------------------------------------------------------------------------------------------
# 3. the source's sizes (--source-size): one fold timed, the 5-fold x 3-model CV extrapolated

SOURCE_THREADS = 2        # the machine's 2 cores, one job at a time
# Epochs per fold the extrapolation assumes: 22 = what attention_lstm and conv_lstm fold 0 ran on
# this store with the conf/train defaults (best epoch 12 + patience 10; `python -m hawkeye.train
# paths.store=<work>/source_806.h5 model=... train.num_threads=2 export.onnx=false`); 30-60 = a
# best epoch of 20-50 + patience on harder (real) data; 200 = train.epochs, no early stop.
SOURCE_EPOCHS = (22, 30, 60, 200)


def source_size(work: Path, epochs: int) -> None:
    """conf/model defaults (0.5-1M parameters), batch 32, on 806 videos of 255 steps (15 Hz x
    17 s) with 63 channels: hawkeye's loop versus the bare loop on fold 0 in wall seconds, the
    fold's ONNX export (export vs parity check), and the CV wall time extrapolated from them."""
    store = work / "source_806.h5"
    if not store.exists():
        throughput_store(store, 806, frames=(255, 255), channels=63, fps=15.0)
    print(f"\nsource sizes: fold 0 of 5 on 806 videos x 255 steps x 63 channels, batch 32, "
          f"{epochs} epochs, {SOURCE_THREADS} threads, wall seconds (perf_counter), fastest "
          "epoch of each loop kept")
    print("bare: training pass + no-grad validation pass per epoch (hawkeye also checkpoints)")
    print(f"{'model':<16}{'params':>9}{'hawkeye seq/s':>14}{'bare seq/s':>12}{'ratio':>7}"
          f"{'s/epoch':>9}{'fold s':>8}{'export s':>9}{'parity s':>9}{'reused s':>9}")
    per_epoch, fixed, reuse_saves = 0.0, 0.0, 0.0
    for model in CV_MODELS:
        timer = PhaseTimer()
        timer.wrap(train_module, "train", "fold")
        timer.wrap(export_module, "export_fold", "export")      # afresh: no graph kept yet
        timer.wrap(export_module, "ort_session", "parity")     # the parity check's session ...
        timer.wrap(export_module, "parity_max_abs", "parity")  # ... and its runs
        try:
            ours, _, bare, phases = throughput(model, store, work / model, epochs, rounds=1,
                                            sizes=(), threads=SOURCE_THREADS,
                                            clock=time.perf_counter, export=True)
        finally:
            timer.unwrap_all()
        _, reused = export_seconds(work / model / "hawkeye" / model / "fold_0")
        epoch = sum(phases.values())
        fold = timer.seconds["fold"]
        per_epoch += epoch
        fixed += fold - epochs * epoch  # loading, model build, final scoring, export
        reuse_saves += timer.seconds["export"] - reused  # what folds 2-5 no longer pay
        n_params = sum(p.numel() for p in build_model(
            compose([f"model={model}"]).model, 63, 1).parameters())
        print(f"{model:<16}{n_params:>9}{ours:14.1f}{bare:12.1f}{ours / bare:7.2f}{epoch:9.1f}"
              f"{fold:8.1f}{timer.seconds['export']:9.1f}{timer.seconds['parity']:9.1f}"
              f"{reused:9.1f}", flush=True)
        print(f"BENCH | train_source_size_{model} | {ours:.1f} seq/s | {bare:.1f} seq/s | "
              f"{ours / bare:.2f} | >= 0.95")
        # share of a fold of SOURCE_EPOCHS[0] epochs (this run's fold has only `epochs`)
        full_fold = SOURCE_EPOCHS[0] * epoch + fold - epochs * epoch
        print(f"BENCH | export_source_size_{model} | {reused:.1f} s reused | "
              f"{timer.seconds['export']:.1f} s afresh | "
              f"{100 * timer.seconds['export'] / full_fold:.1f}% / "
              f"{100 * reused / full_fold:.1f}% of a {SOURCE_EPOCHS[0]}-epoch fold | smaller")
    print("extrapolated 5-fold x 3-model CV, one job at a time on 2 threads: 5 x (sum over "
          "models of (epochs x fastest epoch + the fold's fixed cost: load, scoring, export)), "
          "folds 2-5 of each model exporting from the kept graph")
    for assumed in SOURCE_EPOCHS:
        hours = (5 * (assumed * per_epoch + fixed) - 4 * reuse_saves) / 3600
        print(f"  {assumed:>3} epochs per fold: {hours:5.1f} h")
        print(f"BENCH | train_source_cv_{assumed}epochs_extrapolated | {hours:.1f} h | "
              f"source: 2-3 h CPU | {2.5 / hours:.2f}x | <= 2.5 h")
    print(f"assumed epochs: {SOURCE_EPOCHS[0]} = where attention_lstm and conv_lstm fold 0 "
          f"stopped early on this store (best 12 + patience 10; the transformer not run that "
          f"far); {SOURCE_EPOCHS[1]}-{SOURCE_EPOCHS[2]} = a best epoch of 20-50 + patience on "
          f"harder data; {SOURCE_EPOCHS[3]} = train.epochs, no early stop")


# ----------------------------------------------------------------------------------------------
# 2. the whole 5-fold x 3-model CV


class PhaseTimer:
    """Accumulates the time spent in the training job's functions by wrapping them where they are
    looked up (bench only)."""

    def __init__(self, clock=time.perf_counter) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, list[float]] = defaultdict(list)
        self.clock = clock
        self.originals: dict[tuple[object, str], object] = {}

    def wrap(self, module: object, name: str, phase: str) -> None:
        original = self.originals.setdefault((module, name), getattr(module, name))

        def timed(*args, **kwargs):
            started = self.clock()
            try:
                return original(*args, **kwargs)
            finally:
                self.calls[phase].append(self.clock() - started)
                self.seconds[phase] += self.calls[phase][-1]

        setattr(module, name, timed)

    def unwrap_all(self) -> None:
        for (module, name), original in self.originals.items():
            setattr(module, name, original)


def cv_worker(tasks: list[list[str]]) -> dict:
    """One local-launcher job: run its (model, fold) tasks one after another, timing phases."""
    timer = PhaseTimer()
    timer.wrap(train_module, "load_fold_data", "load store, folds, pad, normalise")
    timer.wrap(loop, "save_checkpoint", "checkpoints (every epoch)")
    timer.wrap(loop, "predict_outputs", "validation + final scoring passes")
    timer.wrap(families, "predict_outputs", "validation + final scoring passes")
    timer.wrap(loop, "halve_batch_on_oom", "training epochs (forward/backward/step)")
    results = []
    started = time.perf_counter()
    for overrides in tasks:
        results.append(train_module.train(compose(overrides)))
    return {"results": results, "phases": dict(timer.seconds),
            "seconds": time.perf_counter() - started}


def make_pd4t_sized_store(work: Path) -> Path:
    """806 videos of 200-500 frames through the real pipeline: synthetic landmarks -> prepare."""
    root, store = work / "PD4T", work / "pd4t_806.h5"
    if store.exists():
        return store
    # 200 subjects x 1-3 visits x 2 hands: 806 videos with this generator and seed (PD4T's count),
    # of the easy variant's PD4T-like 200-500 frames.
    subprocess.run([sys.executable, "-m", "hawkeye.synthetic", f"out={root}", "synthetic=easy",
                    "n_subjects=200", "seed=1"], check=True, cwd=REPO, capture_output=True)
    subprocess.run([sys.executable, "-m", "hawkeye.prepare", f"data_root={root}",
                    "prepare.landmark_source=precomputed", f"paths.store={store}"], check=True,
                   cwd=REPO, capture_output=True)
    return store


def full_cv(work: Path, workers: int) -> None:
    started = time.perf_counter()
    store = make_pd4t_sized_store(work)
    prepared = time.perf_counter() - started
    from hawkeye.store import load_store
    n_videos = len(load_store(store))
    run_dir = work / "cv_run"
    shutil.rmtree(run_dir, ignore_errors=True)
    tasks = [["+experiment=demo", f"paths.store={store}", f"run_dir={run_dir}", f"model={m}",
              f"fold={k}"] for m in CV_MODELS for k in range(5)]
    dealt = [tasks[i::workers] for i in range(workers)]
    # Both workers need folds.json at once; they race into it exactly as array tasks do.
    cv_started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        outcomes = pool.map(cv_worker, dealt)
    wall = time.perf_counter() - cv_started
    print(f"\nwhole CV: {n_videos} videos, 5 folds x {len(CV_MODELS)} models, {workers} worker "
          f"processes x 1 thread: {wall:.0f} s wall (store prepared in {prepared:.0f} s)")
    phases: dict[str, float] = defaultdict(float)
    for outcome in outcomes:
        for phase, seconds in outcome["phases"].items():
            phases[phase] += seconds
    busy = sum(o["seconds"] for o in outcomes)
    print(f"where the time goes ({busy:.0f} s of worker time):")
    for phase, seconds in sorted(phases.items(), key=lambda kv: -kv[1]):
        print(f"  {phase:<42} {seconds:7.1f} s  {100 * seconds / busy:5.1f}%")
    accounted = sum(phases.values())
    print(f"  {'other (metrics, outputs, model build)':<42} {busy - accounted:7.1f} s  "
          f"{100 * (busy - accounted) / busy:5.1f}%")
    by_model = defaultdict(list)
    for outcome in outcomes:
        for result in outcome["results"]:
            by_model[result["model"]].append(result)
    print(f"{'model':<16}{'CV MAE':>8}{'CV exact':>10}{'Pearson':>9}{'epochs':>8}{'s/fold':>8}"
          f"{'params':>9}")
    for model in CV_MODELS:
        rows = by_model[model]
        print(f"{model:<16}{np.mean([r['cv']['mae'] for r in rows]):8.3f}"
              f"{np.mean([r['cv']['exact'] for r in rows]):10.3f}"
              f"{np.mean([r['cv']['pearson'] for r in rows]):9.3f}"
              f"{np.mean([r['epochs_run'] for r in rows]):8.1f}"
              f"{np.mean([r['train_seconds'] for r in rows]):8.1f}{rows[0]['n_params']:>9}")
    print("note: +experiment=demo sizes (17-78K parameters) on synthetic data; the source's "
          "0.5-1M-parameter models and real PD4T videos are not what is timed here, so the "
          "source's MAE (0.37-0.40) is no accuracy reference for these numbers")
    print(f"BENCH | train_cv_5fold_x3_{n_videos}videos_2cpu | {wall / 60:.1f} min | "
          f"source: 120-180 min CPU | {150 * 60 / wall:.1f}x | <= 20 min")


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer videos, epochs and models")
    parser.add_argument("--full-cv", action="store_true",
                        help="also run the whole 5-fold x 3-model CV on 806 videos (minutes)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep data here (default: a temporary folder)")
    parser.add_argument("--source-size", action="store_true",
                        help="instead: time fold 0 of the source's model sizes on 806 videos and "
                             "extrapolate the CV (minutes)")
    parser.add_argument("--source-epochs", type=int, default=2,
                        help="epochs of each loop with --source-size (default 2)")
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_train_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.source_size:
        source_size(work, args.source_epochs)
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    n_videos, epochs, rounds = (120, 2, 2) if args.quick else (300, 3, 4)
    models = CV_MODELS if args.quick else MODELS
    store = throughput_store(work / "throughput.h5", n_videos)
    print(f"throughput: fold 0's training part of {n_videos} videos, +experiment=demo sizes, "
          f"{epochs} epochs x {rounds} rounds alternating, fastest epoch of each kept, 1 thread, "
          "CPU time (process_time: a shared machine's load counts less)")
    print("ratio: hawkeye's whole epoch (training pass, validation pass, checkpoint) against the "
          "bare loop's training + validation passes; pass ratio: the training passes alone; "
          "bare seq/s counts the bare training pass only")
    print(f"{'model':<16}{'hawkeye seq/s':>14}{'bare seq/s':>12}{'ratio':>8}{'pass ratio':>11}"
          f"{'export s':>9}{'reused s':>9}   hawkeye epoch: training pass / validation pass / "
          "checkpoint")
    for model in models:
        ours, bare_pass, bare, phases = throughput(model, store, work / model, epochs, rounds)
        total = sum(phases.values())
        shares = " / ".join(f"{100 * phases[p] / total:.0f}%" for p in
                            ("train", "validate", "checkpoint"))
        fresh, reused = export_seconds(work / model / "hawkeye" / model / "fold_0")
        pass_ratio = ours * total / phases["train"] / bare_pass  # per-step overhead only
        print(f"{model:<16}{ours:14.1f}{bare_pass:12.1f}{ours / bare:8.2f}{pass_ratio:11.2f}"
              f"{fresh:9.1f}{reused:9.1f}   {shares}", flush=True)
        print(f"BENCH | train_throughput_{model} | {ours:.1f} seq/s | {bare:.1f} seq/s | "
              f"{ours / bare:.2f} | >= 0.95")
        print(f"BENCH | train_pass_{model} | {ours * total / phases['train']:.1f} seq/s | "
              f"{bare_pass:.1f} seq/s | {pass_ratio:.2f} | >= 0.95")
        print(f"BENCH | export_{model} | {reused:.1f} s reused | {fresh:.1f} s afresh | "
              f"{fresh / max(reused, 1e-9):.1f}x | smaller")
    if args.full_cv and not args.quick:
        full_cv(work, workers=2)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
