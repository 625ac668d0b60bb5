"""``LocalExecutor``: the ``TaskExecutor`` that runs a task on a worker of a local pool."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.checks import Evidence, evaluate, failure_message
from codex_mcp_wrapper.errors import WorkerStartError
from codex_mcp_wrapper.execution import EventSink, TaskOutcome, TaskRequest
from codex_mcp_wrapper.expect import Expect
from codex_mcp_wrapper.paths import inside
from codex_mcp_wrapper.pool import WorkerPool


def collect_artifacts(workspace: Path, globs: list[str], dest: Path) -> list[str]:
    """Copy files matching ``globs`` (relative to the workspace, never outside it) to ``dest``."""
    copied: list[str] = []
    root = workspace.resolve()
    for pattern in globs:
        for path in sorted(root.glob(pattern)):
            if not path.is_file() or not inside(root, path):
                continue
            rel = path.resolve().relative_to(root)
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            copied.append(str(rel))
    return sorted(set(copied))


class _Gathering:
    """An EventSink that also keeps the evidence the task's checks are decided on."""

    def __init__(self, sink: EventSink, evidence: Evidence) -> None:
        self._sink = sink
        self._evidence = evidence

    def codex_event(self, task_id: str, method: str, params: dict[str, Any]) -> None:
        self._evidence.add(method, params)
        self._sink.codex_event(task_id, method, params)

    def task_state(self, task_id: str, state: str, worker: str | None, message: str) -> None:
        self._sink.task_state(task_id, state, worker, message)

    def thread_progress(self, task_id: str, thread_id: str, worker: str, turns_done: int) -> None:
        self._sink.thread_progress(task_id, thread_id, worker, turns_done)


class LocalExecutor:
    """Lends a worker from the pool for one attempt of a task; a worker that broke is closed
    and the pool starts a fresh one under the same label the next time it is lent."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self._evidence: dict[tuple[str, str], Evidence] = {}

    async def execute(self, request: TaskRequest, sink: EventSink) -> TaskOutcome:
        if not Path(request.cwd).is_dir():
            return TaskOutcome(
                status="failed",
                thread_id=request.thread_id,
                turns_done=request.turns_done,
                error=f"the task's working directory {request.cwd} no longer exists (was the "
                "workspace removed?); restore it and resume the run.",
            )
        sink.task_state(request.task_id, "waiting", None, "waiting for a worker")
        try:
            worker = await self.pool.acquire(request.thread_worker, request.preferred_worker)
        except WorkerStartError as exc:
            return TaskOutcome(status="failed", error=str(exc), thread_id=request.thread_id)
        sink.task_state(request.task_id, "running", worker.label, f"attempt {request.attempt}")
        evidence = self._evidence.setdefault((request.run_id, request.task_id), Evidence())
        try:
            outcome = await worker.run(request, _Gathering(sink, evidence))
            if outcome.worker_broken:
                sink.task_state(request.task_id, "worker-lost", worker.label, outcome.error or "")
                await worker.aclose()  # the pool starts a fresh one when it is next lent
        except asyncio.CancelledError:
            # The turn may still run inside Codex: stop the process rather than lend it out.
            await asyncio.shield(worker.aclose())
            raise
        finally:
            await self.pool.release(worker)
        if request.artifacts and request.workspace_root and request.artifacts_dir:
            outcome.artifacts = collect_artifacts(
                Path(request.workspace_root), list(request.artifacts), Path(request.artifacts_dir)
            )
        outcome.tool_calls, outcome.commands = evidence.tool_calls, evidence.commands
        if request.expect and outcome.status == "ok":
            await self._check(request, outcome, evidence, sink)
        return outcome

    async def _check(
        self, request: TaskRequest, outcome: TaskOutcome, evidence: Evidence, sink: EventSink
    ) -> None:
        """The task's turns ended ok: now decide it on evidence. Failed checks fail the task
        (and are not retried: the model considered itself done)."""
        sink.task_state(request.task_id, "checking", outcome.worker, "checking expectations")
        expect = Expect.model_validate(request.expect)
        results = await evaluate(
            expect, evidence, outcome.final_message, request.output_schema, Path(request.cwd)
        )
        outcome.checks = [r.model_dump() for r in results]
        if not all(r.ok for r in results):
            outcome.status, outcome.retryable = "failed", False
            outcome.error = failure_message(results)
