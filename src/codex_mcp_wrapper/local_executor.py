"""``LocalExecutor``: the ``TaskExecutor`` that runs a task on a worker of a local pool."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from codex_mcp_wrapper.errors import WorkerStartError
from codex_mcp_wrapper.execution import EventSink, TaskOutcome, TaskRequest
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


class LocalExecutor:
    """Lends a worker from the pool for one attempt of a task; a worker that broke is closed
    and the pool starts a fresh one under the same label the next time it is lent."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

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
        try:
            outcome = await worker.run(request, sink)
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
        return outcome
