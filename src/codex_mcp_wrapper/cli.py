"""The command line: a thin facade over the engine. Exit codes: 0 all ok, 1 some task not ok,
2 invalid input, 3 environment (no Codex, workers cannot start), 130 interrupted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from codex_mcp_wrapper import __version__
from codex_mcp_wrapper.errors import (
    EXIT_ENVIRONMENT,
    EXIT_INTERRUPTED,
    EXIT_INVALID_INPUT,
    EXIT_OK,
    EXIT_TASKS_FAILED,
    InputError,
    WrapperError,
)
from codex_mcp_wrapper.instances import INSTANCE_ENV
from codex_mcp_wrapper.settings import Settings, default_state_dir, default_workers

T = TypeVar("T")
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


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; SIGTERM cancels it like Ctrl-C does (cleanup runs, then exit 130)."""

    async def main() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await coro
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    base: dict[str, Any] = dict(ctx.obj or {})
    base.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**base)


def _variables(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--var '{pair}' is not KEY=VALUE.")
        out[key] = value
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="codex-mcp-wrapper")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    help="Where runs, worker homes and logs live [env CODEX_MCP_WRAPPER_HOME; "
    "default: the per-user state dir].",
)
@click.option(
    "--codex-bin",
    help="The Codex binary [env CODEX_BIN; default: the pinned openai-codex-cli-bin package, "
    "then `codex` on PATH].",
)
@click.option(
    "--instance",
    envvar=INSTANCE_ENV,
    help="A named instance (dev, release, ...): its own state dir, port, label and config "
    "[env CODEX_MCP_WRAPPER_INSTANCE].",
)
@click.pass_context
def cli(
    ctx: click.Context, state_dir: Path | None, codex_bin: str | None, instance: str | None
) -> None:
    """Drive the OpenAI Codex CLI headlessly: run missions (lists of Codex tasks) on a pool of
    isolated `codex app-server` workers, with a scripted model for offline runs."""
    if instance:
        from codex_mcp_wrapper.instances import instance as named

        inst = named(instance)
        ctx.meta["instance"] = inst
        state_dir = state_dir or inst.state_dir
    ctx.obj = {"state_dir": state_dir or default_state_dir(), "codex_bin": codex_bin}


@cli.command()
@click.argument("mission_file", type=click.Path(path_type=Path))
@click.option("--workspace", type=click.Path(path_type=Path), help="Override workspace_root.")
@click.option(
    "--workers", type=click.IntRange(1, 64), help=f"Pool size [default: {default_workers()}]."
)
@click.option("--scripted", is_flag=True, help="Use the built-in scripted model for every task.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary JSON on stdout, only it.")
@click.option("--var", "variables", multiple=True, metavar="K=V", help="Set ${K} in the mission.")
@click.option("--pass-env", multiple=True, metavar="NAME", help="Pass this variable to workers.")
@click.option("--sync-codex-config", is_flag=True, help="Merge your ~/.codex/config.toml in.")
@click.option("--mirror-auth", is_flag=True, help="Copy ~/.codex/auth.json to each worker (0600).")
@click.option(
    "--auto-approve", is_flag=True, help="Accept Codex's approval requests (default: decline)."
)
@click.option("--junit", type=click.Path(path_type=Path), help="Also write JUnit XML here.")
@click.option("--report", type=click.Path(path_type=Path), help="Also write the HTML report here.")
@click.pass_context
def run(
    ctx: click.Context,
    mission_file: Path,
    workspace: Path | None,
    workers: int | None,
    scripted: bool,
    as_json: bool,
    variables: tuple[str, ...],
    pass_env: tuple[str, ...],
    sync_codex_config: bool,
    mirror_auth: bool,
    auto_approve: bool,
    junit: Path | None,
    report: Path | None,
) -> None:
    """Run MISSION_FILE (YAML or JSON) and report each task's status.

    Exit code 0 when every task ends ok, 1 when some does not, 2 for an invalid mission,
    3 when Codex cannot run here, 130 when interrupted.
    """
    from codex_mcp_wrapper.engine import run_mission
    from codex_mcp_wrapper.mission import load_mission
    from codex_mcp_wrapper.progress import ProgressView

    settings = _settings(
        ctx,
        workers=workers,
        scripted=scripted,
        pass_env=tuple(pass_env),
        sync_codex_config=sync_codex_config,
        mirror_auth=mirror_auth,
        approvals="accept" if auto_approve else "decline",
        variables=_variables(variables),
    )
    mission = load_mission(mission_file, settings.variables)
    if workspace is not None:
        mission.workspace_root = str(workspace.resolve())
    view = ProgressView(sys.stderr)
    try:
        summary = _run_async(
            run_mission(
                mission,
                settings,
                observers=[view],
                junit=[junit] if junit else [],
                html=[report] if report else [],
            )
        )
    finally:
        view.close()
    if as_json:
        click.echo(summary.model_dump_json(indent=2))
    sys.exit(summary.exit_code)


