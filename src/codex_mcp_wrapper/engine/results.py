"""Statuses, task results and run summaries: the JSON contract scripts and CI rely on.

One vocabulary for statuses, used everywhere (store, progress, MCP, reports)::

    TaskState    every state a task passes through, as events report it
    TaskStatus   how a task ended (a subset of TaskState)
    OutcomeStatus  how one attempt ended (a TaskStatus but never ``skipped``)
    RunStatus    a run's state
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, SupportsIndex, get_args, overload

from pydantic import BaseModel, Field, GetCoreSchemaHandler
from pydantic_core import core_schema

from codex_mcp_wrapper.engine.spending import total_usage
from codex_mcp_wrapper.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TASKS_FAILED
from codex_mcp_wrapper.missions.checks import CheckResult, CommandRecord, ToolCallRecord
from codex_mcp_wrapper.missions.review import ReviewResult

TaskStatus = Literal["ok", "failed", "timeout", "cancelled", "skipped"]
OutcomeStatus = Literal["ok", "failed", "timeout", "cancelled"]
TaskState = Literal[
    "pending",  # known, not yet scheduled
    "queued",  # its dependencies are done
    "waiting",  # waiting for a worker
    "running",
    "checking",  # deciding its expect checks
    "retrying",
    "worker-lost",
    "interrupted",  # its wrapper died; resume continues it
    "ok",
    "failed",
    "timeout",
    "cancelled",
    "skipped",
]
RunStatus = Literal["running", "ok", "failed", "cancelled", "interrupted"]
FINAL_STATUSES: tuple[str, ...] = get_args(TaskStatus)
TRANSIENT_STATES: tuple[str, ...] = ("queued", "waiting")  # shown live, not stored
# The error of a task resume finds cut short by the death of its wrapper (kill -9, a crash):
# its next attempt tells the model so (``TaskRequest.after_crash``).
CUT_SHORT_BY_CRASH = "the wrapper running this task died before it finished (a crash or kill -9)."


class TaskDiff(BaseModel):
    """What a task run in a worktree of its own (``isolation: worktree``) changed."""

    files: list[str] = Field(default_factory=list)  # changed paths, relative to the workspace
    insertions: int = 0
    deletions: int = 0
    patch: str | None = None  # a `git apply`-able patch file in the run folder; None: no change
    branch: str = ""  # the worktree's branch (deleted with it unless worktrees are kept)
    worktree: str | None = None  # where the worktree is, while it is kept (--keep-worktrees)

    def describe(self) -> str:
        """One line: ``3 files, +12 -4`` (or ``no change``)."""
        if not self.files:
            return "no change"
        files = f"{len(self.files)} file" + ("s" if len(self.files) != 1 else "")
        return f"{files}, +{self.insertions} -{self.deletions}"


class TaskResult(BaseModel):
    task_id: str
    index: int
    status: TaskStatus
    worker: str | None = None
    attempts: int = 0
    thread_id: str | None = None
    final_message: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: int = 0
    usage: dict[str, int] = Field(default_factory=dict)
    artifacts: list[str] = Field(default_factory=list)
    error: str | None = None
    log_path: str | None = None
    turns_done: int = 0
    turn_ids: list[str] = Field(default_factory=list)  # Codex's ids of its completed turns
    checks: list[CheckResult] = Field(default_factory=list)
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    commands: list[CommandRecord] = Field(default_factory=list)
    review: ReviewResult | None = None  # a review task's findings (missions/review.py)
    diff: TaskDiff | None = None  # isolation: worktree only

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class TaskList(list[TaskResult]):
    """A run's task results in mission order; also looked up by task id: ``tasks["build"]``."""

    @overload
    def __getitem__(self, key: SupportsIndex) -> TaskResult: ...

    @overload
    def __getitem__(self, key: slice) -> list[TaskResult]: ...

    @overload
    def __getitem__(self, key: str) -> TaskResult: ...

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            for result in self:
                if result.task_id == key:
                    return result
            raise KeyError(f"no task '{key}' in this run (tasks: {[r.task_id for r in self]})")
        return super().__getitem__(key)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(cls, handler(list[TaskResult]))


class DictAccess:
    """``value["key"]`` and ``value.get("key")`` on the JSON form, deprecated: these values were
    dicts before 0.2. Read their attributes instead (or ``to_json()``)."""

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def _json(self) -> dict[str, Any]:
        warnings.warn(
            f"reading a {type(self).__name__} like a dict is deprecated and will be removed; "
            "use its attributes (or .to_json() for the JSON form).",
            DeprecationWarning,
            stacklevel=3,
        )
        return self.to_json()

    def __getitem__(self, key: str) -> Any:
        return self._json()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._json().get(key, default)


class RunSummary(DictAccess, BaseModel):
    run_id: str
    mission_id: str
    status: RunStatus
    exit_code: int
    started_at: float
    finished_at: float | None = None
    duration_ms: int = 0
    run_dir: str | None = None
    workspace_root: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    usage: dict[str, int] = Field(default_factory=dict)  # the tasks' usage added up
    tasks: TaskList = Field(default_factory=TaskList)
    hook_failures: list[str] = Field(default_factory=list)  # required hooks that failed
    # apply: on_success: the tasks whose patches were applied to the workspace, in order, and
    # why the next one was not (its patch did not apply): the run is then failed.
    applied: list[str] = Field(default_factory=list)
    apply_error: str | None = None

    @property
    def ok(self) -> bool:
        """Every task ended ok (and no required hook failed)."""
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def summarise(
    run_id: str,
    mission_id: str,
    results: list[TaskResult],
    started_at: float,
    finished_at: float,
    *,
    cancelled: bool = False,
    run_dir: str | None = None,
    workspace_root: str | None = None,
    hook_failures: list[str] | None = None,
    applied: tuple[list[str], str | None] = ([], None),
) -> RunSummary:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    status: RunStatus
    if cancelled:
        status, code = "cancelled", EXIT_INTERRUPTED
    elif all(r.status == "ok" for r in results) and not hook_failures and applied[1] is None:
        status, code = "ok", EXIT_OK
    else:
        status, code = "failed", EXIT_TASKS_FAILED
    return RunSummary(
        run_id=run_id,
        mission_id=mission_id,
        status=status,
        exit_code=code,
        started_at=started_at,
        finished_at=finished_at,
        duration_ms=int((finished_at - started_at) * 1000),
        run_dir=run_dir,
        workspace_root=workspace_root,
        counts=counts,
        usage=total_usage(r.usage for r in results),
        tasks=TaskList(sorted(results, key=lambda r: r.index)),
        hook_failures=list(hook_failures or []),
        applied=applied[0],
        apply_error=applied[1],
    )
