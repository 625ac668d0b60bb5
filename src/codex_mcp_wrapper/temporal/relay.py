"""``Relay``: follows a run's workflow from the submitter, republishing on the run's event bus
what the hosts write to the shared store and what the workflow decides, in order per task (a
task's host events before its result), until the workflow ends.

A Temporal server that goes away (restarted, a network blip) is weather: the workflow lives
in the server's database and the hosts carry on once it is back. The relay says so in one
line, waits for the server (``connect.server_answers``, up to ``TemporalSettings.reconnect_within``;
the SDK itself retries each call for only about 10 s), then follows the run again. A server
still away after that: ``RunDetached`` with ``lost`` (exit 3, nothing recorded as failed;
``resume`` follows the run later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from codex_mcp_wrapper.engine.events import Event, TaskFinished, from_record
from codex_mcp_wrapper.engine.results import TaskResult
from codex_mcp_wrapper.engine.seams import RunContext, TaskOutcome
from codex_mcp_wrapper.errors import RunDetached
from codex_mcp_wrapper.temporal.carry import OUTCOME, hydrate
from codex_mcp_wrapper.temporal.connect import server_answers, server_away
from codex_mcp_wrapper.temporal.shared import DirectoryStore, EventCursor
from codex_mcp_wrapper.temporal.workflow import MissionOutput

log = logging.getLogger("codex_mcp_wrapper.temporal")

POLL = 0.2  # seconds between looks at the shared store and the workflow's events
NAG_AFTER = 10.0  # seconds of an outage before each retry is said on stderr, not only logged


def event_from_record(run_id: str, record: dict[str, Any]) -> Event | None:
    """The event a host or the workflow wrote (``engine.events.to_record``); None, with a
    warning, for one this submitter cannot read."""
    try:
        return from_record(run_id, record)
    except ValueError as exc:
        log.warning(
            "skipping an unreadable %s event of run %s: %s", record.get("type"), run_id, exc
        )
    return None


class Relay:
    """Republishes a workflow run's events on the submitter's bus, in order per task."""

    def __init__(
        self,
        store: DirectoryStore,
        client: Client,
        handle: WorkflowHandle[Any, MissionOutput],
        run: RunContext,
        address: str,
        reconnect_within: float,
    ) -> None:
        self.store = store
        self.client = client
        self.handle = handle
        self.run = run
        self.run_id = run.run_id
        self.address = address
        self.reconnect_within = reconnect_within
        self.cursor = EventCursor()
        self.seen = 0  # workflow events relayed
        self.finished: set[str] = set()
        self._ended: dict[str, asyncio.Event] = {}  # set once a task's result is relayed

    def _ending(self, task_id: str) -> asyncio.Event:
        return self._ended.setdefault(task_id, asyncio.Event())

    async def ended(self, task_id: str) -> None:
        """Return once ``task_id``'s result is relayed (published on the run's bus)."""
        await self._ending(task_id).wait()

    def _host_events(self) -> None:
        for record in self.store.read_events(self.run_id, self.cursor):
            event = event_from_record(self.run_id, record)
            if event is not None:
                self.run.publish(event)

    def _finished(self, result: TaskResult) -> None:
        if result.task_id in self.finished:
            return
        self._host_events()
        dest = self.run.run_dir / "tasks" / result.task_id / "artifacts"
        if result.artifacts:
            with contextlib.suppress(OSError):
                self.store.get_artifacts(self.run_id, result.task_id, dest)
        self.finished.add(result.task_id)
        self.run.publish(TaskFinished(self.run_id, result))
        self._ending(result.task_id).set()

    async def _workflow_events(self) -> None:
        # The workflow's latest run: a large mission continues as new runs of the same id.
        latest = self.client.get_workflow_handle(self.run_id)
        try:
            answer = await latest.query("events", self.seen, result_type=dict[str, Any])
        except Exception as exc:  # noqa: BLE001 - no host answers yet; the result will tell
            log.debug("run %s: events query failed: %s", self.run_id, exc)
            return
        records: list[dict[str, Any]] = answer.get("events", [])
        self.seen = int(answer.get("first", self.seen)) + len(records)
        for record in records:
            event = event_from_record(self.run_id, record)
            if isinstance(event, TaskFinished):
                self._finished(event.result)
            elif event is not None:
                self.run.publish(event)

    async def follow(self) -> MissionOutput:
        """Relay until the workflow ends; its output. A server that goes away is waited for
        (``_reconnect``), then the run is followed again; any other answer of the server
        stops the watch (``RunDetached``): the run's end is not recorded from a failed call."""
        while True:
            try:
                return await self._follow_once()
            except RPCError as exc:
                if not server_away(exc):  # not weather, but the workflow may be alive
                    raise RunDetached(
                        self.run_id,
                        lost=f"the Temporal server at {self.address} could not report on it: "
                        f"{exc.status.name} {exc.message}",
                    ) from exc
                await self._reconnect(exc)

    async def _follow_once(self) -> MissionOutput:
        result = asyncio.ensure_future(self.handle.result())
        try:
            while not result.done():
                self._host_events()
                await self._workflow_events()
                await asyncio.wait({result}, timeout=POLL)
            return result.result()
        finally:
            result.cancel()

    async def _reconnect(self, lost: RPCError) -> None:
        """Wait until the server answers again, bounded by ``reconnect_within``; past that,
        stop watching (``RunDetached``, exit 3): the run goes on, ``resume`` follows it."""
        since = time.monotonic()
        log.warning(
            "lost the Temporal server at %s (%s); run %s goes on on the hosts; reconnecting "
            "for up to %g s",
            self.address,
            lost.message,
            self.run_id,
            self.reconnect_within,
        )

        def still_away(seconds: float) -> None:
            level = logging.WARNING if seconds >= NAG_AFTER else logging.DEBUG
            log.log(
                level,
                "the Temporal server at %s is still away after %.0f s; retrying",
                self.address,
                seconds,
            )

        if not await server_answers(self.client, self.reconnect_within, still_away):
            raise RunDetached(
                self.run_id,
                lost=f"the Temporal server at {self.address} has not answered for "
                f"{time.monotonic() - since:.0f} s",
            ) from lost
        log.warning(
            "the Temporal server at %s is back after %.0f s; following run %s again",
            self.address,
            time.monotonic() - since,
            self.run_id,
        )

    def finish(self, output: MissionOutput) -> None:
        """Record the results this relay has not seen (the output's are slimmed: each gets
        its last attempt's outcome back from the host's copy in the shared store)."""
        self._host_events()
        for task_result in output.results:
            if task_result.task_id not in self.finished:
                self._finished(hydrate(task_result, self._outcome(task_result)))

    def _outcome(self, result: TaskResult) -> TaskOutcome | None:
        try:
            record = self.store.get_outcome(self.run_id, result.task_id, result.attempts)
            return None if record is None else OUTCOME.validate_python(record)
        except (OSError, ValueError) as exc:
            log.warning("run %s: no outcome of task %s: %s", self.run_id, result.task_id, exc)
            return None
