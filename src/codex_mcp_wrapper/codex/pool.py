"""A pool of workers: start them, lend their thread slots, replace the broken, retire the worn.

Each worker is one Codex process running up to ``threads_per_worker`` threads at once (one
task each); ``max_active`` bounds the threads of the whole pool. The pool knows a worker only by
the ``Worker`` protocol (the real one is ``AppServerWorker``; tests use a fake that speaks the
same protocol). The choice of a worker (``assign``) and whether one is worn out
(``retire_reason``) are plain functions; the pool wraps them with the waiting and the I/O. A
worn worker is drained (lent no more), stopped once its last thread ends, and the next task
lent its label gets a fresh process on the same CODEX_HOME, where its threads can be resumed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from codex_mcp_wrapper.engine.seams import (
    ApprovalHandler,
    EventSink,
    SlotsState,
    TaskOutcome,
    TaskRequest,
    ToolHandler,
)
from codex_mcp_wrapper.errors import WorkerError, WorkerStartError
from codex_mcp_wrapper.settings import Recycling

log = logging.getLogger("codex_mcp_wrapper.pool")


class Worker(Protocol):
    """What the pool and the executor need of a worker."""

    label: str

    @property
    def alive(self) -> bool: ...

    @property
    def threads_run(self) -> int:
        """Threads this process has started or resumed."""
        ...

    def memory_mb(self) -> float | None:
        """Resident memory of the process and its children (None when unknown)."""
        ...

    async def start(self) -> None: ...

    async def run(
        self,
        request: TaskRequest,
        sink: EventSink,
        approvals: ApprovalHandler | None = None,
        tools: ToolHandler | None = None,
    ) -> TaskOutcome:
        """Run the task's prompts in one thread; ``approvals`` answers that thread's approval
        requests and ``tools`` its calls of the orchestrator's tools (threads of one process
        may belong to runs with different handlers)."""
        ...

    async def steer(self, run_id: str, task_id: str, text: str) -> str | None:
        """Add ``text`` to the task's running turn; its id, or None when none runs here."""
        ...

    async def aclose(self) -> None: ...


WorkerFactory = Callable[[str], Worker]


def choose_worker(
    free: Mapping[str, int], required: str | None = None, preferred: str | None = None
) -> str | None:
    """The worker to lend a slot of (``free``: label -> free thread slots, in pool order): the
    required one or none; else the preferred one; else the one with the most free slots (the
    first of those), spreading threads over processes."""
    if required is not None:
        return required if free.get(required, 0) > 0 else None
    if preferred is not None and free.get(preferred, 0) > 0:
        return preferred
    best = max(free.values(), default=0)
    return next((label for label, n in free.items() if n == best), None) if best > 0 else None


def retire_reason(threads_run: int, memory_mb: float | None, limits: Recycling) -> str | None:
    """Why a worker must be retired now, or None: it ran its share of threads, or it grew
    past the memory limit (a limit of 0 is off)."""
    if limits.max_threads and threads_run >= limits.max_threads:
        return f"it ran {threads_run} threads (limit {limits.max_threads})"
    if limits.max_rss_mb and memory_mb is not None and memory_mb >= limits.max_rss_mb:
        return f"it uses {memory_mb:.0f} MB (limit {limits.max_rss_mb} MB)"
    return None


@dataclass
class Waiter:
    required: str | None
    preferred: str | None
    future: asyncio.Future[str]


def assign(
    free: Mapping[str, int], waiters: list[Waiter], limit: int | None = None
) -> list[tuple[Waiter, str]]:
    """Hand free slots to waiters, first come first served, at most ``limit`` in all; a waiter
    whose required worker is full lets later ones pass. Pure, no I/O."""
    left = dict(free)
    grants: list[tuple[Waiter, str]] = []
    for waiter in waiters:
        if limit is not None and len(grants) >= limit:
            break
        if not any(n > 0 for n in left.values()):
            break
        if waiter.future.done():
            continue
        label = choose_worker(left, waiter.required, waiter.preferred)
        if label is not None:
            left[label] -= 1
            grants.append((waiter, label))
    return grants


