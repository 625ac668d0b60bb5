"""``LocalExecutor``: the ``TaskExecutor`` that runs a task on a worker of a local pool, then
collects its artifacts and decides its ``expect`` checks on the evidence of its events."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.codex.evidence import gather
from codex_mcp_wrapper.codex.pool import Worker, WorkerPool
from codex_mcp_wrapper.engine.results import TaskState
from codex_mcp_wrapper.engine.seams import (
    ApprovalHandler,
    EventSink,
    TaskOutcome,
    TaskRequest,
    ToolHandler,
)
from codex_mcp_wrapper.errors import WorkerStartError
from codex_mcp_wrapper.missions.checks import Evidence, evaluate, failure_message
from codex_mcp_wrapper.missions.paths import inside

# Wraps an attempt's sink while the attempt runs (``codex.spans``: its turns' spans).
AttemptTrace = Callable[[TaskRequest, EventSink], AbstractContextManager[EventSink]]


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
        gather(self._evidence, method, params)
        self._sink.codex_event(task_id, method, params)

    def task_state(self, task_id: str, state: TaskState, worker: str | None, message: str) -> None:
        self._sink.task_state(task_id, state, worker, message)

    def thread_progress(self, task_id: str, thread_id: str, worker: str, turns_done: int) -> None:
        self._sink.thread_progress(task_id, thread_id, worker, turns_done)


def _untraced(_request: TaskRequest, sink: EventSink) -> AbstractContextManager[EventSink]:
    return contextlib.nullcontext(sink)


class LocalExecutor:
    """Lends a worker from the pool for one attempt of a task; a worker that broke is closed
    and the pool starts a fresh one under the same label the next time it is lent."""

    def __init__(
        self,
        pool: WorkerPool,
        models: Mapping[str, str] | None = None,
        approvals: ApprovalHandler | None = None,
        limit: int | None = None,
        tools: ToolHandler | None = None,
        trace: AttemptTrace | None = None,
    ) -> None:
        """``models`` maps a task id to the model name its threads must use (the scripted
        model tells tasks apart by it); ``approvals`` answers the run's approval requests;
        ``limit`` bounds the run's tasks at once (the pool may serve other runs too);
        ``trace`` sees each attempt's events when the process traces."""
        self.pool = pool
        self.trace = trace
        self.models = dict(models or {})
        self.approvals = approvals
        self.tools = tools
        self._slots = asyncio.Semaphore(limit) if limit else None
        self._evidence: dict[tuple[str, str], Evidence] = {}
        self._lent: dict[tuple[str, str], Worker] = {}  # (run, task) -> the worker running it

    async def execute(self, request: TaskRequest, sink: EventSink) -> TaskOutcome:
        model = self.models.get(request.task_id)
        if model is not None:
            request = dataclasses.replace(
                request, spec=dataclasses.replace(request.spec, model=model)
            )
        spec = request.spec
        if not Path(spec.cwd).is_dir():
            return TaskOutcome(
                status="failed",
                thread_id=request.thread_id,
                turns_done=request.turns_done,
                error=f"the task's working directory {spec.cwd} no longer exists (was the "
                "workspace removed?); restore it and resume the run.",
            )
        sink.task_state(request.task_id, "waiting", None, "waiting for a worker")
        async with self._slots or contextlib.nullcontext():
            return await self._execute(request, sink)

    async def _execute(self, request: TaskRequest, sink: EventSink) -> TaskOutcome:
        spec = request.spec
        try:
            worker = await self.pool.acquire(request.thread_worker, spec.preferred_worker)
        except WorkerStartError as exc:
            return TaskOutcome(status="failed", error=str(exc), thread_id=request.thread_id)
        sink.task_state(request.task_id, "running", worker.label, f"attempt {request.attempt}")
        evidence = self._evidence.setdefault((request.run_id, request.task_id), Evidence())
        key = (request.run_id, request.task_id)
        self._lent[key] = worker
        try:
            gathering = _Gathering(sink, evidence)
            traced = self.trace or _untraced
            with traced(request, gathering) as events:
                outcome = await worker.run(request, events, self.approvals, self.tools)
            if outcome.worker_broken:
                sink.task_state(request.task_id, "worker-lost", worker.label, outcome.error or "")
                await worker.aclose()  # the pool starts a fresh one when it is next lent
        finally:  # cancelled: the worker stopped the task's turn (or itself, if it could not)
            self._lent.pop(key, None)
            await self.pool.release(worker)
        if spec.artifacts and spec.workspace_root and spec.artifacts_dir:
            outcome.artifacts = collect_artifacts(
                Path(spec.workspace_root), list(spec.artifacts), Path(spec.artifacts_dir)
            )
        outcome.tool_calls = list(evidence.tool_calls)
        outcome.commands = list(evidence.commands)
        outcome.review = evidence.review
        if spec.expect is not None and outcome.status == "ok":
            await self._check(request, outcome, evidence, sink)
        return outcome

    async def steer(self, run_id: str, task_id: str, text: str) -> str | None:
        """Add ``text`` to the task's running turn; the turn's id, or None when the task has
        no turn running (waiting for a worker, between attempts, done)."""
        worker = self._lent.get((run_id, task_id))
        return None if worker is None else await worker.steer(run_id, task_id, text)

    async def _check(
        self, request: TaskRequest, outcome: TaskOutcome, evidence: Evidence, sink: EventSink
    ) -> None:
        """The task's turns ended ok: now decide it on evidence. Failed checks fail the task
        (and are not retried: the model considered itself done)."""
        sink.task_state(request.task_id, "checking", outcome.worker, "checking expectations")
        spec = request.spec
        assert spec.expect is not None
        results = await evaluate(
            spec.expect, evidence, outcome.final_message, spec.output_schema, Path(spec.cwd)
        )
        outcome.checks = results
        if not all(r.ok for r in results):
            outcome.status, outcome.retryable = "failed", False
            outcome.error = failure_message(results)
