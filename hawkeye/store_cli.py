"""The store's command line: ``python -m hawkeye.store write | import-table | info``.

Its arguments are files and table columns, not config keys, so it is an argparse command rather
than a Hydra app; ``--cfg job|all`` and ``--info`` still say what Hydra's would: the composed
config sections a store meets (``paths``: where prepare writes it and train reads it; ``task``:
the name it records and the layout and target training expects), the config dir and the store's
schema version.

Apart from :mod:`hawkeye.store` because ``import-table`` runs :mod:`hawkeye.tables`, which builds
on the store: the store module itself never imports the table importer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

import hawkeye.tables
from hawkeye.config import CONF_DIR, compose
from hawkeye.faults import os_error_message
from hawkeye.store import (
    NPZ_LAYOUT,
    SCHEMA_VERSION,
    check_test_subjects,
    describe,
    load_store,
    read_sequences_npz,
    write_sequences,
)
from hawkeye.tables import MISSING_POLICIES, SUBJECT_RULES, ImportReport, TableSpec, import_table

PARK_EXAMPLE = """\
example (the PARK finger-tapping table, see ../shared/data/park-finger-tapping/ABOUT.md):
  python -m hawkeye.store import-table fingertapping_features.csv park.h5 \\
      --id filename --subject filename --subject-rule park --score Rating --hand hand \\
      --exclude 'Rating*' age --missing nan
"""


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``import-table`` sub-command's options (one per :class:`TableSpec` field)."""
    parser.add_argument("table", help="input table: .csv (UTF-8) or .xlsx")
    parser.add_argument("store", help="output HDF5 store (extended if it exists)")
    parser.add_argument("--score", required=True, help="column of the integer score")
    parser.add_argument("--subject", required=True,
                        help="column of the subject (or the column --subject-rule reads)")
    parser.add_argument("--subject-rule", default="column",
                        choices=("column", "regex", *SUBJECT_RULES),
                        help="column: the cell as it is; park: the PARK participant id from a "
                             "file name; regex: see --subject-regex (default: column)")
    parser.add_argument("--subject-regex", default=None,
                        help="with --subject-rule regex: the first capture group (or the whole "
                             "match) of this pattern in the subject column is the subject")
    parser.add_argument("--id", default=None, help="column of the unique video id "
                        "(default: <table stem>:<line>)")
    parser.add_argument("--hand", default=None, help="column of the hand (l/r/left/right)")
    parser.add_argument("--split-column", default=None, help="column of the split")
    parser.add_argument("--split", default="train",
                        help="split of every row when there is no split column (default: train, "
                             "i.e. all rows cross-validated, no test split)")
    parser.add_argument("--features", nargs="+", default=[], metavar="NAME_OR_GLOB",
                        help="feature columns (default: every numeric column)")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="NAME_OR_GLOB",
                        help="columns never used as features, e.g. other raters' scores")
    parser.add_argument("--missing", default="error", choices=MISSING_POLICIES,
                        help="missing/non-numeric feature cells: error (stop, naming line and "
                             "column), skip (leave the row out, reported) or nan (keep as "
                             "missing; the tree models take it) (default: error)")
    parser.add_argument("--sheet", default=None, help="XLSX worksheet (default: the first)")
    parser.add_argument("--task", default=None, help="task name recorded in the store")


def run_import(args: argparse.Namespace) -> ImportReport:
    """Run ``import-table`` from parsed arguments (see :func:`add_table_arguments`)."""
    spec = TableSpec(score_column=args.score, subject_column=args.subject,
                     subject_rule=args.subject_rule, subject_regex=args.subject_regex,
                     id_column=args.id, hand_column=args.hand, split_column=args.split_column,
                     split=args.split, features=tuple(args.features), exclude=tuple(args.exclude),
                     missing=args.missing, sheet=args.sheet)
    return import_table(args.table, args.store, spec, task=args.task)


STORE_SECTIONS = ("paths", "task")  # what --cfg job shows: the config a store meets


