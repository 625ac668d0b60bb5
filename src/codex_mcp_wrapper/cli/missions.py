"""``run``, ``resume``, ``validate``, ``schema`` and ``scaffold``: missions on the command line."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from codex_mcp_wrapper.app import open_runs
from codex_mcp_wrapper.cli.authoring import broad_workspace_option
from codex_mcp_wrapper.cli.compare import Comparing, after_run, comparing_options, run_times
from codex_mcp_wrapper.cli.options import (
    codex_setup_options,
    codex_setup_settings,
    json_option,
    keep_worktrees_option,
    login_shell_option,
    parse_vars,
    settings_from,
    temporal_options,
    temporal_settings,
    worker_options,
    worker_settings,
)
from codex_mcp_wrapper.cli.watching import progress_view, quiet_option, resume_args, watched
from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.engine.results import RunSummary
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.missions.loading import load_mission
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.missions.runnable import check_runnable
from codex_mcp_wrapper.settings import (
    MAX_WORKERS,
    Settings,
    TemporalSettings,
    default_workers,
)

if TYPE_CHECKING:
    pass


def _finish(summary: RunSummary, as_json: bool) -> None:
    if as_json:
        click.echo(summary.model_dump_json(indent=2))
    sys.exit(summary.exit_code)


@click.command()
@click.argument("mission_file", type=click.Path(path_type=Path))
@click.option("--workspace", type=click.Path(path_type=Path), help="Override workspace_root.")
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_WORKERS),
    help=f"Tasks at once, up to {MAX_WORKERS} [default: {default_workers()}].",
)
@click.option("--scripted", is_flag=True, help="Use the built-in scripted model for every task.")
@json_option("Print the summary JSON on stdout, only it.")
@quiet_option
@click.option("--var", "variables", multiple=True, metavar="K=V", help="Set ${K} in the mission.")
@click.option(
    "--auto-approve", is_flag=True, help="Accept Codex's approval requests (default: decline)."
)
@click.option("--junit", type=click.Path(path_type=Path), help="Also write JUnit XML here.")
@click.option("--report", type=click.Path(path_type=Path), help="Also write the HTML report here.")
@click.option(
    "--record",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Record the run's model exchanges (through a proxy in front of its provider) into "
    "this cassette (YAML), to replay offline with --replay.",
)
@click.option(
    "--replay",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Replay this cassette: each task plays its recorded exchanges on the scripted model.",
)
@click.option(
    "--replay-mode",
    type=click.Choice(["strict", "echo"]),
    default="strict",
    show_default=True,
    help="strict: a replay that diverges (a tool no longer offered, a task or a request "
    "not recorded) fails; echo: go on with the scripted model's echo.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --replay: replay a cassette recorded for another mission, or for prompts that "
    "have changed since.",
)
@click.option(
    "--detach",
    is_flag=True,
    help="With --temporal: start the mission and print its run id at once; `resume RUN_ID "
    "--temporal ...` follows it to its end.",
)
@comparing_options
@broad_workspace_option
@login_shell_option
@keep_worktrees_option
@codex_setup_options
@worker_options
@temporal_options()
@click.pass_context
def run(
    ctx: click.Context,
    quiet: bool,
    comparing: Comparing,
    mission_file: Path,
    workspace: Path | None,
    workers: int | None,
    scripted: bool,
    as_json: bool,
    variables: tuple[str, ...],
    auto_approve: bool,
    junit: Path | None,
    report: Path | None,
    record: Path | None,
    replay: Path | None,
    replay_mode: str,
    force: bool,
    detach: bool,
    allow_broad_workspace: bool,
    login_shell: bool,
    keep_worktrees: bool,
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
    """Run MISSION_FILE (YAML or JSON) and report each task's status.

    With --temporal the mission runs as a Temporal workflow on hosts
    (`codex-mcp-wrapper host`), with the same progress, summary and exit codes; Ctrl-C
    asks whether to cancel it on every host or stop watching (without a terminal, and with
    --json, it cancels).

    Exit code 0 when every task ends ok, 1 when some does not, 2 for an invalid mission,
    3 when Codex (or the Temporal server) cannot run, 130 when interrupted.
    """
    settings = settings_from(
        ctx,
        workers=workers,
        scripted=scripted,
        approvals="accept" if auto_approve else "decline",
        variables=parse_vars(variables),
        login_shell=login_shell,
        keep_worktrees=keep_worktrees,
        **worker_settings(threads_per_worker, recycle_after_threads, recycle_above_mb),
        **codex_setup_settings(codex_home, sync_codex_config, mirror_auth, pass_env),
        temporal=_submitting(
            temporal_settings(
                temporal, namespace, task_queue, shared_dir, affinity_wait, reconnect_within
            ),
            detach,
            as_json,
        ),
    )
    settings = _recording(settings, record, replay)
    if force and replay is None:
        raise InputError("--force goes with --replay: it replays a cassette of another mission.")
    mission = _mission_to_run(mission_file, settings, (replay, force), replay_mode, workspace)
    check_runnable(
        mission, str(mission_file), allow_broad=allow_broad_workspace, pass_env=settings.pass_env
    )
    if comparing.repeat > 1 and (record is not None or detach):
        raise InputError(
            "--repeat runs the mission here, to the end: not with --record or --detach."
        )
    options = RunOptions(junit=[junit] if junit else [], html=[report] if report else [])
    summaries = run_times(settings, mission, options, comparing, (quiet, as_json))
    if record is not None:
        count = open_runs(settings).cassette(summaries[-1], record)
        click.echo(f"recorded {count} exchange(s) into {record}", err=True)
    sys.exit(after_run(settings, summaries, comparing, as_json))


def _recording(settings: Settings, record: Path | None, replay: Path | None) -> Settings:
    """The settings of a run that ``--record`` records (on this machine only)."""
    if record is not None and replay is not None:
        raise InputError("--record and --replay exclude each other: record once, replay after.")
    if record is not None and settings.temporal is not None:
        raise InputError("--record records runs on this machine; it does not work with --temporal.")
    return dataclasses.replace(settings, record=True) if record is not None else settings


def _mission_to_run(
    mission_file: Path,
    settings: Settings,
    replay: tuple[Path | None, bool],
    replay_mode: str,
    workspace: Path | None,
) -> Mission:
    """The mission file, loaded, played from a cassette with ``--replay`` (refused when the
    cassette is not this mission's, unless ``--force``), in ``--workspace``."""
    mission = load_mission(mission_file, settings.variables)
    cassette_path, force = replay
    if cassette_path is not None:
        from codex_mcp_wrapper.cassettes.model import (
            identity_problems,
            load_cassette,
            replay_mission,
        )

        cassette = load_cassette(cassette_path)
        for problem in identity_problems(mission, cassette, str(cassette_path)) if force else []:
            click.echo(f"warning: {problem}; replaying it anyway (--force).", err=True)
        for line in cassette.warnings(str(cassette_path)):
            click.echo(line, err=True)
        mission = replay_mission(
            mission,
            cassette,
            replay_mode,  # type: ignore[arg-type]
            str(cassette_path),
            force,
        )
    if workspace is not None:
        mission.workspace_root = str(workspace.resolve())
    return mission


def _submitting(
    target: TemporalSettings | None, detach: bool, as_json: bool
) -> TemporalSettings | None:
    """How a run submitted from this terminal behaves: detached, or asking on Ctrl-C."""
    if target is None:
        if detach:
            raise InputError("--detach needs --temporal: only a Temporal run goes on alone.")
        return None
    ask = sys.stdin.isatty() and not as_json
    return dataclasses.replace(target, detach=detach, on_interrupt="ask" if ask else "cancel")


@click.command()
@click.argument("run_id")
@click.option("--workers", type=click.IntRange(1, MAX_WORKERS), help="Pool size.")
@json_option("Print the summary JSON on stdout, only it.")
@quiet_option
@click.option("--auto-approve", is_flag=True, help="Accept Codex's approval requests.")
@keep_worktrees_option
@worker_options
@temporal_options()
@click.pass_context
def resume(
    ctx: click.Context,
    quiet: bool,
    run_id: str,
    workers: int | None,
    as_json: bool,
    auto_approve: bool,
    keep_worktrees: bool,
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
    """Finish RUN_ID: keep the tasks that ended ok, run the others again (continuing their
    Codex threads where Codex still has them) and report the whole run. With --temporal a run
    whose workflow still runs is followed to its end. Exit codes as `run`."""
    settings = settings_from(
        ctx,
        workers=workers,
        approvals="accept" if auto_approve else "decline",
        keep_worktrees=keep_worktrees,
        **worker_settings(threads_per_worker, recycle_after_threads, recycle_above_mb),
        temporal=_submitting(
            temporal_settings(
                temporal, namespace, task_queue, shared_dir, affinity_wait, reconnect_within
            ),
            False,
            as_json,
        ),
    )
    view = progress_view(settings, answers=not quiet)
    work = open_runs(settings).resume(run_id, observers=[view])
    summary = watched(view, work, as_json, resume_args(settings))
    _finish(summary, as_json)


@click.command()
@click.argument("run_id")
@click.argument("task_id")
@click.argument("prompt")
@json_option("Print the task's result JSON, only it.")
@click.option("--auto-approve", is_flag=True, help="Accept Codex's approval requests.")
@temporal_options()
@click.pass_context
def reply(
    ctx: click.Context,
    run_id: str,
    task_id: str,
    prompt: str,
    as_json: bool,
    auto_approve: bool,
    temporal: str | None,
    namespace: str,
    task_queue: str,
    shared_dir: Path | None,
    affinity_wait: float,
    reconnect_within: float,
) -> None:
    """Send PROMPT as a further turn in the Codex thread of TASK_ID of RUN_ID and print
    Codex's answer. The thread continues on the worker (or, with --temporal, the host) that
    holds it, else it is resumed from its rollout elsewhere. Exit 0 when the turn ends ok,
    1 when not, 2 for an unknown run or task, 3 when Codex cannot run, 130 when interrupted."""
    settings = settings_from(
        ctx,
        approvals="accept" if auto_approve else "decline",
        temporal=temporal_settings(
            temporal, namespace, task_queue, shared_dir, affinity_wait, reconnect_within
        ),
    )
    view = progress_view(settings, answers=False)  # the answer is printed on stdout
    result = watched(
        view, open_runs(settings).reply_task(run_id, task_id, prompt, observers=[view]), as_json
    )
    click.echo(result.model_dump_json(indent=2) if as_json else (result.final_message or ""))
    sys.exit(0 if result.status == "ok" else 1)


COMMANDS = (run, resume, reply)
