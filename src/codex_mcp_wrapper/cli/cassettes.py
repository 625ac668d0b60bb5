"""``cassette show|check``: reading recorded runs (docs/record-replay.md)."""

from __future__ import annotations

from pathlib import Path

import click

from codex_mcp_wrapper.cassettes.model import load_cassette


@click.group()
def cassette() -> None:
    """Cassettes: runs recorded with `run --record`, replayed with `run --replay`."""


@cassette.command("show")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def cassette_show(path: Path) -> None:
    """Print what CASSETTE holds: each task's exchanges, one line each."""
    data = load_cassette(path)
    click.echo(f"{path}: mission {data.mission_id}, {len(data.tasks)} task(s)")
    for task_id, task in data.tasks.items():
        click.echo(f"  {task_id}: {len(task.exchanges)} exchange(s)")
        for number, exchange in enumerate(task.exchanges, start=1):
            kind = next(iter(exchange.step))
            what = str(exchange.step[kind])
            what = what if len(what) <= 70 else what[:67] + "..."
            click.echo(f"    {number}. {kind}: {what}")


@cassette.command("check")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def cassette_check(path: Path) -> None:
    """Check CASSETTE (format, version, every step): exit 0, or 2 with one line. Exchanges
    edited by hand since they were recorded are warnings (on stderr, exit 0)."""
    data = load_cassette(path)
    count = sum(len(t.exchanges) for t in data.tasks.values())
    click.echo(f"{path}: valid cassette of mission {data.mission_id}: {count} exchange(s).")
    for line in data.warnings(str(path)):
        click.echo(line, err=True)


COMMANDS = (cassette,)
