"""Fakes for the fast tier: a worker that speaks the pool's ``Worker`` protocol without Codex.

``FakeWorker`` is a real object, not a mock: what it does for each attempt of a task is
scripted (``Act``), and it writes what it was asked to plain lists that tests read. A
``FakeFleet`` is the worker factory the pool is given; its workers share its script and its
record. Tests wait for a state with ``wait_until`` (on change notifications, bounded), never by
sleeping. ``started``/``run`` put the real runner, ``LocalExecutor`` and ``WorkerPool`` over a
fleet; ``queue`` puts an ``acquire`` in the pool's line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from codex_mcp_wrapper.codex.executor import LocalExecutor
from codex_mcp_wrapper.codex.pool import WorkerPool
from codex_mcp_wrapper.engine.events import Event, EventBus, TaskFinished, TaskUpdate
from codex_mcp_wrapper.engine.results import OutcomeStatus, TaskResult
from codex_mcp_wrapper.engine.runner import MissionRunner
from codex_mcp_wrapper.engine.seams import (
    ApprovalHandler,
    EventSink,
    PlannedTask,
    TaskOutcome,
    TaskRequest,
    ToolHandler,
)
from codex_mcp_wrapper.errors import WorkerStartError
from codex_mcp_wrapper.settings import Recycling

WAIT = 2.0  # seconds a test waits for a state before it fails: far above the milliseconds used


@dataclass(frozen=True)
class Act:
    """What a worker does for one attempt of a task."""

    status: OutcomeStatus = "ok"
    retryable: bool = False
    die: bool = False  # report worker_broken; the worker is dead afterwards
    gate: asyncio.Event | None = None  # hold the attempt until the test sets this
    use_budget: bool = False  # answer only once the request's time budget is used up
    error: str | None = None


def ok() -> Act:
    return Act()


def failed(retryable: bool) -> Act:
    kind = "retryable" if retryable else "permanent"
    return Act(status="failed", retryable=retryable, error=f"scripted {kind} failure")


def timed_out() -> Act:
    return Act(status="timeout", error="scripted turn timeout")


def dies() -> Act:
    return Act(status="failed", retryable=True, die=True, error="scripted worker death")


def blocks(gate: asyncio.Event) -> Act:
    return Act(gate=gate)


def uses_budget() -> Act:
    """Hangs for the whole budget it is given, then fails as if retryable."""
    return Act(status="failed", retryable=True, use_budget=True, error="scripted slow failure")


@dataclass(frozen=True)
class Call:
    """One ``run`` a worker was asked to do."""

    worker: str  # label#generation, e.g. w1#2 for the second process started as w1
    task_id: str
    attempt: int
    timeout_sec: float
    thread_id: str | None
    thread_worker: str | None
    turns_done: int


class Watched:
    """State a test can wait for: ``changed()`` wakes the ``wait_until`` whose predicate holds."""

    def __init__(self) -> None:
        self._watches: list[tuple[Callable[[], bool], asyncio.Event]] = []

    def changed(self) -> None:
        for predicate, event in self._watches:
            if predicate():
                event.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        if predicate():
            return
        watch = (predicate, asyncio.Event())
        self._watches.append(watch)
        try:
            async with asyncio.timeout(timeout):
                await watch[1].wait()
        finally:
            self._watches.remove(watch)


class EventLog(Watched):
    """A bus subscriber keeping every event (``bus.subscribe(log)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self.changed()

    def states(self, task_id: str) -> list[str]:
        return [e.status for e in self.events if isinstance(e, TaskUpdate) and e.task_id == task_id]

    def count(self, state: str) -> int:
        return sum(1 for e in self.events if isinstance(e, TaskUpdate) and e.status == state)

    def finished(self, task_id: str) -> bool:
        return any(isinstance(e, TaskFinished) and e.result.task_id == task_id for e in self.events)


class FakeFleet(Watched):
    """The ``WorkerFactory`` for a pool of fake workers, with their shared script and record.

    ``script`` maps a task id to its acts by attempt (attempt 1 is ``acts[0]``); an attempt
    beyond the list, or a task not in it, is ``ok()``. Labels in ``fail_start`` cannot start.
    """

    def __init__(
        self, script: Mapping[str, Sequence[Act]] | None = None, fail_start: Iterable[str] = ()
    ) -> None:
        super().__init__()
        self.script = {task: list(acts) for task, acts in (script or {}).items()}
        self.fail_start = set(fail_start)
        self.workers: list[FakeWorker] = []
        self.started: list[str] = []  # labels, in the order their start() was called
        self.closed: list[str] = []  # labels, in the order their aclose() was called
        self.history: list[str] = []  # "start w1#1", "run a/1 on w1#1", "close w1#1", ...
        self.calls: list[Call] = []
        self.running: dict[str, str] = {}  # "label#generation/task" -> task id, while it runs
        self.max_running = 0
        self.rss_mb: float | None = None  # the memory every worker reports, unless its own
        self.capacity = 1  # threads a worker may run at once (the pool's threads_per_worker)

    def __call__(self, label: str) -> FakeWorker:
        generation = 1 + sum(1 for w in self.workers if w.label == label)
        worker = FakeWorker(label, generation, self)
        self.workers.append(worker)
        return worker

    def act_for(self, task_id: str, attempt: int) -> Act:
        acts = self.script.get(task_id, [])
        return acts[attempt - 1] if attempt <= len(acts) else ok()

    def calls_of(self, task_id: str) -> list[Call]:
        return [c for c in self.calls if c.task_id == task_id]

    def worker(self, name: str) -> FakeWorker:
        """The worker named label#generation."""
        return next(w for w in self.workers if w.name == name)


class FakeWorker:
    """Speaks ``codex_mcp_wrapper.codex.pool.Worker``; fails the test if it is misused (run
    while dead or while running as many threads as it may: the pool must never lend it so)."""

    def __init__(self, label: str, generation: int, fleet: FakeFleet) -> None:
        self.label = label
        self.generation = generation
        self.name = f"{label}#{generation}"
        self.fleet = fleet
        self.closes = 0
        self.threads_run = 0
        self.rss_mb: float | None = None  # what memory_mb() reports; tests set it
        self._alive = False
        self.busy = 0  # threads running now

    def __repr__(self) -> str:
        return f"<FakeWorker {self.name} alive={self._alive}>"

    @property
    def alive(self) -> bool:
        return self._alive

    def memory_mb(self) -> float | None:
        return self.rss_mb if self.rss_mb is not None else self.fleet.rss_mb

    async def start(self) -> None:
        self.fleet.started.append(self.label)
        self.fleet.history.append(f"start {self.name}")
        if self.label in self.fleet.fail_start:
            raise WorkerStartError(f"fake worker {self.label} is scripted not to start")
        self._alive = True

    async def steer(self, run_id: str, task_id: str, text: str) -> str | None:
        return None  # a fake turn takes no input while it runs

    async def run(
        self,
        request: TaskRequest,
        sink: EventSink,
        approvals: ApprovalHandler | None = None,
        tools: ToolHandler | None = None,
    ) -> TaskOutcome:
        assert self._alive, f"{self.name} was lent out dead"
        assert self.busy < self.fleet.capacity, f"{self.name} was lent out while full"
        fleet = self.fleet
        act = fleet.act_for(request.task_id, request.attempt)
        fleet.calls.append(
            Call(
                self.name,
                request.task_id,
                request.attempt,
                request.timeout_sec,
                request.thread_id,
                request.thread_worker,
                request.turns_done,
            )
        )
        fleet.history.append(f"run {request.task_id}/{request.attempt} on {self.name}")
        thread_id = request.thread_id or f"thread-{request.task_id}"
        self.threads_run += 1
        sink.thread_progress(request.task_id, thread_id, self.label, request.turns_done)
        self.busy += 1
        fleet.running[f"{self.name}/{request.task_id}"] = request.task_id
        fleet.max_running = max(fleet.max_running, len(fleet.running))
        fleet.changed()
        try:
            if act.gate is not None:
                try:
                    await act.gate.wait()
                except asyncio.CancelledError:  # as AppServerWorker: stop the task's turn
                    fleet.history.append(f"interrupt {request.task_id} on {self.name}")
                    raise
            if act.use_budget:  # a worker that never answers: the budget runs out
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(request.timeout_sec + 0.001):
                        await asyncio.Event().wait()
        finally:
            self.busy -= 1
            del fleet.running[f"{self.name}/{request.task_id}"]
            fleet.changed()
        if act.die:
            self._alive = False
        done = len(request.prompts) if act.status == "ok" else request.turns_done
        return TaskOutcome(
            status=act.status,
            final_message=f"{request.task_id} done on {self.name}" if act.status == "ok" else None,
            thread_id=thread_id,
            worker=self.label,
            turns_done=done,
            usage={"output_tokens": 1},
            error=act.error,
            retryable=act.retryable,
            worker_broken=act.die,
        )

    async def aclose(self) -> None:
        self._alive = False
        self.closes += 1
        self.fleet.closed.append(self.label)
        self.fleet.history.append(f"close {self.name}")
        self.fleet.changed()


# --- a harness: the real runner, executor and pool over a fleet of fake workers -------------


@dataclass
class Live:
    """A run going on (``task``), and what a test observes it by."""

    runner: MissionRunner
    task: asyncio.Task[list[TaskResult]]
    log: EventLog
    pool: WorkerPool


@contextlib.asynccontextmanager
async def started(
    planned: list[PlannedTask],
    fleet: FakeFleet,
    labels: Sequence[str] = ("w1",),
    recycling: Recycling | None = None,
    threads_per_worker: int = 1,
) -> AsyncIterator[Live]:
    """The real runner, executor and pool over ``fleet``'s workers, the run going on in a task."""
    bus, log = EventBus(), EventLog()
    bus.subscribe(log)
    fleet.capacity = threads_per_worker
    async with WorkerPool(fleet, labels, recycling, threads_per_worker) as pool:
        runner = MissionRunner(
            "run-1", planned, LocalExecutor(pool), bus.publish, retry_backoff=(0.0,)
        )
        live = Live(runner, asyncio.create_task(runner.schedule()), log, pool)
        try:
            yield live
        finally:
            live.task.cancel()  # nothing when it is done; a failed test leaves no run behind
            await asyncio.gather(live.task, return_exceptions=True)


async def run(
    planned: list[PlannedTask],
    fleet: FakeFleet,
    labels: Sequence[str] = ("w1",),
    recycling: Recycling | None = None,
    threads_per_worker: int = 1,
) -> tuple[dict[str, TaskResult], EventLog]:
    async with (
        started(planned, fleet, labels, recycling, threads_per_worker) as live,
        asyncio.timeout(WAIT),
    ):
        results = await live.task
    return {r.task_id: r for r in results}, live.log


async def queue(
    pool: WorkerPool, name: str, granted: list[str], **choice: str
) -> asyncio.Task[FakeWorker]:
    """``pool.acquire(**choice)`` in a task noting ``name@label`` in ``granted``; returns once
    it is in line (``acquire`` joins the line before its first await, so ``entered`` tells)."""
    entered = asyncio.Event()

    async def body() -> FakeWorker:
        entered.set()
        worker = await pool.acquire(choice.get("required"), choice.get("preferred"))
        granted.append(f"{name}@{worker.label}")
        assert isinstance(worker, FakeWorker)
        return worker

    task = asyncio.create_task(body())
    async with asyncio.timeout(WAIT):
        await entered.wait()
    return task
