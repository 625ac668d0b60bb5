"""Watching a run from the terminal: its progress (and each task's answer) on stderr while it
runs, and how it ends when it does not end by itself: detached (a Temporal run going on
without us) or interrupted (Ctrl-C, SIGTERM: the message says how to finish it)."""

from __future__ import annotations

import json
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from codex_mcp_wrapper.cli.options import run_async
from codex_mcp_wrapper.errors import EXIT_INTERRUPTED, EXIT_OK, Interrupted, RunDetached
from codex_mcp_wrapper.settings import Settings, wrapper_program

if TYPE_CHECKING:
    from codex_mcp_wrapper.cli.progress import ProgressView

T = TypeVar("T")


def progress_view(settings: Settings, answers: bool = True) -> ProgressView:
    """The live progress on stderr, with each task's answer as it ends unless ``answers`` is
    off (rich is loaded only by the commands that run tasks)."""
    from codex_mcp_wrapper.cli.progress import ProgressView

    return ProgressView(sys.stderr, answers=answers, runs_dir=settings.state_dir / "runs")


def resume_args(settings: Settings) -> str:
    """What ``resume`` needs besides the run id to find the run again (its Temporal server)."""
    target = settings.temporal
    return f" --temporal {target.address}" if target is not None else ""


def watched(view: ProgressView, work: Coroutine[Any, Any, T], as_json: bool, resume: str = "") -> T:
    """Run ``work`` with its progress on screen; a detached run exits as such, and an
    interrupted one says how to finish it (``resume``: more arguments that command needs)."""
    try:
        return run_async(work)
    except RunDetached as exc:
        view.close()
        _detached(exc, as_json)
    except (Interrupted, KeyboardInterrupt):
        view.close()
        if view.run_id is None:
            raise
        raise Interrupted(
            f"interrupted; the tasks that finished are kept, and `{wrapper_program()} resume "
            f"{view.run_id}{resume}` runs the others."
        ) from None
    finally:
        view.close()


quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="Show statuses only, not each task's answer as it ends."
)


def _detached(exc: RunDetached, as_json: bool) -> NoReturn:
    """The run goes on unwatched: its id on stdout; why on stderr (an error when the Temporal
    server was lost, and then in the JSON too)."""
    failed = exc.exit_code not in (EXIT_OK, EXIT_INTERRUPTED)
    if as_json:
        data: dict[str, object] = {"run_id": exc.run_id, "detached": True}
        if failed:
            data |= {"error": str(exc), "exit_code": exc.exit_code}
        click.echo(json.dumps(data))
    else:
        click.echo(exc.run_id)
    click.echo(f"error: {exc}" if failed else str(exc), err=True)
    sys.exit(exc.exit_code)
