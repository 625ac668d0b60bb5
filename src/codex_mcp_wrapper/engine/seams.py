"""The seams between the engine and whatever executes tasks.

The runner only knows ``TaskExecutor.execute(request, sink) -> TaskOutcome``; a ``Backend``
opens an executor for one run (today: a pool of local ``codex app-server`` workers; later a
Temporal client). ``TaskSpec``, ``TaskRequest`` and ``TaskOutcome`` are plain data that
serialise to JSON, so a remote executor receives exactly what a local one does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from codex_mcp_wrapper.engine.cancels import TaskCancels
from codex_mcp_wrapper.engine.events import Event
from codex_mcp_wrapper.engine.results import OutcomeStatus, TaskDiff, TaskResult, TaskState
from codex_mcp_wrapper.missions.checks import CheckResult, CommandRecord, ToolCallRecord
from codex_mcp_wrapper.missions.expect import Expect
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.missions.review import ReviewResult

ApprovalDecision = Literal["accept", "decline"]
ApprovalKind = Literal[
    "command", "file_change", "permissions", "mcp_elicitation", "mcp_tool", "other"
]


@dataclass(frozen=True)
class WorktreeSpec:
    """Where a task with ``isolation: worktree`` works, and where its change goes.

    ``after`` holds the patch files of the worktree tasks it depends on, applied in its
    ``depends_on`` order before it starts; ``patch`` is where its own change is written."""

    workspace: str  # the workspace root (inside a git work tree)
    path: str  # the worktree (for the workspace's repository's whole work tree)
    branch: str
    patch: str
    state: str  # the run's worktree record (base commit, repository): worktrees.json
    after: tuple[tuple[str, str], ...] = ()  # (task id, patch file) of its dependencies
    keep: bool = False  # left in place when the run ends (--keep-worktrees)
    # The task's change so far, applied (uncommitted) when its worktree is made again: its
    # own patch (a resume), or that of the run whose thread it continues (a reply).
    earlier: str = ""


@dataclass(frozen=True)
class TaskSpec:
    """A task's settings with the mission's defaults applied and its paths resolved."""

    cwd: str
    sandbox: str = "read-only"
    approval_policy: str = "never"
    idle_timeout_sec: float = 300.0
    model: str | None = None
    profile: str | None = None
    base_instructions: str | None = None
    developer_instructions: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # Codex config overrides
    output_schema: dict[str, Any] | None = None
    preferred_worker: str | None = None
    artifacts: tuple[str, ...] = ()  # globs relative to workspace_root
    workspace_root: str | None = None
    artifacts_dir: str | None = None  # where matching files are copied
    expect: Expect | None = None  # checks decided when the task's turns end ok
    # The orchestrator's tools Codex may call: {type: function, name, description, inputSchema}
    tools: tuple[dict[str, Any], ...] = ()
    budget_tokens: int | None = None  # the task's token budget (engine/spending.py)
    budget_turns: int | None = None  # the turns it may start
    review: dict[str, Any] | None = None  # its first turn is Codex's review of this target
    worktree: WorktreeSpec | None = None  # isolation: worktree


@dataclass(frozen=True)
class ForkSource:
    """The thread a task's first attempt copies (Codex's ``thread/fork``) instead of starting
    a new one."""

    thread_id: str
    worker: str | None  # whose CODEX_HOME holds it
    turn_id: str | None = None  # copy through this turn (inclusive); None: all of it


@dataclass(frozen=True)
class PlannedTask:
    """A task ready for the runner: its settings resolved, its budget and retries known."""

    task_id: str
    index: int
    prompts: tuple[str, ...]
    depends_on: tuple[str, ...]
    retries: int
    timeout_sec: float
    spec: TaskSpec
    previous: TaskResult | None = None  # a result kept from an earlier run (resume)
    thread_id: str | None = None  # continue this thread (codex-reply, resume)
    thread_worker: str | None = None
    fork_from: str | None = None  # the task whose thread this one copies (once it ended ok)
    fork_turn: int | None = None  # copy only that task's first N turns
    fork: ForkSource | None = None  # a thread to copy known when planned (codex-fork)


@dataclass(frozen=True)
class TaskRequest:
    """One attempt at a task."""

    run_id: str
    task_id: str
    index: int
    attempt: int
    prompts: tuple[str, ...]
    timeout_sec: float  # what is left of the task's wall-clock budget
    spec: TaskSpec
    thread_id: str | None = None  # continue this thread (a retry, a resume, a reply)
    thread_worker: str | None = None  # the worker whose CODEX_HOME holds that thread
    turns_done: int = 0  # prompts already answered in that thread
    # The attempt before this one was cut short by the death of the wrapper (resume after a
    # crash or kill -9): the model is told so, and what was running is recorded as evidence.
    after_crash: bool = False
    spent_tokens: int = 0  # what the task's earlier attempts spent, against its budget
    spent_turns: int = 0
    fork: ForkSource | None = None  # no thread yet: copy this one (thread/fork)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TaskOutcome:
    """How an attempt ended. A failure is a value here, never an exception."""

    status: OutcomeStatus
    final_message: str | None = None
    thread_id: str | None = None
    worker: str | None = None
    turns_done: int = 0
    turns_started: int = 0  # by this attempt (a turn budget counts them)
    turn_ids: list[str] = field(default_factory=list)  # Codex's ids of the turns it completed
    usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    retryable: bool = False
    worker_broken: bool = False  # the worker must be replaced before it runs anything else
    log_path: str | None = None
    artifacts: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    commands: list[CommandRecord] = field(default_factory=list)
    review: ReviewResult | None = None  # a review task's findings
    diff: TaskDiff | None = None


@dataclass(frozen=True)
class ApprovalRequest:
    """Codex asks to do something that needs approval; ``describe()`` says what in one line."""

    kind: ApprovalKind
    run_id: str
    task_id: str
    method: str  # the Codex request it came from
    params: dict[str, Any]
    command: str | None = None  # for commands: what the model asked to run
    reason: str | None = None
    paths: tuple[str, ...] = ()  # for file changes: the files, relative to the task's cwd
    tool: str | None = None  # for MCP tool calls: SERVER.TOOL

    def describe(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        if self.command is not None:
            return f"run `{self.command}`{why}"
        if self.kind == "file_change":
            return f"apply file changes{why}"
        if self.kind == "mcp_tool":
            return f"call MCP tool {self.tool or self.params.get('serverName', '?') + '.?'}"
        if self.kind == "mcp_elicitation":
            server = self.params.get("serverName", "?")
            return f"answer MCP server {server}: {self.params.get('message', '')}"
        if self.kind == "permissions":
            return f"grant extra permissions{why}"
        return self.method


ApprovalHandler = Callable[[ApprovalRequest], Awaitable[ApprovalDecision]]


@dataclass(frozen=True)
class ToolCall:
    """Codex calls one of the orchestrator's tools (a mission's ``tools``, a Python tool)."""

    run_id: str
    task_id: str
    tool: str
    arguments: Any
    call_id: str = ""


@dataclass(frozen=True)
class ToolAnswer:
    """What the tool says back to the model; ``ok`` False marks the call failed."""

    text: str
    ok: bool = True


ToolHandler = Callable[[ToolCall], Awaitable[ToolAnswer]]


class EventSink(Protocol):
    """Where an executor reports what happens while it runs a task."""

    def codex_event(self, task_id: str, method: str, params: dict[str, Any]) -> None: ...

    def task_state(
        self, task_id: str, state: TaskState, worker: str | None, message: str
    ) -> None: ...

    def thread_progress(self, task_id: str, thread_id: str, worker: str, turns_done: int) -> None:
        """The task's thread and how many of its prompts are answered (for resume)."""


