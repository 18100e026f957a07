"""``python -m hawkeye.prepare data_root=... paths.store=...`` (``make prepare DATA=...``).

A thin Hydra wrapper: compose the config, then run :func:`hawkeye.prepare.pipeline.prepare` in
this process, or submit it as a Slurm array of shards plus a merge job
(:mod:`hawkeye.prepare.submit`, whose :func:`~hawkeye.prepare.submit.should_submit` says when:
never with the default ``launcher=local``), and set the exit code.
"""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from hawkeye.cli import PREPARE_HELP, hydra_app
from hawkeye.config import CONFIG_NAME
from hawkeye.faults import StoreBusyError, os_error_message
from hawkeye.prepare.checks import after_run, before_decoding
from hawkeye.prepare.pipeline import prepare_from_config
from hawkeye.prepare.qc import SKIPPED, read_qc_csv
from hawkeye.prepare.submit import should_submit, submit_from_config

log = logging.getLogger("hawkeye.prepare")


@hydra_app(PREPARE_HELP)
def main(cfg: DictConfig) -> None:
    """Prepare here or submit; exit 2 on a whole-run problem (bad settings or output folder,
    nothing usable written, a split left empty), 1 when ``prepare.strict`` fails."""
    problems = before_decoding(cfg, HydraConfig.get().overrides.task,
                               lambda o: hydra.compose(config_name=CONFIG_NAME, overrides=list(o)))
    try:
        if problems:
            raise ValueError(f"{len(problems)} problem(s), nothing was decoded:\n  - "
                             + "\n  - ".join(problems))
        if should_submit(cfg):
            sys.exit(submit_from_config(cfg))
        report = prepare_from_config(cfg)
        problems = after_run(read_qc_csv(report.qc_csv), report.store, cfg.data_root, cfg.prepare)
        if problems:
            raise ValueError("\n  - ".join(["the run produced no usable store:", *problems]))
    # a whole-run problem (also a store another prepare is writing): say it, no traceback
    except (FileNotFoundError, ValueError, StoreBusyError) as err:
        log.error("prepare: %s", err)
        sys.exit(2)
    except OSError as err:  # full disk, read-only or forbidden folder: say it, no traceback
        log.error("prepare: %s (videos flushed before are kept)",
                  os_error_message(err, f"the store {cfg.paths.store}"))
        sys.exit(2)
    if report.exit_code:
        log.error("prepare.strict=true and %d row(s) were skipped (see %s)",
                  report.counts.get(SKIPPED, 0), report.qc_md)
    sys.exit(report.exit_code)


if __name__ == "__main__":
    main()
