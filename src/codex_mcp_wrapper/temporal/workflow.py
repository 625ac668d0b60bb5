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
* a cancelled workflow cancels its activities and waits for them to stop;
* the ``cancel_task`` signal cancels one running task (its activity, which the host stops,
  as a cancelled run's), which the runner records ``cancelled`` while the others go on; the
  ``running`` query says which tasks are running their attempts. A signal is in the history,
  so a replay cancels the same task at the same point.

Large missions stay inside Temporal's limits (docs/scale-out.md, "Large missions"): at most
``max_in_flight`` tasks have an activity pending at once (the server refuses more than 2,000
per workflow), and once the history is long (the server suggests it, or ``events_per_run``
events) the workflow starts no more tasks, lets the running ones end, and continues as a new
run of the same workflow id with the tasks it held back and every result so far.

Keep this module's imports at the top (the sandbox re-imports it) and the runner sandboxed:
a stray ``time.time()`` in it then fails loudly instead of breaking replay.
"""

from __future__ import annotations

import asyncio
import dataclasses
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
    from codex_mcp_wrapper.temporal.carry import slim

from codex_mcp_wrapper.engine.cancels import TaskCancels
from codex_mcp_wrapper.engine.runner import Clock, MissionRunner

RUN_TASK = "run_task"  # the activity's name (temporal/host.py defines it)
CANCEL_TASK = "cancel_task"  # the signal cancelling one running task
RUNNING = "running"  # the query: the tasks running their attempts
HEARTBEAT_GRACE = 2.0  # seconds past idle_timeout_sec before a silent host counts as dead
MAX_IN_FLIGHT = 1000  # tasks with an activity pending at once (Temporal refuses over 2,000)
EVENTS_PER_RUN = 10_000  # continue as new past this many events (Temporal warns at 10,240)


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
    max_in_flight: int = MAX_IN_FLIGHT
    events_per_run: int = EVENTS_PER_RUN
    # Carried to a new run of the workflow (continue-as-new): the results so far, and how
    # many events the runs before published (the ``events`` query numbers them on).
    finished: list[TaskResult] = field(default_factory=list)
    events_before: int = 0
    runs_before: int = 0


@dataclass
class MissionOutput:
    results: list[TaskResult]
    cancelled: bool = False


class Window:
    """The runner's ``Admission`` in a workflow: at most ``size`` tasks at once, and none
    once the history is long enough to continue as a new run."""

    def __init__(self, size: int, events_per_run: int) -> None:
        self._places = asyncio.Semaphore(max(1, size))
        self.events_per_run = events_per_run
        self.closing = False
        self.admitted = 0  # a run admits one task at least, so every run moves on

    def _long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self.events_per_run
        )

    async def enter(self) -> bool:
        if self.closing:
            return False
        await self._places.acquire()
        if self.closing or (self.admitted and self._long()):
            self.closing = True
            self._places.release()
            return False
        self.admitted += 1
        return True

    def leave(self) -> None:
        self._places.release()


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
        self._before = 0  # events published by the runs before this one
        self._cancels = TaskCancels()  # the runner's running tasks, by task id

    @workflow.signal(name=CANCEL_TASK)
    def cancel_task(self, task_id: str) -> None:
        """Cancel ``task_id`` if it is running its attempts; nothing otherwise."""
        self._cancels.cancel_now(task_id)

    @workflow.query(name=RUNNING)
    def running(self) -> list[str]:
        """The tasks running their attempts now."""
        return self._cancels.running_now()

    @workflow.query(name="events")
    def events(self, since: int) -> dict[str, Any]:
        """The workflow's own events (queued, retrying, finished) from number ``since`` on,
        numbered across its runs: ``{"first": N, "events": [...]}``; ``first`` is past
        ``since`` when earlier runs' events are gone (their results are carried)."""
        first = max(since, self._before)
        return {"first": first, "events": self._events[first - self._before :]}

    def _publish(self, event: Event) -> None:
        record = _event_record(event)
        if record is not None:
            self._events.append(record)

    @workflow.run
    async def run(self, spec: MissionInput) -> MissionOutput:
        self._before = spec.events_before
        executor = TemporalExecutor(spec.task_queue, spec.affinity_wait)
        runner = MissionRunner(
            spec.run_id,
            spec.tasks,
            executor,
            self._publish,
            spec.retry_backoff,
            clock=_workflow_clock(),
            token_budget=spec.token_budget,
            admission=Window(spec.max_in_flight, spec.events_per_run),
            finished=spec.finished,
            cancels=self._cancels,
        )
        try:
            await runner.schedule()
        except asyncio.CancelledError:  # the runner recorded every unfinished task cancelled
            return MissionOutput(_slimmed(runner.results), cancelled=True)
        held = [t for t in spec.tasks if t.task_id in runner.held]
        if held:
            workflow.continue_as_new(
                dataclasses.replace(
                    spec,
                    tasks=held,
                    finished=_slimmed(runner.results),
                    events_before=spec.events_before + len(self._events),
                    runs_before=spec.runs_before + 1,
                )
            )
        return MissionOutput(_slimmed(runner.results))


def _slimmed(results: dict[str, TaskResult]) -> list[TaskResult]:
    """Every result, in the mission's order, without what makes them large."""
    return [slim(r) for r in sorted(results.values(), key=lambda r: r.index)]
