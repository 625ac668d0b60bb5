"""What a large mission's workflow carries from one run to the next and returns: each result
without what makes it large (its final message, commands, checks, ...). The submitter has
those from the task's own event as it finished, or from the outcome its host kept in the
shared store (``hydrate``)."""

from __future__ import annotations

from pydantic import TypeAdapter

from codex_mcp_wrapper.engine.results import TaskResult
from codex_mcp_wrapper.engine.seams import TaskOutcome

HEAVY = ("final_message", "artifacts", "checks", "tool_calls", "commands", "review", "diff")
OUTCOME: TypeAdapter[TaskOutcome] = TypeAdapter(TaskOutcome)  # an outcome as JSON data
_EMPTY = TaskResult(task_id="", index=0, status="ok")


def slim(result: TaskResult) -> TaskResult:
    return result.model_copy(update={name: getattr(_EMPTY, name) for name in HEAVY})


def hydrate(result: TaskResult, outcome: TaskOutcome | None) -> TaskResult:
    """A slimmed result with its last attempt's outcome put back, when that attempt is the
    one that ended the task."""
    if outcome is None or outcome.status != result.status:
        return result
    return result.model_copy(update={name: getattr(outcome, name) for name in HEAVY})
