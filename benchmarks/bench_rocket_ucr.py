"""Hawkeye's MiniRocket on public UCR/UEA sets: test accuracy on the official train/test split.

The sets ship inside the ``aeon`` wheel (``aeon/datasets/data/``, read with
``aeon.datasets.load_from_ts_file``; nothing is downloaded). Each is fitted on its ``_TRAIN`` file
and scored on ``_TEST`` by :class:`hawkeye.models.minirocket.MiniRocketRidge` with the
classification head, exactly as a fold would be (raw sequences, Hawkeye's padding and
standardisation), beside, measured in the same run on the same split:

- aeon's own ``MiniRocketClassifier`` (its MiniRocket, ``StandardScaler``, ``RidgeClassifierCV``),
  the maintained reference pipeline. It takes equal lengths only, so for a set of unequal lengths
  it reads the archive's equal-length version (``<name>_eq_*.ts``) instead;
- the published MiniRocket accuracy where one exists: Dempster, Schmidt & Webb (2021), the
  authors' results file ``results/accuracy_ucr109_resamples.csv`` (github.com/angus924/minirocket),
  column 0, the default split (its resamples 1-29 are random re-splits).

Both MiniRockets draw random channel combinations and biases (seed 0 here), so a point or two of
difference on a small test set is noise. The ratio column is Hawkeye / aeon on the same split.

    python benchmarks/bench_rocket_ucr.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ucr_data import data_dir_or_skip, load  # benchmarks/ucr_data.py

from hawkeye.config import compose
from hawkeye.models import build_model
from hawkeye.models.heads import build_head
from hawkeye.models.minirocket import KERNEL_LENGTH

# name, what it tests, published accuracy on the default split (None: no published figure found)
SETS = (
    ("ArrowHead", "univariate, 251 steps", 0.862857),
    ("PickupGestureWiimoteZ", "univariate, unequal lengths 29-361", None),
    ("BasicMotions", "6 channels, 100 steps", None),
    ("GunPoint", "univariate, 150 steps", 0.993333),
    ("ItalyPowerDemand", "univariate, 24 steps", 0.968902),
    ("JapaneseVowels", "12 channels, unequal lengths 7-29", None),
)
QUICK = ("ArrowHead", "PickupGestureWiimoteZ")
SEED = 0


def padded(series: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Hawkeye's layout: ``x (N, L, channels)`` zero-padded at the end, ``mask (N, L)``."""
    lengths = np.array([s.shape[1] for s in series])
    x = np.zeros((len(series), lengths.max(), series[0].shape[0]), np.float32)
    for i, s in enumerate(series):
        x[i, :s.shape[1]] = s.T
    return x, np.arange(lengths.max())[None, :] < lengths[:, None]


def hawkeye_accuracy(train: tuple, test: tuple) -> tuple[float, float]:
    """Test accuracy of ``conf/model/minirocket.yaml`` with the classification head, and the
    seconds to fit and predict."""
    classes = np.unique(train[1])
    cfg = compose(["model=minirocket", "head=classification", f"model.random_state={SEED}"])
    head = build_head(cfg.head, len(classes))
    x, mask = padded(train[0])
    started = time.perf_counter()
    model = build_model(cfg.model, x.shape[2], head.out_dim(len(classes)))
    model.fit(x, mask, np.searchsorted(classes, train[1]))
    raw = model.predict(*padded(test[0]))
    seconds = time.perf_counter() - started
    predicted = classes[head.predict(torch.from_numpy(raw)).numpy()]
    return float(np.mean(predicted == test[1])), seconds


def aeon_accuracy(folder: Path, name: str, unequal: bool) -> tuple[float, float]:
    """Test accuracy of aeon's ``MiniRocketClassifier`` (equal-length files for unequal sets)."""
    from aeon.classification.convolution_based import MiniRocketClassifier

    (x_train, y_train), (x_test, y_test) = (load(folder, name, split, equal=unequal)
                                            for split in ("TRAIN", "TEST"))
    started = time.perf_counter()
    classifier = MiniRocketClassifier(random_state=SEED, n_jobs=1)
    classifier.fit(np.stack(x_train), y_train)
    predicted = classifier.predict(np.stack(x_test))
    return float(np.mean(predicted == y_test)), time.perf_counter() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    args = parser.parse_args(argv)
    folder = data_dir_or_skip()
    if folder is None:
        return 0
    torch.set_num_threads(1)
    rows = []
    for name, what, published in SETS:
        if args.quick and name not in QUICK:
            continue
        train, test = (load(folder, name, split) for split in ("TRAIN", "TEST"))
        shortest = min(s.shape[1] for s in train[0] + test[0])
        if shortest < KERNEL_LENGTH:
            print(f"{name} ({what}): skipped, its shortest sequence has {shortest} steps and "
                  f"MiniRocket needs {KERNEL_LENGTH}")
            continue
        unequal = len({s.shape[1] for s in train[0] + test[0]}) > 1
        ours, our_s = hawkeye_accuracy(train, test)
        reference, aeon_s = aeon_accuracy(folder, name, unequal)
        rows.append((name, what, len(train[1]), len(test[1]), ours, reference, published))
        print(f"{name} ({what}; {len(train[1])} train / {len(test[1])} test): Hawkeye "
              f"{ours:.3f} in {our_s:.1f} s, aeon MiniRocketClassifier{' (_eq files)' * unequal} "
              f"{reference:.3f} in {aeon_s:.1f} s, published "
              f"{'-' if published is None else f'{published:.3f}'}")
        print(f"BENCH | minirocket test accuracy, {name} | {ours:.3f} | {reference:.3f} (aeon"
              f"{', _eq files' * unequal}) | {ours / reference:.2f} | published "
              f"{'-' if published is None else f'{published:.3f}'}")
    print("\n| set | kind | train / test | Hawkeye MiniRocket | aeon MiniRocketClassifier | "
          "published (Dempster et al. 2021, default split) |")
    print("|---|---|---|---|---|---|")
    for name, what, n_train, n_test, ours, reference, published in rows:
        print(f"| {name} | {what} | {n_train} / {n_test} | {ours:.3f} | {reference:.3f} | "
              f"{'-' if published is None else f'{published:.3f}'} |")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