def config_text(which: str) -> str:
    """``--cfg job``: the ``paths`` and ``task`` sections of the composed ``conf/config.yaml``;
    ``--cfg all``: all of it. YAML, unresolved, as Hydra's ``--cfg`` prints it."""
    cfg = compose()
    shown = cfg if which == "all" else OmegaConf.masked_copy(cfg, list(STORE_SECTIONS))
    return OmegaConf.to_yaml(shown)


def info_text() -> str:
    """``--info``: the version, where the configs live, the store's schema and its config keys."""
    cfg = compose()
    keys = {"paths.store": f"{OmegaConf.to_container(cfg.paths)['store']} (= {cfg.paths.store})",
            "task": f"{cfg.task.name} (conf/task/; task=sequences for stores you build here)",
            "task.test_split": str(cfg.task.get("test_split"))}
    width = max(map(len, keys))
    return "\n".join([
        f"Hawkeye {metadata.version('hawkeye')}: python -m hawkeye.store (argparse sub-commands, "
        "not a Hydra app)",
        f"Config dir: {CONF_DIR} (primary config: config.yaml)",
        f"Store schema version: {SCHEMA_VERSION} (layout: hawkeye/store.py)",
        "Config keys that meet a store (set them on hawkeye-prepare, -launch, -train):",
        *(f"  {k.ljust(width)}  {v}" for k, v in keys.items())])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hawkeye.store",
        description="Build a Hawkeye HDF5 store from your own sequences or feature table, or "
                    "summarise a store.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=NPZ_LAYOUT)
    parser.add_argument("--cfg", "-c", choices=("job", "all"),
                        help="print the composed config: job = its sections a store meets "
                             f"({', '.join(STORE_SECTIONS)}), all = every section; then exit")
    parser.add_argument("--info", "-i", action="store_true",
                        help="print the version, config dir, store schema version and the "
                             "store's config keys; then exit")
    sub = parser.add_subparsers(dest="command")
    write = sub.add_parser("write", help="build or extend a store from an .npz of sequences",
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog=NPZ_LAYOUT)
    write.add_argument("npz", help="input .npz (layout below)")
    write.add_argument("store", help="output HDF5 store (extended if it exists)")
    write.add_argument("--task", default=None, help="task name recorded in the store")
    table = sub.add_parser("import-table", help="build or extend a summary-only store from a "
                           "per-video feature table (CSV or XLSX)",
                           description=hawkeye.tables.__doc__.split("\n\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog=PARK_EXAMPLE)
    add_table_arguments(table)
    info = sub.add_parser("info", help="print counts per split and score, channels and lengths")
    info.add_argument("store", help="HDF5 store to describe")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point (``python -m hawkeye.store``, ``hawkeye-write-sequences``)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.cfg or args.info:
        print(config_text(args.cfg) if args.cfg else info_text())
        return 0
    if args.command is None:
        parser.error("choose a command: write, import-table or info (or --cfg, --info)")
    try:
        if args.command == "write":
            kwargs = read_sequences_npz(args.npz)
            subjects, splits = list(kwargs["subjects"]), kwargs.get("splits")
            if Path(args.store).exists():  # extended: its videos (those not rewritten) count
                stored = load_store(args.store)
                kept = ~np.isin(stored.ids.astype(str), np.asarray(kwargs["ids"]).astype(str))
                subjects += stored.subjects[kept].tolist()
                splits = [*(splits or ["train"] * len(kwargs["subjects"])),
                          *stored.splits[kept].tolist()]
            check_test_subjects(subjects, splits, f"{args.npz} -> {args.store}")
            attrs = {"task": args.task} if args.task else {}
            report = write_sequences(args.store, **kwargs, attrs={**attrs, "source_npz": args.npz},
                                     source=str(args.npz))
            print(report)
        elif args.command == "import-table":
            print(run_import(args))
        else:
            print(describe(load_store(args.store)))
    except ValueError as err:  # StoreError included: a clear message, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # full disk, read-only or forbidden folder
        print(f"error: {os_error_message(err, f'store {args.store}')}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
