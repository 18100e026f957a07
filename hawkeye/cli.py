"""Hydra's conventions for every entry point: ``--help``, ``--cfg job|all``, ``--info``,
``--shell-completion``.

Each ``python -m hawkeye.<verb>`` (and console script ``hawkeye-<verb>``) describes itself with an
:class:`AppHelp`: a short description, its main keys and an example. :func:`hydra_app` turns it
into Hydra's own ``hydra/help`` template (the config groups are listed by Hydra, the 200-line
config dump is left to ``--cfg job``) and decorates the entry point with ``@hydra.main`` on a
primary config of its own, ``hawkeye_<verb>`` = ``conf/config.yaml`` (the demo generator:
``conf/synthetic.yaml``) + that help, registered in Hydra's ConfigStore: the composed job config
is exactly :func:`hawkeye.config.compose`'s.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from hawkeye.config import CONF_DIR, CONFIG_NAME, SYNTHETIC_CONFIG_NAME

# Flags after which a Hydra app prints something and exits without running its task
INFO_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i",
              "--shell-completion", "-sc", "--version")
MULTIRUN_FLAGS = ("-m", "--multirun")  # launch expands sweeps itself: accepted, not needed
_VALUE_FLAGS = ("--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-dir", "-cd")
_INFO_CHOICES = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")


@dataclass(frozen=True)
class AppHelp:
    """What ``--help`` of one entry point says."""

    module: str                            # "hawkeye.launch"
    description: str                       # what it does, a few lines
    keys: Sequence[tuple[str, str]]        # (key=value form, what it means) of the main keys
    examples: Sequence[str]                # command lines, without the program name
    config: str = CONFIG_NAME              # the primary config of conf/ it composes
    groups: Sequence[str] | None = None    # the config groups it takes (None: every group)

    @property
    def script(self) -> str:
        """The console script: ``hawkeye.launch`` -> ``hawkeye-launch`` (a subcommand stays)."""
        return self.module.replace(".", "-").replace("_", "-")

    @property
    def config_name(self) -> str:
        return "hawkeye_" + self.module.split(".", 1)[1].replace(".", "_").replace(" ", "_")

    def text(self) -> str:
        """The help text; ``$APP_CONFIG_GROUPS`` is filled in by Hydra."""
        width = max(len(k) for k, _ in self.keys)
        keys = "\n".join(f"  {k.ljust(width)}  {what}" for k, what in self.keys)
        examples = "\n".join(f"  {self.script} {e}" for e in self.examples)
        body = (f"{self.script} (python -m {self.module}): {self.description}\n\n"
                f"Main keys (override any key as key=value; +key=value adds a key, which is "
                f"refused when no code reads it):\n{keys}\n\nExamples:\n{examples}\n")
        return body.replace("$", "$$") + (  # Hydra fills the template with string.Template
            f"\n{self.groups_text()}"
            "More: --cfg job (the composed config; -p SECTION for one section), --info "
            "(defaults tree, search path), --hydra-help, --shell-completion install=bash "
            "(tab completion of keys and groups)\n")

    def groups_text(self) -> str:
        """Its config groups and their options: Hydra's list of every group of conf/, or only
        those the app takes (the demo generator composes none of the pipeline's)."""
        if self.groups is None:
            return "Config groups (pick one option each, e.g. model=tcn):\n$APP_CONFIG_GROUPS\n"
        options = {g: sorted(p.stem for p in (Path(CONF_DIR) / g).glob("*.yaml"))
                   for g in self.groups}
        return "Config groups (pick one option each):\n" + "".join(
            f"{g}: {', '.join(names)}\n" for g, names in options.items())


def register(app: AppHelp) -> str:
    """Register ``app``'s help and primary config (``app.config`` + that help) in Hydra's
    ConfigStore; returns its name."""
    store = ConfigStore.instance()
    store.store(group="hydra/help", name=app.config_name, provider="hawkeye",
                node={"app_name": app.module, "header": "", "footer": "",
                      "template": app.text()})
    store.store(name=app.config_name, provider="hawkeye",
                node={"defaults": [app.config, {"override hydra/help": app.config_name},
                                   "_self_"]})
    return app.config_name


def hydra_app(app: AppHelp) -> Callable[[Callable[[DictConfig], Any]], Callable[..., Any]]:
    """``@hydra.main`` on ``conf/`` with ``app``'s ``--help``."""
    return hydra.main(config_path=CONF_DIR, config_name=register(app), version_base="1.3")


def info_flags(args: Sequence[str]) -> bool:
    """Whether ``args`` ask a Hydra app to print something and exit (``--help``, ``--cfg``...)."""
    return any(a in INFO_FLAGS or a.split("=", 1)[0] in INFO_FLAGS for a in args)


def split_flags(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(flags with their values, overrides)``; ``--shell-completion`` keeps what follows."""
    flags: list[str] = []
    overrides: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ("-sc", "--shell-completion"):  # its own arguments follow (install=bash ...)
            return [*flags, arg, *rest], overrides
        if not arg.startswith("-"):
            overrides.append(arg)
            continue
        flags.append(arg)
        if rest and (arg in _VALUE_FLAGS or (arg in ("--info", "-i") and rest[0] in _INFO_CHOICES)):
            flags.append(rest.pop(0))
    return flags, overrides


def refuse_unknown_options(args: Sequence[str]) -> None:
    """ValueError naming the ``-x`` arguments left for a command that is not a Hydra app."""
    unknown = [a for a in args if a.startswith("-")]
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; options are --wait and Hydra's --help, "
                         "--cfg job|all, --info, --shell-completion; the rest is key=value")


def answer_flags(app: AppHelp, args: Sequence[str],
                 reduce: Callable[[Sequence[str]], list[str]]) -> int:
    """Let Hydra answer ``--help``/``--cfg``/``--info``/``-sc`` for a command that is not
    itself a Hydra app (launch: its sweeps are reduced by ``reduce`` to the first config's
    overrides), with ``app``'s help. Returns the exit code."""

    @hydra_app(app)
    def app_main(cfg: DictConfig) -> None:  # reached only when the flags printed nothing
        raise SystemExit(f"{app.module}: --resolve and --package go with --cfg job|all")

    flags, overrides = split_flags(args)
    first = reduce(overrides)
    if first != overrides and ("--cfg" in flags or "-c" in flags):
        print(f"# the first config of the sweep: {' '.join(first)}", file=sys.stderr)
    return run_app(app_main, [*flags, *first])


def run_app(app_main: Callable[[], Any], args: Sequence[str]) -> int:
    """Run the ``@hydra.main`` function ``app_main`` on ``args`` (it reads ``sys.argv``); the
    exit code, for a ``main(argv) -> int`` that tests and console scripts call alike."""
    saved = sys.argv
    sys.argv = [saved[0], *args]
    try:
        app_main()
    except SystemExit as done:  # Hydra exits after --help, the app with its code
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    finally:
        sys.argv = saved
    return 0


# ----------------------------------------------------------------------------------------------
# What each entry point's --help says (one place, so the commands read alike)

LAUNCH_HELP = AppHelp(
    module="hawkeye.launch",
    description="cross-validate models on the store as job arrays (sweeps expand into the same "
                "array), then collect the summary. Every task's config is checked before "
                "anything is submitted.",
    keys=[("model=a,b | model=all", "models to train (conf/model/), one array task per fold"),
          ("launcher=local|debug|slurm|slurm_v100", "where the jobs run (conf/launcher/)"),
          ("paths.store=FILE", "the HDF5 store to train on (written by hawkeye-prepare)"),
          ("task=NAME", "the store's task (conf/task/): a PD4T task, sequences, telemetry"),
          ("cv.n_folds=5 fold=0,2", "subject-grouped folds, and which of them to run"),
          ("train.epochs=N train.lr=X ...", "training options; a,b,c values sweep"),
          ("launch.dry_run=true", "print the plan (points, folds, arrays, resources), submit "
                                  "nothing"),
          ("launch.wait=true | --wait", "follow the folds until the collector ends"),
          ("launch.force=true", "redo folds that already finished")],
    examples=["model=attention_lstm,transformer launch.dry_run=true",
              "launcher=slurm_v100 model=all train.lr=1e-3,3e-4 launcher.parameters.partition=gpu",
              "+experiment=demo launch.wait=true"])

PREPARE_HELP = AppHelp(
    module="hawkeye.prepare",
    description="PD4T videos (or landmark files beside them) -> MediaPipe hand or body-pose "
                "landmarks -> the task's clinical features -> the HDF5 store, with a QC report; "
                "resumable.",
    keys=[("data_root=DIR", "PD4T root holding Annotations*/ and Videos/"),
          ("task=NAME", "the PD4T task (conf/task/): pd4t_finger_tapping (default), "
                        "pd4t_hand_movement, pd4t_leg_agility, pd4t_gait"),
          ("paths.store=FILE", "the store to write (QC files beside it)"),
          ("prepare.landmark_source=mediapipe|precomputed", "track hands, or read "
                                                            "<video>.landmarks.npz files"),
          ("prepare.workers=N", "worker processes (null = all cores)"),
          ("prepare.strict=true", "exit non-zero when any row was skipped"),
          ("launcher=slurm prepare.num_shards=N", "a Slurm array of shards plus a merge job")],
    examples=["data_root=/data/PD4T paths.store=data/pd4t.h5 prepare.workers=8",
              "task=pd4t_leg_agility data_root=/data/PD4T paths.store=data/pd4t_leg_agility.h5",
              "data_root=data/demo/PD4T prepare.landmark_source=precomputed"])

TRAIN_HELP = AppHelp(
    module="hawkeye.train",
    description="one (model, fold) training job: fit, score the held-out fold and the test "
                "split, export ONNX (what each array task of hawkeye-launch runs).",
    keys=[("model=NAME", "the model (conf/model/)"), ("fold=K", "the CV fold, 0..cv.n_folds-1"),
          ("run_dir=DIR", "where <model>/fold_<k>/ is written"),
          ("paths.store=FILE", "the store to train on"),
          ("train.epochs=N train.device=auto|cpu|cuda", "training options (conf/train/)")],
    examples=["model=tcn fold=0 run_dir=runs/try paths.store=data/demo/pd4t_finger_tapping.h5"])

EXPORT_HELP = AppHelp(
    module="hawkeye.export",
    description="export every trained fold of a run to ONNX (parity with PyTorch checked "
                "before a file is published).",
    keys=[("run_dir=DIR", "the run folder holding <model>/fold_<k>/"),
          ("export.models=[a,b]", "model folders to export (null = all)"),
          ("export.force=true", "re-export folds that already have model.onnx")],
    examples=["run_dir=runs/demo-1a2b3c4d5e"])

PREDICT_HELP = AppHelp(
    module="hawkeye.predict",
    description="score new videos with every fold's ONNX model of a run; writes scores.csv "
                "(ensemble score, spread across folds) and a movement trace per video.",
    keys=[("video=PATH", "a video, a .landmarks.npz, a folder or a CSV (column `video`)"),
          ("run_dir=DIR", "the trained run"), ("model=NAME", "which model of the run"),
          ("predict.out=DIR", "where scores.csv and the traces go"),
          ("predict.hand=l|r", "the hand's or leg's side (null = from the file name)")],
    examples=["video=new_patient.mp4 run_dir=runs/demo-1a2b3c4d5e model=attention_lstm"])

COLLECT_HELP = AppHelp(
    module="hawkeye.collect",
    description="aggregate a run's folds into summary_<kind>.csv, summary.md, summary.json and "
                "figures; exit 0 = every row complete, 1 = a fold missing or failed, 2 = nothing "
                "to collect.",
    keys=[("run_dir=DIR", "the run (or sweep grid) folder"),
          ("collect.n_boot=N", "bootstrap resamples behind the confidence intervals"),
          ("collect.figures=false", "skip the PNG figures")],
    examples=["run_dir=runs/demo-1a2b3c4d5e collect.n_boot=200"])

TELEMETRY_GENERATE_HELP = AppHelp(
    module="hawkeye.telemetry generate",
    description="simulate vehicle telemetry windows (fuel-consumption target, labelled "
                "anomalies) into the store paths.store, for task=telemetry.",
    keys=[("paths.store=FILE", "the store to write (default data/telemetry.h5)"),
          ("task.generator.n_train=N", "windows of the train split (also n_valid, n_test)"),
          ("task.generator.seed=S", "same settings and seed = the same store")],
    examples=["task.generator.n_train=2000 paths.store=/tmp/t.h5"])

TELEMETRY_IMPORT_HELP = AppHelp(
    module="hawkeye.telemetry import",
    description="cut your own telemetry CSV into windows and write them to the store "
                "paths.store (keys in conf/task/telemetry.yaml, csv_import:).",
    keys=[("task.csv=FILE", "the CSV to read"), ("paths.store=FILE", "the store to write"),
          ("task.csv_import.id_column=COL", "the trip (or vehicle) column: windows never cross "
                                            "it"),
          ("task.csv_import.signals=[a,b]", "signal columns (null = every other numeric one)")],
    examples=["task.csv=drives.csv paths.store=data/mine.h5 task.csv_import.window=30"])

SYNTHETIC_HELP = AppHelp(
    module="hawkeye.synthetic",
    description="write a PD4T-shaped demo dataset: simulated finger-tapping hands calibrated "
                "against PARK (landmark files, annotation CSVs, synthetic.json with each trial's "
                "truth); the same settings and seed give byte-identical files.",
    keys=[("out=DIR", "the PD4T root to write (required)"),
          ("n_subjects=N seed=S", "subjects (1..999, 1-3 visits of both hands each), the seed"),
          ("synthetic=easy", "the easy variant (exact raters, little variation)"),
          ("kinematics.severity_sd=0 raters.sd=0.3", "any key of conf/synthetic/default.yaml, "
                                                     "nested keys dotted"),
          ("render_videos=true", "also draw .mp4 videos of the hand (slow)")],
    examples=["out=data/demo/PD4T", "out=/tmp/pd4t n_subjects=30 seed=3 resolutions=[640x480]"],
    config=SYNTHETIC_CONFIG_NAME, groups=("synthetic",))
