"""The command line: a thin facade over ``Runs`` (the application API).

Exit codes: 0 all ok, 1 some task not ok, 2 invalid input, 3 environment (no Codex, workers
cannot start), 130 interrupted. ``main`` is the outer edge: every error becomes one line on
stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import NoReturn

import click

from codex_mcp_wrapper import __version__
from codex_mcp_wrapper.cli.options import JsonOutput, add_global_options, global_options
from codex_mcp_wrapper.codex.telemetry import flush_traces
from codex_mcp_wrapper.errors import (
    EXIT_INTERRUPTED,
    EXIT_INVALID_INPUT,
    EXIT_OK,
    EXIT_TASKS_FAILED,
    WrapperError,
)

DEBUG_ENV = "CODEX_MCP_WRAPPER_DEBUG"

# Every command: the module defining it, and its line in `--help` (a test checks that each
# is the command's own short help, as click would show it). A command's module is imported
# only when the command runs (or its own --help is asked for), so `--version`, `--help` and
# the light commands never pay for what the others import (the MCP SDK, Temporal, uvicorn).
COMMANDS: dict[str, tuple[str, str]] = {
    "cassette": (
        "cassettes",
        "Cassettes: runs recorded with `run --record`, replayed with `run --replay`.",
    ),
    "doctor": (
        "doctor",
        "Check the Codex binary, its version, the sandbox, the state dir and auth.",
    ),
    "export": (
        "instances",
        "Configuration to paste into Codex, MCP clients, pm2 or an MCP hub for this instance.",
    ),
    "instances": ("instances", "Named instances (dev and release side by side)."),
    "model": (
        "model",
        "The scripted model (a local Responses API server for offline, deterministic runs).",
    ),
    "release": ("instances", "Build releases and install them into instances."),
    "reply": (
        "missions",
        "Send PROMPT as a further turn in the Codex thread of TASK_ID of RUN_ID and print "
        "Codex's answer.",
    ),
    "report": (
        "runs",
        "Render RUN_ID's reports again: junit.xml and report.html in its run folder (and where "
        "asked; only there when the state dir is read-only).",
    ),
    "host": (
        "scaleout",
        "Take mission tasks from a Temporal server and run them on this machine's Codex "
        "workers, until SIGTERM or Ctrl-C.",
    ),
    "resume": (
        "missions",
        "Finish RUN_ID: keep the tasks that ended ok, run the others again (continuing their "
        "Codex threads where Codex still has them) and report the whole run.",
    ),
    "run": ("missions", "Run MISSION_FILE (YAML or JSON) and report each task's status."),
    "runs": ("runs", "Inspect recorded runs; steer or cancel a running task."),
    "scaffold": ("authoring", "Write a starter mission to PATH that runs offline as it is."),
    "schema": ("authoring", "Print the mission JSON Schema."),
    "serve": (
        "serve",
        "Serve Codex and missions to MCP clients (tools codex, codex-reply, batch, mission_*).",
    ),
    "ui": (
        "ui",
        "Serve a local web page over the state dir: runs, live task status, a timeline, "
        "transcripts, diffs; apply, cancel, steer.",
    ),
    "validate": (
        "authoring",
        "Check MISSION_FILE as `run` would, without running it (exit 0 or 2).",
    ),
}
# Old command names, still accepted with a warning on stderr: "worker" was ambiguous (a Codex
# process is a worker too); a machine serving Temporal tasks is a host.
RENAMED = {"worker": "host"}


def load_command(name: str) -> click.Command:
    """The command ``name`` from its module, with the global options added to it (and to
    its subcommands, so they work after it too)."""
    module = importlib.import_module(f"codex_mcp_wrapper.cli.{COMMANDS[name][0]}")
    command: click.Command = next(c for c in module.COMMANDS if c.name == name)
    if name not in _WITH_GLOBALS:
        add_global_options(click.Group(commands=[command]))
        _WITH_GLOBALS.add(name)
    return command


_WITH_GLOBALS: set[str] = set()  # commands given the global options already


class LazyCommands(click.Group):
    """The root group: lists every command from ``COMMANDS`` and loads one only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in RENAMED:
            click.echo(
                f"warning: `{cmd_name}` is now `{RENAMED[cmd_name]}`; the old name will be "
                "removed in a future release.",
                err=True,
            )
            cmd_name = RENAMED[cmd_name]
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands section of `--help`, from the table: no command module imported."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(n, click.Command(n, help=COMMANDS[n][1]).get_short_help_str(limit)) for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyCommands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    params=global_options(root=True),
)
@click.version_option(__version__, prog_name="codex-mcp-wrapper")
def cli() -> None:
    """Drive the OpenAI Codex CLI headlessly: run missions (lists of Codex tasks) on a pool of
    isolated `codex app-server` workers, with a scripted model for offline runs.

    The global options (--state-dir, --codex-bin, --instance) work before or after the
    subcommand."""


def one_line(message: str) -> str:
    """The message with line breaks and other control characters escaped: an error is one line
    even when it quotes the user's input."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in message)


def _fail(message: str, code: int) -> NoReturn:
    """One line on stderr and the exit code; with ``--json`` also an error object on stdout,
    which then always parses."""
    if JsonOutput.requested:
        click.echo(json.dumps({"error": one_line(message), "exit_code": code}))
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: every error becomes one line on stderr and an exit code, never a traceback.
    Called with ``argv`` (from Python: a test, an embedding program) it only raises
    ``SystemExit``; as the process's entry (no ``argv``) it may end the process at once."""
    try:
        _main(argv)
    except SystemExit as exc:
        _exit(exc.code, whole_process=argv is None)
    _exit(EXIT_OK, whole_process=argv is None)


def _exit(code: int | str | None, whole_process: bool) -> NoReturn:
    """Exit; once the Temporal SDK's runtime has started, and this is the process's own entry,
    without interpreter finalisation, which its threads can crash after a clean run
    (temporalio/sdk-python#300). Never for an in-process caller: it would end its process."""
    runtime = sys.modules.get("temporalio.runtime")
    started = getattr(getattr(runtime, "_runtime_ref", None), "_default_runtime", None)
    if started is not None and whole_process:
        flush_traces()  # os._exit skips the tracer provider's own flush at exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else (0 if code is None else 1))
    sys.exit(code)


def _main(argv: list[str] | None) -> None:
    JsonOutput.requested = False  # this invocation's --json sets it
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
        if os.environ.get(DEBUG_ENV):
            raise
        _fail(
            f"unexpected {type(exc).__name__}: {exc}; rerun with {DEBUG_ENV}=1 "
            "for a traceback and report it.",
            EXIT_TASKS_FAILED,
        )
    sys.exit(EXIT_OK)
