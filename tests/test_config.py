"""Every option of every config group composes with the primary config."""

from pathlib import Path

import pytest

from hawkeye.config import CONF_DIR, compose, config_hash


def _group_options() -> list[tuple[str, str]]:
    options = []
    for group_dir in sorted(p for p in Path(CONF_DIR).iterdir() if p.is_dir()):
        for option in sorted(group_dir.glob("*.yaml")):
            options.append((group_dir.name, option.stem))
    return options


def test_default_config_composes_and_resolves():
    cfg = compose()
    assert cfg.paths.store.endswith(".h5")
    assert cfg.task.name in cfg.paths.store


@pytest.mark.parametrize(("group", "option"), _group_options())
def test_every_group_option_composes(group, option):
    if group == "experiment":  # experiments are @package _global_: they override other sections
        assert compose([f"+experiment={option}"]) != compose()
    else:  # a group outside the primary defaults (synthetic: its own entry point) is appended
        prefix = "" if group in compose() else "+"
        assert compose([f"{prefix}{group}={option}"])[group] is not None


def test_config_hash_is_stable_and_sensitive():
    assert config_hash(compose()) == config_hash(compose())
    assert config_hash(compose()) != config_hash(compose(["seed=1"]))
