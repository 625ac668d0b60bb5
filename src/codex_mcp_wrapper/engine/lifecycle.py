"""One run of a mission, start to end: store, reports, backend, runner, events.

``drive_run`` is what ``Runs`` (the application API) calls for every run, resume and reply;
it knows no Codex: the ``Backend`` it is given opens the executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.engine.assembly import Extras, RunWiring, assemble_run, run_redactor
from codex_mcp_wrapper.engine.cancels import TaskCancels
from codex_mcp_wrapper.engine.control import Controls, listening, run_controls
from codex_mcp_wrapper.engine.events import (
    Event,
    EventBus,
    RunFinished,
    RunStarted,
    Subscriber,
    TaskFinished,
)
from codex_mcp_wrapper.engine.hooks import HookRunner, PythonHook
from codex_mcp_wrapper.engine.patches import apply_all
from codex_mcp_wrapper.engine.planning import plan_tasks
from codex_mcp_wrapper.engine.recorder import RunRecorder
from codex_mcp_wrapper.engine.redaction import Redactor, redacting
from codex_mcp_wrapper.engine.reports import ReportWriter
from codex_mcp_wrapper.engine.results import RunSummary, TaskResult, summarise
from codex_mcp_wrapper.engine.seams import (
    ApprovalHandler,
    Backend,
    ForkSource,
    PlannedTask,
    RunContext,
)
from codex_mcp_wrapper.engine.store import RunStore
from codex_mcp_wrapper.engine.tools import PythonTool
from codex_mcp_wrapper.engine.worktrees import prune_dead_runs
from codex_mcp_wrapper.errors import MissionError, RunDetached, WrapperError
from codex_mcp_wrapper.missions.loading import check_servers_defined, check_worktree_workspace
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.settings import Settings


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class RunOptions:
    """How to run a mission, beyond the mission itself.

    ``previous`` holds results of an earlier run of the same mission (tasks that ended ok are
    kept, the others continue); ``threads`` maps a task id to a (thread id, worker label) to
    continue instead of starting a new thread; ``approvals`` answers Codex's approval requests
    (default: the settings' fixed policy); ``junit``/``html`` are extra report paths (the run
    folder gets ``junit.xml`` and ``report.html`` unless ``reports`` is off: a single
    session's call (``Runs.codex``/``reply``) keeps its record in the store and its events,
    and ``Runs.report`` renders them when asked).
    """

    run_id: str | None = None
    observers: Sequence[Subscriber] = ()
    previous: dict[str, TaskResult] | None = None
    threads: dict[str, tuple[str, str | None]] | None = None
    forks: dict[str, ForkSource] | None = None  # a task id -> the thread it copies (codex-fork)
    # A task id to the patch its worktree starts with: the change so far of the worktree task
    # whose thread a reply continues (``isolation: worktree``).
    earlier: dict[str, str] | None = None
    approvals: ApprovalHandler | None = None
    junit: Sequence[Path] = ()
    html: Sequence[Path] = ()
    reports: bool = True
    retry_backoff: Sequence[float] | None = None  # default: settings.timeouts.retry_backoff
    # Python hooks by event (``run_start``, ``task_start``, ``tool_call``, ``command``,
    # ``approval``, ``task_end``, ``run_end``), run with the mission's own hooks.
    hooks: Mapping[str, Sequence[PythonHook]] = field(default_factory=dict)
    # Python tools Codex may call in every task of the run (``PythonTool``).
    tools: Sequence[PythonTool] = ()
    # The identity of the MCP client the run is for: only it (and admins) see the run.
    # None: the server's owner (the CLI, the Python API).
    owner: str | None = None
    # Whether an approval may let a task leave its sandbox (a command asking to run outside
    # it, a file change outside its roots, extra permissions). Off for an MCP client unless
    # the server's owner allows danger-full-access: such requests are then declined before
    # the mission's own rules or anyone else is asked.
    sandbox_escape: bool = True


def mission_record(mission: Mission, settings: Settings, workspace_root: Path) -> dict[str, Any]:
    """The mission as it ran (variables expanded, paths absolute, provider as chosen), so
    ``resume`` and ``reply`` can run it again exactly."""
    record = mission.model_dump(mode="json", exclude_none=True)
    record["workspace_root"] = str(workspace_root)
    if settings.scripted:
        record["provider"] = "scripted"
    return record


def _thread_workers(options: RunOptions) -> tuple[str, ...]:
    """The worker labels whose CODEX_HOME holds a thread this run continues: threads asked for
    (reply) and those of an earlier run's unfinished tasks (resume)."""
    labels = {w for _, w in (options.threads or {}).values() if w is not None}
    labels |= {f.worker for f in (options.forks or {}).values() if f.worker is not None}
    for result in (options.previous or {}).values():
        if result.status != "ok" and result.thread_id and result.worker:
            labels.add(result.worker)
    return tuple(sorted(labels))


