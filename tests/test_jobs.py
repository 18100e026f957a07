"""The plain-sbatch templates in jobs/ repeat resources and model lists that the configs hold
(``conf/launcher/slurm_v100.yaml``'s collector, ``conf/prepare/default.yaml``,
``conf/experiment/demo.yaml``; the training array's resources come from the config itself):
the configs are the one source of defaults, and these tests keep the templates from drifting."""

import re
from pathlib import Path

import pytest

from hawkeye.config import compose

REPO = Path(__file__).resolve().parents[1]


def sbatch_options(script: str) -> dict[str, str]:
    """The active ``#SBATCH --key=value`` lines of a template (``##SBATCH`` ones are examples)."""
    text = (REPO / "jobs" / script).read_text()
    return dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", text, re.MULTILINE))


def shell_default(script: str, variable: str) -> str:
    """The default of ``${VARIABLE:-default}`` in a template (the first one)."""
    match = re.search(rf"\${{{variable}:-([^}}]*)}}", (REPO / "jobs" / script).read_text())
    assert match, f"jobs/{script} has no ${{{variable}:-...}} default"
    return match.group(1)


def minutes(slurm_time: str) -> int:
    """``HH:MM:SS`` (Slurm's time format) in minutes."""
    hours, mins, secs = (int(v) for v in slurm_time.split(":"))
    return hours * 60 + mins + (secs > 0)


def gigabytes(memory: str) -> str:
    """``32G`` / ``32GB`` -> ``32``: sbatch's and submitit's spellings of one size."""
    return re.fullmatch(r"(\d+)GB?", memory).group(1)


def test_the_parsers_read_what_sbatch_reads() -> None:
    assert minutes("04:00:00") == 240 and minutes("00:30:30") == 31
    assert gigabytes("32G") == gigabytes("32GB") == "32"


def test_train_array_sbatch_leaves_resources_to_the_launcher_config() -> None:
    """jobs/pipeline.sh sizes the array from conf/launcher/ (hawkeye.sbatch), so the template
    hard-codes no GPU, memory, CPU count or time limit (a CPU partition rejects a GPU request)."""
    params = compose(["launcher=slurm_v100"]).launcher.parameters
    sbatch = sbatch_options("train_array.sbatch")
    assert sbatch["job-name"] == params.job_name
    assert not {"gres", "mem", "cpus-per-task", "time", "signal"} & set(sbatch)
    assert "hawkeye.sbatch options train" in (REPO / "jobs" / "pipeline.sh").read_text()


def test_collect_sbatch_asks_for_what_the_collector_job_asks_for() -> None:
    launcher = compose(["launcher=slurm_v100"]).launcher
    collector = {**launcher.parameters, **launcher.collector}
    sbatch = sbatch_options("collect.sbatch")
    assert sbatch["job-name"] == collector["job_name"]
    assert int(sbatch["cpus-per-task"]) == collector["cpus_per_task"]
    assert gigabytes(sbatch["mem"]) == gigabytes(collector["mem"])
    assert minutes(sbatch["time"]) == collector["time"]


def test_prepare_sbatch_shards_ask_for_what_submitted_shards_ask_for() -> None:
    shard = compose([]).prepare.jobs.shard
    assert int(shell_default("prepare.sbatch", "HAWKEYE_PREPARE_CPUS")) == shard.cpus_per_task
    assert minutes(shell_default("prepare.sbatch", "HAWKEYE_PREPARE_TIME")) == shard.time


@pytest.mark.parametrize(("script", "variable"), [("train_array.sbatch", "HAWKEYE_MODELS"),
                                                   ("pipeline.sh", None)])
def test_default_models_are_the_demo_experiments(script, variable) -> None:
    models = " ".join(compose(["+experiment=demo"]).launch.models)
    if variable is not None:
        assert shell_default(script, variable) == models
    else:
        assert re.search(rf'\bmodels="{models}"', (REPO / "jobs" / script).read_text())
