"""The steps of a long command (a release build or install takes a minute): a spinner naming
the step on a terminal, a line per step on stderr otherwise, so nobody watches silence."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

import click

if TYPE_CHECKING:
    from rich.status import Status


class Steps:
    """Call it with each step as it begins; use it as a context manager around the work."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._status: Status | None = None

    def __call__(self, step: str) -> None:
        if not self.stream.isatty():
            click.echo(f"{step}...", file=self.stream)
            return
        if self._status is None:
            from rich.console import Console  # only on a terminal

            self._status = Console(file=self.stream).status(step)
            self._status.start()
        else:
            self._status.update(step)

    def __enter__(self) -> Steps:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
