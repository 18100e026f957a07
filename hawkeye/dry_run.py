"""``launch.dry_run=true``: the plan of a launch, printed instead of submitted.

What a launch would do, read from the same :class:`hawkeye.launch.Plan` it would submit: the sweep
points and their overrides, models, folds, how many tasks are finished (skipped) and how many go
out, the job arrays' sizes, the resources of each training job and of the collector, and the run
directory. Nothing is written, nothing is submitted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hawkeye.cluster import deal, executor_parameters, launcher_backend, split_array

if TYPE_CHECKING:
    from hawkeye.launch import Plan


def _resources(params: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "(executor defaults)"


def describe_plan(plan: Plan, is_finished: Callable[[Path], bool],
                  notes: Sequence[str] = ()) -> str:
    """The launch ``plan`` as text; ``is_finished(fold_dir)``: the task would be skipped."""
    launcher = plan.base.launcher
    done = {t for t in plan.tasks if is_finished(t.fold_dir)}
    pending = [t for t in plan.tasks if t not in done]
    folds = sorted({t.fold for t in plan.tasks})
    backend = launcher_backend(launcher)
    groups = deal(pending, launcher.max_parallel)
    arrays = split_array(groups, backend.max_array_size(launcher.max_array_size))
    lines = ["dry run (launch.dry_run=true): nothing is written or submitted",
             f"run dir: {plan.grid_dir}", f"points: {len(plan.points)}"]
    lines += [f"  {p.name or '(no sweep)'}: {' '.join(p.overrides) or '-'}  -> {p.run_dir}"
              for p in plan.points]
    lines += [f"models: {', '.join(plan.grid.models)}",
              f"folds: {', '.join(map(str, folds))} (cv.n_folds={plan.n_folds})",
              f"tasks: {len(plan.tasks)} = {len(plan.points)} point(s) x {len(plan.grid.models)} "
              f"model(s) x {len(folds)} fold(s); {len(done)} finished (would be skipped), "
              f"{len(pending)} to submit"]
    lines += [f"  skipped (finished): {t.label}" for t in plan.tasks if t in done]
    lines += [f"launcher: {launcher.name} ({launcher.executor._target_}): {len(groups)} "
              f"training job(s), tasks per job {sorted({len(g) for g in groups})}",
              f"arrays: {len(arrays)}, jobs per array {[len(a) for a in arrays]}",
              f"resources per training job: {_resources(executor_parameters(launcher))}",
              f"resources of the collector job: "
              f"{_resources(executor_parameters(launcher, launcher.collector))}"]
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)
