"""What every command shares: the global options (accepted before or after the subcommand),
the settings built from them, and running a coroutine with clean Ctrl-C/SIGTERM handling."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from codex_mcp_wrapper import process
from codex_mcp_wrapper.errors import InputError, Interrupted
from codex_mcp_wrapper.instances.registry import INSTANCE_ENV, Instance, instance
from codex_mcp_wrapper.settings import (
    DEFAULT_TASK_QUEUE,
    DEFAULT_THREADS_PER_WORKER,
    SHARED_DIR_ENV,
    TEMPORAL_ENV,
    Recycling,
    Settings,
    TemporalSettings,
    default_shared_dir,
    default_state_dir,
)

T = TypeVar("T")
GLOBALS_KEY = "codex_mcp_wrapper.globals"


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep a global option's value on the root context; a later (subcommand) value wins."""
    if value is not None and param.name is not None:
        ctx.find_root().meta.setdefault(GLOBALS_KEY, {})[param.name] = value
    return value


class JsonOutput:
    """Whether this (one-shot) CLI process was asked for ``--json``: then its stdout is JSON
    whatever happens, an error included (``cli.main`` prints it as an object)."""

    requested = False


def json_option(help_text: str) -> Callable[[F], F]:
    """``--json``: the command's result as JSON on stdout, only it; an error, as
    ``{"error": SENTENCE, "exit_code": N}`` there too (and its line on stderr)."""

    def requested(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        JsonOutput.requested = JsonOutput.requested or value
        return value

    return click.option("--json", "as_json", is_flag=True, help=help_text, callback=requested)


def global_options(root: bool = False) -> list[click.Option]:
    """``--state-dir``, ``--codex-bin`` and ``--instance``, as options of one command. Only
    the root reads the environment, so a subcommand's unset option never hides it."""
    return [
        click.Option(
            ["--state-dir"],
            type=click.Path(path_type=Path),
            expose_value=False,
            callback=_remember,
            help="Where runs, worker homes and logs live [env CODEX_MCP_WRAPPER_HOME; "
            "default: the instance's, else the per-user state dir].",
        ),
        click.Option(
            ["--codex-bin"],
            expose_value=False,
            callback=_remember,
            help="The Codex binary [env CODEX_BIN; default: the pinned openai-codex-cli-bin "
            "package, then `codex` on PATH].",
        ),
        click.Option(
            ["--instance"],
            envvar=INSTANCE_ENV if root else None,
            expose_value=False,
            callback=_remember,
            help="A named instance (dev, release, ...): its own state dir, port, label and "
            "config [env CODEX_MCP_WRAPPER_INSTANCE].",
        ),
    ]


def add_global_options(command: click.Command) -> None:
    """Give every subcommand (recursively) the global options, so they work after it too."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            sub.params.extend(global_options())
            add_global_options(sub)


def _globals(ctx: click.Context) -> dict[str, Any]:
    values: dict[str, Any] = ctx.find_root().meta.get(GLOBALS_KEY, {})
    return values


def current_instance(ctx: click.Context) -> Instance | None:
    name = _globals(ctx).get("instance")
    return instance(name) if name else None


def instance_or_default(ctx: click.Context, default: str = "dev") -> Instance:
    """The ``--instance`` given, else the ``default`` one."""
    return current_instance(ctx) or instance(default)


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    """The settings of this invocation: global options, then the command's own options."""
    values = _globals(ctx)
    inst = current_instance(ctx)
    state_dir = values.get("state_dir") or (inst.state_dir if inst else None)
    base: dict[str, Any] = {
        # Absolute: worker homes under it are handed to processes with another cwd.
        "state_dir": Path(state_dir or default_state_dir()).expanduser().absolute(),
        "codex_bin": values.get("codex_bin"),
    }
    base.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**base)


F = TypeVar("F", bound=Callable[..., Any])


def worker_options(command: F) -> F:
    """``--threads-per-worker``, ``--recycle-after-threads`` and ``--recycle-above-mb``: how
    tasks share Codex processes and when a process is retired."""
    defaults = Recycling()
    command = click.option(
        "--recycle-above-mb",
        type=click.IntRange(0),
        help="Retire a Codex worker (drained, stopped, started afresh on the same home) once "
        f"its processes use this much memory; 0: never [default: {defaults.max_rss_mb}].",
    )(command)
    command = click.option(
        "--recycle-after-threads",
        type=click.IntRange(0),
        help="Retire a Codex worker once it has run this many threads; 0: never "
        f"[default: {defaults.max_threads}].",
    )(command)
    return click.option(
        "--threads-per-worker",
        type=click.IntRange(1, 256),
        help="Tasks one Codex process runs at once, each in its own thread; --workers tasks "
        f"use ceil(workers / this) processes [default: {DEFAULT_THREADS_PER_WORKER}].",
    )(command)


def temporal_options(required: bool = False, what: str | None = None) -> Callable[[F], F]:
    """``--temporal``, ``--namespace``, ``--task-queue``, ``--shared-dir``: where a mission
    scales out (docs/scale-out.md); ``what`` is ``--temporal``'s help when the default's
    does not fit."""
    return lambda command: _temporal_options(command, required, what)