@cli.command()
@click.argument("run_id")
@click.option("--workers", type=click.IntRange(1, 64), help="Pool size.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary JSON on stdout, only it.")
@click.option("--auto-approve", is_flag=True, help="Accept Codex's approval requests.")
@click.pass_context
def resume(
    ctx: click.Context, run_id: str, workers: int | None, as_json: bool, auto_approve: bool
) -> None:
    """Finish RUN_ID: keep the tasks that ended ok, run the others again (continuing their
    Codex threads where Codex still has them) and report the whole run. Exit codes as `run`."""
    from codex_mcp_wrapper.progress import ProgressView
    from codex_mcp_wrapper.resume import resume_mission

    settings = _settings(ctx, workers=workers, approvals="accept" if auto_approve else "decline")
    view = ProgressView(sys.stderr)
    try:
        summary = _run_async(resume_mission(run_id, settings, observers=[view]))
    finally:
        view.close()
    if as_json:
        click.echo(summary.model_dump_json(indent=2))
    sys.exit(summary.exit_code)


@cli.command()
@click.argument("mission_file", type=click.Path(path_type=Path))
@click.option("--var", "variables", multiple=True, metavar="K=V", help="Set ${K} in the mission.")
def validate(mission_file: Path, variables: tuple[str, ...]) -> None:
    """Check MISSION_FILE against the schema without running it (exit 0 or 2)."""
    from codex_mcp_wrapper.mission import load_mission

    mission = load_mission(mission_file, _variables(variables))
    click.echo(
        f"{mission_file}: valid mission '{mission.mission_id}' with {len(mission.tasks)} task(s)."
    )


@cli.command()
def schema() -> None:
    """Print the mission JSON Schema."""
    from codex_mcp_wrapper.mission import mission_json_schema

    click.echo(json.dumps(mission_json_schema(), indent=2))


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
def scaffold(path: Path) -> None:
    """Write a starter mission to PATH that runs offline as it is."""
    if path.exists():
        raise InputError(f"{path} exists already; choose a new path.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SCAFFOLD.format(name=path), encoding="utf-8")
    click.echo(f"wrote {path}; run it with: codex-mcp-wrapper run {path}")


@cli.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check the Codex binary, its version, the sandbox, the state dir and auth."""
    from codex_mcp_wrapper.doctor import run_checks

    checks = run_checks(_settings(ctx))
    for check in checks:
        mark = "ok  " if check.ok else ("FAIL" if check.required else "warn")
        click.echo(f"[{mark}] {check.name}: {check.detail}")
    sys.exit(EXIT_OK if all(c.ok or not c.required for c in checks) else EXIT_ENVIRONMENT)


@cli.command()
@click.argument("run_id")
@click.option("--junit", type=click.Path(path_type=Path), help="Also write JUnit XML here.")
@click.option("--html", type=click.Path(path_type=Path), help="Also write the HTML report here.")
@click.pass_context
def report(ctx: click.Context, run_id: str, junit: Path | None, html: Path | None) -> None:
    """Render RUN_ID's reports again: junit.xml and report.html in its run folder (and where
    asked)."""
    from codex_mcp_wrapper.reports import write_reports
    from codex_mcp_wrapper.results import RunSummary
    from codex_mcp_wrapper.store import RunStore

    store = RunStore(_settings(ctx).state_dir)
    try:
        info = store.get_run(run_id)
        run_dir = store.run_dir(run_id)
    finally:
        store.close()
    if info is None or not info.get("summary"):
        raise InputError(f"no finished run '{run_id}'; see `codex-mcp-wrapper runs list`.")
    mission_path = run_dir / "mission.json"
    mission = json.loads(mission_path.read_text()) if mission_path.exists() else None
    summary = RunSummary.model_validate(info["summary"])
    write_reports(summary, run_dir, mission, [junit] if junit else [], [html] if html else [])
    click.echo(f"wrote {run_dir / 'junit.xml'} and {run_dir / 'report.html'}")


@cli.group()
def runs() -> None:
    """Inspect recorded runs."""


@runs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", default=20, show_default=True)
@click.pass_context
def runs_list(ctx: click.Context, as_json: bool, limit: int) -> None:
    """List recent runs, newest first."""
    from codex_mcp_wrapper.store import RunStore

    store = RunStore(_settings(ctx).state_dir)
    try:
        rows = store.list_runs(limit)
    finally:
        store.close()
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
    """Show a run's summary as JSON."""
    from codex_mcp_wrapper.store import RunStore

    store = RunStore(_settings(ctx).state_dir)
    try:
        run_info = store.get_run(run_id)
    finally:
        store.close()
    if run_info is None:
        raise InputError(f"no run '{run_id}'; see `codex-mcp-wrapper runs list`.")
    click.echo(json.dumps(run_info.get("summary") or run_info, indent=2))


