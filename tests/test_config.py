"""Every option of every config group composes with the primary config and is instantiated by the
code that reads it; every YAML leaf key carries a comment."""

import re
from pathlib import Path

import hydra.utils
import numpy as np
import pytest
import submitit
from omegaconf import OmegaConf
from torch import nn

from hawkeye.cluster import executor_parameters, launcher_backend, make_executor
from hawkeye.collect import CollectOptions
from hawkeye.config import CONF_DIR, SYNTHETIC_CONFIG_NAME, compose, config_hash
from hawkeye.families import family_of
from hawkeye.models import build_model, count_parameters
from hawkeye.models.heads import build_head
from hawkeye.prepare.features import FeatureConfig
from hawkeye.prepare.pd4t import Pd4tConfig
from hawkeye.prepare.pose import PoseSettings
from hawkeye.prepare.tasks import task_spec_from_config
from hawkeye.prepare.worker import PrepareSettings
from hawkeye.synthetic_config import synthetic_config_from
from hawkeye.telemetry.csv_import import ImportConfig
from hawkeye.telemetry.generate import GeneratorConfig
from hawkeye.timebase import store_time_base, uniform_times
from hawkeye.tracking import tracker_class

CONF = Path(CONF_DIR)


def _group_options() -> list[tuple[str, str]]:
    return [(group.name, option.stem) for group in sorted(p for p in CONF.iterdir() if p.is_dir())
            for option in sorted(group.glob("*.yaml"))]


def test_default_config_composes_and_resolves():
    cfg = compose()
    assert cfg.paths.store.endswith(".h5")
    assert cfg.task.name in cfg.paths.store


def _instantiate(group: str, cfg, tmp_path: Path) -> object:
    """What the code builds from one group's section (the object, to check it exists)."""
    if group == "model":
        family = family_of(cfg.model.family, cfg.model.name)
        head = build_head(cfg.head, 5) if family.uses_head else None
        model = build_model(cfg.model, 4, head.out_dim(5) if head is not None else 4)
        # a fitted estimator (trees, MiniRocket's ridge) has no parameters before fit
        assert count_parameters(model) > 0 or not isinstance(model, nn.Module)
        return model
    if group == "head":
        return build_head(OmegaConf.to_container(cfg.head, resolve=True), 5)
    if group == "launcher":
        if launcher_backend(cfg.launcher).name == "slurm" and not _has("srun"):
            # SlurmExecutor refuses to start without srun: check its class and parameters
            executor_class = hydra.utils.get_class(cfg.launcher.executor._target_)
            unknown = set(executor_parameters(cfg.launcher)) - executor_class._valid_parameters()
            assert not unknown, unknown
            return executor_class
        executor = make_executor(cfg.launcher, tmp_path, cfg.launcher.collector)
        assert isinstance(executor, submitit.Executor)
        return executor
    if group == "prepare":
        return (PrepareSettings.from_config(cfg.prepare, None), FeatureConfig.from_config(
            cfg.prepare.features), PoseSettings.from_config(cfg.prepare.pose))
    if group == "task":
        if "generator" in cfg.task:  # telemetry: synthetic windows and the CSV import
            plain = OmegaConf.to_container(cfg.task, resolve=True)
            return (GeneratorConfig.from_mapping(plain["generator"]),
                    ImportConfig.from_mapping(plain["csv_import"]))
        if "pd4t_task" not in cfg.task:  # bring-your-own sequences: time base from the store
            return store_time_base(cfg.task.sample_rate_hz, cfg.task.max_seconds,
                                   np.array([30.0]), uniform_times(90, 30.0), np.array([0, 90]),
                                   "a store")
        return Pd4tConfig.from_config(cfg.task), task_spec_from_config(cfg.task)
    if group == "experiment":
        return _instantiate("model", cfg, tmp_path), CollectOptions.from_config(cfg.collect)
    if group == "synthetic":
        return synthetic_config_from(cfg)
    if group == "logger":  # the trackers' classes resolve their settings (csv: no object)
        cfg = OmegaConf.merge(cfg, {"run_dir": str(tmp_path)})
        classes = {name: tracker_class(name) for name in cfg.logger}
        return {name: klass.from_config(cfg.logger[name], cfg).settings if klass else "fold files"
                for name, klass in classes.items()}
    # cv, train, export: read key by key by the code (folds, loop, export); all must resolve
    return OmegaConf.to_container(cfg[group], resolve=True, throw_on_missing=True)


def _has(command: str) -> bool:
    import shutil

    return shutil.which(command) is not None


@pytest.mark.parametrize(("group", "option"), _group_options())
def test_every_group_option_composes_and_instantiates(group, option, tmp_path):
    if group == "experiment":  # experiments are @package _global_: they override other sections
        cfg = compose([f"+experiment={option}"])
        assert cfg != compose()
    elif group == "synthetic":  # the demo generator's own primary config, conf/synthetic.yaml
        cfg = compose([f"synthetic={option}"], config_name=SYNTHETIC_CONFIG_NAME)
    else:
        cfg = compose([f"{group}={option}"])
    assert _instantiate(group, cfg, tmp_path) is not None


# A `key: value` line (not a section header `key:`, not a list item): its value is a leaf.
_LEAF = re.compile(r"^\s*[+~]?[\w./@-]+:\s*(?P<value>[^#\s].*)$")


def uncommented_leaves(text: str) -> list[str]:
    """Lines of a YAML file that set a leaf value without a ``#`` comment."""
    return [line for line in text.splitlines()
            if (m := _LEAF.match(line)) and "#" not in m.group("value")
            and not line.lstrip().startswith("- ")]


def test_uncommented_leaves_are_found():
    assert uncommented_leaves("a: 1\nb:  # section\n  c: 2  # why\n  d: x\n- e: 1\n") == [
        "a: 1", "  d: x"]


@pytest.mark.parametrize("path", sorted(CONF.rglob("*.yaml")),
                         ids=lambda p: str(p.relative_to(CONF)))
def test_every_leaf_key_carries_a_comment(path):
    missing = uncommented_leaves(path.read_text())
    assert not missing, f"{path.relative_to(CONF.parent)}: keys without a comment: {missing}"


def test_config_hash_is_stable_and_sensitive():
    assert config_hash(compose()) == config_hash(compose())
    assert config_hash(compose()) != config_hash(compose(["seed=1"]))
