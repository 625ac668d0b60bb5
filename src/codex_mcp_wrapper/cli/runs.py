"""``runs list``, ``runs show`` and ``report``: reading recorded runs (never writing the store)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from codex_mcp_wrapper.app import open_runs
from codex_mcp_wrapper.cli.options import settings_from


@click.group()
def runs() -> None:
    """Inspect recorded runs."""


@runs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", default=20, show_default=True, help="How many runs, newest first.")
@click.pass_context
def runs_list(ctx: click.Context, as_json: bool, limit: int) -> None:
    """List recent runs, newest first."""
    rows = open_runs(settings_from(ctx)).list(limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no runs yet")
    for row in rows:
        click.echo(f"{row['run_id']}  {row['status']:<11} {row['mission_id']}")


@runs.command("show")
@click.argument("run_id")
@click.pass_context
def runs_show(ctx: click.Context, run_id: str) -> None:
    """Show a run's summary as JSON (its task rows while it has none)."""
    click.echo(json.dumps(open_runs(settings_from(ctx)).show(run_id), indent=2))


@click.command()
@click.argument("run_id")
@click.option("--junit", type=click.Path(path_type=Path), help="Also write JUnit XML here.")
@click.option("--html", type=click.Path(path_type=Path), help="Also write the HTML report here.")
@click.pass_context
def report(ctx: click.Context, run_id: str, junit: Path | None, html: Path | None) -> None:
    """Render RUN_ID's reports again: junit.xml and report.html in its run folder (and where
    asked; only there when the state dir is read-only)."""
    written = open_runs(settings_from(ctx)).report(
        run_id, [junit] if junit else [], [html] if html else []
    )
    click.echo(f"wrote {', '.join(str(path) for path in written)}")


COMMANDS = (runs, report)
