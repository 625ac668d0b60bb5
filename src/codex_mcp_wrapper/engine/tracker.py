"""``RunTracker``: the live state of a run, kept from its events (for status, wait, cancel);
``run_ended``: what a caller of a run gets back, a cancelled run's summary included."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from codex_mcp_wrapper.engine.events import (
    Event,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskUpdate,
    ThreadProgress,
)
from codex_mcp_wrapper.engine.redaction import Redactor
from codex_mcp_wrapper.engine.results import FINAL_STATUSES, RunSummary
from codex_mcp_wrapper.engine.run_state import RunState, TaskRow


@dataclass
class RunTracker:
    run_id: str
    mission_id: str = ""
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: RunSummary | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None
    redactor: Redactor = field(default_factory=Redactor)
    owner: str | None = None  # the MCP client identity the run is for (None: the owner's)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.mission_id = event.mission_id
            self.tasks = {t: {"task_id": t, "status": "pending"} for t in event.task_ids}
        elif isinstance(event, TaskUpdate):
            row = self.tasks.setdefault(event.task_id, {"task_id": event.task_id})
            row.update(status=event.status, worker=event.worker or row.get("worker"))
        elif isinstance(event, ThreadProgress):  # known while it runs (codex-steer finds it)
            self.tasks.setdefault(event.task_id, {"task_id": event.task_id})
            self.tasks[event.task_id]["thread_id"] = event.thread_id
        elif isinstance(event, TaskFinished):
            self.tasks[event.result.task_id] = event.result.model_dump(
                include={"task_id", "status", "worker", "thread_id", "error", "duration_ms"}
            )
        elif isinstance(event, RunFinished):
            self.summary = event.summary

    def finished_count(self) -> int:
        return sum(1 for row in self.tasks.values() if row.get("status") in FINAL_STATUSES)

    def state(self) -> RunState:
        """The run's state (its events reach the tracker redacted; its error is redacted here)."""
        if self.summary is not None:
            return RunState.of_summary(self.summary)
        return RunState(
            run_id=self.run_id,
            mission_id=self.mission_id,
            status="failed" if self.error else "running",
            done=self.done.is_set(),
            error=self.redactor.text(self.error) if self.error else None,
            finished=self.finished_count(),
            total=len(self.tasks),
            tasks=[TaskRow.model_validate(row) for row in self.tasks.values()],
        )


async def run_ended(driving: asyncio.Task[RunSummary], tracker: RunTracker) -> RunSummary:
    """The summary of a run's task; when the run alone was cancelled (``Runs.stop_runs``), the
    cancelled summary it recorded. Cancelling the caller cancels the run and goes on up."""
    try:
        return await driving
    except asyncio.CancelledError:
        caller = asyncio.current_task()
        if (caller is not None and caller.cancelling()) or tracker.summary is None:
            raise
        return tracker.summary
