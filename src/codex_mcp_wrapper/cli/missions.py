"""``run``, ``resume``, ``validate``, ``schema`` and ``scaffold``: missions on the command line."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from codex_mcp_wrapper.app import open_runs
from codex_mcp_wrapper.cli.options import (
    codex_setup_options,
    codex_setup_settings,
    login_shell_option,
    parse_vars,
    run_async,
    settings_from,
    temporal_options,
    temporal_settings,
    worker_options,
    worker_settings,
)
from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.engine.results import RunSummary
from codex_mcp_wrapper.errors import InputError, RunDetached
from codex_mcp_wrapper.missions.loading import load_mission
from codex_mcp_wrapper.missions.model import Mission, mission_json_schema
from codex_mcp_wrapper.missions.runnable import BROAD_FLAG, check_runnable
from codex_mcp_wrapper.settings import MAX_WORKERS, Settings, TemporalSettings, default_workers

if TYPE_CHECKING:
    from codex_mcp_wrapper.cli.progress import ProgressView

SCAFFOLD = """\
# A starter mission: `codex-mcp-wrapper run {name}` runs it offline on the scripted model.
# Drop `provider: scripted` and the `script:` blocks to run the same tasks on a real model.
mission_id: starter
workspace_root: ./workspace
provider: scripted
defaults:
  sandbox: workspace-write
  timeout_sec: 300
tasks:
  - id: write-hello
    prompt: Create hello.txt containing a greeting.
    script:
      - shell: "echo 'hello from codex' > hello.txt"
      - say: "Created hello.txt"
    artifacts: ["hello.txt"]
  - id: read-back
    depends_on: [write-hello]
    sandbox: read-only
    prompt: Show me hello.txt.
    script:
      - shell: "cat hello.txt"
      - say: "hello.txt says: {{last_output}}"
