"""Shared pytest fixtures. Each section belongs to the module that needs it; keep edits additive."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------------------------
# Local Slurm cluster (scripts/slurm-local.sh; used by tests marked `slurm`)
#
# `make test` runs `scripts/slurm-local.sh up` first; the script writes the environment needed to
# use the cluster to a fixed place, $HAWKEYE_SLURM_DIR/slurm.env (default /tmp/hawkeye-slurm), and,
# when it cannot start, the reason to up.error beside it. The fixture reads both: a test marked
# `slurm` runs on the real cluster or is skipped with that reason (deselect: -m "not slurm").

SLURM_DIR = Path(os.environ.get("HAWKEYE_SLURM_DIR", "/tmp/hawkeye-slurm"))
SLURM_ENV_FILE = SLURM_DIR / "slurm.env"
_SLURM_VARS = ("SLURM_CONF", "HAWKEYE_SLURM_BIN", "PATH")


@dataclass(frozen=True)
class SlurmCluster:
    """The running local cluster: the variables that select it and the env file they come from."""

    env: dict[str, str]      # SLURM_CONF, HAWKEYE_SLURM_BIN and PATH (sacct stand-in first)
    env_file: Path


def _read_slurm_env(env_file: Path) -> dict[str, str]:
    """The variables ``source env_file`` sets, read by bash itself (the file is shell)."""
    out = subprocess.run(["bash", "-c", 'set -a; source "$1"; env -0', "_", str(env_file)],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    pairs = (item.split("=", 1) for item in out.split("\0") if "=" in item)
    return {k: v for k, v in pairs if k in _SLURM_VARS}


def _slurm_unavailable(env_file: Path) -> str | None:
    """Why the local cluster cannot be used, or None when its node answers."""
    if not env_file.is_file():
        error = SLURM_DIR / "up.error"
        why = error.read_text().strip() if error.is_file() else "it was not started"
        return (f"local Slurm cluster is not up ({why}); start it with `scripts/slurm-local.sh up` "
                "(make test does)")
    try:
        env = {**os.environ, **_read_slurm_env(env_file)}
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                               env=env, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return f"local Slurm cluster does not answer ({error}); run scripts/slurm-local.sh up"
    states = state.stdout.split()
    if state.returncode != 0 or not any(s in ("idle", "mixed", "allocated", "completing")
                                        for s in states):
        said = state.stdout.strip() or state.stderr.strip()
        return f"local Slurm node is not usable (sinfo: {said}); run scripts/slurm-local.sh up"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """The local Slurm cluster, its variables set in ``os.environ`` for the session (submitit and
    the Slurm commands read them); skips with the reason when the cluster is not up."""
    reason = _slurm_unavailable(SLURM_ENV_FILE)
    if reason:
        pytest.skip(reason)
    env = _read_slurm_env(SLURM_ENV_FILE)
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    yield SlurmCluster(env=env, env_file=SLURM_ENV_FILE)
    patch.undo()
