"""``serve``: the MCP server in the foreground (stdio or HTTP), and ``serve start|stop|status|
list`` for an instance's background HTTP server."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from codex_mcp_wrapper.app import open_runs
from codex_mcp_wrapper.cli.options import (
    codex_bin_option,
    current_instance,
    instance_or_default,
    run_async,
    settings_from,
)
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.instances import daemon
from codex_mcp_wrapper.instances.registry import all_instances
from codex_mcp_wrapper.mcp.transports import serve_http, serve_stdio


def _config_path(ctx: click.Context, given: Path | None) -> Path | None:
    if given is not None:
        return given
    if os.environ.get("CODEX_WRAPPER_CONFIG"):
        return Path(os.environ["CODEX_WRAPPER_CONFIG"])
    inst = current_instance(ctx)
    return inst.config_file if inst is not None and inst.config_file.is_file() else None


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
    envvar="CODEX_MCP_WRAPPER_TOKEN",
    help="Bearer token HTTP clients must send [env CODEX_MCP_WRAPPER_TOKEN]; required "
    "for a non-loopback --host.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="TOML file with defaults for these options (keys as the option names).",
)
@click.option("--workers", type=click.IntRange(1, 64), help="Pool size per mission.")
@click.option("--scripted", is_flag=True, help="Every Codex turn uses the scripted model.")
@click.option(
    "--workspace",
    type=click.Path(path_type=Path),
    help="Default cwd of the codex tool [default: the current directory].",
)
@click.option(
    "--auto-approve",
    is_flag=True,
    help="Accept approvals when the client cannot be asked (default: decline).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    transport: str,
    host: str,
    port: int,
    token: str | None,
    config_file: Path | None,
    workers: int | None,
    scripted: bool,
    workspace: Path | None,
    auto_approve: bool,
) -> None:
    """Serve Codex and missions to MCP clients (tools codex, codex-reply, batch, mission_*).

    With a subcommand, manage this instance's background HTTP server instead."""
    if ctx.invoked_subcommand is not None:
        return
    file_opts = _read_serve_config(_config_path(ctx, config_file))
    given = ctx.get_parameter_source

    def pick(name: str, value: Any) -> Any:
        explicit = given(name) not in (None, click.core.ParameterSource.DEFAULT)
        return value if explicit or name not in file_opts else file_opts[name]

    transport, host, port = pick("transport", transport), pick("host", host), pick("port", port)
    inst = current_instance(ctx)
    if (
        inst is not None
        and given("port") == click.core.ParameterSource.DEFAULT
        and "port" not in file_opts
    ):
        port = inst.port
    token = pick("token", token)
    settings = settings_from(
        ctx,
        workers=pick("workers", workers),
        scripted=bool(pick("scripted", scripted)),
        approvals="accept" if pick("auto_approve", auto_approve) else "decline",
    )
    cwd = Path(pick("workspace", workspace) or Path.cwd()).resolve()
    runs = open_runs(settings, cwd)
    if transport == "stdio":
        run_async(serve_stdio(runs))
    else:
        run_async(serve_http(runs, str(host), int(port), token))


@serve.command("start")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [default: the instance's].")
@click.option("--scripted", is_flag=True, help="Every Codex turn uses the scripted model.")
@click.option("--workers", type=click.IntRange(1, 64), help="Pool size per mission.")
@click.pass_context
def serve_start(ctx: click.Context, port: int | None, scripted: bool, workers: int | None) -> None:
    """Start this instance's HTTP server in the background (logs in its logs/serve-PORT.log)."""
    inst = instance_or_default(ctx)
    extra = (["--scripted"] if scripted else []) + (["--workers", str(workers)] if workers else [])
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


def _read_serve_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import tomllib

    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such config file.") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: not a valid TOML config ({exc}).") from exc
    table = data.get("serve", data)
    known = {
        "transport",
        "host",
        "port",
        "token",
        "workers",
        "scripted",
        "workspace",
        "auto_approve",
    }
    unknown = sorted(set(table) - known)
    if unknown:
        raise InputError(
            f"{path}: unknown option '{unknown[0]}'; known: {', '.join(sorted(known))}."
        )
    return dict(table)


COMMANDS = (serve,)
