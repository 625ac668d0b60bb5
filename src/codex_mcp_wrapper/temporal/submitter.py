"""``TemporalBackend``: the submitting side of a scaled-out run; the engine's ``Backend`` seam
over Temporal, as ``codex/backend.py`` ``LocalBackend`` is the same seam over local Codex.

``engine.lifecycle.drive_run`` records, reports and summarises a Temporal run exactly like a
local one; only ``run_tasks`` differs: it puts the mission in the shared store, starts
``MissionWorkflow`` (workflow id = run id) and relays onto the run's event bus what the hosts
write to the shared store (Codex events, task states, threads) and what the workflow decides
(queued, retrying, each task's result, its artifacts copied into the run folder). The
workflow's result is authoritative: a result the relay has not seen is published from it.
A server that goes away meanwhile is waited for (``relay.Relay``): the run is not failed.

Cancelled, it cancels the workflow (which stops every task's activity on every host) and
waits, bounded, for the results of the cancelled tasks; ``detach`` only stops watching. One
running task is cancelled with the workflow's ``cancel_task`` signal (``RunContext.cancels``'
``remote``, which ``runs cancel --task``, ``mission_cancel`` and the UI reach through the
run's control endpoint), and its result waited for, bounded, as it is relayed. A running
task's turn is steered through the shared store, where the host running its attempt takes the
steer and answers (``steering``), while this backend watches the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from codex_mcp_wrapper.engine.seams import PlannedTask, RunContext
from codex_mcp_wrapper.errors import (
    EnvironmentProblem,
    MissionError,
    NotCancellable,
    NotSteerable,
    RunDetached,
    WrapperError,
)
from codex_mcp_wrapper.missions.loading import worktree_tasks
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.process import finish
from codex_mcp_wrapper.settings import Settings, TemporalSettings
from codex_mcp_wrapper.temporal.connect import connect, demote_retry_warnings
from codex_mcp_wrapper.temporal.relay import Relay
from codex_mcp_wrapper.temporal.shared import DirectoryStore
from codex_mcp_wrapper.temporal.steering import ANSWER_WITHIN, steer_through_store
from codex_mcp_wrapper.temporal.workflow import (
    CANCEL_TASK,
    RUNNING,
    MissionInput,
    MissionOutput,
    MissionWorkflow,
)

log = logging.getLogger("codex_mcp_wrapper.temporal")

ASK_WITHIN = 60.0  # an interrupted run asks what to do this long, then cancels


def _ask_terminal(run_id: str) -> str:
    """Ask on the controlling terminal: "cancel" (the default) or "detach"."""
    with open("/dev/tty", "r+", encoding="utf-8") as tty:
        tty.write(
            f"\nCancel run {run_id} on every host [C], or stop watching and leave it running [w]? "
        )
        tty.flush()
        answer = tty.readline().strip().lower()
    return "detach" if answer.startswith("w") else "cancel"


class TemporalBackend:
    """The ``Backend`` of runs that execute as Temporal workflows on hosts."""

    def __init__(self, settings: Settings, target: TemporalSettings) -> None:
        self.settings = settings
        self.target = target
        self.store = DirectoryStore(target.shared_dir)
        self._client: Client | None = None
        self._warm = False
        self._watching: dict[str, Relay] = {}  # runs followed here: their steers go out
        self.steer_within = ANSWER_WITHIN  # a steer's answer from the host, at most

    def __repr__(self) -> str:
        return f"<TemporalBackend {self.target.address} queue={self.target.task_queue}>"

    async def steer(self, run_id: str, task_id: str, text: str) -> str | None:
        """Add ``text`` to the running turn of ``task_id`` of a run this backend watches: if
        the workflow says the task is running (the ``running`` query), through the shared
        store to the host running its attempt (``steering``); the turn's id, or None when the
        task runs no turn. ``NotSteerable`` when no host answers in time."""
        relay = self._watching.get(run_id)
        if relay is None:
            return None  # not watched here: nothing of it runs in this process's reach
        latest = relay.client.get_workflow_handle(run_id)
        try:
            async with asyncio.timeout(self.steer_within):
                running = await latest.query(RUNNING, result_type=list[str])
        except (RPCError, WorkflowQueryFailedError, TimeoutError) as exc:
            raise NotSteerable(
                f"the workflow of run {run_id} did not say whether task '{task_id}' is running "
                f"({str(exc) or 'no host answered in time'}); nothing was steered."
            ) from exc
        if task_id not in running:
            return None
        return await steer_through_store(self.store, run_id, task_id, text, self.steer_within)

    def check(self, mission: Mission) -> None:
        """Hosts check their own Codex and credentials; the server is checked on connect.
        Worktrees are made on the submitter's machine: not for tasks run on hosts."""
        tasks = worktree_tasks(mission)
        if tasks:
            raise MissionError(
                f"task '{tasks[0]}' asks for isolation: worktree, which runs on this machine "
                "only; drop --temporal or use isolation: none."
            )

    @contextlib.asynccontextmanager
    async def warm(self) -> AsyncIterator[None]:
        self._warm = True
        try:
            yield
        finally:
            self._warm, self._client = False, None

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        demote_retry_warnings()  # the relay says in its own words when the server is away
        client = await connect(self.target)
        if self._warm:
            self._client = client
        return client

    def _record(self, mission: Mission, run: RunContext) -> dict[str, Any]:
        record = mission.model_dump(mode="json", exclude_none=True)
        record["workspace_root"] = str(run.workspace_root)
        if self.settings.scripted:
            record["provider"] = "scripted"
        return record

    async def run_tasks(
        self,
        mission: Mission,
        run: RunContext,
        tasks: Sequence[PlannedTask],
        retry_backoff: Sequence[float],
    ) -> None:
        client = await self._client_for(run.run_id)
        try:
            self.store.write_mission(run.run_id, self._record(mission, run))
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot write to the shared store {self.store.root} ({exc.strerror or exc}); "
                "give --shared-dir a directory every host and this machine can write."
            ) from exc
        spec = MissionInput(
            run_id=run.run_id,
            tasks=[
                dataclasses.replace(t, spec=dataclasses.replace(t.spec, config={})) for t in tasks
            ],
            task_queue=self.target.task_queue,
            retry_backoff=list(retry_backoff),
            affinity_wait=self.target.affinity_wait,
            token_budget=mission.budget.tokens if mission.budget else None,
        )
        handle = await self._adopt(client, run.run_id, tasks)
        if handle is None:
            try:
                handle = await client.start_workflow(
                    MissionWorkflow.run,
                    spec,
                    id=run.run_id,
                    task_queue=self.target.task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,  # resume attaches
                )
            except (RPCError, WorkflowAlreadyStartedError) as exc:
                raise EnvironmentProblem(
                    f"Temporal at {self.target.address} refused run {run.run_id} ({exc})."
                ) from exc
        if self.target.detach:
            raise RunDetached(run.run_id)
        relay = Relay(
            self.store,
            client,
            handle,
            run,
            self.target.address,
            self.target.reconnect_within,
        )
        if run.cancels is not None:
            run.cancels.remote = functools.partial(self._cancel_task, relay)
        with self._steerable(relay):
            await self._follow(relay, handle)

    @contextlib.contextmanager
    def _steerable(self, relay: Relay) -> Iterator[None]:
        """Steers of the run go out while the block runs; then its mailbox is removed."""
        self._watching[relay.run_id] = relay
        try:
            yield
        finally:
            self._watching.pop(relay.run_id, None)
            self.store.clear_steers(relay.run_id)

    async def _follow(self, relay: Relay, handle: WorkflowHandle[Any, MissionOutput]) -> None:
        """Follow the run to its end and record it (cancelled: cancel it, or stop watching)."""
        run = relay.run
        try:
            output = await relay.follow()
        except WorkflowFailureError as exc:
            raise WrapperError(
                f"the workflow of run {run.run_id} ended without its results ({exc.cause or exc}"
                "); its finished tasks are recorded, the others are not."
            ) from exc
        except asyncio.CancelledError:
            if await finish(self._choose(run.run_id)) == "detach":
                raise RunDetached(run.run_id, interrupted=True) from None
            await finish(self._cancel(handle, relay))
            raise
        relay.finish(output)

    async def _client_for(self, run_id: str) -> Client:
        """The client; a run submitted before (resumed) whose server cannot be reached is
        not watched (its workflow may well be alive) rather than recorded as failed."""
        try:
            return await self.client()
        except EnvironmentProblem as exc:
            if self.store.read_mission(run_id) is None:
                raise  # a new run: nothing of it started
            raise RunDetached(
                run_id, lost=f"the Temporal server at {self.target.address} cannot be reached"
            ) from exc

    async def _adopt(
        self, client: Client, run_id: str, tasks: Sequence[PlannedTask]
    ) -> WorkflowHandle[Any, MissionOutput] | None:
        """The run's workflow when it completed while nobody watched (a detached run, a
        submitter that died): its results are the run's, nothing runs again. None when the
        run must start (or attach to its running workflow)."""
        if all(t.previous is not None for t in tasks):
            return None  # every task's end is recorded here: a resume runs the others again
        handle = client.get_workflow_handle(run_id, result_type=MissionOutput)
        try:
            status = (await handle.describe()).status
        except RPCError:
            return None  # no such workflow
        return handle if status == WorkflowExecutionStatus.COMPLETED else None

    async def cancel(self, run_id: str) -> bool:
        """Cancel a run's workflow on every host and wait (bounded) for it to close; False
        when it is not running."""
        client = await self.client()
        handle = client.get_workflow_handle(run_id, result_type=MissionOutput)
        try:
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return False
            await handle.cancel()
        except RPCError:
            return False
        with contextlib.suppress(TimeoutError, WorkflowFailureError, RPCError):
            async with asyncio.timeout(self.settings.timeouts.cancel):
                await handle.result()
        return True

    async def _cancel_task(self, relay: Relay, task_id: str, timeout: float) -> bool:
        """Cancel ``task_id`` of the run ``relay`` follows, if it is running (the ``running``
        query of the workflow's latest run, then its ``cancel_task`` signal), and wait, at most
        ``timeout`` seconds, for its result to be relayed; False when it is not running."""
        latest = relay.client.get_workflow_handle(relay.run_id)
        try:
            async with asyncio.timeout(timeout):
                running = await latest.query(RUNNING, result_type=list[str])
                if task_id not in running:
                    return False
                await latest.signal(CANCEL_TASK, task_id)
        except (RPCError, WorkflowQueryFailedError, TimeoutError) as exc:
            raise NotCancellable(
                f"the workflow of run {relay.run_id} did not take the cancel of task "
                f"'{task_id}' ({str(exc) or 'no host answered in time'}); cancel the whole run."
            ) from exc
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await relay.ended(task_id)
        return True

    async def _choose(self, run_id: str) -> str:
        """Interrupted: cancel the workflow, or stop watching it (asked on the terminal)."""
        if self.target.on_interrupt != "ask":
            return self.target.on_interrupt
        try:
            async with asyncio.timeout(ASK_WITHIN):
                return await asyncio.to_thread(_ask_terminal, run_id)
        except (TimeoutError, OSError):
            return "cancel"

    async def _cancel(self, handle: WorkflowHandle[Any, MissionOutput], relay: Relay) -> None:
        """Cancel the workflow (its activities stop on every host) and record the tasks'
        results as it ends them, within the cancel bound."""
        with contextlib.suppress(RPCError):
            await handle.cancel()
        try:
            async with asyncio.timeout(self.settings.timeouts.cancel):
                output = await relay.follow()
        except (TimeoutError, RPCError) as exc:
            log.warning("run %s: the workflow did not end after its cancel: %s", relay.run_id, exc)
            return
        relay.finish(output)
