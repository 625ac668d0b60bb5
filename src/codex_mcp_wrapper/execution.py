"""The seam between the runner and whatever executes one task.

The runner only knows ``TaskExecutor.execute(request, sink) -> TaskOutcome``. Today the executor
is a pool of local ``codex app-server`` workers; a Temporal activity can implement the same
Protocol later. ``TaskRequest`` and ``TaskOutcome`` are plain data (JSON-serialisable) for that.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

TaskStatus = Literal["pending", "running", "ok", "failed", "timeout", "cancelled", "skipped"]
FINAL_STATUSES = ("ok", "failed", "timeout", "cancelled", "skipped")
ApprovalDecision = Literal["accept", "decline"]


@dataclass(frozen=True)
class TaskRequest:
    run_id: str
    task_id: str
    index: int
    attempt: int
    prompts: tuple[str, ...]
    cwd: str
    sandbox: str
    approval_policy: str
    timeout_sec: float  # what is left of the task's wall-clock budget
    idle_timeout_sec: float
    model: str | None = None
    profile: str | None = None
    base_instructions: str | None = None
    developer_instructions: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    output_schema: dict[str, Any] | None = None
    preferred_worker: str | None = None
    thread_id: str | None = None  # continue this thread (a retry, a resume, a reply)
    thread_worker: str | None = None  # the worker whose CODEX_HOME holds that thread
    turns_done: int = 0  # prompts already answered in that thread
    artifacts: tuple[str, ...] = ()  # globs relative to workspace_root
    workspace_root: str | None = None
    artifacts_dir: str | None = None  # where matching files are copied
    expect: dict[str, Any] | None = None  # checks decided when the task ends ok

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TaskOutcome:
    status: TaskStatus
    final_message: str | None = None
    thread_id: str | None = None
    worker: str | None = None
    turns_done: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    retryable: bool = False
    worker_broken: bool = False  # the worker must be replaced before it runs anything else
    log_path: str | None = None
    artifacts: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EventSink(Protocol):
    """Where an executor reports what happens while it runs a task."""

    def codex_event(self, task_id: str, method: str, params: dict[str, Any]) -> None: ...

    def task_state(self, task_id: str, state: str, worker: str | None, message: str) -> None: ...

    def thread_progress(self, task_id: str, thread_id: str, worker: str, turns_done: int) -> None:
        """The task's thread and how many of its prompts are answered (for resume)."""


ApprovalHandler = Callable[[str, str, dict[str, Any]], Awaitable[ApprovalDecision]]


class TaskExecutor(Protocol):
    async def execute(self, request: TaskRequest, sink: EventSink) -> TaskOutcome: ...
