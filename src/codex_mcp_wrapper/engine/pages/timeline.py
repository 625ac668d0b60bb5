"""The timeline of a finished run as bars: one lane per worker, each task placed by when it
started and ended, in percent of the run's span (drawn with CSS, no script); tasks at once on
one worker (its threads) stack in rows of its lane."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from codex_mcp_wrapper.engine.results import RunSummary


@dataclass(frozen=True)
class Bar:
    """A task on its worker's lane: left and width in percent of the run's span."""

    worker: str
    task_id: str
    status: str
    left: float
    width: float
    seconds: float
    row: int = 0  # tasks at once on one worker (its threads) stack in rows of its lane


def timeline(summary: RunSummary) -> list[Bar]:
    """The bars of ``summary``'s tasks that ran, sorted by worker then start."""
    timed = [t for t in summary.tasks if t.started_at is not None and t.finished_at is not None]
    if not timed:
        return []
    start = min(t.started_at or 0.0 for t in timed)
    span = max(max(t.finished_at or 0.0 for t in timed) - start, 1e-3)
    bars = [
        Bar(
            worker=t.worker or "-",
            task_id=t.task_id,
            status=str(t.status),
            left=round(100 * ((t.started_at or 0.0) - start) / span, 2),
            width=max(round(100 * ((t.finished_at or 0.0) - (t.started_at or 0.0)) / span, 2), 0.5),
            seconds=round((t.finished_at or 0.0) - (t.started_at or 0.0), 2),
        )
        for t in timed
    ]
    return _stacked(sorted(bars, key=lambda b: (b.worker, b.left)))


def _stacked(bars: list[Bar]) -> list[Bar]:
    """Each bar in the first row of its worker's lane where it overlaps no other."""
    ends: dict[str, list[float]] = {}  # per worker, where each row is taken up to
    placed = []
    for bar in bars:
        rows = ends.setdefault(bar.worker, [])
        row = next((i for i, end in enumerate(rows) if end <= bar.left), len(rows))
        if row == len(rows):
            rows.append(0.0)
        rows[row] = bar.left + bar.width
        placed.append(dataclasses.replace(bar, row=row))
    return placed


def lane_rows(bars: list[Bar]) -> dict[str, int]:
    """How many rows each worker's lane needs."""
    rows: dict[str, int] = {}
    for bar in bars:
        rows[bar.worker] = max(rows.get(bar.worker, 0), bar.row + 1)
    return rows


def timeline_span(summary: RunSummary) -> float:
    """Seconds from the first task's start to the last task's end (0 when none ran)."""
    starts = [t.started_at for t in summary.tasks if t.started_at is not None]
    ends = [t.finished_at for t in summary.tasks if t.finished_at is not None]
    return round(max(ends) - min(starts), 1) if starts and ends else 0.0
