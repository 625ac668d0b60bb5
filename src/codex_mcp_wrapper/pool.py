"""A pool of Codex workers: start them, lend them out, replace the broken ones.

The choice of a worker is a plain function (``choose_worker``); the pool wraps it with the
waiting and the I/O. Each worker label is held with an exclusive file lock so two wrappers
sharing a state dir never share a worker's CODEX_HOME.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from codex_mcp_wrapper.errors import WorkerError, WorkerStartError
from codex_mcp_wrapper.worker import AppServerWorker

MAX_LABELS = 64
WorkerFactory = Callable[[str], AppServerWorker]


def choose_worker(
    idle: Sequence[str], required: str | None = None, preferred: str | None = None
) -> str | None:
    """The idle worker to lend: the required one or none; else the preferred; else the first."""
    if required is not None:
        return required if required in idle else None
    if preferred is not None and preferred in idle:
        return preferred
    return idle[0] if idle else None


class LabelLocks:
    """Exclusive, process-wide locks on ``workers/<label>/lock``; released on exit or crash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._held: dict[str, IO[bytes]] = {}

    def claim(self, count: int) -> list[str]:
        labels: list[str] = []
        for n in range(1, MAX_LABELS + 1):
            if len(labels) == count:
                break
            label = f"w{n}"
            if self.try_lock(label):
                labels.append(label)
        return labels

    def try_lock(self, label: str) -> bool:
        if label in self._held:
            return True
        folder = self.root / label
        folder.mkdir(parents=True, exist_ok=True)
        fh = (folder / "lock").open("ab")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.truncate(0)
        fh.write(f"{os.getpid()}\n".encode())
        fh.flush()
        self._held[label] = fh
        return True

    def release_all(self) -> None:
        for fh in self._held.values():
            with contextlib.suppress(OSError):
                fh.close()
        self._held.clear()


class WorkerPool:
    """N workers; ``acquire`` waits for an idle one, ``release`` returns it."""

    def __init__(self, factory: WorkerFactory, labels: Sequence[str]) -> None:
        self._factory = factory
        self._labels = list(labels)
        self._workers: dict[str, AppServerWorker] = {}
        self._idle: list[str] = []
        self._cond = asyncio.Condition()
        self._waiting = 0

    def __repr__(self) -> str:
        busy = len(self._workers) - len(self._idle)
        return f"<WorkerPool [{busy} busy, {len(self._idle)} idle | {self._waiting} waiting]>"

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    def worker(self, label: str) -> AppServerWorker | None:
        return self._workers.get(label)

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

    async def _start_one(self, label: str) -> None:
        worker = self._factory(label)
        await worker.start()
        self._workers[label] = worker
        async with self._cond:
            self._idle.append(label)
            self._idle.sort(key=self._labels.index)
            self._cond.notify_all()

    async def acquire(
        self, required: str | None = None, preferred: str | None = None
    ) -> AppServerWorker:
        if required is not None and required not in self._labels:
            required = None  # that worker is not in this pool: start the thread anew elsewhere
        async with self._cond:
            self._waiting += 1
            try:
                while True:
                    label = choose_worker(self._idle, required, preferred)
                    if label is not None:
                        self._idle.remove(label)
                        break
                    await self._cond.wait()
            finally:
                self._waiting -= 1
        worker = self._workers[label]
        if worker.alive:
            return worker
        try:  # it died while idle or in its last task: a fresh process, same CODEX_HOME
            return await self.replace(worker)
        except BaseException:
            await self.release(worker)
            raise

    async def release(self, worker: AppServerWorker) -> None:
        async with self._cond:
            if worker.label not in self._idle:
                self._idle.append(worker.label)
            self._cond.notify_all()

    async def replace(self, worker: AppServerWorker) -> AppServerWorker:
        """Kill a broken worker and start a fresh one under the same label (same CODEX_HOME)."""
        await worker.aclose()
        fresh = self._factory(worker.label)
        await fresh.start()
        self._workers[worker.label] = fresh
        return fresh

    async def aclose(self) -> None:
        workers = list(self._workers.values())
        await asyncio.gather(*(w.aclose() for w in workers), return_exceptions=True)
        self._workers.clear()
        self._idle.clear()
