"""Plain formatting of what the CLI shows (no terminal library: ``runs list`` stays light):
a task's answer on one line, times and durations, and the runs table with its status
colours (on a terminal, unless ``NO_COLOR`` is set)."""

from __future__ import annotations

import os
import time
from typing import TextIO

import click

from codex_mcp_wrapper.engine.run_state import RunRow

ANSWER_CHARS = 200  # how much of an answer a line shows; the rest is in final.md
PIPE_WIDTH = 200  # the width rendered into a pipe or file (rich would wrap at 80)
STYLE = {
    "ok": "green",
    "failed": "red",
    "timeout": "red",
    "interrupted": "red",
    "cancelled": "yellow",
    "skipped": "yellow",
    "running": "cyan",
    "retrying": "magenta",
}


def short_answer(text: str | None, limit: int = ANSWER_CHARS) -> tuple[str, bool]:
    """The answer on one line, at most ``limit`` characters; whether it was cut."""
    flat = " ".join((text or "").split())
    if len(flat) <= limit:
        return flat, False
    return flat[: limit - 1].rstrip() + "…", True


def when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def duration(ms: int | float | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def colours(stream: TextIO) -> bool:
    """Whether to colour what goes to ``stream``: a terminal, and no ``NO_COLOR``."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def runs_table(rows: list[RunRow], colour: bool = False) -> str:
    """``runs list``: a header and one line per run, columns aligned, newest first."""
    if not rows:
        return "no runs yet"
    cells = [("run", "mission", "status", "tasks ok", "started", "duration")]
    for row in rows:
        total = sum(row.counts.values())
        cells.append(
            (
                row.run_id,
                row.mission_id,
                row.status,
                f"{row.counts.get('ok', 0)}/{total}" if total else "-",
                when(row.created_at),
                duration(row.duration_ms),
            )
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    lines = []
    for number, line in enumerate(cells):
        padded = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        if colour and number:
            padded[2] = click.style(padded[2], fg=STYLE.get(line[2]))
        elif colour:
            padded = [click.style(cell, bold=True) for cell in padded]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)
