"""``MissionWorkflow``: the engine's own ``MissionRunner`` inside a Temporal workflow.

The runner schedules by dependencies, owns retries, backoff and each task's wall-clock budget
exactly as in a local run; only its clock (the workflow's, deterministic) and its executor
differ. ``TemporalExecutor`` makes each attempt one ``run_task`` activity on a host:

* Temporal never retries an activity (``maximum_attempts=1``): the runner decides, so
  ``retries`` and ``timeout_sec`` keep their meaning;
* start-to-close is the task's budget left; the heartbeat timeout is ``idle_timeout_sec``
  plus a grace (hosts heartbeat on every Codex event, and Codex's own idle timer fires first
  while the host lives), so a host that dies is noticed and the attempt goes to another host;
* an attempt continuing a thread goes first to the owning host's own queue, and after
  ``affinity_wait`` seconds without a taker to the shared one (where a host resumes the
  thread from its rollout in the shared store); a host that timed out is not waited for again;
* a cancelled workflow cancels its activities and waits for them to stop.

Keep this module's imports at the top (the sandbox re-imports it) and the runner sandboxed:
a stray ``time.time()`` in it then fails loudly instead of breaking replay.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import CancelledError as TemporalCancelled
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from codex_mcp_wrapper.engine.events import Event, TaskFinished, TaskUpdate, to_record
    from codex_mcp_wrapper.engine.results import TaskResult
    from codex_mcp_wrapper.engine.seams import (
        EventSink,
        PlannedTask,
        TaskOutcome,
        TaskRequest,
    )

from codex_mcp_wrapper.engine.runner import Clock, MissionRunner

RUN_TASK = "run_task"  # the activity's name (temporal/host.py defines it)
HEARTBEAT_GRACE = 2.0  # seconds past idle_timeout_sec before a silent host counts as dead


def host_queue(queue: str, host: str) -> str:
    """The task queue only ``host`` polls (threads it holds are continued there)."""
    return f"{queue}@{host}"


def split_worker(worker: str | None) -> tuple[str | None, str | None]:
    """``HOST/LABEL`` (a worker of a Temporal run) as (host, label)."""
    if not worker or "/" not in worker:
        return None, worker
    host, _, label = worker.partition("/")
    return host, label


@dataclass
class MissionInput:
    """The workflow's input: planned tasks with their Codex config left out (hosts rebuild it
    from the mission in the shared store, so task env values never enter the history)."""

    run_id: str
    tasks: list[PlannedTask]
    task_queue: str
    retry_backoff: list[float] = field(default_factory=lambda: [0.5, 2.0, 5.0])
    affinity_wait: float = 10.0
    token_budget: int | None = None  # the mission's budget.tokens


@dataclass
class MissionOutput:
    results: list[TaskResult]
    cancelled: bool = False


def _event_record(event: Event) -> dict[str, Any] | None:
    """What the submitter relays of the workflow's own events (hosts send the rest)."""
    if isinstance(event, TaskUpdate) and event.status in ("queued", "retrying", "worker-lost"):
        return to_record(event)
    if isinstance(event, TaskFinished):
        return to_record(event)
    return None


class TemporalExecutor:
    """The ``TaskExecutor`` seam on the workflow side: one attempt, one activity."""

    def __init__(self, task_queue: str, affinity_wait: float) -> None:
        self.task_queue = task_queue
        self.affinity_wait = affinity_wait
        self.lost_hosts: set[str] = set()

    async def execute(self, request: TaskRequest, sink: EventSink) -> TaskOutcome:
        host, _ = split_worker(request.thread_worker)
        if host is not None and host not in self.lost_hosts:
            try:
                return await self._activity(request, host_queue(self.task_queue, host), True)
            except ActivityError as exc:
                cause = exc.cause
                if not (
                    isinstance(cause, TemporalTimeout)
                    and cause.type is not None
                    and (cause.type.name == "SCHEDULE_TO_START")
                ):
                    return self._failed(request, exc)
                self.lost_hosts.add(host)
                sink.task_state(
                    request.task_id,
                    "worker-lost",
                    request.thread_worker,
                    f"host {host} did not take the task in {self.affinity_wait:g} s; "
                    "continuing the thread on another host",
                )
        try:
            return await self._activity(request, self.task_queue, False)
        except ActivityError as exc:
            return self._failed(request, exc)

    async def _activity(self, request: TaskRequest, queue: str, affine: bool) -> TaskOutcome:
        idle = request.spec.idle_timeout_sec
        outcome: TaskOutcome = await workflow.execute_activity(
            RUN_TASK,
            request,
            result_type=TaskOutcome,
            task_queue=queue,
            start_to_close_timeout=timedelta(seconds=max(1.0, request.timeout_sec)),
            heartbeat_timeout=timedelta(seconds=idle + HEARTBEAT_GRACE),
            schedule_to_start_timeout=timedelta(seconds=self.affinity_wait) if affine else None,
            retry_policy=RetryPolicy(maximum_attempts=1),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        return outcome

    def _failed(self, request: TaskRequest, exc: ActivityError) -> TaskOutcome:
        cause = exc.cause
        if isinstance(cause, TemporalCancelled):  # the run was cancelled: not a failure
            raise asyncio.CancelledError() from exc
        details: dict[str, Any] = {}
        if isinstance(cause, ApplicationError) and cause.details:
            first = cause.details[0]
            details = first if isinstance(first, dict) else {}
        if isinstance(cause, TemporalTimeout) and cause.last_heartbeat_details:
            first = cause.last_heartbeat_details[0]
            details = first if isinstance(first, dict) else details
        worker = details.get("worker") or request.thread_worker
        if isinstance(cause, TemporalTimeout):
            host, _ = split_worker(worker)
            kind = cause.type.name.lower().replace("_", "-") if cause.type else "timeout"
            if host is not None:
                self.lost_hosts.add(host)
            message = (
                f"the host {host or '?'} went silent ({kind} timeout); the task "
                "continues on another host"
            )
        elif isinstance(cause, ApplicationError) and cause.type == "HostShutdown":
            message = str(cause.message)
        else:
            message = f"the host could not run the task: {cause or exc}"
        return TaskOutcome(
            status="failed",
            retryable=True,
            worker_broken=True,
            thread_id=details.get("thread_id") or request.thread_id,
            worker=worker,
            turns_done=int(details.get("turns_done") or request.turns_done),
            error=message,
        )


def _workflow_clock() -> Clock:
    return Clock(wall=lambda: workflow.now().timestamp(), monotonic=workflow.time)


@workflow.defn(name="MissionWorkflow")
class MissionWorkflow:
    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []

    @workflow.query(name="events")
    def events(self, since: int) -> list[dict[str, Any]]:
        """The workflow's own events from number ``since`` on (queued, retrying, finished)."""
        return self._events[since:]

    def _publish(self, event: Event) -> None:
        record = _event_record(event)
        if record is not None:
            self._events.append(record)

    @workflow.run
    async def run(self, spec: MissionInput) -> MissionOutput:
        executor = TemporalExecutor(spec.task_queue, spec.affinity_wait)
        runner = MissionRunner(
            spec.run_id,
            spec.tasks,
            executor,
            self._publish,
            spec.retry_backoff,
            clock=_workflow_clock(),
            token_budget=spec.token_budget,
        )
        try:
            results = await runner.schedule()
        except asyncio.CancelledError:  # the runner recorded every unfinished task cancelled
            results = [runner.results[t.task_id] for t in spec.tasks]
            return MissionOutput(results, cancelled=True)
        return MissionOutput(results)
