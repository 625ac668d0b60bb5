"""``LocalBackend``: runs a mission's tasks on local ``codex app-server`` workers.

For each run it finds the Codex binary, starts the scripted model when the mission asks for
it (or reuses the warm one), and leases the pool of the run's isolation profile from its
``Fleet`` (rendering each new worker's CODEX_HOME); on exit every process it started is
stopped, or, within ``warm()``, kept for the next run and stopped when the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.codex.auth import api_key_from_env, require_credentials
from codex_mcp_wrapper.codex.budget import ProcessBudget
from codex_mcp_wrapper.codex.executor import LocalExecutor
from codex_mcp_wrapper.codex.fleet import Fleet, Profile, digest
from codex_mcp_wrapper.codex.home import (
    CodexHomeSpec,
    ProviderSpec,
    mirror_auth,
    otel_config,
    scripted_provider,
    write_api_key_auth,
    write_codex_home,
)
from codex_mcp_wrapper.codex.telemetry import endpoint, tracing
from codex_mcp_wrapper.codex.worker import AppServerWorker
from codex_mcp_wrapper.codex.worker_spec import WorkerSpec
from codex_mcp_wrapper.engine.events import ModelRequest
from codex_mcp_wrapper.engine.runner import MissionRunner
from codex_mcp_wrapper.engine.seams import PlannedTask, RunContext, TaskExecutor
from codex_mcp_wrapper.engine.worktrees import Worktrees
from codex_mcp_wrapper.errors import MissionError
from codex_mcp_wrapper.logs import bind
from codex_mcp_wrapper.missions.loading import load_task_scripts
from codex_mcp_wrapper.missions.model import CustomProvider, Mission
from codex_mcp_wrapper.missions.runnable import check_env_key
from codex_mcp_wrapper.scripted.server import ScriptedModel
from codex_mcp_wrapper.settings import API_KEY_VARS, Settings, find_codex_bin

log = logging.getLogger("codex_mcp_wrapper.codex")
OPENAI_BASE_URL = "https://api.openai.com/v1"  # Codex's own provider, when recorded by API key


@dataclass
class WorkerFactory:
    """Builds a worker for a label: its CODEX_HOME rendered, its env and log in place."""

    settings: Settings
    codex_bin: str
    provider: ProviderSpec

    def profile(self) -> Profile:
        """The isolation profile of the workers this factory builds."""
        env_key = self.provider.env_key
        api_key = api_key_from_env() if self.provider.kind == "codex" else None
        return Profile(
            self.codex_bin,
            self.provider,
            digest(
                os.environ.get(env_key) if env_key else None,
                api_key[1] if api_key else None,
            ),
        )

    def __call__(self, label: str) -> AppServerWorker:
        state = self.settings.state_dir
        home = state / "workers" / label / "codex-home"
        write_codex_home(
            home,
            CodexHomeSpec(
                provider=self.provider,
                user_config=(self.settings.user_codex_home() / "config.toml")
                if self.settings.sync_codex_config
                else None,
                # Codex's own telemetry joins the wrapper's, where the standard variable says
                extra=otel_config(endpoint()),
            ),
        )
        forget = self._log_in(home, label)
        env = self.settings.worker_base_env()
        env["CODEX_HOME"] = str(home)
        hidden = list(API_KEY_VARS)
        if self.provider.env_key:
            hidden.append(self.provider.env_key)
            if self.provider.env_key in os.environ:
                env[self.provider.env_key] = os.environ[self.provider.env_key]
        return AppServerWorker(
            WorkerSpec(
                label=label,
                codex_bin=self.codex_bin,
                codex_home=home,
                env=env,
                log_path=state / "logs" / f"worker-{label}.log",
                cwd=home.parent,  # a thread's cwd is its own; this one always exists
                timeouts=self.settings.timeouts,
                hidden_env=tuple(dict.fromkeys(hidden)),
                forget_on_close=forget,
                model_url=self.provider.base_url,
            ),
        )

    def _log_in(self, home: Path, label: str) -> tuple[Path, ...]:
        """Make the home's login this run's own, every time a worker is built: the API key of
        this run, the user's login with ``--mirror-auth``, else none (an ``auth.json`` an
        earlier run left is removed, never used silently). Returns the files the worker removes
        when it stops (a key is kept only while its run's worker runs)."""
        auth = home / "auth.json"
        if self.settings.mirror_auth and mirror_auth(self.settings.user_codex_home(), home):
            bind(log, worker=label).warning(
                "copied auth.json into this worker: ChatGPT logins use single-use refresh "
                "tokens and break across copies; prefer OPENAI_API_KEY."
            )
            return ()
        if self.provider.kind == "codex" and (key := api_key_from_env()) is not None:
            write_api_key_auth(home, key[1])  # app-server logs in only from auth.json
            return (auth,)
        auth.unlink(missing_ok=True)
        return ()


def _as_is(executor: TaskExecutor) -> TaskExecutor:
    return executor


class LocalBackend:
    """The ``Backend`` of local runs: a fleet of app-server workers, shared by the runs of
    one profile; within ``warm()`` it (and the scripted model) outlives each run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Traced from the start when the endpoint variable is set (serve's MCP calls too,
        # whose spans the runs link to); without the otel extra: one sentence, nothing run.
        tracing()
        # Concurrent runs (MCP calls under `serve`) share settings.workers task slots.
        self.budget = ProcessBudget(settings.workers)
        self.fleet = Fleet(settings)
        self._warm: contextlib.AsyncExitStack | None = None
        self._model: ScriptedModel | None = None
        self._model_lock = asyncio.Lock()
        self._executors: dict[str, LocalExecutor] = {}  # run id -> its executor, while open

    def __repr__(self) -> str:
        return f"<LocalBackend {self.settings.state_dir} {self.budget!r} {self.fleet!r}>"

    def check(self, mission: Mission) -> None:
        """The pre-flight: a Codex binary, and credentials for Codex's own provider."""
        find_codex_bin(self.settings.codex_bin)
        if not self.settings.scripted and mission.provider == "codex":
            require_credentials(self.settings)
        check_env_key(mission, self.settings.pass_env)

    @contextlib.asynccontextmanager
    async def warm(self) -> AsyncIterator[None]:
        """Keep workers (and the scripted model) running from one run to the next until the
        block ends; then stop them all."""
        async with contextlib.AsyncExitStack() as stack:
            self._warm = stack
            self.fleet.warm = True
            stack.push_async_callback(self.fleet.aclose)
            try:
                yield
            finally:
                self.fleet.warm = False
                self._warm = None
                self._model = None

    async def run_tasks(
        self,
        mission: Mission,
        run: RunContext,
        tasks: Sequence[PlannedTask],
        retry_backoff: Sequence[float],
    ) -> None:
        """Schedule the tasks on this machine's workers (``Backend.run_tasks``); a task the
        runner never reached (the workers could not start) is recorded by
        ``engine.lifecycle.drive_run``. When this process traces, the run is a trace of its
        own: ``run``, ``task`` and ``attempt`` spans around the attempts' (``codex.spans``)."""
        traces = tracing()
        with contextlib.ExitStack() as stack:
            publish, traced = run.publish, _as_is
            if traces is not None:
                spans = stack.enter_context(traces.run(run.run_id, mission.mission_id, run.redact))
                publish, traced = spans.publishing(run.publish), spans.traced
            async with self.open(mission, run) as executor:
                runner = MissionRunner(
                    run.run_id,
                    list(tasks),
                    traced(executor),
                    publish,
                    retry_backoff,
                    token_budget=mission.budget.tokens if mission.budget else None,
                    cancels=run.cancels,
                )
                await runner.schedule()

    @contextlib.asynccontextmanager
    async def open(self, mission: Mission, run: RunContext) -> AsyncIterator[TaskExecutor]:
        """The executor of one run: its share of the fleet's slots, its provider, its pool."""
        self.check(mission)  # again: open() may be called without drive_run
        codex_bin, _origin = find_codex_bin(self.settings.codex_bin)
        async with (
            self.budget.take(run.workers, need=len(run.thread_workers)) as granted,
            self._provider(mission, run) as (provider, models),
        ):
            factory = WorkerFactory(self.settings, codex_bin, provider)
            async with self.fleet.lease(
                factory.profile(), factory, granted, run.thread_workers
            ) as pool:
                traces = tracing()
                executor = LocalExecutor(
                    pool,
                    models,
                    run.approvals,
                    limit=granted,
                    tools=run.tools,
                    trace=None if traces is None else traces.attempt_events(run.redact),
                )
                worktrees = Worktrees(executor, self.settings.state_dir)
                self._executors[run.run_id] = executor  # steer reaches the turns through it
                try:
                    yield worktrees
                finally:  # the run's worktrees go with it (unless kept)
                    self._executors.pop(run.run_id, None)
                    await worktrees.aclose()

    async def steer(self, run_id: str, task_id: str, text: str) -> str | None:
        """Add ``text`` to the running turn of a task of a run going on here (``Backend.steer``)."""
        executor = self._executors.get(run_id)
        return None if executor is None else await executor.steer(run_id, task_id, text)

    @contextlib.asynccontextmanager
    async def _scripted_model(self) -> AsyncIterator[ScriptedModel]:
        """The scripted model: the warm one (started on first use), else one for this run."""
        if self._warm is None:
            model = ScriptedModel()
            async with model.serve():
                yield model
            return
        async with self._model_lock:
            if self._model is None:
                model = ScriptedModel()
                await self._warm.enter_async_context(model.serve())
                self._model = model
        yield self._model

    @contextlib.asynccontextmanager
    async def _provider(
        self, mission: Mission, run: RunContext
    ) -> AsyncIterator[tuple[ProviderSpec, dict[str, str]]]:
        """Start the scripted model when asked; yield the provider and the model name each
        task's threads must use."""
        if self.settings.scripted or mission.provider == "scripted":
            if self.settings.record:
                raise MissionError(
                    "nothing to record: the mission runs on the scripted model; give it a real "
                    "provider (or drop --scripted)."
                )
            scripts = load_task_scripts(mission)
            async with self._scripted_model() as model:
                seen = itertools.count(1)

                def announce(headers: dict[str, str], body: dict[str, Any]) -> None:
                    key = str(body.get("model", "")).partition("@")[2]
                    task_id = key.partition("/")[2]
                    run.publish(
                        ModelRequest(
                            run.run_id, task_id or None, headers.get("thread-id"), next(seen)
                        )
                    )

                model.add_run(
                    run.run_id, run.run_dir / "model-requests.jsonl", run.redact, announce
                )
                try:
                    names = {
                        (task.id or ""): model.run_model(
                            run.run_id, task.id or "", scripts.get(task.id or "")
                        )
                        for task in mission.tasks
                    }
                    yield scripted_provider(model.base_url), names
                finally:
                    model.end_run(run.run_id)
            return
        if isinstance(mission.provider, CustomProvider):
            p = mission.provider
            spec = ProviderSpec(
                kind="custom", name=p.name, base_url=p.base_url, env_key=p.env_key, model=p.model
            )
        elif self.settings.record:  # Codex's own provider, through the proxy: by API key
            if api_key_from_env() is None:
                raise MissionError(
                    "recording Codex's own provider needs OPENAI_API_KEY (a ChatGPT login "
                    "cannot be proxied); set it, or record a custom provider."
                )
            spec = ProviderSpec(
                kind="custom",
                name="openai-recorded",  # "openai" is Codex's built-in id: it would win
                base_url=OPENAI_BASE_URL,
                env_key="OPENAI_API_KEY",
            )
        else:
            yield ProviderSpec(), {}
            return
        if not self.settings.record:
            yield spec, {}
            return
        from codex_mcp_wrapper.cassettes.model import RECORDING  # only when recording: httpx
        from codex_mcp_wrapper.cassettes.proxy import RecordingProxy

        proxy = RecordingProxy(spec.base_url or "", run.redact, run.run_dir / RECORDING)
        async with proxy.serve() as url:
            yield dataclasses.replace(spec, base_url=url), {}