def _temporal_options(command: F, required: bool, what: str | None = None) -> F:
    command = click.option(
        "--reconnect-within",
        type=click.FloatRange(1, 86400),
        default=TemporalSettings.reconnect_within,
        show_default=True,
        help="Seconds to wait for a Temporal server that went away (a restart): then a run "
        "stops watching (it goes on; `resume` follows it) and a host gives up holding a "
        "finished task's result.",
    )(command)
    command = click.option(
        "--affinity-wait",
        type=click.FloatRange(0.1, 3600),
        default=TemporalSettings.affinity_wait,
        show_default=True,
        help="Seconds an attempt continuing a thread waits for the host that holds it; then any "
        "host takes it and resumes the thread from its rollout in the shared dir.",
    )(command)
    command = click.option(
        "--shared-dir",
        type=click.Path(path_type=Path, file_okay=False),
        envvar=SHARED_DIR_ENV,
        help="A directory every host and submitter mounts: missions, events, artifacts "
        f"and rollouts travel through it [env {SHARED_DIR_ENV}; default: "
        f"{default_shared_dir()}].",
    )(command)
    command = click.option(
        "--task-queue",
        default=DEFAULT_TASK_QUEUE,
        show_default=True,
        help="The Temporal task queue hosts poll.",
    )(command)
    command = click.option(
        "--namespace", default="default", show_default=True, help="The Temporal namespace."
    )(command)
    what = what or (
        "The Temporal server (HOST:PORT) to take tasks from"
        if required
        else "Run on hosts through this Temporal server (HOST:PORT) instead of here"
    )
    return click.option(
        "--temporal",
        "temporal",
        metavar="HOST:PORT",
        envvar=TEMPORAL_ENV,
        required=required,
        help=f"{what} [env {TEMPORAL_ENV}].",
    )(command)


def temporal_settings(
    temporal: str | None,
    namespace: str,
    task_queue: str,
    shared_dir: Path | None,
    affinity_wait: float = TemporalSettings.affinity_wait,
    reconnect_within: float = TemporalSettings.reconnect_within,
) -> TemporalSettings | None:
    """The settings ``temporal_options`` ask for (None: run here)."""
    if not temporal:
        return None
    if ":" not in temporal:
        raise InputError(f"--temporal '{temporal}' is not HOST:PORT (e.g. 127.0.0.1:7233).")
    return TemporalSettings(
        address=temporal,
        namespace=namespace,
        task_queue=task_queue,
        shared_dir=(shared_dir or default_shared_dir()).expanduser().resolve(),
        affinity_wait=affinity_wait,
        reconnect_within=reconnect_within,
    )


def codex_setup_options(command: F) -> F:
    """``--codex-home``, ``--sync-codex-config``, ``--mirror-auth``, ``--pass-env``: what of the
    user's own Codex setup and environment workers get (by default: none of it)."""
    command = click.option(
        "--pass-env", multiple=True, metavar="NAME", help="Pass this variable to workers."
    )(command)
    command = click.option(
        "--mirror-auth",
        is_flag=True,
        help="Copy the Codex home's auth.json into each worker (0600); prefer OPENAI_API_KEY: "
        "ChatGPT logins use single-use refresh tokens.",
    )(command)
    command = click.option(
        "--sync-codex-config",
        is_flag=True,
        help="Merge the Codex home's config.toml (model, provider, MCP servers) under each "
        "worker's hermetic one.",
    )(command)
    return click.option(
        "--codex-home",
        type=click.Path(path_type=Path, file_okay=False),
        help="The Codex home --sync-codex-config and --mirror-auth read "
        "[default: $CODEX_HOME, else ~/.codex].",
    )(command)


login_shell_option = click.option(
    "--login-shell",
    is_flag=True,
    help="Run Codex's commands in login shells that source your shell profile, for "
    "missions that do not say login_shell (default: the worker's environment as it is; a "
    "heavy profile then costs nothing per thread).",
)


keep_worktrees_option = click.option(
    "--keep-worktrees",
    is_flag=True,
    help="Leave the worktrees of isolation: worktree tasks (and their branches) in place when "
    "the run ends; `runs show` lists them.",
)


def codex_setup_settings(
    codex_home: Path | None, sync_codex_config: bool, mirror_auth: bool, pass_env: Sequence[str]
) -> dict[str, Any]:
    """The settings ``codex_setup_options`` ask for."""
    return {
        "codex_home": codex_home.expanduser().resolve() if codex_home else None,
        "sync_codex_config": bool(sync_codex_config),
        "mirror_auth": bool(mirror_auth),
        "pass_env": tuple(pass_env),
    }


def worker_settings(
    threads_per_worker: int | None, after_threads: int | None, above_mb: int | None
) -> dict[str, Any]:
    """The settings ``worker_options`` ask for (only those given)."""
    out: dict[str, Any] = {}
    if threads_per_worker is not None:
        out["threads_per_worker"] = threads_per_worker
    if after_threads is not None or above_mb is not None:
        defaults = Recycling()
        out["recycling"] = Recycling(
            max_threads=defaults.max_threads if after_threads is None else after_threads,
            max_rss_mb=defaults.max_rss_mb if above_mb is None else above_mb,
        )
    return out


def codex_bin_option(ctx: click.Context) -> str | None:
    value = _globals(ctx).get("codex_bin")
    return str(value) if value else None


def parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--var '{pair}' is not KEY=VALUE.")
        out[key] = value
    return out


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; SIGTERM cancels it like Ctrl-C does (cleanup runs, then exit 130).

    While it runs this process adopts orphans below it, and when it ends whatever still runs
    below it is killed: no process a run started outlives the command."""

    async def main() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await coro
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    process.adopt_orphans()
    try:
        return asyncio.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        # One line at the outer edge, not Click's Abort (which prints an empty line first).
        raise Interrupted("interrupted.") from None
    finally:
        process.sweep_descendants()
