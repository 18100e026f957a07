"""The plain-sbatch path's Python side (``jobs/pipeline.sh``): resources and job states.

``python -m hawkeye.sbatch options train|collect [HYDRA_OVERRIDE ...]`` prints the sbatch options
of the training array or the collector job, one per line, from the launcher config (``launcher=``,
``launcher.parameters.*``: the same values ``python -m hawkeye.launch`` submits with), so the
job templates hard-code no GPU, memory or CPU count. ``python -m hawkeye.sbatch parallel ...``
prints ``launcher.parameters.array_parallelism``.

:func:`job_state` asks ``sacct`` what became of a job (the collector names a cancelled pending
array task's state instead of only "not run").
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import OmegaConf

from hawkeye.config import compose

# submitit's SlurmExecutor parameter -> sbatch option (the ones a plain sbatch job can take)
_SBATCH_NAMES = {
    "partition": "partition", "account": "account", "qos": "qos", "time": "time",
    "nodes": "nodes", "ntasks_per_node": "ntasks-per-node", "cpus_per_task": "cpus-per-task",
    "mem": "mem", "gres": "gres", "job_name": "job-name",
}
JOBS = ("train", "collect")


def job_parameters(launcher: Mapping[str, Any], job: str) -> dict[str, Any]:
    """``launcher.parameters``, updated with ``launcher.collector`` for the collector job."""
    if job not in JOBS:
        raise ValueError(f"job must be one of {JOBS}, got {job!r}")
    params = dict(launcher["parameters"])
    if job == "collect":
        params.update(launcher.get("collector") or {})
    return params


def sbatch_options(params: Mapping[str, Any], signal: bool = True) -> list[str]:
    """``--key=value`` sbatch options for submitit-style ``params`` (None values are left out:
    the cluster's default). With ``signal``, ``signal_delay_s`` becomes the USR2 warning that
    jobs/train_array.sbatch traps to requeue (a job that does not trap it would be killed)."""
    options = [f"--{_SBATCH_NAMES[key]}={value}" for key, value in params.items()
               if key in _SBATCH_NAMES and value is not None]
    if signal and params.get("signal_delay_s") is not None:
        options.append(f"--signal=B:USR2@{int(params['signal_delay_s'])}")
    extra = params.get("additional_parameters") or {}
    options += [f"--{key.replace('_', '-')}={value}" for key, value in extra.items()]
    return options


def job_state(job_id: str) -> str | None:
    """Slurm's state of ``job_id`` (e.g. ``123_4``) from ``sacct``; None when sacct is missing or
    does not know the job."""
    if not shutil.which("sacct"):
        return None
    try:
        out = subprocess.run(["sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j",
                              job_id.split("_")[0]], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.stdout.splitlines()[1:]:
        fields = line.split("|")
        if len(fields) >= 2 and fields[0] == job_id:
            return fields[1].split()[0] or None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; prints options one per line, exit 2 with a message on a bad argument."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if not args or args[0] not in ("options", "parallel"):
            raise ValueError("usage: python -m hawkeye.sbatch options train|collect [overrides] | "
                             "parallel [overrides]")
        if args[0] == "options":
            if len(args) < 2:
                raise ValueError("options needs the job: train or collect")
            launcher = OmegaConf.to_container(compose(args[2:]).launcher, resolve=True)
            params = job_parameters(launcher, args[1])
            print("\n".join(sbatch_options(params, signal=args[1] == "train")))
        else:
            launcher = compose(args[1:]).launcher
            parallel = launcher.parameters.get("array_parallelism")
            if parallel is None:
                raise ValueError(f"launcher {launcher.name!r} has no parameters."
                                 "array_parallelism: jobs/pipeline.sh needs a Slurm launcher")
            print(int(parallel))
    except Exception as err:  # noqa: BLE001 - Hydra's errors have many types; a message, no trace
        print(f"hawkeye.sbatch: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