@cli.group()
def model() -> None:
    """The scripted model (a local Responses API server for offline, deterministic runs)."""


@model.command("serve")
@click.option("--script", type=click.Path(path_type=Path), help="Script to play (default: echo).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port (default: any free).")
@click.option("--record", type=click.Path(path_type=Path), help="Append requests to this JSONL.")
def model_serve(script: Path | None, port: int, record: Path | None) -> None:
    """Serve the scripted model on 127.0.0.1 until Ctrl-C."""
    from codex_mcp_wrapper.codex_home import config_snippet
    from codex_mcp_wrapper.scripted import ScriptedModel, load_script

    loaded = load_script(script) if script else None
    server = ScriptedModel(loaded, port=port, record=record)

    async def serve() -> None:
        async with server.serve() as url:
            click.echo(f"scripted model listening on {url}")
            click.echo("paste into $CODEX_HOME/config.toml:\n")
            click.echo(config_snippet(url))
            sys.stdout.flush()
            await asyncio.Event().wait()

    _run_async(serve())


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _register() -> None:
    from codex_mcp_wrapper import cli_serve

    cli_serve.register(cli)


_register()


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: every error becomes one line on stderr and an exit code, never a traceback."""
    try:
        cli.main(args=argv, prog_name="codex-mcp-wrapper", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _fail(exc.format_message() + hint, EXIT_INVALID_INPUT)
    except click.ClickException as exc:
        _fail(exc.format_message(), EXIT_INVALID_INPUT)
    except click.Abort:
        _fail("interrupted.", EXIT_INTERRUPTED)
    except WrapperError as exc:
        _fail(str(exc), exc.exit_code)
    except BaseExceptionGroup as group:  # raised inside a task group: report the first cause
        first = _first_leaf(group)
        if isinstance(first, WrapperError):
            _fail(str(first), first.exit_code)
        if isinstance(first, KeyboardInterrupt):
            _fail("interrupted; finished results are kept in the run folder.", EXIT_INTERRUPTED)
        _fail(f"unexpected {type(first).__name__}: {first}", EXIT_TASKS_FAILED)
    except KeyboardInterrupt:
        _fail("interrupted; finished results are kept in the run folder.", EXIT_INTERRUPTED)
    except Exception as exc:  # the outer edge: one line, never a traceback
        if os.environ.get("CODEX_MCP_WRAPPER_DEBUG"):
            raise
        _fail(
            f"unexpected {type(exc).__name__}: {exc}; rerun with CODEX_MCP_WRAPPER_DEBUG=1 "
            "for a traceback and report it.",
            EXIT_TASKS_FAILED,
        )
    sys.exit(EXIT_OK)
