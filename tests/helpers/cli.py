"""Run the wrapper's CLI as a subprocess, as a user would: ``python -m codex_mcp_wrapper``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 300  # a bound on the whole command; a hang fails the test instead of stalling it


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """The finished command, its stdout and stderr as text; stdin is never a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "codex_mcp_wrapper", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or REPO,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def subcommands(group: click.Group) -> dict[str, click.Command]:
    """A group's commands by name, loading lazy ones (the root loads each when asked)."""
    ctx = click.Context(group)
    found = {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}
    return {name: command for name, command in found.items() if command is not None}
