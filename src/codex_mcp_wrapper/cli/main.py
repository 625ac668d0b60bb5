"""The command line: a thin facade over ``Runs`` (the application API).

Exit codes: 0 all ok, 1 some task not ok, 2 invalid input, 3 environment (no Codex, workers
cannot start), 130 interrupted. ``main`` is the outer edge: every error becomes one line on
stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from codex_mcp_wrapper import __version__
from codex_mcp_wrapper.cli import (
    cassettes,
    doctor,
    instances,
    missions,
    model,
    runs,
    scaleout,
    serve,
)
from codex_mcp_wrapper.cli.options import add_global_options, global_options
from codex_mcp_wrapper.errors import (
    EXIT_INTERRUPTED,
    EXIT_INVALID_INPUT,
    EXIT_OK,
    EXIT_TASKS_FAILED,
    WrapperError,
)

DEBUG_ENV = "CODEX_MCP_WRAPPER_DEBUG"


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    params=global_options(root=True),
)
@click.version_option(__version__, prog_name="codex-mcp-wrapper")
def cli() -> None:
    """Drive the OpenAI Codex CLI headlessly: run missions (lists of Codex tasks) on a pool of
    isolated `codex app-server` workers, with a scripted model for offline runs.

    The global options (--state-dir, --codex-bin, --instance) work before or after the
    subcommand."""


for module in (missions, runs, doctor, model, serve, scaleout, cassettes, instances):
    for command in module.COMMANDS:
        cli.add_command(command)
add_global_options(cli)


def one_line(message: str) -> str:
    """The message with line breaks and other control characters escaped: an error is one line
    even when it quotes the user's input."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in message)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: every error becomes one line on stderr and an exit code, never a traceback."""
    try:
        _main(argv)
    except SystemExit as exc:
        _exit(exc.code)
    _exit(EXIT_OK)


def _exit(code: int | str | None) -> NoReturn:
    """Exit; once the Temporal SDK's runtime has started, without interpreter finalisation,
    which its threads can crash after a clean run (temporalio/sdk-python#300)."""
    runtime = sys.modules.get("temporalio.runtime")
    started = getattr(getattr(runtime, "_runtime_ref", None), "_default_runtime", None)
    if started is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else (0 if code is None else 1))
    sys.exit(code)


def _main(argv: list[str] | None) -> None:
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
