"""The composition root: the application API (``engine.runs.Runs``) wired to a backend.

Entry points (the CLI, the MCP server, Python users) build ``Settings`` once and get their
``Runs`` here; nothing below this module chooses a backend.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from codex_mcp_wrapper.engine.executor import Backend
from codex_mcp_wrapper.engine.results import RunSummary
from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.engine.session import RunOptions
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.missions.policy import ClientPolicy
from codex_mcp_wrapper.settings import Settings


def backend_for(settings: Settings) -> Backend:
    """Local Codex app-server workers, or worker hosts through Temporal when
    ``settings.temporal`` says so."""
    if settings.temporal is not None:
        from codex_mcp_wrapper.temporal.backend import TemporalBackend  # only when asked

        return TemporalBackend(settings, settings.temporal)
    from codex_mcp_wrapper.codex.backend import LocalBackend  # only to run: it loads uvicorn

    return LocalBackend(settings)


async def cancel_remote_run(settings: Settings, run_id: str) -> bool:
    """Cancel a run that executes on worker hosts (``settings.temporal``), whoever watches
    it; False when it is not running there."""
    from codex_mcp_wrapper.temporal.backend import TemporalBackend  # only when asked

    if settings.temporal is None:
        raise InputError("cancelling a run elsewhere needs --temporal HOST:PORT.")
    return await TemporalBackend(settings, settings.temporal).cancel(run_id)


def open_runs(
    settings: Settings, default_cwd: Path | None = None, policy: ClientPolicy | None = None
) -> Runs:
    """The runs of ``settings.state_dir``, executed on local Codex app-server workers (or on
    worker hosts, with ``settings.temporal``); ``policy`` is what MCP clients may ask for
    (default: ``Runs``' least-privilege one)."""
    return Runs(
        settings,
        lambda: backend_for(settings),
        default_cwd=default_cwd,
        cancel_timeout=settings.timeouts.cancel,
        policy=policy,
    )


async def run_mission(
    mission: Mission, settings: Settings | None = None, options: RunOptions | None = None
) -> RunSummary:
    """Run ``mission`` to the end on local Codex workers; returns the summary (secrets
    redacted). Every result is recorded under ``settings.state_dir``."""
    return await open_runs(settings or Settings()).run(mission, options)


def run_mission_sync(
    mission: Mission, settings: Settings | None = None, options: RunOptions | None = None
) -> RunSummary:
    """``run_mission`` for code that is not async (scripts, pytest without an event loop)."""
    return asyncio.run(run_mission(mission, settings, options))


async def resume_run(run_id: str, settings: Settings | None = None) -> RunSummary:
    """Finish an interrupted, cancelled or failed run: ok tasks are kept, the others continue."""
    return await open_runs(settings or Settings()).resume(run_id)