"""


broad_workspace_option = click.option(
    BROAD_FLAG,
    "allow_broad_workspace",
    is_flag=True,
    help="Allow a workspace_root that is /, your home directory or a system directory "
    "(refused by default: Codex could change anything in it).",
)


def progress_view() -> ProgressView:
    """The live progress on stderr (rich is loaded only by the commands that run tasks)."""
    from codex_mcp_wrapper.cli.progress import ProgressView

    return ProgressView(sys.stderr)


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
@click.option("--json", "as_json", is_flag=True, help="Print the summary JSON on stdout, only it.")
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
    "--detach",
    is_flag=True,
    help="With --temporal: start the mission and print its run id at once; `resume RUN_ID "
    "--temporal ...` follows it to its end.",
)
@broad_workspace_option
@login_shell_option
@codex_setup_options
@worker_options
@temporal_options()
@click.pass_context
def run(
    ctx: click.Context,
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
    detach: bool,
    allow_broad_workspace: bool,
    login_shell: bool,
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
        **worker_settings(threads_per_worker, recycle_after_threads, recycle_above_mb),
        **codex_setup_settings(codex_home, sync_codex_config, mirror_auth, pass_env),
        temporal=_submitting(
            temporal_settings(temporal, namespace, task_queue, shared_dir, affinity_wait),
            detach,
            as_json,
        ),
    )
    settings = _recording(settings, record, replay)
    mission = _mission_to_run(mission_file, settings, replay, replay_mode, workspace)
    check_runnable(
        mission, str(mission_file), allow_broad=allow_broad_workspace, pass_env=settings.pass_env
    )
    view = progress_view()
    options = RunOptions(
        observers=[view], junit=[junit] if junit else [], html=[report] if report else []
    )
    try:
        summary = run_async(open_runs(settings).run(mission, options))
    except RunDetached as exc:
        view.close()
        _detached(exc, as_json)
    finally:
        view.close()
    if record is not None:
        count = open_runs(settings).cassette(summary, record)
        click.echo(f"recorded {count} exchange(s) into {record}", err=True)
    _finish(summary, as_json)


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
    replay: Path | None,
    replay_mode: str,
    workspace: Path | None,
) -> Mission:
    """The mission file, loaded, played from a cassette with ``--replay``, in ``--workspace``."""
    mission = load_mission(mission_file, settings.variables)
    if replay is not None:
        from codex_mcp_wrapper.cassettes.model import load_cassette, replay_mission

        mission = replay_mission(mission, load_cassette(replay), replay_mode)  # type: ignore[arg-type]
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


def _detached(exc: RunDetached, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"run_id": exc.run_id, "detached": True}))
    else:
        click.echo(exc.run_id)
    click.echo(str(exc), err=True)
    sys.exit(exc.exit_code)


@click.command()
@click.argument("run_id")
@click.option("--workers", type=click.IntRange(1, MAX_WORKERS), help="Pool size.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary JSON on stdout, only it.")
@click.option("--auto-approve", is_flag=True, help="Accept Codex's approval requests.")
@worker_options
@temporal_options()
@click.pass_context
def resume(
    ctx: click.Context,
    run_id: str,
    workers: int | None,
    as_json: bool,
    auto_approve: bool,
    threads_per_worker: int | None,
    recycle_after_threads: int | None,
    recycle_above_mb: int | None,
    temporal: str | None,
    namespace: str,
    task_queue: str,
    shared_dir: Path | None,
    affinity_wait: float,
) -> None:
    """Finish RUN_ID: keep the tasks that ended ok, run the others again (continuing their
    Codex threads where Codex still has them) and report the whole run. With --temporal a run
    whose workflow still runs is followed to its end. Exit codes as `run`."""
    settings = settings_from(
        ctx,
        workers=workers,
        approvals="accept" if auto_approve else "decline",
        **worker_settings(threads_per_worker, recycle_after_threads, recycle_above_mb),
        temporal=_submitting(
            temporal_settings(temporal, namespace, task_queue, shared_dir, affinity_wait),
            False,
            as_json,
        ),
    )
    view = progress_view()
    try:
        summary = run_async(open_runs(settings).resume(run_id, observers=[view]))
    except RunDetached as exc:
        view.close()
        _detached(exc, as_json)
    finally:
        view.close()
    _finish(summary, as_json)


@click.command()
@click.argument("run_id")
@click.argument("task_id")
@click.argument("prompt")
@click.option("--json", "as_json", is_flag=True, help="Print the task's result JSON, only it.")
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
) -> None:
    """Send PROMPT as a further turn in the Codex thread of TASK_ID of RUN_ID and print
    Codex's answer. The thread continues on the worker (or, with --temporal, the host) that
    holds it, else it is resumed from its rollout elsewhere. Exit 0 when the turn ends ok,
    1 when not, 2 for an unknown run or task, 3 when Codex cannot run, 130 when interrupted."""
    settings = settings_from(
        ctx,
        approvals="accept" if auto_approve else "decline",
        temporal=temporal_settings(temporal, namespace, task_queue, shared_dir, affinity_wait),
    )
    view = progress_view()
    try:
        result = run_async(
            open_runs(settings).reply_task(run_id, task_id, prompt, observers=[view])
        )
    finally:
        view.close()
    click.echo(result.model_dump_json(indent=2) if as_json else (result.final_message or ""))
    sys.exit(0 if result.status == "ok" else 1)


@click.command()
@click.argument("mission_file", type=click.Path(path_type=Path))
@click.option("--var", "variables", multiple=True, metavar="K=V", help="Set ${K} in the mission.")
@click.option(
    "--pass-env", multiple=True, metavar="NAME", help="As `run --pass-env` would be given."
)
@broad_workspace_option
def validate(
    mission_file: Path,
    variables: tuple[str, ...],
    pass_env: tuple[str, ...],
    allow_broad_workspace: bool,
) -> None:
    """Check MISSION_FILE as `run` would, without running it (exit 0 or 2).

    The schema, and what the mission needs of this machine: its workspace, the programs of its
    MCP servers, hooks and tools."""
    mission = load_mission(mission_file, parse_vars(variables))
    check_runnable(mission, str(mission_file), allow_broad=allow_broad_workspace, pass_env=pass_env)
    click.echo(
        f"{mission_file}: valid mission '{mission.mission_id}' with {len(mission.tasks)} task(s)."
    )


@click.command()
def schema() -> None:
    """Print the mission JSON Schema."""
    click.echo(json.dumps(mission_json_schema(), indent=2))


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
def scaffold(path: Path) -> None:
    """Write a starter mission to PATH that runs offline as it is."""
    if path.exists():
        raise InputError(f"{path} exists already; choose a new path.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SCAFFOLD.format(name=path), encoding="utf-8")
    click.echo(f"wrote {path}; run it with: codex-mcp-wrapper run {path}")


COMMANDS = (run, resume, reply, validate, schema, scaffold)