def _workspace(mission: Mission) -> Path:
    workspace_root = Path(mission.workspace_root).resolve()
    try:
        workspace_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MissionError(
            f"cannot create workspace_root {workspace_root} ({exc.strerror}); fix the path."
        ) from exc
    return workspace_root


async def drive_run(
    mission: Mission,
    settings: Settings,
    backend: Backend,
    options: RunOptions | None = None,
    redactor: Redactor | None = None,
) -> RunSummary:
    """Drive one run of a mission to its end and return its summary (secrets redacted); every
    outcome is recorded in the state dir before this returns, and on cancellation too. Four
    steps: prepare (checks that need nothing recorded), open (store, bus, subscribers), plan
    (the run's assembly and tasks, announced with ``RunStarted``), execute (the backend runs
    the tasks; whatever happens, the summary is recorded). ``redactor``: the run's own, when
    the caller made it already (``Runs`` does, for its live tracker)."""
    options = options or RunOptions()
    mission = _prepared(mission, settings, backend)
    workspace_root = _workspace(mission)
    redactor = redactor or run_redactor(mission)
    run_id = options.run_id or new_run_id()
    bus = EventBus()
    with (
        RunStore(settings.state_dir) as store,
        contextlib.closing(RunRecorder(store, redactor)) as recorder,
    ):
        run_dir = store.run_dir(run_id)
        await prune_dead_runs(settings.state_dir, lambda other: _dead(store, other, run_id))
        _subscribe(bus, recorder, redactor, options)
        run_dir.mkdir(parents=True, exist_ok=True)
        wiring = RunWiring(run_id, run_dir, workspace_root, bus.publish, redactor)
        assembled = assemble_run(
            mission,
            settings,
            wiring,
            min(settings.workers, len(mission.tasks)) or 1,
            Extras(
                approvals=options.approvals,
                hooks=options.hooks,
                tools=options.tools,
                sandbox_escape=options.sandbox_escape,
                thread_workers=_thread_workers(options),
            ),
        )
        bus.subscribe(assembled.hooks)
        planned = _planned(mission, options, workspace_root, run_dir, settings.keep_worktrees)
        # Recorded before the backend opens: a run stopped or failing while its workers start
        # is still a run that status, list and resume know.
        bus.publish(
            RunStarted(
                run_id,
                mission.mission_id,
                mission_record(mission, settings, workspace_root),
                tuple(t.task_id for t in planned),
                str(workspace_root),
                options.owner,
            )
        )
        backoff = options.retry_backoff
        if backoff is None:
            backoff = settings.timeouts.retry_backoff
        context = dataclasses.replace(assembled.context, cancels=TaskCancels())
        controls = _controls(backend, context, planned, bus, settings.timeouts.cancel)
        async with listening(run_dir, controls, settings.timeouts.control):  # runs steer/cancel
            summary = await _execute(
                mission, backend, context, planned, backoff, bus, assembled.hooks
            )
    return redacted(summary, redactor)


def _controls(
    backend: Backend,
    context: RunContext,
    planned: list[PlannedTask],
    bus: EventBus,
    cancel_timeout: float,
) -> Controls:
    """What the run's control endpoint does for other processes (steer, cancel)."""
    ended = asyncio.Event()

    def watch(event: Event) -> None:
        if isinstance(event, RunFinished):
            ended.set()

    bus.subscribe(watch)
    assert context.cancels is not None
    task_ids = tuple(t.task_id for t in planned)
    return run_controls(backend, context.run_id, task_ids, context.cancels, ended, cancel_timeout)


def _dead(store: RunStore, run_id: str, current: str) -> bool:
    """Whether a run's wrapper died (its worktrees may go), other than the one starting."""
    info = store.get_run(run_id) if run_id != current else None
    return info is not None and info.get("status") == "interrupted"


def _prepared(mission: Mission, settings: Settings, backend: Backend) -> Mission:
    """The mission as it will run (the run's login-shell default recorded in it), once what
    would keep it from starting at all is checked: nothing is recorded of such a run."""
    if settings.login_shell and mission.defaults.login_shell is None:
        defaults = mission.defaults.model_copy(update={"login_shell": True})
        mission = mission.model_copy(update={"defaults": defaults})
    check_servers_defined(mission, "the mission")
    check_worktree_workspace(mission, "the mission")
    backend.check(mission)
    return mission