class TaskExecutor(Protocol):
    async def execute(self, request: TaskRequest, sink: EventSink) -> TaskOutcome: ...


@dataclass(frozen=True)
class RunContext:
    """What a backend needs to know about the run it executes tasks for."""

    run_id: str
    run_dir: Path
    workspace_root: Path
    workers: int  # how many tasks may run at once
    thread_workers: tuple[str, ...]  # workers holding threads this run continues
    approvals: ApprovalHandler
    publish: Callable[[Event], None]  # backend events (e.g. model requests) for the run's bus
    redact: Callable[[str], str]  # for whatever the backend writes itself (e.g. request logs)
    tools: ToolHandler | None = None  # answers Codex's calls of the orchestrator's tools
    # Where a running task can be cancelled alone (``runs cancel --task``); a backend whose
    # runner runs here hands it to the ``MissionRunner``.
    cancels: TaskCancels | None = None


class Backend(Protocol):
    """Runs a run's planned tasks and releases everything it started when they end.

    ``check`` is the pre-flight, called before anything of the run is recorded: it raises the
    ``EnvironmentProblem`` that would make every task fail (no binary, no credentials).
    ``run_tasks`` schedules the tasks with the engine's ``MissionRunner`` (here, over local
    workers; or inside a Temporal workflow, over hosts) and publishes each task's
    ``TaskFinished`` on ``run.publish``; cancelled, it publishes the unfinished ones as
    ``cancelled`` before the cancellation goes on."""

    def check(self, mission: Mission) -> None: ...

    def warm(self) -> AbstractAsyncContextManager[None]:
        """Keep what the backend starts (processes, model servers) from one run to the next
        until the block ends; outside it each run stops what it started."""
        ...

    async def run_tasks(
        self,
        mission: Mission,
        run: RunContext,
        tasks: Sequence[PlannedTask],
        retry_backoff: Sequence[float],
    ) -> None: ...

    async def steer(self, run_id: str, task_id: str, text: str) -> str | None:
        """Add ``text`` to the running turn of a task of a run this backend executes; the
        turn's id, or None when the task has no turn running here."""
        ...


@dataclass(frozen=True)
class SlotsState:
    """The workers of this process at one moment: task slots busy and free, and each Codex
    process's resident memory (MiB; None while unknown) by worker label."""

    busy: int = 0
    free: int = 0
    memory_mb: Mapping[str, float | None] = field(default_factory=dict)
