"""Task results and run summaries: the JSON contract scripts and CI rely on."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from codex_mcp_wrapper.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TASKS_FAILED,
)

ResultStatus = Literal["ok", "failed", "timeout", "cancelled", "skipped"]
RunStatus = Literal["running", "ok", "failed", "cancelled", "interrupted"]


class TaskResult(BaseModel):
    task_id: str
    index: int
    status: ResultStatus
    worker: str | None = None
    attempts: int = 0
    thread_id: str | None = None
    final_message: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: int = 0
    usage: dict[str, int] = Field(default_factory=dict)
    artifacts: list[str] = Field(default_factory=list)
    error: str | None = None
    log_path: str | None = None
    turns_done: int = 0
    checks: list[dict[str, Any]] = Field(default_factory=list)
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    commands: list[dict[str, Any]] = Field(default_factory=list)


class RunSummary(BaseModel):
    run_id: str
    mission_id: str
    status: RunStatus
    exit_code: int
    started_at: float
    finished_at: float | None = None
    duration_ms: int = 0
    run_dir: str | None = None
    workspace_root: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    tasks: list[TaskResult] = Field(default_factory=list)


def summarise(
    run_id: str,
    mission_id: str,
    results: list[TaskResult],
    started_at: float,
    finished_at: float,
    cancelled: bool = False,
) -> RunSummary:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    if cancelled:
        status: RunStatus = "cancelled"
        code = EXIT_INTERRUPTED
    elif all(r.status == "ok" for r in results):
        status, code = "ok", EXIT_OK
    else:
        status, code = "failed", EXIT_TASKS_FAILED
    return RunSummary(
        run_id=run_id,
        mission_id=mission_id,
        status=status,
        exit_code=code,
        started_at=started_at,
        finished_at=finished_at,
        duration_ms=int((finished_at - started_at) * 1000),
        counts=counts,
        tasks=sorted(results, key=lambda r: r.index),
    )
