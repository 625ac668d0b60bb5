"""``model serve``: the scripted model alone, for Codex set up by hand."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from codex_mcp_wrapper.cli.options import run_async
from codex_mcp_wrapper.codex.home import config_snippet
from codex_mcp_wrapper.scripted import ScriptedModel, load_script


@click.group()
def model() -> None:
    """The scripted model (a local Responses API server for offline, deterministic runs)."""


@model.command("serve")
@click.option("--script", type=click.Path(path_type=Path), help="Script to play (default: echo).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port (default: any free).")
@click.option("--record", type=click.Path(path_type=Path), help="Append requests to this JSONL.")
def model_serve(script: Path | None, port: int, record: Path | None) -> None:
    """Serve the scripted model on 127.0.0.1 until Ctrl-C."""
    loaded = load_script(script) if script else None
    server = ScriptedModel(loaded, port=port, record=record)

    async def serve() -> None:
        async with server.serve() as url:
            click.echo(f"scripted model listening on {url}")
            click.echo("paste into $CODEX_HOME/config.toml:\n")
            click.echo(config_snippet(url))
            sys.stdout.flush()
            await asyncio.Event().wait()

    run_async(serve())


COMMANDS = (model,)
