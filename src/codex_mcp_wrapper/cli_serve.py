"""CLI commands for serving and instances: ``serve`` (and ``serve start|stop|status|list``),
``instances list``, ``release build|install|use`` and ``export``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from codex_mcp_wrapper import __version__
from codex_mcp_wrapper.cli import _run_async, _settings
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.instances import Instance, all_instances, instance


def _instance(ctx: click.Context, required: bool = True) -> Instance | None:
    inst: Instance | None = ctx.find_root().meta.get("instance")
    if inst is None and required:
        return instance("dev")
    return inst


def _config_path(ctx: click.Context, given: Path | None) -> Path | None:
    if given is not None:
        return given
    if os.environ.get("CODEX_WRAPPER_CONFIG"):
        return Path(os.environ["CODEX_WRAPPER_CONFIG"])
    inst = _instance(ctx, required=False)
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
    from codex_mcp_wrapper.serving import serve_http, serve_stdio

    file_opts = _read_serve_config(_config_path(ctx, config_file))
    given = ctx.get_parameter_source

    def pick(name: str, value: Any) -> Any:
        explicit = given(name) not in (None, click.core.ParameterSource.DEFAULT)
        return value if explicit or name not in file_opts else file_opts[name]

    transport, host, port = pick("transport", transport), pick("host", host), pick("port", port)
    inst = _instance(ctx, required=False)
    if (
        inst is not None
        and given("port") == click.core.ParameterSource.DEFAULT
        and "port" not in file_opts
    ):
        port = inst.port
    token = pick("token", token)
    settings = _settings(
        ctx,
        workers=pick("workers", workers),
        scripted=bool(pick("scripted", scripted)),
        approvals="accept" if pick("auto_approve", auto_approve) else "decline",
    )
    cwd = Path(pick("workspace", workspace) or Path.cwd()).resolve()
    if transport == "stdio":
        _run_async(serve_stdio(settings, cwd))
    else:
        _run_async(serve_http(settings, cwd, str(host), int(port), token))


@serve.command("start")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [default: the instance's].")
@click.option("--scripted", is_flag=True, help="Every Codex turn uses the scripted model.")
@click.option("--workers", type=click.IntRange(1, 64), help="Pool size per mission.")
@click.pass_context
def serve_start(ctx: click.Context, port: int | None, scripted: bool, workers: int | None) -> None:
    """Start this instance's HTTP server in the background (logs in its logs/serve-PORT.log)."""
    from codex_mcp_wrapper import daemon

    inst = _instance(ctx)
    assert inst is not None
    extra = (["--scripted"] if scripted else []) + (["--workers", str(workers)] if workers else [])
    codex_bin = ctx.find_root().params.get("codex_bin")
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
    from codex_mcp_wrapper import daemon

    inst = _instance(ctx)
    assert inst is not None
    state = daemon.stop(inst)
    click.echo(
        f"instance {inst.name}: " + (f"stopped pid {state.pid}" if state.pid else "was not running")
    )


@serve.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def serve_status(ctx: click.Context, as_json: bool) -> None:
    """Whether this instance's background server runs (exit 0) or not (exit 1)."""
    from codex_mcp_wrapper import daemon

    inst = _instance(ctx)
    assert inst is not None
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
    from codex_mcp_wrapper import daemon

    for inst in all_instances():
        state = daemon.read_state(inst)
        where = f"port {state.port} pid {state.pid}" if state.running else "not running"
        click.echo(f"{inst.name:<10} {where}")


@click.group("instances")
def instances_group() -> None:
    """Named instances (dev and release side by side)."""


@instances_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def instances_list(as_json: bool) -> None:
    """Each instance: version, binary, state dir, port, running or not."""
    from codex_mcp_wrapper import daemon, release

    rows = []
    for inst in all_instances():
        state = daemon.read_state(inst)
        version = release.current_version(inst)
        rows.append(
            {
                "name": inst.name,
                "label": inst.label,
                "port": inst.port,
                "version": version or f"{__version__} (checkout)",
                "binary": str(inst.launcher) if inst.launcher.exists() else sys.executable,
                "state_dir": str(inst.state_dir),
                "running": state.running,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['name']:<10} {row['version']:<20} port {row['port']:<6} "
            f"{'running' if row['running'] else 'stopped':<8} {row['state_dir']}"
        )


@click.group("release")
def release_group() -> None:
    """Build releases and install them into instances."""


@release_group.command("build")
@click.option(
    "--source",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="The checkout to build.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("dist/releases"),
    show_default=True,
    help="Where releases are written.",
)
@click.option("--version", "version", default=__version__, show_default=True)
def release_build(source: Path, out: Path, version: str) -> None:
    """Build dist/releases/VERSION/: the wheel, SHA256SUMS, wrapper.toml and install.sh."""
    from codex_mcp_wrapper import release

    target = release.build(source.resolve(), out, version)
    click.echo(f"built {target}")


@release_group.command("install")
@click.option(
    "--from",
    "from_dir",
    type=click.Path(path_type=Path),
    help="A built release folder [default: dist/releases/<this version>].",
)
@click.option("--without-codex", is_flag=True, help="Do not install openai-codex-cli-bin.")
@click.pass_context
def release_install(ctx: click.Context, from_dir: Path | None, without_codex: bool) -> None:
    """Install a built release into the instance (default: release) with its own virtualenv
    and a stable launcher, and make it current."""
    from codex_mcp_wrapper import release

    inst = _instance(ctx, required=False) or instance("release")
    build_dir = from_dir or Path("dist/releases") / __version__
    if not build_dir.is_dir():
        raise InputError(f"no built release at {build_dir}; run `codex-mcp-wrapper release build`.")
    target = release.install(build_dir.resolve(), inst, with_codex=not without_codex)
    click.echo(f"installed {target.name} into instance {inst.name}; launcher {inst.launcher}")


@release_group.command("use")
@click.argument("version")
@click.pass_context
def release_use(ctx: click.Context, version: str) -> None:
    """Point the instance (default: release) at an installed VERSION: upgrade or roll back."""
    from codex_mcp_wrapper import release

    inst = _instance(ctx, required=False) or instance("release")
    release.use(inst, version)
    click.echo(f"instance {inst.name} now runs {version}")


@click.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["all", "codex", "json", "pm2", "hub"]),
    default="all",
    show_default=True,
)
@click.pass_context
def export(ctx: click.Context, fmt: str) -> None:
    """Configuration to paste into Codex, MCP clients, pm2 or an MCP hub for this instance."""
    from codex_mcp_wrapper.exports import render

    inst = _instance(ctx)
    assert inst is not None
    click.echo(render(inst, fmt))


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


def register(cli: click.Group) -> None:
    for command in (serve, instances_group, release_group, export):
        cli.add_command(command)
