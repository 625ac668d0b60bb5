"""``serve``: the MCP server in the foreground (stdio or HTTP), and ``serve start|stop|status|
list`` for an instance's background HTTP server."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from codex_mcp_wrapper.app import open_runs
from codex_mcp_wrapper.cli.metrics import metrics_options, serving_metrics
from codex_mcp_wrapper.cli.options import (
    codex_bin_option,
    codex_setup_options,
    current_instance,
    instance_or_default,
    login_shell_option,
    run_async,
    temporal_options,
    worker_options,
)
from codex_mcp_wrapper.cli.serve_access import (
    NO_FAST_HANDSHAKE,
    TOKEN_ENV,
    access_options,
    client_policy,
    identities,
    owner_servers,
)
from codex_mcp_wrapper.cli.serve_config import (
    config_path,
    host_list,
    read_serve_config,
    serve_settings,
)
from codex_mcp_wrapper.errors import InputError, Interrupted
from codex_mcp_wrapper.instances import daemon
from codex_mcp_wrapper.instances.registry import all_instances
from codex_mcp_wrapper.mcp.stdio_front import StdioFront
from codex_mcp_wrapper.settings import MAX_WORKERS, default_workers


@click.group(invoke_without_command=True)
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio for clients that launch the server; http to share it.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP bind address.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="HTTP port (default: any free one; printed on stderr).",
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    multiple=True,
    help="A bearer token HTTP clients may send, each token a client of its own (it sees only "
    "its runs); repeatable; required for a non-loopback --host. On the command line other "
    "local users can read it (ps, /proc): prefer $CODEX_MCP_WRAPPER_TOKEN, --token-file or "
    "--tokens-file.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the bearer token from the first line of this file (kept out of the process list).",
)
@click.option(
    "--allow-host",
    "allow_host",
    multiple=True,
    metavar="HOST[:PORT]",
    help="Also accept this Host (and Origin) name, on the server's port unless one is given; "
    "repeatable. Loopback names, the bind address and, for 0.0.0.0/::, this machine's host "
    "name and addresses are always accepted.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="TOML file with defaults for these options (keys as the option names).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_WORKERS),
    help="Codex tasks at once, across every call and mission; the others wait their turn "
    f"[default: {default_workers()}].",
)
@click.option("--scripted", is_flag=True, help="Every Codex turn uses the scripted model.")
@click.option(
    "--script",
    type=click.Path(path_type=Path),
    help="With --scripted: the script (YAML/JSON steps) the model plays for every codex call "
    "[default: it echoes the prompt].",
)
@click.option(
    "--workspace",
    type=click.Path(path_type=Path),
    help="Default cwd of the codex tool, and the directory (with everything below it) "
    "clients' missions and calls may use [default: the current directory].",
)
@click.option(
    "--auto-approve",
    is_flag=True,
    help="Accept approvals when the client cannot be asked (default: decline).",
)
@click.option(
    "--codex-events/--no-codex-events",
    default=True,
    show_default=True,
    help="Stream the removed codex mcp-server's codex/event notifications during codex and "
    "codex-reply calls (its clients read the thread id from them); off for clients that "
    "dislike non-standard notifications.",
)
@click.option(
    "--progress-interval",
    type=click.FloatRange(0.1, 60),
    help="During a call, send a progress notification at least this often (seconds), so "
    "clients that reset their timeout on progress keep waiting [default: 5].",
)
@click.option(
    "--record",
    type=click.Path(path_type=Path, file_okay=False),
    help="Record every call's and mission's model exchanges (through a proxy in front of "
    "the provider) as cassettes in this folder, MISSION-RUN_ID.yaml (docs/record-replay.md).",
)
@click.option(
    "--allow-mission-commands",
    is_flag=True,
    help="Let MCP clients send missions with commands that run on this machine outside "
    "Codex's sandbox: hooks, tools, expect.verify and stdio MCP servers of their own "
    "(default: refused; the owner's [mcp_servers] in --config are used by name).",
)
@click.option(
    "--ui",
    is_flag=True,
    help="Also serve the web UI over the runs of this server: over HTTP on the same port "
    "(every path but /mcp, behind the same tokens; each client sees its own runs), over stdio "
    "on a loopback port of its own (--ui-port), printed on stderr.",
)
@click.option(
    "--ui-port",
    type=click.IntRange(0, 65535),
    default=0,
    help="With --ui over stdio: the UI's port on 127.0.0.1 (default: any free one).",
)
@metrics_options
@login_shell_option
@access_options
@codex_setup_options
@worker_options
@temporal_options()
@click.pass_context
def serve(
    ctx: click.Context,
    transport: str,
    host: str,
    port: int,
    token: tuple[str, ...],
    token_file: Path | None,
    tokens_file: Path | None,
    allow_host: tuple[str, ...],
    config_file: Path | None,
    workers: int | None,
    scripted: bool,
    script: Path | None,
    workspace: Path | None,
    auto_approve: bool,
    codex_events: bool,
    progress_interval: float | None,
    record: Path | None,
    allow_mission_commands: bool,
    ui: bool,
    ui_port: int,
    metrics_port: int | None,
    metrics_host: str,
    login_shell: bool,
    allow_workspace: tuple[Path, ...],
    allow_danger_full_access: bool,
    allow_client_providers: bool,
    allow_client_config: bool,
    expose_var: tuple[str, ...],
    codex_home: Path | None,
    sync_codex_config: bool,
    mirror_auth: bool,
    pass_env: tuple[str, ...],
    threads_per_worker: int | None,
    recycle_after_threads: int | None,
    recycle_above_mb: int | None,
    temporal: str | None,
    namespace: str,
    task_queue: str,
    shared_dir: Path | None,
    affinity_wait: float,
    reconnect_within: float,
) -> None:
    """Serve Codex and missions to MCP clients (tools codex, codex-reply, batch, mission_*).

    With --temporal every call and mission runs on hosts (`codex-mcp-wrapper host`);
    approvals are then decided by the hosts' policy, not asked of the client.

    With a subcommand, manage this instance's background HTTP server instead."""
    if ctx.invoked_subcommand is not None:
        return
    config = config_path(ctx, config_file)
    file_opts = read_serve_config(config)

    def opt(name: str) -> Any:
        """An option's value: the command line's (when given) over the config file's."""
        explicit = ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
        return ctx.params[name] if explicit or name not in file_opts else file_opts[name]

    if opt("transport") == "stdio":  # ready for the handshake before anything heavy loads
        with StdioFront({} if os.environ.get(NO_FAST_HANDSHAKE) else None) as front:
            _serve(ctx, opt, file_opts, config, front)
    else:
        _serve(ctx, opt, file_opts, config, None)


