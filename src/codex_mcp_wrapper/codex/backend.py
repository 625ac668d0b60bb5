"""``LocalBackend``: runs a mission's tasks on local ``codex app-server`` workers.

For each run it finds the Codex binary, starts the scripted model when the mission asks for
it, claims worker labels, renders each worker's CODEX_HOME and starts the pool; on exit it
stops every process it started, whatever happened.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.codex.auth import api_key_from_env, require_credentials
from codex_mcp_wrapper.codex.budget import ProcessBudget
from codex_mcp_wrapper.codex.executor import LocalExecutor
from codex_mcp_wrapper.codex.home import (
    CodexHomeSpec,
    ProviderSpec,
    mirror_auth,
    scripted_provider,
    write_api_key_auth,
    write_codex_home,
)
from codex_mcp_wrapper.codex.labels import LabelLocks
from codex_mcp_wrapper.codex.pool import WorkerPool
from codex_mcp_wrapper.codex.worker import AppServerWorker, WorkerSpec
from codex_mcp_wrapper.engine.events import ModelRequest
from codex_mcp_wrapper.engine.executor import ApprovalHandler, RunContext, TaskExecutor
from codex_mcp_wrapper.logs import bind
from codex_mcp_wrapper.missions.loading import load_task_scripts
from codex_mcp_wrapper.missions.model import CustomProvider, Mission
from codex_mcp_wrapper.scripted.server import ScriptedModel
from codex_mcp_wrapper.settings import Settings, find_codex_bin, user_codex_home

log = logging.getLogger("codex_mcp_wrapper.codex")


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
            bind(log, worker=label).warning(
                "copied auth.json into this worker: ChatGPT logins use single-use refresh "
                "tokens and break across copies; prefer OPENAI_API_KEY."
            )
        elif self.provider.kind == "codex" and (key := api_key_from_env()) is not None:
            write_api_key_auth(home, key[1])  # app-server logs in only from auth.json
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
                timeouts=self.settings.timeouts,
            ),
            self.approvals,
        )


class LocalBackend:
    """The ``Backend`` of local runs: one pool of app-server workers per run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Concurrent runs (MCP calls under `serve`) share settings.workers processes.
        self.budget = ProcessBudget(settings.workers)

    def __repr__(self) -> str:
        return f"<LocalBackend {self.settings.state_dir} {self.budget!r}>"

    def check(self, mission: Mission) -> None:
        """The pre-flight: a Codex binary, and credentials for Codex's own provider."""
        find_codex_bin(self.settings.codex_bin)
        if not self.settings.scripted and mission.provider == "codex":
            require_credentials(self.settings)

    @contextlib.asynccontextmanager
    async def open(self, mission: Mission, run: RunContext) -> AsyncIterator[TaskExecutor]:
        self.check(mission)  # again: open() may be called without run_mission
        codex_bin, _origin = find_codex_bin(self.settings.codex_bin)
        locks = LabelLocks(self.settings.state_dir / "workers")
        async with (
            self.budget.take(run.workers, need=len(run.thread_workers)) as granted,
            self._provider(mission, run) as (provider, models),
        ):
            try:  # labels are given back before the budget, for the next run in line
                per_process = max(1, self.settings.threads_per_worker)
                labels = await locks.claim(
                    -(-granted // per_process),  # processes: ceil(tasks at once / threads each)
                    run.thread_workers,
                    self.settings.timeouts.label_lock,
                )
                factory = WorkerFactory(
                    self.settings, codex_bin, provider, run.workspace_root, run.approvals
                )
                pool = WorkerPool(
                    factory, labels, self.settings.recycling, per_process, max_active=granted
                )
                async with pool:
                    yield LocalExecutor(pool, models)
            finally:
                locks.release_all()

    @contextlib.asynccontextmanager
    async def _provider(
        self, mission: Mission, run: RunContext
    ) -> AsyncIterator[tuple[ProviderSpec, dict[str, str]]]:
        """Start the scripted model when asked; yield the provider and the model name each
        task's threads must use."""
        if self.settings.scripted or mission.provider == "scripted":
            scripts = load_task_scripts(mission)
            model = ScriptedModel(record=run.run_dir / "model-requests.jsonl", redact=run.redact)

            def announce(headers: dict[str, str], body: dict[str, Any]) -> None:
                _, _, task_id = str(body.get("model", "")).partition("@")
                run.publish(
                    ModelRequest(
                        run.run_id, task_id or None, headers.get("thread-id"), model.log.count
                    )
                )

            model.listeners.append(announce)
            names: dict[str, str] = {}
            for task in mission.tasks:
                task_id = task.id or ""
                names[task_id] = (
                    model.add_script(task_id, scripts[task_id])
                    if task_id in scripts
                    else "scripted"
                )
            async with model.serve() as url:
                yield scripted_provider(url), names
            return
        if isinstance(mission.provider, CustomProvider):
            p = mission.provider
            yield (
                ProviderSpec(
                    kind="custom",
                    name=p.name,
                    base_url=p.base_url,
                    env_key=p.env_key,
                    model=p.model,
                ),
                {},
            )
            return
        yield ProviderSpec(), {}
