"""``instances list``, ``release build|install|use`` and ``export``: dev and released
instances side by side."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from codex_mcp_wrapper import __version__
from codex_mcp_wrapper.cli.options import instance_or_default
from codex_mcp_wrapper.cli.steps import Steps
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.instances import daemon, release
from codex_mcp_wrapper.instances.exports import render
from codex_mcp_wrapper.instances.registry import all_instances


@click.group("instances")
def instances_group() -> None:
    """Named instances (dev and release side by side)."""


@instances_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def instances_list(as_json: bool) -> None:
    """Each instance: version, binary, state dir, port, running or not. The port is the one
    its background server listens on while it runs, else the instance's default."""
    rows = []
    for inst in all_instances():
        state = daemon.read_state(inst)
        version = release.current_version(inst)
        rows.append(
            {
                "name": inst.name,
                "label": inst.label,
                "port": state.port if state.running and state.port else inst.port,
                "default_port": inst.port,
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
        port = str(row["port"])
        if row["port"] != row["default_port"]:
            port += f" (default {row['default_port']})"
        click.echo(
            f"{row['name']:<10} {row['version']:<20} port {port:<6} "
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
    with Steps() as steps:
        target = release.build(source.resolve(), out, version, steps)
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
    inst = instance_or_default(ctx, "release")
    build_dir = from_dir or Path("dist/releases") / __version__
    if not build_dir.is_dir():
        raise InputError(f"no built release at {build_dir}; run `codex-mcp-wrapper release build`.")
    with Steps() as steps:
        target = release.install(build_dir.resolve(), inst, not without_codex, steps)
    click.echo(f"installed {target.name} into instance {inst.name}; launcher {inst.launcher}")


@release_group.command("use")
@click.argument("version")
@click.pass_context
def release_use(ctx: click.Context, version: str) -> None:
    """Point the instance (default: release) at an installed VERSION: upgrade or roll back."""
    inst = instance_or_default(ctx, "release")
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
    inst = instance_or_default(ctx)
    click.echo(render(inst, fmt))


COMMANDS = (instances_group, release_group, export)
