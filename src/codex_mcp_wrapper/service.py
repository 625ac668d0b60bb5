"""``MissionService``: the long-lived face of the engine for servers (the MCP facade).

It runs missions in the foreground or in the background (owned by its task group, never
fire-and-forget), tracks live runs for status/wait/cancel, and turns single Codex requests
(``codex``/``codex-reply``) into one-task missions so they get the same isolation, records and
thread persistence as everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from codex_mcp_wrapper.engine import make_redactor, new_run_id, run_mission
from codex_mcp_wrapper.errors import InputError, MissionError
from codex_mcp_wrapper.events import (
    Event,
    RunFinished,
    RunStarted,
    Subscriber,
    TaskFinished,
    TaskUpdate,
)
from codex_mcp_wrapper.execution import ApprovalHandler
from codex_mcp_wrapper.mission import Mission, parse_mission
from codex_mcp_wrapper.redact import Redactor
from codex_mcp_wrapper.results import RunSummary, TaskResult
from codex_mcp_wrapper.resume import load_for_resume
from codex_mcp_wrapper.settings import Settings
from codex_mcp_wrapper.store import RunStore

RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
CANCEL_TIMEOUT = 30.0


@dataclass
class RunTracker:
    """Live state of one run, kept from its events."""

    run_id: str
    mission_id: str = ""
    task_ids: list[str] = field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: RunSummary | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None
    redactor: Redactor = field(default_factory=Redactor)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.mission_id = event.mission_id
            self.task_ids = list(event.task_ids)
            self.tasks = {t: {"task_id": t, "status": "pending"} for t in event.task_ids}
        elif isinstance(event, TaskUpdate):
            row = self.tasks.setdefault(event.task_id, {"task_id": event.task_id})
            row.update(status=event.status, worker=event.worker or row.get("worker"))
        elif isinstance(event, TaskFinished):
            self.tasks[event.result.task_id] = event.result.model_dump(
                include={"task_id", "status", "worker", "thread_id", "error", "duration_ms"}
            )
        elif isinstance(event, RunFinished):
            self.summary = event.summary

    def finished_count(self) -> int:
        final = ("ok", "failed", "timeout", "cancelled", "skipped")
        return sum(1 for row in self.tasks.values() if row.get("status") in final)

    def state(self) -> dict[str, Any]:
        """The run's state, with the mission's secrets redacted."""
        return self.redactor.data(self._state())  # type: ignore[no-any-return]

    def _state(self) -> dict[str, Any]:
        if self.summary is not None:
            return {"run_id": self.run_id, "done": True, **self.summary.model_dump(mode="json")}
        return {
            "run_id": self.run_id,
            "mission_id": self.mission_id,
            "status": "failed" if self.error else "running",
            "done": self.done.is_set(),
            "error": self.error,
            "finished": self.finished_count(),
            "total": len(self.tasks),
            "tasks": list(self.tasks.values()),
        }


@dataclass
class CodexRequest:
    """One Codex session request, as the removed ``codex`` MCP tool took it."""

    prompt: str
    cwd: str | None = None
    sandbox: str | None = None
    approval_policy: str | None = None
    model: str | None = None
    profile: str | None = None
    config: dict[str, Any] | None = None
    base_instructions: str | None = None
    developer_instructions: str | None = None
    compact_prompt: str | None = None


class MissionService:
    def __init__(self, settings: Settings, default_cwd: Path | None = None) -> None:
        self.settings = settings
        self.default_cwd = default_cwd or Path.cwd()
        self._live: dict[str, RunTracker] = {}
        self._tasks: dict[str, asyncio.Task[RunSummary | None]] = {}
        self._group: asyncio.TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks.values():
            task.cancel()
        assert self._group is not None
        await self._group.__aexit__(exc_type, exc, tb)

    # -- reading the store -----------------------------------------------------------------
    def _store(self) -> RunStore:
        return RunStore(self.settings.state_dir)

    def run_dir(self, run_id: str) -> Path:
        if not RUN_ID.match(run_id):
            raise InputError(f"'{run_id}' is not a run id; see runs_list.")
        return self.settings.state_dir / "runs" / run_id

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        store = self._store()
        try:
            return store.list_runs(limit)
        finally:
            store.close()

    def status(self, run_id: str) -> dict[str, Any]:
        tracker = self._live.get(run_id)
        if tracker is not None:
            return tracker.state()
        self.run_dir(run_id)
        store = self._store()
        try:
            info = store.get_run(run_id)
        finally:
            store.close()
        if info is None:
            raise InputError(f"no run '{run_id}'; see runs_list.")
        if info.get("summary"):
            return {"run_id": run_id, "done": True, **info["summary"]}
        return {
            "run_id": run_id,
            "mission_id": info["mission_id"],
            "status": info["status"],
            "done": info["status"] != "running",
            "tasks": [
                {k: row[k] for k in ("task_id", "status", "worker", "thread_id")}
                for row in info["tasks"]
            ],
        }

    # -- running ---------------------------------------------------------------------------
    async def run(
        self,
        mission: Mission,
        *,
        observers: Sequence[Subscriber] = (),
        approvals: ApprovalHandler | None = None,
        threads: dict[str, tuple[str, str | None]] | None = None,
        previous: dict[str, TaskResult] | None = None,
        run_id: str | None = None,
    ) -> RunSummary:
        run_id = run_id or new_run_id()
        tracker = self._live.setdefault(
            run_id, RunTracker(run_id, mission.mission_id, redactor=make_redactor(mission))
        )
        try:
            return await run_mission(
                mission,
                self.settings,
                observers=[tracker, *observers],
                run_id=run_id,
                previous=previous,
                threads=threads,
                approvals=approvals,
            )
        finally:
            tracker.done.set()
            self._live.pop(run_id, None)

    def start(
        self,
        mission: Mission,
        previous: dict[str, TaskResult] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Run a mission in the background; returns its run id at once."""
        assert self._group is not None, "use MissionService as an async context manager"
        run_id = run_id or new_run_id()
        tracker = RunTracker(run_id, mission.mission_id, redactor=make_redactor(mission))
        self._live[run_id] = tracker

        async def background() -> RunSummary | None:
            try:
                return await self.run(mission, run_id=run_id, previous=previous)
            except asyncio.CancelledError:
                return None  # recorded as cancelled by the engine
            except Exception as exc:  # noqa: BLE001 - a background run's edge: keep the reason
                tracker.error = str(exc)
                return None
            finally:
                tracker.done.set()
                self._tasks.pop(run_id, None)

        self._tasks[run_id] = self._group.create_task(background(), name=f"run-{run_id}")
        return run_id

    def resume(self, run_id: str) -> str:
        """Finish a run in the background (see ``resume.load_for_resume``)."""
        if run_id in self._tasks:
            raise InputError(f"run {run_id} is running; wait for it or cancel it first.")
        self.run_dir(run_id)
        store = self._store()
        try:
            mission, previous = load_for_resume(store, run_id)
        finally:
            store.close()
        return self.start(mission, previous=previous, run_id=run_id)

    async def wait(self, run_id: str, timeout: float) -> dict[str, Any]:
        tracker = self._live.get(run_id)
        if tracker is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await tracker.done.wait()
        return self.status(run_id)

    async def cancel(self, run_id: str) -> dict[str, Any]:
        task = self._tasks.get(run_id)
        if task is None:
            state = self.status(run_id)
            return {**state, "cancelled": False, "message": "the run is not running here"}
        task.cancel()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(CANCEL_TIMEOUT):
                await asyncio.shield(task)
        return {**self.status(run_id), "cancelled": True}

    # -- single Codex sessions -------------------------------------------------------------
    def codex_mission(self, request: CodexRequest) -> Mission:
        cwd = Path(request.cwd).expanduser() if request.cwd else self.default_cwd
        if not cwd.is_absolute():
            cwd = self.default_cwd / cwd
        config = dict(request.config or {})
        if request.compact_prompt:
            config["compact_prompt"] = request.compact_prompt
        task: dict[str, Any] = {"id": "codex", "prompt": request.prompt, "config": config}
        for key in (
            "sandbox",
            "approval_policy",
            "model",
            "profile",
            "base_instructions",
            "developer_instructions",
        ):
            value = getattr(request, key)
            if value is not None:
                task[key] = value
        return parse_mission(
            {"mission_id": "codex", "workspace_root": str(cwd.resolve()), "tasks": [task]},
            "codex tool arguments",
            variables={},
        )

    async def codex(
        self,
        request: CodexRequest,
        observers: Sequence[Subscriber] = (),
        approvals: ApprovalHandler | None = None,
    ) -> TaskResult:
        summary = await self.run(
            self.codex_mission(request), observers=observers, approvals=approvals
        )
        return summary.tasks[0]

    def _thread_origin(self, thread_id: str) -> tuple[str, str, str | None]:
        store = self._store()
        try:
            row = store.db.execute(
                "SELECT run_id, task_id, worker FROM threads WHERE thread_id = ?", (thread_id,)
            ).fetchone()
        finally:
            store.close()
        if row is None:
            raise InputError(
                f"no Codex thread '{thread_id}' is known to this wrapper (state dir "
                f"{self.settings.state_dir}); start one with the codex tool."
            )
        return str(row[0]), str(row[1]), row[2]

    def _continuation(self, run_id: str, task_id: str, prompt: str) -> Mission:
        path = self.run_dir(run_id) / "mission.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MissionError(f"the mission of run {run_id} cannot be read ({exc}).") from exc
        tasks = [t for t in data.get("tasks", []) if t.get("id") == task_id]
        if not tasks:
            raise InputError(f"run {run_id} has no task '{task_id}'.")
        task = {**tasks[0], "prompt": prompt, "follow_ups": [], "depends_on": []}
        data = {**data, "mission_id": data.get("mission_id", "reply"), "tasks": [task]}
        return parse_mission(data, f"run {run_id}", variables={})

    async def reply(
        self,
        thread_id: str,
        prompt: str,
        observers: Sequence[Subscriber] = (),
        approvals: ApprovalHandler | None = None,
    ) -> TaskResult:
        """Continue a thread (after a restart too: it is resumed from its worker's home)."""
        run_id, task_id, worker = self._thread_origin(thread_id)
        mission = self._continuation(run_id, task_id, prompt)
        summary = await self.run(
            mission,
            observers=observers,
            approvals=approvals,
            threads={task_id: (thread_id, worker)},
        )
        return summary.tasks[0]

    async def reply_task(
        self, run_id: str, task_id: str, prompt: str, observers: Sequence[Subscriber] = ()
    ) -> TaskResult:
        status = self.status(run_id)
        rows = {t["task_id"]: t for t in status.get("tasks", [])}
        thread_id = (rows.get(task_id) or {}).get("thread_id")
        if not thread_id:
            raise InputError(f"task '{task_id}' of run {run_id} has no thread to continue.")
        return await self.reply(str(thread_id), prompt, observers)


def batch_result(summary: RunSummary) -> dict[str, Any]:
    """The ``batch`` contract of the original wrapper design."""
    results, errors = [], []
    for task in summary.tasks:
        results.append(
            {
                "task_index": task.index,
                "task_id": task.task_id,
                "worker": task.worker,
                "status": task.status,
                "stdout": task.final_message or "",
                "output": task.final_message or "",
                "threadId": task.thread_id,
                "conversationId": task.thread_id,
                "duration_ms": task.duration_ms,
                "artifacts": task.artifacts,
            }
        )
        if task.status != "ok":
            errors.append(
                {
                    "task_index": task.index,
                    "task_id": task.task_id,
                    "status": task.status,
                    "message": task.error or f"the task ended {task.status}",
                }
            )
    return {
        "mission_id": summary.mission_id,
        "run_id": summary.run_id,
        "status": summary.status,
        "results": results,
        "errors": errors,
    }
