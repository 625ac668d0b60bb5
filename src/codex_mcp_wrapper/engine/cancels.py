"""``TaskCancels``: cancelling one running task of a run, the others going on.

``drive_run`` makes one per run and hands it to the backend in ``RunContext.cancels``; the
``MissionRunner`` that schedules the run's tasks here registers each task while its attempts
run (``running``). ``cancel`` then cancels that task's asyncio task: its attempt is cancelled
(the worker interrupts the turn and keeps its thread), the runner records the task
``cancelled`` and its dependents are skipped, as for any task that did not end ok. A runner
that never took it (a run whose tasks run on Temporal hosts) leaves ``attached`` False: only
the whole run can be cancelled there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

CANCELLED_ON_REQUEST = (
    "the task was cancelled on request (runs cancel --task, mission_cancel with task_id, "
    "or the UI)."
)


class TaskCancels:
    """The tasks of one run that are running their attempts, and cancelling one of them."""

    def __init__(self) -> None:
        self.attached = False  # a runner registers its tasks here
        self.requested: set[str] = set()
        self._running: dict[str, asyncio.Task[object]] = {}

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
            return False
        self.requested.add(task_id)
        task.cancel()
        await asyncio.wait({task}, timeout=timeout)  # the caller stays cancellable
        return True
