"""``TaskCancels``: cancelling one running task of a run, the others going on.

``drive_run`` makes one per run and hands it to the backend in ``RunContext.cancels``; the
``MissionRunner`` that schedules the run's tasks here registers each task while its attempts
run (``running``). ``cancel`` then cancels that task's asyncio task: its attempt is cancelled
(the worker interrupts the turn and keeps its thread), the runner records the task
``cancelled`` and its dependents are skipped, as for any task that did not end ok.

A run whose runner runs elsewhere (in a Temporal workflow) leaves ``attached`` False here;
its backend sets ``remote`` instead, which asks that runner to cancel the task (the workflow
has a ``TaskCancels`` of its own, and cancels there with ``cancel_now``). Without either,
only the whole run can be cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator

CANCELLED_ON_REQUEST = (
    "the task was cancelled on request (runs cancel --task, mission_cancel with task_id, "
    "or the UI)."
)


class TaskCancels:
    """The tasks of one run that are running their attempts, and cancelling one of them."""

    def __init__(self) -> None:
        self.attached = False  # a runner registers its tasks here
        # Where the runner is elsewhere: cancels a task there, waiting at most the timeout
        # given for its end to be recorded here; False when it is not running.
        self.remote: Callable[[str, float], Awaitable[bool]] | None = None
        self.requested: set[str] = set()
        self._running: dict[str, asyncio.Task[object]] = {}

    @property
    def reachable(self) -> bool:
        """Whether one task can be cancelled: its runner is here, or reachable (``remote``)."""
        return self.attached or self.remote is not None

    def running_now(self) -> list[str]:
        """The tasks running their attempts now, in the order they started."""
        return list(self._running)

    def __repr__(self) -> str:
        return f"<TaskCancels [{len(self._running)} running | {len(self.requested)} cancelled]>"

    @contextlib.contextmanager
    def running(self, task_id: str) -> Iterator[None]:
        """Within the block, the current asyncio task runs ``task_id``'s attempts."""
        task = asyncio.current_task()
        assert task is not None
        self._running[task_id] = task
        try:
            yield
        finally:
            self._running.pop(task_id, None)

    async def cancel(self, task_id: str, timeout: float) -> bool:
        """Cancel ``task_id`` if it is running its attempts and wait (at most ``timeout``
        seconds) for it to be recorded; False when it is not running (queued, waiting on its
        dependencies, or done)."""
        task = self._running.get(task_id)
        if task is None:
            return False if self.remote is None else await self.remote(task_id, timeout)
        self.cancel_now(task_id)
        await asyncio.wait({task}, timeout=timeout)  # the caller stays cancellable
        return True

    def cancel_now(self, task_id: str) -> bool:
        """Cancel ``task_id`` if it is running its attempts, without waiting (a workflow's
        signal handler); False when it is not running."""
        task = self._running.get(task_id)
        if task is None:
            return False
        self.requested.add(task_id)
        task.cancel()
        return True
