"""Where the Hydra configs live, how code composes them outside ``@hydra.main``, and what a run's
identity is.

Entry points use ``@hydra.main(config_path=CONF_DIR, ...)``; tests, launch and job wrappers use
:func:`compose`, which returns the same config the command line would build.

Run identity (dora-style): a run is named by the hash of its configuration minus the keys that
do not change what a training task computes (:data:`NOT_IDENTITY`). :func:`identity_config` is
that reduced config; :func:`identity_hash` (one (model, point) config: every fold's
``config_hash``), :func:`point_hash` (one sweep point, all its models) and :func:`grid_hash` (a
sweep) name run directories and checkpoints, so launch and train agree without importing each
other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import DictConfig, OmegaConf

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
CONFIG_NAME = "config"
SYNTHETIC_CONFIG_NAME = "synthetic"  # the demo generator's own primary config, conf/synthetic.yaml

# Keys that do not change what a training task computes, so they are left out of the run's
# identity hash: where and how it runs (fold, launcher, launch), where outputs go, and the stages
# before (prepare, data_root: training reads the store) and after (collect, export) training,
# and which experiment trackers watch it (logger).
# The hash covers configuration, not the store's bytes: after rebuilding a store at the same path,
# relaunch with launch.force=true or another launch.name.
NOT_IDENTITY = ("fold", "run_dir", "launch", "launcher", "hydra", "collect", "export", "prepare",
                "data_root", "paths.runs", "logger")
LOG_DIR_NAME = "logs"  # submitit's folder (scripts, pickles, logs) below a grid directory


def compose(overrides: Sequence[str] = (), config_name: str = CONFIG_NAME) -> DictConfig:
    """Compose ``conf/config.yaml`` (or another primary config of ``conf/``, e.g. the demo
    generator's ``synthetic``) with Hydra overrides (``["model=tcn", "train.epochs=3"]``)."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def config_hash(cfg: DictConfig, length: int = 10) -> str:
    """A short stable hash of a config's resolved content (the identity of a run, dora-style)."""
    payload = json.dumps(OmegaConf.to_container(cfg, resolve=True), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


def identity_config(cfg: DictConfig | Mapping[str, Any]) -> DictConfig:
    """``cfg`` resolved, without the keys of :data:`NOT_IDENTITY`: what a run's hash covers."""
    cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
    ident = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for dotted in NOT_IDENTITY:
        parent, _, leaf = dotted.rpartition(".")
        node = OmegaConf.select(ident, parent) if parent else ident
        if isinstance(node, DictConfig) and leaf in node:
            node.pop(leaf)
    return ident


def identity_hash(cfg: DictConfig | Mapping[str, Any]) -> str:
    """The identity of what one job computes: its config minus where and how it runs (any fold)."""
    return config_hash(identity_config(cfg))


def point_hash(configs: Mapping[str, DictConfig]) -> str:
    """Identity of one sweep point: the hash of every model's identity config (order-free)."""
    return config_hash(OmegaConf.create({m: identity_config(c)
                                         for m, c in sorted(configs.items())}))


def grid_hash(point_hashes: Iterable[str]) -> str:
    """Identity of a sweep: the hash of its points' hashes (order-free)."""
    return config_hash(OmegaConf.create({"points": sorted(point_hashes)}))


def section_values(cls: type, section: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The values of a config ``section`` for the fields of dataclass ``cls``, checked.

    Every field must be present and no other key may be: a typo in an override fails here, naming
    ``where`` (the YAML file and section to look at), instead of silently keeping a default.
    Lists become tuples, so frozen dataclasses stay hashable.
    """
    names = [f.name for f in dataclasses.fields(cls)]
    given = {str(key): section[key] for key in section}
    missing = [n for n in names if n not in given]
    unknown = sorted(set(given) - set(names))
    if missing or unknown:
        raise ValueError(f"{where}: missing keys {missing}, unknown keys {unknown}; "
                         f"expected exactly {names}")
    return {n: tuple(v) if isinstance(v, list | tuple) else v for n, v in given.items()}
