"""Where the Hydra configs live and how code composes them outside ``@hydra.main``.

Entry points use ``@hydra.main(config_path=CONF_DIR, ...)``; tests, launch and job wrappers use
:func:`compose`, which returns the same config the command line would build.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import DictConfig, OmegaConf

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
CONFIG_NAME = "config"


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/config.yaml`` with Hydra overrides (``["model=tcn", "train.epochs=3"]``)."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(config_name=CONFIG_NAME, overrides=list(overrides))


def config_hash(cfg: DictConfig, length: int = 10) -> str:
    """A short stable hash of a config's resolved content (the identity of a run, dora-style)."""
    payload = json.dumps(OmegaConf.to_container(cfg, resolve=True), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


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