def _serve(
    ctx: click.Context,
    opt: Callable[[str], Any],
    file_opts: dict[str, Any],
    config: Path | None,
    front: StdioFront | None,
) -> None:
    """``serve`` once its options are read: settings and policy, then the server behind
    ``front`` (stdio) or on HTTP."""
    port = opt("port")
    inst = current_instance(ctx)
    if inst is not None and "port" not in file_opts and _default(ctx, "port"):
        port = inst.port
    tokens = identities(ctx, opt("token"), opt("token_file"), opt("tokens_file"), file_opts)
    if front is None and opt("ui_port"):
        raise InputError("--ui-port goes with --ui over stdio; over HTTP the UI is on --port.")
    allowed = host_list(opt("allow_host"))
    settings = serve_settings(ctx, opt)
    cwd = Path(opt("workspace") or Path.cwd()).resolve()
    folder = config.resolve().parent if config else None
    servers = owner_servers(file_opts.get("mcp_servers"), folder)
    policy = client_policy(lambda name, _: opt(name), cwd, settings.mission_commands, servers)
    runs = open_runs(settings, cwd, policy)
    from codex_mcp_wrapper.cli.serve_ui import http_pages, stdio_with_ui  # the MCP SDK: here
    from codex_mcp_wrapper.mcp.transports import serve_http, serve_stdio

    try:
        with serving_metrics(runs, str(opt("metrics_host")), opt("metrics_port")) as metrics:
            timing = metrics.call if metrics is not None else None
            if front is not None and opt("ui"):
                run_async(stdio_with_ui(runs, front, timing, int(opt("ui_port"))))
            elif front is not None:
                run_async(serve_stdio(runs, front, timing))
            else:
                host, pages = str(opt("host")), http_pages(runs) if opt("ui") else None
                run_async(serve_http(runs, host, int(port), tokens, allowed, None, timing, pages))
    except Interrupted:
        # SIGTERM or Ctrl-C: the usual way to stop a server, not an error. The server has
        # stopped cleanly by now (calls cancelled, workers reaped), so exit 0 for both.
        click.echo("codex-mcp-wrapper MCP server stopped.", err=True)


