"""The composition root: settings -> store -> model -> pool -> executor -> runner -> events.

The CLI and the MCP server call ``run_mission``; neither holds business logic of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.approvals import fixed
from codex_mcp_wrapper.codex_home import (
    CodexHomeSpec,
    ProviderSpec,
    mirror_auth,
    scripted_provider,
    write_codex_home,
)
from codex_mcp_wrapper.errors import MissionError
from codex_mcp_wrapper.events import EventBus, ModelRequest, RunFinished, RunStarted, Subscriber
from codex_mcp_wrapper.execution import ApprovalHandler
from codex_mcp_wrapper.local_executor import LocalExecutor
from codex_mcp_wrapper.mission import CustomProvider, Mission, load_task_scripts
from codex_mcp_wrapper.planning import plan_tasks
from codex_mcp_wrapper.pool import LabelLocks, WorkerPool
from codex_mcp_wrapper.redact import Redactor
from codex_mcp_wrapper.reports import ReportWriter
from codex_mcp_wrapper.results import RunSummary, TaskResult, summarise
from codex_mcp_wrapper.runner import MissionRunner
from codex_mcp_wrapper.scripted.server import ScriptedModel
from codex_mcp_wrapper.settings import Settings, find_codex_bin, user_codex_home
from codex_mcp_wrapper.store import RunStore
from codex_mcp_wrapper.worker import AppServerWorker, WorkerSpec

log = logging.getLogger("codex_mcp_wrapper")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


@dataclass
class WorkerFactory:
    """Builds a worker for a label: its CODEX_HOME rendered, its env and log in place."""

    settings: Settings
    codex_bin: str
    provider: ProviderSpec
    workspace_root: Path
    approvals: ApprovalHandler

    def __call__(self, label: str) -> AppServerWorker:
        state = self.settings.state_dir
        home = state / "workers" / label / "codex-home"
        write_codex_home(
            home,
            CodexHomeSpec(
                provider=self.provider,
                trusted_projects=[self.workspace_root],
                user_config=(user_codex_home() / "config.toml")
                if self.settings.sync_codex_config
                else None,
            ),
        )
        if self.settings.mirror_auth and mirror_auth(user_codex_home(), home):
            log.warning(
                "copied auth.json into worker %s: ChatGPT logins use single-use refresh tokens "
                "and break across copies; prefer OPENAI_API_KEY.",
                label,
            )
        env = self.settings.worker_base_env()
        env["CODEX_HOME"] = str(home)
        if self.provider.env_key and self.provider.env_key in os.environ:
            env[self.provider.env_key] = os.environ[self.provider.env_key]
        return AppServerWorker(
            WorkerSpec(
                label=label,
                codex_bin=self.codex_bin,
                codex_home=home,
                env=env,
                log_path=state / "logs" / f"worker-{label}.log",
                cwd=self.workspace_root,
            ),
            self.approvals,
        )


def mission_record(mission: Mission, settings: Settings, workspace_root: Path) -> dict[str, Any]:
    """The mission as it ran (variables expanded, paths absolute, provider as chosen), so
    ``resume`` and ``reply`` can run it again exactly."""
    record = mission.model_dump(mode="json", exclude_none=True)
    record["workspace_root"] = str(workspace_root)
    if settings.scripted:
        record["provider"] = "scripted"
    return record


def make_redactor(mission: Mission) -> Redactor:
    redactor = Redactor.from_environment()
    for env in [mission.defaults.env or {}, *(t.env or {} for t in mission.tasks)]:
        redactor.add_env(env, all_values=True)
    for servers in [
        mission.defaults.mcp_servers or {},
        *(t.mcp_servers or {} for t in mission.tasks),
    ]:
        for server in servers.values():  # often paths: only secret-looking names
            redactor.add_env(server.env)
    return redactor


@contextlib.asynccontextmanager
async def _provider(
    mission: Mission, settings: Settings, run_dir: Path, bus: EventBus, run_id: str
) -> AsyncIterator[tuple[ProviderSpec, dict[str, str | None]]]:
    """Start the scripted model when asked; yield the provider and each task's model name."""
    if settings.scripted or mission.provider == "scripted":
        scripts = load_task_scripts(mission)
        model = ScriptedModel(record=run_dir / "model-requests.jsonl")

        def announce(headers: dict[str, str], body: dict[str, Any]) -> None:
            _, _, task_id = str(body.get("model", "")).partition("@")
            bus.publish(
                ModelRequest(run_id, task_id or None, headers.get("thread-id"), model.log.count)
            )

        model.listeners.append(announce)
        names: dict[str, str | None] = {}
        for task in mission.tasks:
            task_id = task.id or ""
            names[task_id] = (
                model.add_script(task_id, scripts[task_id]) if task_id in scripts else "scripted"
            )
        async with model.serve() as url:
            yield scripted_provider(url), names
        return
    if isinstance(mission.provider, CustomProvider):
        p = mission.provider
        yield (
            ProviderSpec(
                kind="custom", name=p.name, base_url=p.base_url, env_key=p.env_key, model=p.model
            ),
            {},
        )
        return
    yield ProviderSpec(), {}


