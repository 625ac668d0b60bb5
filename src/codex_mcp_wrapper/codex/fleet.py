"""``Fleet``: the Codex processes of one owner (a ``run``, a ``serve`` process), placed by
isolation profile and, when the owner asks, kept warm from one run to the next.

A ``Profile`` is what Codex cannot set per thread: the binary, and the provider and the
credentials written into CODEX_HOME or passed in the process env. Everything else (cwd and its
project trust, model, sandbox, approval policy, instructions, the task's env through
``shell_environment_policy``, MCP servers) is set per thread, so the runs of one profile share
one ``WorkerPool``, ``threads_per_worker`` threads a process. A profile's pool grows as the
runs using it hold more task slots; once no run uses it, it is closed (a one-run owner) or kept
warm for the next run (``warm``) until the process cap needs its room for another profile. A
label (a CODEX_HOME, where threads live) belongs to one pool at a time: a run continuing a
thread gets its label, taken from an idle pool of another profile when needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from codex_mcp_wrapper import process
from codex_mcp_wrapper.codex.home import ProviderSpec
from codex_mcp_wrapper.codex.labels import LabelLocks
from codex_mcp_wrapper.codex.pool import WorkerFactory, WorkerPool
from codex_mcp_wrapper.engine.seams import SlotsState
from codex_mcp_wrapper.errors import WorkerStartError
from codex_mcp_wrapper.settings import Settings

log = logging.getLogger("codex_mcp_wrapper.fleet")


def digest(*secrets: str | None) -> str:
    """A fingerprint of credentials, so a profile tells them apart without holding them."""
    return hashlib.sha256("\0".join(s or "" for s in secrets).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Profile:
    """What must not be shared between tasks: tasks share processes only when it is equal."""

    codex_bin: str
    provider: ProviderSpec
    credentials: str = ""  # ``digest`` of the credentials the processes get, never the values


@dataclass(eq=False)
class _Entry:
    profile: Profile
    pool: WorkerPool
    slots: int = 0  # task slots held by the runs using the pool
    users: int = 0  # runs using the pool
    idle_since: float = field(default_factory=time.monotonic)


def processes_for(slots: int, threads_per_worker: int) -> int:
    """Processes that run ``slots`` threads at once, ``threads_per_worker`` each."""
    return max(1, -(-slots // max(1, threads_per_worker)))


class Fleet:
    """The pools of one owner, one per profile; ``lease`` lends a run its profile's pool."""

    def __init__(self, settings: Settings, warm: bool = False) -> None:
        self.settings = settings
        self.warm = warm  # keep idle pools for the next run
        self.threads_per_worker = max(1, settings.threads_per_worker)
        # When a profile needs room, idle pools are closed while the fleet runs more than this
        # many processes; busy ones hold at most what their runs' slots need, and the budget
        # bounds the slots.
        self.max_processes = processes_for(settings.workers, self.threads_per_worker)
        self.locks = LabelLocks(settings.state_dir / "workers")
        self._entries: dict[Profile, _Entry] = {}
        self._changed = asyncio.Condition()

    def __repr__(self) -> str:
        pools = ", ".join(f"{e.pool!r} x{e.users}" for e in self._entries.values())
        return f"<Fleet {self.processes} processes [{pools}]>"

    @property
    def processes(self) -> int:
        return sum(len(e.pool.labels) for e in self._entries.values())

    def state(self) -> SlotsState:
        """Every pool's slots and Codex processes, added up (for metrics)."""
        states = [pool.state() for pool in self.pools()]
        return SlotsState(
            busy=sum(s.busy for s in states),
            free=sum(s.free for s in states),
            memory_mb={k: v for s in states for k, v in s.memory_mb.items()},
        )

    def pools(self) -> list[WorkerPool]:
        return [e.pool for e in self._entries.values()]

    @contextlib.asynccontextmanager
    async def lease(
        self,
        profile: Profile,
        factory: WorkerFactory,
        slots: int,
        required: Sequence[str] = (),
    ) -> AsyncIterator[WorkerPool]:
        """The pool of ``profile``, grown to run ``slots`` more threads at once and holding
        the ``required`` labels (threads to continue live in their CODEX_HOME)."""
        async with self._changed:
            entry = self._entries.get(profile)
            if entry is None:
                pool = WorkerPool(factory, [], self.settings.recycling, self.threads_per_worker)
                entry = self._entries[profile] = _Entry(profile, pool)
            entry.users += 1
            entry.slots += slots
        try:
            await self._fit(entry, required)
        except BaseException:
            await process.finish(self._leave(entry, slots))
            raise
        try:
            yield entry.pool
        finally:
            # To the end even when cancelled again: a lease never released pins its pool.
            await process.finish(self._leave(entry, slots))

    async def _fit(self, entry: _Entry, required: Sequence[str]) -> None:
        """Start the processes ``entry``'s runs need. The lock is held only to decide and
        to take labels from idle pools; claiming labels (which may wait for another wrapper)
        and starting or stopping processes happen outside it, so other runs never wait on
        them."""
        pool = entry.pool
        async with self._changed:
            missing = [label for label in required if label not in pool.labels]
            victims = [await self._take_label(label, entry) for label in missing]
            want = max(processes_for(entry.slots, self.threads_per_worker), len(pool.labels))
            count = len(missing) + max(0, want - len(pool.labels) - len(missing))
            if count:
                victims += self._idle_victims(self.processes + count - self.max_processes, entry)
        for victim in victims:
            if victim is not None:
                await self._close(victim)
        if count == 0:
            return
        labels = await self.locks.claim(count, missing, self.settings.timeouts.label_lock)
        try:
            await pool.add(labels)
        finally:
            for label in labels:
                if label not in pool.labels:  # it did not start
                    self.locks.release(label)

    async def _take_label(self, label: str, entry: _Entry) -> _Entry | None:
        """Free ``label`` from another pool of this fleet (called holding the lock): wait
        until that pool is idle, then detach it; the caller closes it (its processes are of
        another profile)."""
        wait = self.settings.timeouts.label_lock
        try:
            async with asyncio.timeout(wait):
                while True:
                    owner = next(
                        (e for e in self._entries.values() if label in e.pool.labels), None
                    )
                    if owner is None or owner is entry:
                        return None
                    if owner.users == 0:
                        self._detach(owner)
                        return owner
                    await self._changed.wait()
        except TimeoutError:
            raise WorkerStartError(
                f"worker {label}, which holds the thread to continue, stayed busy with another "
                f"kind of task for {wait:g} s; try again when those end."
            ) from None

    def _idle_victims(self, excess: int, keep: _Entry) -> list[_Entry]:
        """Detach idle pools, the longest idle first, until ``excess`` processes are freed
        (called holding the lock; the caller closes them)."""
        idle = sorted(
            (e for e in self._entries.values() if e.users == 0 and e is not keep),
            key=lambda e: e.idle_since,
        )
        victims = []
        for entry in idle:
            if excess <= 0:
                break
            excess -= len(entry.pool.labels)
            log.info("closing idle workers %s for another profile", entry.pool.labels)
            self._detach(entry)
            victims.append(entry)
        return victims

    async def _leave(self, entry: _Entry, slots: int) -> None:
        """A run is done with ``entry``'s pool. Kept warm when the fleet is (idle pools are
        closed only when another profile needs room, in ``_fit``), else closed."""
        async with self._changed:
            entry.users -= 1
            entry.slots -= slots
            close = entry.users == 0 and (not self.warm or not entry.pool.labels)
            if entry.users == 0:
                entry.idle_since = time.monotonic()
            if close:
                self._detach(entry)
            self._changed.notify_all()
        if close:
            await self._close(entry)

    def _detach(self, entry: _Entry) -> None:
        if self._entries.get(entry.profile) is entry:
            del self._entries[entry.profile]

    async def _close(self, entry: _Entry) -> None:
        """Stop a detached pool's processes and give its labels back."""
        labels = list(entry.pool.labels)
        try:
            await entry.pool.aclose()
        finally:
            for label in labels:
                self.locks.release(label)

    async def aclose(self) -> None:
        """Stop every process of the fleet (its owner ends)."""
        async with self._changed:
            entries = list(self._entries.values())
            for entry in entries:
                self._detach(entry)
        results = await asyncio.gather(*(self._close(e) for e in entries), return_exceptions=True)
        self.locks.release_all()
        for result in results:
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                log.warning("a worker did not stop cleanly: %s", result)
