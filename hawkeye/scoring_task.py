"""Which clinical task a model rates, and the check that a video to score is of that task.

An exported model records its task (``hawkeye.<task>`` metadata: the config's ``task.name`` and,
for PD4T tasks, the ``pd4t_task`` folder name such as "Finger tapping"). A finger-tapping model
fed a leg-agility video still outputs a number; :func:`task_mismatch` says why that number must not
be reported, unless the user overrides it (``predict.allow_task_mismatch=true``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def task_identity(task: Mapping[str, Any]) -> dict[str, str]:
    """``{"name", "pd4t_task"}`` of a ``task`` config section (``pd4t_task`` empty when the task
    is not a PD4T one, e.g. telemetry)."""
    return {"name": str(task["name"]), "pd4t_task": str(task.get("pd4t_task") or "")}


def _normal(text: str) -> str:
    return " ".join(text.replace("_", " ").lower().split())


def task_matches(model_task: Mapping[str, str], given: str) -> bool:
    """True when ``given`` (a task name or PD4T folder name, any case, ``_`` or spaces) names
    the model's task."""
    names = {_normal(model_task.get("name", "")), _normal(model_task.get("pd4t_task", ""))}
    return _normal(given) in names - {""}


def task_mismatch(model_task: Mapping[str, str] | None, given: str | None,
                  allow: bool) -> tuple[str | None, str]:
    """``(refusal, note)`` for scoring a video given as task ``given`` with a model of
    ``model_task``: a refusal message when the tasks differ and ``allow`` is false, else None and
    a note for the scores.csv row ("" when nothing is worth saying)."""
    if not given:
        return None, ""
    if model_task is None:
        return None, f"given as task {given!r}; the model does not record its task"
    if task_matches(model_task, given):
        return None, ""
    trained = model_task.get("pd4t_task") or model_task.get("name")
    if allow:
        return None, (f"given as task {given!r} but the model rates {trained!r} "
                      "(scored anyway: predict.allow_task_mismatch=true)")
    return (f"given as task {given!r} but the model rates {trained!r}: its score would be "
            "meaningless; score it with a model of that task, or pass "
            "predict.allow_task_mismatch=true to score it anyway"), ""
