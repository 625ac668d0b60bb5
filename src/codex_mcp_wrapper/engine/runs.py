"""``Runs``: the one application API. The CLI, the MCP server and Python users call only this.

Runs a mission in the foreground (``run``) or in the background (``start``; owned by this
object's task group, never fire-and-forget), resumes, continues threads (``reply``), steers a
running turn (``steer``, ``steer_thread``: ``engine.thread_control``), cancels, and answers status,
list, report and file queries. Everything it returns has the run's secrets redacted; the
facades never touch the store, mission files or redaction themselves.

For an MCP client (a ``client`` identity given; ``None`` is the server's owner), everything it
sends goes through the server's ``ClientPolicy`` (``client_mission``, ``codex``), its runs are
recorded as its own (``RunOptions.owner``) and it sees no run of another identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Self, cast

from codex_mcp_wrapper.engine.access import Identity, may_see
from codex_mcp_wrapper.engine.assembly import run_redactor
from codex_mcp_wrapper.engine.client_missions import ClientMissions
from codex_mcp_wrapper.engine.events import Subscriber
from codex_mcp_wrapper.engine.lifecycle import RunOptions, drive_run, new_run_id
from codex_mcp_wrapper.engine.planning import PATCH_FILE
from codex_mcp_wrapper.engine.queries import RunQueries
from codex_mcp_wrapper.engine.results import RunSummary, TaskResult
from codex_mcp_wrapper.engine.resume import continuation, resume_plan, task_thread
from codex_mcp_wrapper.engine.run_state import RunState
from codex_mcp_wrapper.engine.seams import ApprovalHandler, Backend
from codex_mcp_wrapper.engine.store import RunStore
from codex_mcp_wrapper.engine.thread_control import ThreadControl
from codex_mcp_wrapper.engine.tracker import RunTracker, run_ended
from codex_mcp_wrapper.errors import InputError, Interrupted, NotCancellable, WrapperError
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.missions.policy import ClientPolicy
from codex_mcp_wrapper.missions.single import CodexRequest
from codex_mcp_wrapper.settings import Settings, Timeouts

CANCEL_TIMEOUT = Timeouts.cancel  # then ``cancel`` reports back; the run keeps stopping


class Runs(ClientMissions, RunQueries, ThreadControl):
    """The runs of one state dir, executed by ``backend``. Use as an async context manager
    when starting runs in the background; ``run``/``resume`` work without it."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend | Callable[[], Backend],
        default_cwd: Path | None = None,
        cancel_timeout: float = CANCEL_TIMEOUT,
        policy: ClientPolicy | None = None,
    ) -> None:
        self.settings = settings
        # A backend, or what builds one when a run first needs it: queries (status, list,
        # show) never load the machinery that runs tasks.
        self._backend = backend
        self.default_cwd = default_cwd or Path.cwd()
        # What MCP clients may do (``serve``); the default: the directory served, nothing
        # beyond the safe sandboxes, the server's own provider, no commands of theirs.
        self.policy = policy or ClientPolicy(
            roots=(self.default_cwd.resolve(),), commands=settings.mission_commands
        )
        self.cancel_timeout = cancel_timeout
        self._live: dict[str, RunTracker] = {}
        self._tasks: dict[str, asyncio.Task[RunSummary | None]] = {}
        # Each run's own task (``run`` awaits it): ``stop_runs`` cancels the run, not its caller.
        self._driving: dict[str, asyncio.Task[RunSummary]] = {}
        self._stopping = False
        self._group: asyncio.TaskGroup | None = None
        self._warm: contextlib.AbstractAsyncContextManager[None] | None = None
        # Subscribers to every run's events (``serve --metrics-port``: the metrics).
        self.observers: list[Subscriber] = []

    @property
    def backend(self) -> Backend:
        if not hasattr(self._backend, "run_tasks"):
            self._backend = self._backend()
        return cast(Backend, self._backend)

    def __repr__(self) -> str:
        return f"<Runs {self.settings.state_dir} [{len(self._tasks)} in the background]>"

    async def __aenter__(self) -> Self:
        """Hold the backend's workers warm from one run to the next (``serve``: each MCP call
        is a run) and own the runs started in the background, until the block ends."""
        self._warm = self.backend.warm()
        await self._warm.__aenter__()
        self._group = asyncio.TaskGroup()
        try:
            await self._group.__aenter__()
        except BaseException as exc:
            await self._warm.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks.values():
            task.cancel()
        assert self._group is not None and self._warm is not None
        try:
            await self._group.__aexit__(exc_type, exc, tb)
        finally:
            await self._warm.__aexit__(exc_type, exc, tb)

    # -- running -------------------------------------------------------------------------
    async def run(self, mission: Mission, options: RunOptions | None = None) -> RunSummary:
        """Run ``mission`` to the end; the summary has its secrets redacted."""
        if self._stopping:
            raise Interrupted("the run was not started: the server is stopping.")
        options = self._for_owner(options or RunOptions())
        run_id = options.run_id or new_run_id()
        tracker = self._live.get(run_id) or self._tracker(run_id, mission, options)
        self._live[run_id] = tracker
        driving = self._driving[run_id] = asyncio.ensure_future(
            drive_run(
                mission,
                self.settings,
                self.backend,
                replace(
                    options, run_id=run_id, observers=[tracker, *self.observers, *options.observers]
                ),
                tracker.redactor,
            )
        )
        try:
            summary = await run_ended(driving, tracker)
        finally:
            tracker.done.set()
            self._live.pop(run_id, None)
            self._driving.pop(run_id, None)
        if self.settings.record and self.settings.record_dir is not None:
            name = re.sub(r"[^A-Za-z0-9._-]", "_", mission.mission_id).lstrip(".") or "mission"
            self.cassette(summary, self.settings.record_dir / f"{name}-{run_id}.yaml")
        return summary

    async def stop_runs(self) -> None:
        """Cancel every run in progress here and wait for each to be recorded ``cancelled``
        (bounded by ``cancel_timeout``); a caller of ``run`` gets the cancelled summary back,
        so each MCP call in flight is answered when ``serve`` stops. Runs asked for after
        this are refused."""
        self._stopping = True
        running = [*self._driving.values(), *self._tasks.values()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=self.cancel_timeout)

    @staticmethod
    def _tracker(run_id: str, mission: Mission, options: RunOptions) -> RunTracker:
        """The run's live state, holding the run's one redactor (the engine uses it too)."""
        return RunTracker(
            run_id, mission.mission_id, redactor=run_redactor(mission), owner=options.owner
        )

    def _for_owner(self, options: RunOptions) -> RunOptions:
        """A client's run (``owner`` set) answers its approvals within the policy: no escape
        from the sandbox unless the owner allows danger-full-access."""
        if options.owner is None or self.policy.escalation:
            return options
        return replace(options, sandbox_escape=False)

    def cassette(self, summary: RunSummary, path: Path) -> int:
        """Write the cassette of a run recorded with ``Settings.record``; its exchanges."""
        threads = {t.thread_id: t.task_id for t in summary.tasks if t.thread_id}
        from codex_mcp_wrapper.cassettes.model import write_cassette  # only when recording

        with RunStore.reader(self.settings.state_dir) as store:
            mission = store.read_mission(summary.run_id)  # as it ran: its prompts' digests
        return write_cassette(Path(summary.run_dir or ""), threads, mission, path)

    def start(self, mission: Mission, options: RunOptions | None = None) -> str:
        """Run a mission in the background; returns its run id at once."""
        assert self._group is not None, "use Runs as an async context manager to start runs"
        options = options or RunOptions()
        run_id = options.run_id or new_run_id()
        if run_id in self._tasks:
            raise InputError(f"run {run_id} is running; wait for it or cancel it first.")
        self.backend.check(mission)  # a run that cannot start at all is an error here, now
        tracker = self._live[run_id] = self._tracker(run_id, mission, options)

        async def background() -> RunSummary | None:
            try:
                return await self.run(mission, replace(options, run_id=run_id))
            except Exception as exc:  # noqa: BLE001 - a background run's edge: keep the reason
                tracker.error = str(exc)
                return None
            finally:
                tracker.done.set()
                self._tasks.pop(run_id, None)

        self._tasks[run_id] = self._group.create_task(background(), name=f"run-{run_id}")
        return run_id

    def _resume_plan(
        self, run_id: str, client: Identity | None = None
    ) -> tuple[Mission, RunOptions]:
        with RunStore.reader(self.settings.state_dir) as store:
            owner = self._visible(store, run_id, client)
            if run_id in self._tasks:
                raise InputError(f"run {run_id} is running; wait for it or cancel it first.")
            mission, previous = resume_plan(store, run_id)
        return mission, RunOptions(run_id=run_id, previous=previous, owner=owner)

    async def resume(
        self,
        run_id: str,
        observers: Sequence[Subscriber] = (),
        approvals: ApprovalHandler | None = None,
    ) -> RunSummary:
        """Finish a run: keep its ok tasks, run the others again in their threads."""
        mission, options = self._resume_plan(run_id)
        return await self.run(mission, replace(options, observers=observers, approvals=approvals))

    def start_resume(self, run_id: str, client: Identity | None = None) -> str:
        """``resume`` in the background; returns the run id at once. The run stays its
        owner's."""
        mission, options = self._resume_plan(run_id, client)
        return self.start(mission, options)

    async def wait(self, run_id: str, timeout: float, client: Identity | None = None) -> RunState:
        self.status(run_id, client)  # an unknown or invisible run: at once
        tracker = self._live.get(run_id)
        if tracker is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await tracker.done.wait()
        return self.status(run_id, client)

    async def cancel(
        self, run_id: str, client: Identity | None = None, task_id: str | None = None
    ) -> RunState:
        """Cancel a run, or its running task ``task_id`` (the others go on), here or in the
        process driving it; its state after (``cancelled`` False with a ``message`` when the
        run goes on nowhere). A task that is not running: ``NotCancellable``."""
        state = self.status(run_id, client)
        task = self._tasks.get(run_id)
        if task is not None and task_id is None:
            task.cancel()
            await asyncio.wait({task}, timeout=self.cancel_timeout)  # the caller stays cancellable
            return self.status(run_id, client).model_copy(update={"cancelled": True})
        try:
            await self.cancel_elsewhere(run_id, task_id, client)
        except NotCancellable as exc:
            if task_id is not None:
                raise
            return state.model_copy(update={"cancelled": False, "message": str(exc)})
        return self.status(run_id, client).model_copy(update={"cancelled": True})

    # -- single Codex sessions -------------------------------------------------------------
    async def codex(
        self,
        request: CodexRequest,
        observers: Sequence[Subscriber] = (),
        approvals: ApprovalHandler | None = None,
        client: Identity | None = None,
    ) -> TaskResult:
        """One Codex session as a one-task mission; continue it with ``reply``."""
        mission = self._codex_mission(request, client)
        options = RunOptions(observers=observers, approvals=approvals, reports=False)
        summary = await self.run(mission, replace(options, owner=_name(client)))
        return summary.tasks[0]

    def start_codex(
        self,
        request: CodexRequest,
        approvals: ApprovalHandler | None = None,
        client: Identity | None = None,
    ) -> str:
        """``codex`` in the background (a task of the MCP tasks extension, a call waiting on
        the client's answers); returns the run id at once. Its one task's result is the
        session's (``session_result``)."""
        options = RunOptions(reports=False, approvals=approvals, owner=_name(client))
        return self.start(self._codex_mission(request, client), options)

    def _continuation(
        self, thread_id: str, prompt: str, client: Identity | None
    ) -> tuple[Mission, RunOptions]:
        """The one-task mission continuing ``thread_id``, for whoever owns its run."""
        with RunStore.reader(self.settings.state_dir) as store:
            origin = store.thread_origin(thread_id)
            if origin is not None and not may_see(client, store.run_owner(origin[0])[1]):
                origin = None
            if origin is None:
                raise InputError(
                    f"no Codex thread '{thread_id}' is known to this wrapper (state dir "
                    f"{self.settings.state_dir}); start one with the codex tool."
                )
            owner = store.run_owner(origin[0])[1]
            mission, threads = continuation(store, thread_id, prompt)
            patch = store.run_dir(origin[0]) / "tasks" / origin[1] / PATCH_FILE
        earlier = {origin[1]: str(patch)}  # its worktree's change so far, if it had one
        return mission, RunOptions(threads=threads, reports=False, owner=owner, earlier=earlier)

    def start_reply(
        self,
        thread_id: str,
        prompt: str,
        approvals: ApprovalHandler | None = None,
        client: Identity | None = None,
    ) -> str:
        """``reply`` in the background (a call waiting on the client's answers); returns the
        run id at once (then ``session_result``)."""
        mission, options = self._continuation(thread_id, prompt, client)
        return self.start(mission, replace(options, approvals=approvals))

    async def session_result(self, run_id: str) -> TaskResult:
        """The result of a ``start_codex`` session, once it ends (as recorded)."""
        task, tracker = self._tasks.get(run_id), self._live.get(run_id)
        if task is not None:
            await asyncio.wait({task})  # cancelling this wait leaves the run going
            summary = None if task.cancelled() else task.result()
            if summary is not None:
                return summary.tasks[0]
            if tracker is not None and tracker.error:
                raise WrapperError(tracker.error)
        recorded = self.show(run_id)
        if not isinstance(recorded, RunSummary):
            raise WrapperError(f"run {run_id} ended without a summary; see `runs show {run_id}`.")
        return recorded.tasks[0]

    def when_done(self, run_id: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the background run ``run_id`` ends (now if it is not
        running here)."""
        task = self._tasks.get(run_id)
        if task is None:
            callback()
        else:
            task.add_done_callback(lambda _: callback())

    async def reply(
        self,
        thread_id: str,
        prompt: str,
        observers: Sequence[Subscriber] = (),
        approvals: ApprovalHandler | None = None,
        client: Identity | None = None,
    ) -> TaskResult:
        """Continue a thread (after a restart too: it is resumed from its worker's home)."""
        mission, options = self._continuation(thread_id, prompt, client)
        summary = await self.run(
            mission, replace(options, observers=observers, approvals=approvals)
        )
        return summary.tasks[0]

    async def reply_task(
        self,
        run_id: str,
        task_id: str,
        prompt: str,
        observers: Sequence[Subscriber] = (),
        approvals: ApprovalHandler | None = None,
        client: Identity | None = None,
    ) -> TaskResult:
        """Send a further prompt in the thread of a task of a run."""
        with RunStore.reader(self.settings.state_dir) as store:
            self._visible(store, run_id, client)
            thread_id = task_thread(store, run_id, task_id)
        return await self.reply(thread_id, prompt, observers, approvals, client)


def _name(client: Identity | None) -> str | None:
    return None if client is None else client.name