class WorkerPool:
    """Workers of ``threads_per_worker`` slots each; ``acquire`` waits (first come, first
    served) for a free slot, ``release`` gives it back."""

    def __init__(
        self,
        factory: WorkerFactory,
        labels: Sequence[str],
        recycling: Recycling | None = None,
        threads_per_worker: int = 1,
        max_active: int | None = None,
    ) -> None:
        self._factory = factory
        self._labels = list(labels)
        self._recycling = recycling or Recycling()
        self._capacity = max(1, threads_per_worker)
        self._max_active = max_active
        self._workers: dict[str, Worker] = {}
        self._active: dict[str, int] = {}  # label -> slots lent out
        self._draining: set[str] = set()  # worn: lent no more, stopped when its last slot ends
        self._starting: set[str] = set()  # being started by add(): not lent yet
        self._restarts: dict[str, asyncio.Lock] = {}
        self._waiters: list[Waiter] = []
        self.retired = 0  # workers stopped for wear, over the pool's life

    def __repr__(self) -> str:
        busy = sum(self._active.values())
        idle = sum(self._free().values())
        return f"<WorkerPool [{busy} busy, {idle} idle | {len(self._waiters)} waiting]>"

    def state(self) -> SlotsState:
        """Slots busy and free, and each worker's resident memory (for metrics)."""
        workers = dict(self._workers)
        return SlotsState(
            busy=sum(self._active.values()),
            free=sum(self._free().values()),
            memory_mb={label: worker.memory_mb() for label, worker in workers.items()},
        )

    def _free(self) -> dict[str, int]:
        return {
            label: self._capacity - self._active.get(label, 0)
            for label in self._labels
            if label in self._workers and label not in self._draining | self._starting
        }

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await asyncio.shield(self.aclose())
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self.aclose())

    @property
    def labels(self) -> list[str]:
        """The labels of the pool's workers."""
        return list(self._labels)

    async def start(self) -> None:
        """Start every worker concurrently; fail only if none comes up."""
        labels, self._labels = self._labels, []
        await self.add(labels)

    async def add(self, labels: Sequence[str]) -> None:
        """Start workers under more labels (a pool growing with the runs it serves); fail
        only if the pool then has none. A label that did not start is left out."""
        new = [label for label in labels if label not in self._labels]
        self._labels.extend(new)
        self._starting.update(new)  # not lent until started (_free)
        try:
            results = await asyncio.gather(
                *(self._start_one(label) for label in new), return_exceptions=True
            )
        finally:  # cancelled too: no label is left without a worker
            self._starting.difference_update(new)
            self._labels = [label for label in self._labels if label in self._workers]
        errors = [r for r in results if isinstance(r, BaseException)]
        for error in errors:
            if not isinstance(error, WorkerError | WorkerStartError):
                raise error
        if not self._workers:
            first = errors[0] if errors else None
            raise WorkerStartError(str(first) if first else "no Codex worker could be started.")
        self._dispatch()

    async def _start_one(self, label: str) -> None:
        worker = self._factory(label)
        self._workers[label] = worker  # known before it starts, so aclose() always reaps it
        try:
            await worker.start()
        except BaseException:
            self._workers.pop(label, None)
            raise

    def _dispatch(self) -> None:
        limit = None
        if self._max_active is not None:
            limit = max(0, self._max_active - sum(self._active.values()))
        for waiter, label in assign(self._free(), self._waiters, limit):
            self._active[label] = self._active.get(label, 0) + 1
            self._waiters.remove(waiter)
            waiter.future.set_result(label)

    async def acquire(self, required: str | None = None, preferred: str | None = None) -> Worker:
        """A slot on a live worker; a dead one is started afresh (once, whoever asks first)."""
        if required is not None and required not in self._labels:
            required = None  # that worker is not in this pool: start the thread anew elsewhere
        waiter = Waiter(required, preferred, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        self._dispatch()
        try:
            label = await waiter.future
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.future.done() and not waiter.future.cancelled():
                self._give_back(waiter.future.result())
            raise
        try:
            async with self._restarts.setdefault(label, asyncio.Lock()):
                worker = self._workers[label]
                if not worker.alive:  # died, or retired: a fresh process, same CODEX_HOME
                    worker = await self.replace(worker)
        except BaseException:
            self._give_back(label)
            raise
        return worker

    def _give_back(self, label: str) -> None:
        self._active[label] = max(0, self._active.get(label, 0) - 1)
        self._dispatch()

    async def release(self, worker: Worker) -> None:
        """Take a slot back. A worn worker is drained: lent no more, and stopped once its last
        thread has ended (its label is then lent again, with a fresh process)."""
        label = worker.label
        if worker.alive and label not in self._draining:
            reason = retire_reason(worker.threads_run, worker.memory_mb(), self._recycling)
            if reason is not None:
                log.info("retiring worker %s: %s", label, reason)
                self._draining.add(label)
                self.retired += 1
        current = self._workers.get(label) is worker  # not a dead one already replaced
        if current and label in self._draining and self._active.get(label, 0) <= 1:
            try:
                await asyncio.shield(worker.aclose())
            finally:
                self._draining.discard(label)
                self._give_back(label)
            return
        self._give_back(label)

    async def replace(self, worker: Worker) -> Worker:
        """Kill a broken worker and start a fresh one under the same label (same CODEX_HOME)."""
        await worker.aclose()
        fresh = self._factory(worker.label)
        self._workers[worker.label] = fresh  # reaped by aclose() even if start is cancelled
        await fresh.start()
        return fresh

    async def aclose(self) -> None:
        workers = list(self._workers.values())
        await asyncio.gather(*(w.aclose() for w in workers), return_exceptions=True)
        self._workers.clear()
        self._active.clear()
