"""``python -m hawkeye.telemetry generate|import key=value ...``: build a telemetry store.

Settings come from ``conf/task/telemetry.yaml`` (composed with ``task=telemetry``); a plain
``key=value`` sets ``task.generator.<key>`` (generate) or ``task.csv_import.<key>`` (import),
a dotted ``a.b=value`` is passed to Hydra as it is. ``out=`` is the store to write (default
``paths.store``, i.e. ``data/telemetry.h5``); ``import`` also needs ``csv=FILE``. Examples::

    python -m hawkeye.telemetry generate
    python -m hawkeye.telemetry generate out=/tmp/t.h5 seed=3 n_train=2000
    python -m hawkeye.telemetry import csv=drives.csv out=data/mine.h5 id_column=vehicle \\
        time_column=t signals=[speed,rpm,throttle] label_column=fault targets=[fuel] stride=30

Exit code 0 on success, 2 with a one-line reason for bad input or settings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hawkeye.config import compose
from hawkeye.telemetry.csv_import import ImportConfig, import_csv
from hawkeye.telemetry.generate import GeneratorConfig, generate

SECTIONS = {"generate": "generator", "import": "csv_import"}
USAGE = ("usage: python -m hawkeye.telemetry generate [out=STORE.h5] [key=value ...]\n"
         "       python -m hawkeye.telemetry import csv=FILE [out=STORE.h5] [key=value ...]\n"
         "keys: conf/task/telemetry.yaml (generator: / csv_import:)")


def split_arguments(command: str, args: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``out=``/``csv=`` values and the Hydra overrides for the other ``key=value`` arguments."""
    special: dict[str, str] = {}
    overrides = ["task=telemetry"]
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ValueError(f"argument {arg!r} is not key=value\n{USAGE}")
        if key in ("out", "csv"):
            special[key] = value
        elif "." in key.lstrip("+~"):
            overrides.append(arg)
        else:
            overrides.append(f"task.{SECTIONS[command]}.{key}={value}")
    if command == "generate" and "csv" in special:
        raise ValueError("csv= belongs to `import`; `generate` simulates its data")
    if command == "import" and "csv" not in special:
        raise ValueError(f"import needs csv=FILE (the telemetry CSV to read)\n{USAGE}")
    return special, overrides


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in SECTIONS:
        print(USAGE, file=sys.stderr)
        return 2
    command = args[0]
    try:
        special, overrides = split_arguments(command, args[1:])
        cfg = compose(overrides)
        out = special.get("out") or cfg.paths.store
        settings = OmegaConf.to_container(cfg.task[SECTIONS[command]], resolve=True)
        if command == "generate":
            report = generate(out, GeneratorConfig.from_mapping(settings))
        else:
            report = import_csv(special["csv"], out, ImportConfig.from_mapping(settings),
                                task=str(cfg.task.name))
    except (ValueError, HydraException, OmegaConfBaseException) as err:  # bad input or override
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
