"""``runs list``, ``runs show`` and ``report``: reading recorded runs (never writing the store);
``runs cancel``: cancelling a run or one running task (in whichever local process drives it,
or on hosts); ``runs steer``: adding input to a task's running turn (in whichever local
process drives the run: ``engine.control``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from codex_mcp_wrapper.app import cancel_remote_run, open_runs
from codex_mcp_wrapper.cli.compare import runs_diff, runs_history
from codex_mcp_wrapper.cli.options import (
    run_async,
    settings_from,
    temporal_options,
    temporal_settings,
)
from codex_mcp_wrapper.engine.results import RunSummary
from codex_mcp_wrapper.errors import EXIT_TASKS_FAILED, InputError


@click.group()
def runs() -> None:
    """Inspect recorded runs; steer or cancel a running task."""


@runs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines).")
@click.option("--limit", default=20, show_default=True, help="How many runs, newest first.")
@click.pass_context
def runs_list(ctx: click.Context, as_json: bool, limit: int) -> None:
    """List recent runs, newest first: run id, mission, status, tasks ok of all, when it
    started and how long it took."""
    rows = open_runs(settings_from(ctx)).list(limit)
    if as_json:
        click.echo(json.dumps([row.to_json() for row in rows], indent=2))
        return
    from codex_mcp_wrapper.cli.formats import colours, runs_table

    click.echo(runs_table(rows, colours(sys.stdout)))


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the summary JSON (for machines).")
@click.pass_context
def runs_show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Show a run: each task's status, answer, checks and errors, and where its files are
    (--json: the summary JSON, or the task rows while the run has none)."""
    shown = open_runs(settings_from(ctx)).show(run_id)
    if as_json:
        data = shown.model_dump(mode="json") if isinstance(shown, RunSummary) else shown.to_json()
        click.echo(json.dumps(data, indent=2))
        return
    from codex_mcp_wrapper.cli.views import console, run_details

    run_details(shown, console(sys.stdout))


@runs.command("steer")
@click.argument("run_id")
@click.argument("task_id")
@click.argument("text")
@click.pass_context
def runs_steer(ctx: click.Context, run_id: str, task_id: str, text: str) -> None:
    """Add TEXT to the running turn of task TASK_ID of RUN_ID (Codex's turn/steer): the model
    gets it with its next request of the same turn. The run may go on in another wrapper on
    this machine (`run`, `serve`). Exit 1 when the task has no turn running."""
    turn_id = run_async(open_runs(settings_from(ctx)).steer(run_id, task_id, text))
    click.echo(f"steered task {task_id} of run {run_id} (turn {turn_id}).")


@runs.command("apply")
@click.argument("run_id")
@click.argument("task_id")
@click.option("--commit", is_flag=True, help="Also commit the files the patch changes.")
@click.pass_context
def runs_apply(ctx: click.Context, run_id: str, task_id: str, commit: bool) -> None:
    """Apply the change of TASK_ID of RUN_ID (a task run with isolation: worktree) to the
    run's workspace, all or nothing. Exit 0 when applied, 1 when it does not apply cleanly
    (nothing is changed; the conflicting files are named), 2 for a task with no patch."""
    message = run_async(open_runs(settings_from(ctx)).apply(run_id, task_id, commit))
    click.echo(message)


@runs.command("cancel")
@click.argument("run_id")
@click.option(
    "--task",
    "task_id",
    metavar="TASK_ID",
    help="Cancel only this running task; the run's other tasks go on (its dependents are skipped).",
)
@temporal_options(
    what="Cancel the run on the hosts of this Temporal server (HOST:PORT) (default: the "
    "wrapper on this machine that drives it)"
)
@click.pass_context
def runs_cancel(
    ctx: click.Context,
    run_id: str,
    task_id: str | None,
    temporal: str | None,
    namespace: str,
    task_queue: str,
    shared_dir: Path | None,
    affinity_wait: float,
    reconnect_within: float,
) -> None:
    """Cancel RUN_ID, or its running task --task, and wait for it to stop. A local run is
    cancelled in whichever wrapper on this machine drives it (`run`, `serve`, `ui`); with
    --temporal, on every host (a run started with --temporal, watched or not: the submitter
    watching it records the end; for a detached run `resume RUN_ID --temporal ...` does).
    Exit 0 when cancelled, 1 when it (or the task) was not running."""
    target = temporal_settings(
        temporal, namespace, task_queue, shared_dir, affinity_wait, reconnect_within
    )
    if target is None:
        _cancel_here(ctx, run_id, task_id)
        return
    if task_id is not None:
        raise InputError("--task cancels a task of a local run; a run on hosts is cancelled whole.")
    if run_async(cancel_remote_run(settings_from(ctx, temporal=target), run_id)):
        click.echo(f"cancelled run {run_id} on every host.")
        return
    click.echo(f"run {run_id} is not running on {temporal}.", err=True)
    sys.exit(EXIT_TASKS_FAILED)


def _cancel_here(ctx: click.Context, run_id: str, task_id: str | None) -> None:
    """``runs cancel`` of a run a wrapper on this machine drives."""
    state = run_async(open_runs(settings_from(ctx)).cancel(run_id, task_id=task_id))
    if not state.cancelled:
        click.echo(f"error: {state.message}", err=True)
        sys.exit(EXIT_TASKS_FAILED)
    if task_id is not None:
        click.echo(f"cancelled task {task_id} of run {run_id}.")
    else:
        click.echo(f"cancelled run {run_id} ({state.status}).")


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


runs.add_command(runs_diff)
runs.add_command(runs_history)

COMMANDS = (runs, report)
