"""Bring-your-own sequences on public UCR sets: Hawkeye's sequence models as a user would run them.

Each set ships inside the ``aeon`` wheel (``aeon/datasets/data/``, read with
``aeon.datasets.load_from_ts_file``; nothing is downloaded). The benchmark writes it as a user
would: an ``.npz`` in the ``python -m hawkeye.store write`` layout (``_TRAIN`` file -> split
``train``, ``_TEST`` -> ``test``, every series its own subject, labels -> class indices), the store
through ``hawkeye.store``'s command line, then ``hawkeye.launch task=sequences head=classification
launcher=debug`` (5-fold CV on the official train split, every fold scoring the official test
split; early stopping on ``val_loss``: a validation slice of a handful of series makes accuracy
too coarse to stop on) and the collector. Printed per set and model:

- the test accuracy of the collector's **soft-vote fold ensemble** (mean class probabilities,
  arg-max), beside the folds' own mean test accuracy and what the old rule (rounding the mean
  expected class index) would have given on the same predictions;
- a ROCKET-family figure on the same split: aeon's ``MiniRocketClassifier`` measured in this run
  (seed 0; equal-length ``_eq`` files for a set of unequal lengths) and the published MiniRocket
  accuracy where one exists (Dempster, Schmidt & Webb 2021, ArrowHead 0.863 on the default
  split, ``results/accuracy_ucr109_resamples.csv`` column 0).

The ratio column is Hawkeye's ensemble / MiniRocket measured here. Small networks and few epochs
(2 CPU cores, ``--quick`` < ~3 min): a lower bound on what the models do, not a tuned result.

    python benchmarks/bench_byo_ucr.py [--quick]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ucr_data import data_dir_or_skip, load  # benchmarks/ucr_data.py

# name, what it tests, published MiniRocket accuracy on the default split (None: none found)
SETS = (("ArrowHead", "3 classes, 251 steps", 0.862857),
        ("PickupGestureWiimoteZ", "10 classes, unequal lengths 29-361", None))
MODELS = {"tcn": ["model.channels=[16,16,16]", "model.dropout=0.1"],
          "attention_lstm": ["model.hidden=32", "model.attention_dim=32", "model.num_layers=1"]}
QUICK_MODELS = ("tcn",)
TRAINING = ["train.epochs=40", "train.patience=10", "train.monitor=val_loss", "train.lr=3e-3",
            "train.batch_size=8", "train.num_threads=2", "cv.n_folds=5", "export.onnx=false",
            "collect.n_boot=200", "collect.figures=false"]
SEED = 0


def write_npz(folder: Path, name: str, path: Path) -> list[str]:
    """The set in the ``store write`` layout; returns the class names (index = label)."""
    (x_train, y_train), (x_test, y_test) = (load(folder, name, s) for s in ("TRAIN", "TEST"))
    classes = sorted(set(y_train.tolist()) | set(y_test.tolist()))
    series = [s.T for s in x_train + x_test]                     # (steps, channels) each
    splits = ["train"] * len(x_train) + ["test"] * len(x_test)
    ids = [f"{split}_{i:04d}" for i, split in enumerate(splits)]
    np.savez(path, ids=np.array(ids), subjects=np.array(ids), splits=np.array(splits),
             scores=np.array([classes.index(v) for v in [*y_train, *y_test]]),
             sequences=np.concatenate(series), lengths=np.array([len(s) for s in series]),
             channel_names=np.array([f"c{k}" for k in range(series[0].shape[1])]))
    return classes


def hawkeye_run(store: Path, runs: Path, model: str) -> dict:
    """Launch the CV with the debug launcher and return the collected row and fold details."""
    from hawkeye import launch

    args = ["task=sequences", "head=classification", f"model={model}", *MODELS[model],
            *TRAINING, f"paths.store={store}", f"paths.runs={runs}", "launcher=debug",
            f"seed={SEED}"]
    started = time.perf_counter()
    code = launch.main(args)
    seconds = time.perf_counter() - started
    (run_dir,) = [p.parent for p in runs.glob("*/run.json")]
    if code != 0:
        raise RuntimeError(f"hawkeye.launch exited {code}; see {run_dir}/summary.md")
    (row,) = json.loads((run_dir / "summary.json").read_text())["rows"]
    folds = [json.loads(p.read_text())
             for p in sorted(run_dir.glob(f"{model}/fold_*/metrics.json"))]
    return {"row": row, "seconds": seconds, "fold_accuracy": [f["test"]["accuracy"] for f in folds],
            "epochs": [f["epochs_run"] for f in folds],
            "index_rule": index_rule_accuracy(run_dir / model, int(row["n_levels"]))}


def index_rule_accuracy(model_dir: Path, n_levels: int) -> float:
    """Test accuracy of the rule the collector used before issue 16: the folds' mean expected
    class index, rounded (computed from the same predictions.csv)."""
    total: dict[str, float] = {}
    true: dict[str, int] = {}
    folds = sorted(model_dir.glob("fold_*/predictions.csv"))
    for path in folds:
        with open(path, newline="") as handle:
            for r in csv.DictReader(handle):
                if r["split"] == "test":
                    total[r["id"]] = total.get(r["id"], 0.0) + float(r["raw"])
                    true[r["id"]] = int(r["true"])
    predicted = {i: int(np.clip(np.rint(v / len(folds)), 0, n_levels - 1))
                 for i, v in total.items()}
    return float(np.mean([predicted[i] == true[i] for i in true]))


def minirocket_accuracy(folder: Path, name: str, unequal: bool) -> float:
    """Test accuracy of aeon's ``MiniRocketClassifier`` (equal-length files for unequal sets)."""
    from aeon.classification.convolution_based import MiniRocketClassifier

    (x_train, y_train), (x_test, y_test) = (load(folder, name, split, equal=unequal)
                                            for split in ("TRAIN", "TEST"))
    classifier = MiniRocketClassifier(random_state=SEED, n_jobs=1)
    classifier.fit(np.stack(x_train), y_train)
    return float(np.mean(classifier.predict(np.stack(x_test)) == y_test))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"only {', '.join(QUICK_MODELS)} (both sets)")
    args = parser.parse_args(argv)
    folder = data_dir_or_skip()
    if folder is None:
        return 0
    logging.basicConfig(level=logging.WARNING)
    from hawkeye.store_cli import main as store_main

    models = QUICK_MODELS if args.quick else tuple(MODELS)
    with tempfile.TemporaryDirectory(prefix="hawkeye-byo-ucr-") as scratch:
        for name, what, published in SETS:
            root = Path(scratch) / name
            root.mkdir()
            write_npz(folder, name, root / f"{name}.npz")
            if store_main(["write", str(root / f"{name}.npz"), str(root / f"{name}.h5")]) != 0:
                return 1
            rocket = minirocket_accuracy(folder, name, unequal="unequal" in what)
            for model in models:
                result = hawkeye_run(root / f"{name}.h5", root / f"runs_{model}", model)
                ensemble = result["row"]["test"]["accuracy"]["value"]
                low = result["row"]["test"]["accuracy"]["ci_low"]
                high = result["row"]["test"]["accuracy"]["ci_high"]
                folds = result["fold_accuracy"]
                print(f"{name} ({what}) {model}: soft-vote ensemble {ensemble:.3f} "
                      f"[{low:.3f}, {high:.3f}], folds {np.mean(folds):.3f} "
                      f"(best {max(folds):.3f}), old index rule {result['index_rule']:.3f}, "
                      f"epochs {result['epochs']}, {result['seconds']:.0f} s; MiniRocket "
                      f"(aeon, this run) {rocket:.3f}"
                      + (f", published {published:.3f}" if published else ""))
                baseline = f"MiniRocket {rocket:.3f}" + (f" (published {published:.3f})"
                                                          if published else "")
                print(f"BENCH | byo {name} {model} test accuracy | {ensemble:.3f} | {baseline} | "
                      f"{ensemble / rocket:.2f} | ensemble >= best fold "
                      f"({'yes' if ensemble >= max(folds) else 'no'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
