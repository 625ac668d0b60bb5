"""``codex-mcp-wrapper ui``: the local web page over the state dir (runs, live task status, a
timeline, transcripts, diffs; apply, cancel, steer)."""

from __future__ import annotations

import asyncio

import click

from codex_mcp_wrapper.app import open_runs
from codex_mcp_wrapper.cli.options import settings_from

DEFAULT_PORT = 8766


@click.command("ui")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="HTTP port (0: any free one).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Bind address; loopback only (the page can apply patches and steer runs).",
)
@click.pass_context
def ui(ctx: click.Context, port: int, host: str) -> None:
    """Serve a local web page over the state dir: runs, live task status, a timeline,
    transcripts, diffs; apply, cancel, steer. Until Ctrl-C or SIGTERM."""
    from codex_mcp_wrapper.ui.serving import serve_ui

    runs = open_runs(settings_from(ctx))
    asyncio.run(serve_ui(runs, host, port))


COMMANDS = (ui,)