async def run_mission(
    mission: Mission,
    settings: Settings,
    *,
    observers: Sequence[Subscriber] = (),
    run_id: str | None = None,
    previous: dict[str, TaskResult] | None = None,
    threads: dict[str, tuple[str, str | None]] | None = None,
    approvals: ApprovalHandler | None = None,
    junit: Sequence[Path] = (),
    html: Sequence[Path] = (),
) -> RunSummary:
    """Run a mission to the end and return its summary; every outcome is recorded.

    ``previous`` holds results of an earlier run of the same mission (tasks that ended ok are
    kept, the others continue); ``threads`` maps a task id to a (thread id, worker label) to
    continue instead of starting a new thread; ``approvals`` answers Codex's approval requests
    (default: the settings' fixed policy); ``junit``/``html`` are extra report paths (the run
    folder always gets ``junit.xml`` and ``report.html``).
    """
    codex_bin, _origin = find_codex_bin(settings.codex_bin)
    workspace_root = Path(mission.workspace_root).resolve()
    try:
        workspace_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MissionError(
            f"cannot create workspace_root {workspace_root} ({exc.strerror}); fix the path."
        ) from exc
    redactor = make_redactor(mission)
    store = RunStore(settings.state_dir, redactor)
    run_id = run_id or new_run_id()
    run_dir = store.run_dir(run_id)
    locks = LabelLocks(settings.state_dir / "workers")
    bus = EventBus()
    bus.subscribe(store)
    bus.subscribe(ReportWriter(redactor, junit, html))  # after the store: it reads run_dir
    for observer in observers:
        bus.subscribe(observer)
    started = time.time()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        async with _provider(mission, settings, run_dir, bus, run_id) as (provider, models):
            planned = plan_tasks(mission, workspace_root, run_dir, models, previous, threads)
            needed = sorted({t.thread_worker for t in planned if t.thread_worker})
            labels = await locks.claim(min(settings.workers, len(planned)) or 1, needed)
            factory = WorkerFactory(
                settings,
                codex_bin,
                provider,
                workspace_root,
                approvals or fixed(settings.approvals),
            )
            pool = WorkerPool(factory, labels)
            try:
                await pool.start()
                bus.publish(
                    RunStarted(
                        run_id,
                        mission.mission_id,
                        mission_record(mission, settings, workspace_root),
                        tuple(t.task_id for t in planned),
                        str(workspace_root),
                    )
                )
                runner = MissionRunner(run_id, planned, LocalExecutor(pool), bus)
                cancelled = False
                try:
                    await runner.run()
                except asyncio.CancelledError:
                    cancelled = True
                    raise
                finally:
                    results = [
                        runner.results.get(t.task_id)
                        or TaskResult(
                            task_id=t.task_id,
                            index=t.index,
                            status="cancelled",
                            error="the run stopped before this task finished.",
                        )
                        for t in planned
                    ]
                    summary = summarise(
                        run_id,
                        mission.mission_id,
                        results,
                        started,
                        time.time(),
                        cancelled=cancelled,
                    )
                    summary.workspace_root = str(workspace_root)
                    bus.publish(RunFinished(run_id, summary))
            finally:
                await asyncio.shield(pool.aclose())
    finally:
        locks.release_all()
        store.close()
    return summary