def _default(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) == ParameterSource.DEFAULT


@serve.command("start")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [default: the instance's].")
@click.option("--scripted", is_flag=True, help="Every Codex turn uses the scripted model.")
@click.option("--workers", type=click.IntRange(1, MAX_WORKERS), help="Codex tasks at once.")
@click.option(
    "--workspace",
    type=click.Path(path_type=Path, file_okay=False),
    help="The directory (and below) its clients may use [default: the current directory].",
)
@click.option(
    "--allow-workspace",
    "allow_workspace",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Another directory its clients may use; repeatable (docs/security.md).",
)
@click.pass_context
def serve_start(
    ctx: click.Context,
    port: int | None,
    scripted: bool,
    workers: int | None,
    workspace: Path | None,
    allow_workspace: tuple[Path, ...],
) -> None:
    """Start this instance's HTTP server in the background (logs in its logs/serve-PORT.log).
    Its trust boundary is serve's: the flags here, or the instance's config file for the
    rest (docs/security.md)."""
    inst = instance_or_default(ctx)
    extra = (["--scripted"] if scripted else []) + (["--workers", str(workers)] if workers else [])
    extra += ["--workspace", str(Path(workspace or Path.cwd()).resolve())]
    for root in allow_workspace:
        extra += ["--allow-workspace", str(root.resolve())]
    codex_bin = codex_bin_option(ctx)
    env = {"CODEX_BIN": str(codex_bin)} if codex_bin else {}
    state = daemon.start(inst, port or inst.port, extra, all_instances(), env)
    click.echo(
        f"instance {inst.name} serving on http://127.0.0.1:{state.port}/mcp "
        f"(pid {state.pid}); log {inst.log_file(state.port or 0)}"
    )


@serve.command("stop")
@click.pass_context
def serve_stop(ctx: click.Context) -> None:
    """Stop this instance's background server and wait for its workers to exit."""
    inst = instance_or_default(ctx)
    state = daemon.stop(inst)
    click.echo(
        f"instance {inst.name}: " + (f"stopped pid {state.pid}" if state.pid else "was not running")
    )


@serve.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def serve_status(ctx: click.Context, as_json: bool) -> None:
    """Whether this instance's background server runs (exit 0) or not (exit 1)."""
    inst = instance_or_default(ctx)
    state = daemon.read_state(inst)
    if as_json:
        click.echo(json.dumps(state.__dict__))
    else:
        click.echo(
            f"instance {inst.name}: "
            + (
                f"running on port {state.port} (pid {state.pid})"
                if state.running
                else "not running" + (" (stale pid file)" if state.stale else "")
            )
        )
    sys.exit(0 if state.running else 1)


@serve.command("list")
def serve_list() -> None:
    """Background servers of every instance."""
    for inst in all_instances():
        state = daemon.read_state(inst)
        where = f"port {state.port} pid {state.pid}" if state.running else "not running"
        click.echo(f"{inst.name:<10} {where}")


COMMANDS = (serve,)
