"""Hydra's conventions on every entry point: --help (description, main keys, an example),
--cfg job, --info; the console scripts of pyproject.toml resolve to them."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from hawkeye import cli

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
# Commands whose config is Hydra's: --help is AppHelp's, --cfg job and --info work on them
HYDRA_COMMANDS = [["hawkeye-prepare"], ["hawkeye-launch"], ["hawkeye-train"],
                  ["hawkeye-collect"], ["hawkeye-export"], ["hawkeye-predict"],
                  ["hawkeye-telemetry", "generate"], ["hawkeye-telemetry", "import"]]


def target(script: str) -> Callable[..., object]:
    module, _, name = SCRIPTS[script].partition(":")
    return getattr(importlib.import_module(module), name)


def run(script: str, args: list[str], capsys) -> tuple[int, str, str]:
    """Run a console script's target in this process, as the script would; (code, out, err)."""
    main = target(script)
    try:  # a @hydra.main target reads sys.argv; the others take argv
        code = cli.run_app(main, args) if hasattr(main, "__wrapped__") else main(args)
    except SystemExit as done:  # argparse's --help
        code = done.code or 0
    out, err = capsys.readouterr()
    return int(code or 0), out, err


def test_every_verb_has_a_console_script() -> None:
    verbs = {"prepare", "launch", "train", "collect", "export", "predict", "store", "telemetry",
             "synthetic"}
    assert {f"hawkeye-{v}" for v in verbs} <= set(SCRIPTS)
    for script in SCRIPTS:
        assert callable(target(script)), script


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_help_exits_0(script, capsys) -> None:
    code, out, _ = run(script, ["--help"], capsys)
    assert code == 0 and 3 < len(out.splitlines()) < 80, out


@pytest.mark.parametrize("command", HYDRA_COMMANDS, ids=" ".join)
def test_help_says_what_it_does_the_main_keys_and_an_example(command, capsys) -> None:
    script, *sub = command
    code, out, _ = run(script, [*sub, "--help"], capsys)
    name = " ".join(command)
    assert code == 0 and out.startswith(f"{name} (python -m "), out
    assert "Main keys" in out and f"Examples:\n  {name} " in out
    assert "model: attention_lstm, conv_lstm" in out  # Hydra's $APP_CONFIG_GROUPS


@pytest.mark.parametrize("command", HYDRA_COMMANDS, ids=" ".join)
def test_cfg_job_and_info_exit_0(command, capsys) -> None:
    script, *sub = command
    code, out, _ = run(script, [*sub, "--cfg", "job", "-p", "cv"], capsys)
    assert code == 0 and "n_folds: 5" in out, out
    code, out, _ = run(script, [*sub, "--info", "defaults"], capsys)
    assert code == 0 and "Defaults List" in out


def test_launch_cfg_job_shows_the_first_config_of_a_sweep(capsys) -> None:
    code, out, err = run("hawkeye-launch", ["--cfg", "job", "-p", "train", "model=tcn,gbm",
                                            "train.lr=0.5,0.25", "-m"], capsys)
    assert code == 0 and "lr: 0.5" in out
    assert "the first config of the sweep: train.lr=0.5 model=tcn" in err


def test_launch_refuses_options_it_does_not_know(capsys) -> None:
    from hawkeye.launch import main

    assert main(["--resolve"]) == 2
    assert "unknown option(s) ['--resolve']" in capsys.readouterr().err


def test_the_installed_console_scripts_are_those_of_pyproject() -> None:
    dist = importlib.metadata.distribution("hawkeye")
    url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
    if Path(url.removeprefix("file://")).resolve() != REPO.resolve():
        pytest.skip(f"the installed hawkeye is the checkout at {url}, not {REPO}: its scripts "
                    "are checked there (after `make install`)")
    installed = {e.name: e.value for e in dist.entry_points if e.group == "console_scripts"}
    assert installed == SCRIPTS, "reinstall: .venv/bin/pip install --no-deps -e ."


@pytest.mark.parametrize("script", ["hawkeye-launch", "hawkeye-prepare"])
def test_shell_completion_installs_for_bash(script, capsys) -> None:
    code, out, _ = run(script, ["--shell-completion", "install=bash"], capsys)
    assert code == 0 and "hydra_bash_completion()" in out


def test_synthetic_is_a_hydra_app_on_its_own_config(capsys) -> None:
    code, out, _ = run("hawkeye-synthetic", ["--help"], capsys)
    assert code == 0 and out.startswith("hawkeye-synthetic (python -m hawkeye.synthetic)"), out
    assert "Main keys" in out and "Examples:\n  hawkeye-synthetic out=" in out
    assert "synthetic: default, easy" in out and "model:" not in out  # only its own group
    code, out, _ = run("hawkeye-synthetic", ["--cfg", "job", "n_subjects=7", "synthetic=easy"],
                       capsys)
    assert code == 0 and "n_subjects: 7\n" in out and "out: null" in out
    assert "\n  sd: 0.0\n" in out and "\ncv:" not in out  # easy's exact raters; no pipeline section
    code, out, _ = run("hawkeye-synthetic", ["--info", "defaults"], capsys)
    assert code == 0 and "synthetic/default" in out
    code, out, _ = run("hawkeye-synthetic", ["--shell-completion", "install=bash"], capsys)
    assert code == 0 and "hydra_bash_completion()" in out


@pytest.mark.parametrize("script", ["hawkeye-store", "hawkeye-write-sequences"])
def test_store_cfg_and_info_say_what_hydra_would(script, capsys) -> None:
    from hawkeye.store import SCHEMA_VERSION

    code, out, _ = run(script, ["--cfg", "job"], capsys)
    assert code == 0 and "paths:\n  store: data/${task.name}.h5" in out
    assert "task:\n  name: pd4t_finger_tapping" in out and "\ncv:" not in out
    code, out, _ = run(script, ["--cfg", "all"], capsys)
    assert code == 0 and "\ncv:\n  n_folds: 5" in out and "paths:" in out
    code, out, _ = run(script, ["--info"], capsys)
    assert code == 0 and out.startswith(f"Hawkeye {importlib.metadata.version('hawkeye')}")
    assert f"Store schema version: {SCHEMA_VERSION}" in out and str(cli.CONF_DIR) in out
    assert "paths.store" in out and "data/pd4t_finger_tapping.h5" in out


def test_store_without_a_command_says_which_there_are(capsys) -> None:
    code, _, err = run("hawkeye-store", [], capsys)
    assert code == 2 and "choose a command: write, import-table or info" in err
