"""``hawkeye-telemetry generate|import [overrides]`` (``python -m hawkeye.telemetry``): build a
telemetry store. Each command is a Hydra app on ``conf/config.yaml`` with ``task=telemetry``.

Settings are ``task.generator.*`` (generate) and ``task.csv_import.*`` (import) in
``conf/task/telemetry.yaml``; the store written is ``paths.store`` (default ``data/telemetry.h5``);
``import`` reads the CSV named by ``task.csv``. Examples::

    hawkeye-telemetry generate
    hawkeye-telemetry generate paths.store=/tmp/t.h5 task.generator.n_train=2000
    hawkeye-telemetry import task.csv=drives.csv paths.store=data/mine.h5 \\
        task.csv_import.id_column=vehicle task.csv_import.signals=[speed,rpm,throttle]

Exit code 0 on success, 2 with a one-line reason for bad input or settings.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hawkeye.cli import TELEMETRY_GENERATE_HELP, TELEMETRY_IMPORT_HELP, hydra_app, run_app
from hawkeye.config import compose
from hawkeye.telemetry.csv_import import ImportConfig, import_csv
from hawkeye.telemetry.generate import GeneratorConfig, generate

USAGE = ("usage: hawkeye-telemetry generate [key=value ...]   (see hawkeye-telemetry generate "
         "--help)\n       hawkeye-telemetry import task.csv=FILE [key=value ...]")


def _section(cfg: DictConfig, name: str) -> dict:
    return OmegaConf.to_container(cfg.task[name], resolve=True)


@hydra_app(TELEMETRY_GENERATE_HELP)
def _generate_app(cfg: DictConfig) -> None:
    _finish(lambda: generate(cfg.paths.store, GeneratorConfig.from_mapping(
        _section(cfg, "generator"))))


@hydra_app(TELEMETRY_IMPORT_HELP)
def _import_app(cfg: DictConfig) -> None:
    if cfg.task.get("csv") is None:
        print(f"error: pass task.csv=FILE (the telemetry CSV to read)\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    _finish(lambda: import_csv(cfg.task.csv, cfg.paths.store,
                               ImportConfig.from_mapping(_section(cfg, "csv_import")),
                               task=str(cfg.task.name)))


def _finish(build: Callable[[], object]) -> None:
    try:
        report = build()
    except ValueError as err:  # bad input or settings: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(report)


COMMANDS = {"generate": _generate_app, "import": _import_app}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        code = 0 if args and args[0] in ("-h", "--help") else 2
        print(__doc__ if code == 0 else USAGE, file=sys.stdout if code == 0 else sys.stderr)
        return code
    overrides = ["task=telemetry", *args[1:]]
    if not any(a.startswith("-") for a in args[1:]):
        try:  # composed here first: a bad override is exit 2 with its reason, not Hydra's 1
            compose(overrides)
        except (HydraException, OmegaConfBaseException, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return run_app(COMMANDS[args[0]], overrides)


if __name__ == "__main__":
    sys.exit(main())