def _subscribe(
    bus: EventBus, recorder: RunRecorder, redactor: Redactor, options: RunOptions
) -> None:
    """The recorder, the report writer and the caller's observers (fed redacted events)."""
    bus.subscribe(recorder)
    if options.reports or options.junit or options.html:
        bus.subscribe(ReportWriter(redactor, options.junit, options.html))
    for observer in options.observers:
        bus.subscribe(redacting(observer, redactor))


def _planned(
    mission: Mission, options: RunOptions, workspace_root: Path, run_dir: Path, keep: bool
) -> list[PlannedTask]:
    """The tasks, planned, with the run's Python tools offered to every one."""
    planned = plan_tasks(
        mission,
        workspace_root,
        run_dir,
        options.previous,
        options.threads,
        options.forks,
        keep,
        options.earlier,
    )
    if not options.tools:
        return planned
    extra = tuple(t.spec() for t in options.tools)
    return [
        dataclasses.replace(p, spec=dataclasses.replace(p.spec, tools=p.spec.tools + extra))
        for p in planned
    ]


async def _execute(
    mission: Mission,
    backend: Backend,
    context: RunContext,
    planned: list[PlannedTask],
    backoff: Sequence[float],
    bus: EventBus,
    hooks: HookRunner,
) -> RunSummary:
    """The backend runs the tasks; the summary is recorded whatever happens (cancelled, the
    backend unable to start), except when the run goes on elsewhere (``RunDetached``)."""
    started = time.time()
    finished: dict[str, TaskResult] = {}

    def collect(event: Event) -> None:
        if isinstance(event, TaskFinished):
            finished[event.result.task_id] = event.result

    bus.subscribe(collect)
    cancelled = detached = False
    unstarted = "the run stopped before this task finished."
    try:
        await backend.run_tasks(mission, context, planned, backoff)
    except asyncio.CancelledError:
        cancelled = True
        raise
    except RunDetached:  # it goes on elsewhere: its end is recorded when followed again
        detached = True
        raise
    except WrapperError as exc:  # the backend could not start (no Codex, no credentials)
        unstarted = f"the run could not start: {exc}"
        raise
    finally:
        if not detached:
            summary = await _finish(
                mission, context, planned, finished, unstarted, started, cancelled, bus, hooks
            )
    return summary


async def _finish(
    mission: Mission,
    context: RunContext,
    planned: list[PlannedTask],
    finished: dict[str, TaskResult],
    unstarted: str,
    started: float,
    cancelled: bool,
    bus: EventBus,
    hooks: HookRunner,
) -> RunSummary:
    """Hooks end before the summary (it counts their failures); a cancelled run stops them,
    and nothing here may keep the summary from being written."""
    interrupted = cancelled or await _settle(hooks)
    results = _results(planned, finished, unstarted)
    applied: tuple[list[str], str | None] = ([], None)
    if mission.apply == "on_success" and not cancelled:
        applied = await apply_all(results, context.workspace_root, context.run_id)
    summary = summarise(
        context.run_id,
        mission.mission_id,
        results,
        started,
        time.time(),
        cancelled=cancelled,
        run_dir=str(context.run_dir),
        workspace_root=str(context.workspace_root),
        hook_failures=hooks.failures,
        applied=applied,
    )
    bus.publish(RunFinished(context.run_id, summary))
    interrupted = interrupted or await _settle(hooks)  # run_end hooks
    if interrupted:
        hooks.cancel()
        if not cancelled:
            raise asyncio.CancelledError  # it came while the hooks ran
    return summary


async def _settle(hooks: HookRunner) -> bool:
    """Wait for the hooks still running; True when cancelled meanwhile."""
    if not hooks.busy:
        return False
    try:
        await hooks.drain()
    except asyncio.CancelledError:
        return True
    return False


def _results(
    planned: list[PlannedTask], finished: dict[str, TaskResult], unstarted: str
) -> list[TaskResult]:
    """Each task's result: as finished, kept from an earlier run, or never reached."""
    return [
        finished.get(t.task_id)
        or (t.previous if t.previous is not None and t.previous.status == "ok" else None)
        or TaskResult(task_id=t.task_id, index=t.index, status="cancelled", error=unstarted)
        for t in planned
    ]


def redacted(summary: RunSummary, redactor: Redactor) -> RunSummary:
    """The summary as it may be shown or returned: every known secret replaced."""
    return RunSummary.model_validate(redactor.data(summary.model_dump(mode="json")))
