"""A pool of workers: start them, lend them out, replace the broken ones, retire the worn.

The pool knows a worker only by the ``Worker`` protocol (the real one is ``AppServerWorker``;
tests use a fake that speaks the same protocol). The choice of a worker (``assign``) and whether
one is worn out (``retire_reason``) are plain functions; the pool wraps them with the waiting
and the I/O. A retired worker is stopped when it comes back idle; the next task lent its label
gets a fresh process on the same CODEX_HOME, where its threads can be resumed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from codex_mcp_wrapper.engine.executor import EventSink, TaskOutcome, TaskRequest
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

    async def run(self, request: TaskRequest, sink: EventSink) -> TaskOutcome: ...

    async def aclose(self) -> None: ...


WorkerFactory = Callable[[str], Worker]


def choose_worker(
    idle: Sequence[str], required: str | None = None, preferred: str | None = None
) -> str | None:
    """The idle worker to lend: the required one or none; else the preferred; else the first."""
    if required is not None:
        return required if required in idle else None
    if preferred is not None and preferred in idle:
        return preferred
    return idle[0] if idle else None


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


def assign(idle: list[str], waiters: list[Waiter]) -> list[tuple[Waiter, str]]:
    """Hand idle workers to waiters, first come first served; pure, no I/O."""
    free = list(idle)
    grants: list[tuple[Waiter, str]] = []
    for waiter in waiters:
        if not free:
            break
        if waiter.future.done():
            continue
        label = choose_worker(free, waiter.required, waiter.preferred)
        if label is not None:
            free.remove(label)
            grants.append((waiter, label))
    return grants


class WorkerPool:
    """N workers; ``acquire`` waits (first come, first served) for an idle one."""

    def __init__(
        self, factory: WorkerFactory, labels: Sequence[str], recycling: Recycling | None = None
    ) -> None:
        self._factory = factory
        self._recycling = recycling or Recycling()
        self.retired = 0  # workers stopped for wear, over the pool's life
        self._labels = list(labels)
        self._workers: dict[str, Worker] = {}
        self._idle: list[str] = []
        self._waiters: list[Waiter] = []

    def __repr__(self) -> str:
        busy = len(self._workers) - len(self._idle)
        return f"<WorkerPool [{busy} busy, {len(self._idle)} idle | {len(self._waiters)} waiting]>"

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

    async def start(self) -> None:
        """Start every worker concurrently; fail only if none comes up."""
        results = await asyncio.gather(
            *(self._start_one(label) for label in self._labels), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        for error in errors:
            if not isinstance(error, WorkerError | WorkerStartError):
                raise error
        if not self._workers:
            first = errors[0] if errors else None
            raise WorkerStartError(str(first) if first else "no Codex worker could be started.")
        self._labels = [label for label in self._labels if label in self._workers]
        self._idle.sort(key=self._labels.index)

    async def _start_one(self, label: str) -> None:
        worker = self._factory(label)
        self._workers[label] = worker  # known before it starts, so aclose() always reaps it
        try:
            await worker.start()
        except BaseException:
            self._workers.pop(label, None)
            raise
        self._idle.append(label)

    def _dispatch(self) -> None:
        for waiter, label in assign(self._idle, self._waiters):
            self._idle.remove(label)
            self._waiters.remove(waiter)
            waiter.future.set_result(label)

    async def acquire(self, required: str | None = None, preferred: str | None = None) -> Worker:
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
        worker = self._workers[label]
        if worker.alive:
            return worker
        try:  # it died while idle or in its last task: a fresh process, same CODEX_HOME
            return await self.replace(worker)
        except BaseException:
            self._give_back(label)
            raise

    def _give_back(self, label: str) -> None:
        if label not in self._idle:
            self._idle.append(label)
        self._dispatch()

    async def release(self, worker: Worker) -> None:
        """Take a worker back; retire it first when it is worn out (its label is lent again
        and a fresh process started for it when next needed)."""
        if worker.alive:
            reason = retire_reason(worker.threads_run, worker.memory_mb(), self._recycling)
            if reason is not None:
                log.info("retiring worker %s: %s", worker.label, reason)
                self.retired += 1
                try:
                    await asyncio.shield(worker.aclose())
                finally:
                    self._give_back(worker.label)
                return
        self._give_back(worker.label)

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
        self._idle.clear()
