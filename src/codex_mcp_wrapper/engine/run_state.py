"""What the application API answers about runs, as typed values: ``RunState`` (status, wait,
cancel), ``RunRecord`` (show, for a run that has not finished; a finished one is its
``RunSummary``) and ``RunRow`` (list). ``Runs`` builds them from its live trackers and the
store; the facades (CLI, MCP) only serialise them, with ``to_json``.

``RunState.to_json`` keeps the shape clients have always read: a finished run's summary fields
at the top level (with ``run_id`` and ``done``), else the run's progress.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from codex_mcp_wrapper.engine.results import DictAccess, RunSummary, TaskResult


class TaskRow(BaseModel):
    """A task of a run that has not finished: as far as it got."""

    task_id: str
    status: str
    worker: str | None = None
    thread_id: str | None = None
    error: str | None = None
    duration_ms: int | None = None

    @classmethod
    def of(cls, result: TaskResult) -> TaskRow:
        return cls(
            task_id=result.task_id,
            status=result.status,
            worker=result.worker,
            thread_id=result.thread_id,
            error=result.error,
            duration_ms=result.duration_ms,
        )


class RunState(DictAccess, BaseModel):
    """A run's state: its summary once it finished, else its progress (``finished`` of
    ``total`` tasks when it runs in this process; ``error`` when it could not go on)."""

    run_id: str
    mission_id: str = ""
    status: str
    done: bool
    summary: RunSummary | None = None
    error: str | None = None
    finished: int | None = None
    total: int | None = None
    tasks: list[TaskRow] = Field(default_factory=list)
    # Set by ``Runs.cancel``: whether a run going on here was cancelled, and why not.
    cancelled: bool | None = None
    message: str | None = None

    @classmethod
    def of_summary(cls, summary: RunSummary) -> RunState:
        return cls(
            run_id=summary.run_id,
            mission_id=summary.mission_id,
            status=summary.status,
            done=True,
            summary=summary,
        )

    def to_json(self) -> dict[str, Any]:
        """The state as the CLI and MCP tools show it."""
        if self.summary is not None:
            data: dict[str, Any] = {
                "run_id": self.run_id,
                "done": True,
                **self.summary.model_dump(mode="json"),
            }
        else:
            data = {
                "run_id": self.run_id,
                "mission_id": self.mission_id,
                "status": self.status,
                "done": self.done,
                "error": self.error,
            }
            if self.total is not None:
                data |= {"finished": self.finished, "total": self.total}
            data["tasks"] = [t.model_dump(mode="json", exclude_none=True) for t in self.tasks]
        if self.cancelled is not None:
            data["cancelled"] = self.cancelled
        if self.message is not None:
            data["message"] = self.message
        return data


class RecordedTask(BaseModel):
    """A task as the store holds it (``runs show`` of a run that has not finished)."""

    task_id: str
    index: int
    status: str
    worker: str | None = None
    attempt: int = 0
    thread_id: str | None = None
    turns_done: int = 0
    message: str | None = None
    result: TaskResult | None = None


class RunRow(DictAccess, BaseModel):
    """A run in ``runs list``."""

    run_id: str
    mission_id: str
    status: str
    created_at: float | None = None
    finished_at: float | None = None
    run_dir: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)  # tasks by status, once finished
    duration_ms: int | None = None

    @classmethod
    def of_summary(cls, summary: RunSummary) -> RunRow:
        return cls(
            run_id=summary.run_id,
            mission_id=summary.mission_id,
            status=summary.status,
            created_at=summary.started_at,
            finished_at=summary.finished_at,
            run_dir=summary.run_dir,
            counts=summary.counts,
            duration_ms=summary.duration_ms,
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Baselines(BaseModel):
    """The finished runs of a run's mission that it may be compared with (``runs diff``),
    newest first, and the one to compare with by default: the newest that ended ok before
    it (None when none did)."""

    run_id: str
    mission_id: str
    runs: list[RunRow] = Field(default_factory=list)
    default: str | None = None


class RunRecord(RunRow):
    """Everything recorded of a run that has not finished (one that has is its
    ``RunSummary``)."""

    tasks: list[RecordedTask] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"counts", "duration_ms"})
        return {**data, "summary": None}
