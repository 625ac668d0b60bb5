"""``ProcessBudget``: how many tasks the runs of one backend may run at once (``--workers``).

A long-lived backend (``serve``) runs many missions concurrently (each MCP ``codex`` call is a
one-task mission); without a bound, N concurrent calls start N app-servers. Each run takes
between ``need`` and ``want`` task slots, waiting first come, first served while fewer than
``need`` are free, and gives them back when its pool closes; a run starts
ceil(slots / threads_per_worker) processes for the slots it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass
class _Waiter:
    need: int
    want: int
    future: asyncio.Future[int]


def grant(free: int, waiters: list[tuple[int, int]]) -> list[int]:
    """Slots granted to the waiters at the head of the line, in order: each gets what it
    wants of what is free, at least its need; the first one that cannot be served stops the
    line (no overtaking). Pure, no I/O."""
    granted: list[int] = []
    for need, want in waiters:
        if free < need:
            break
        take = min(want, free)
        granted.append(take)
        free -= take
    return granted


class ProcessBudget:
    def __init__(self, total: int) -> None:
        self.total = max(1, total)
        self.free = self.total
        self._line: deque[_Waiter] = deque()

    def __repr__(self) -> str:
        held = self.total - self.free
        return f"<ProcessBudget [{held} held, {self.free} free | {len(self._line)} waiting]>"

    def _dispatch(self) -> None:
        live = [w for w in self._line if not w.future.done()]
        self._line = deque(live)
        for waiter, take in zip(
            list(self._line), grant(self.free, [(w.need, w.want) for w in live]), strict=False
        ):
            self._line.popleft()
            self.free -= take
            waiter.future.set_result(take)

    @contextlib.asynccontextmanager
    async def take(self, want: int, need: int = 1) -> AsyncIterator[int]:
        """Hold between ``need`` and ``want`` slots (both capped at the total) for the block;
        yields how many were granted."""
        need = min(max(1, need), self.total)
        want = min(max(need, want), self.total)
        waiter = _Waiter(need, want, asyncio.get_running_loop().create_future())
        self._line.append(waiter)
        self._dispatch()
        try:
            granted = await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self.free += waiter.future.result()
            self._dispatch()
            raise
        try:
            yield granted
        finally:
            self.free += granted
            self._dispatch()
