"""Progress display: a live table on a terminal, plain lines otherwise (always on stderr).

As each task ends its answer is shown (on one line, shortened, with the path of the whole
answer when cut), unless ``answers`` is off (``run --quiet``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from codex_mcp_wrapper.cli.formats import short_answer
from codex_mcp_wrapper.cli.views import styled
from codex_mcp_wrapper.engine.events import (
    CodexEvent,
    Event,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskUpdate,
)
from codex_mcp_wrapper.engine.results import TaskResult
from codex_mcp_wrapper.engine.spending import tokens_of


class ProgressView:
    """Subscribes to run events; call ``close()`` when the run ends."""

    def __init__(
        self,
        stream: TextIO,
        live: bool | None = None,
        answers: bool = True,
        runs_dir: Path | None = None,
    ) -> None:
        """``runs_dir``: the state dir's ``runs/``, to name where a whole answer is."""
        self.console = Console(file=stream, stderr=True, highlight=False)
        self.live_mode = stream.isatty() if live is None else live
        self.stream = stream
        self.answers = answers
        self.runs_dir = runs_dir
        self.run_id: str | None = None
        self.rows: dict[str, dict[str, str]] = {}
        self.started: dict[str, float] = {}
        self._live: Live | None = None

    def _table(self) -> Table:
        table = Table(box=None, pad_edge=False)
        for column in ("task", "state", "worker", "elapsed", "note"):
            table.add_column(column)
        now = time.monotonic()
        for task_id, row in self.rows.items():
            state = row["state"]
            elapsed = row.get("elapsed") or (
                f"{now - self.started[task_id]:.1f}s" if task_id in self.started else ""
            )
            table.add_row(
                task_id,
                styled(state),
                row.get("worker", ""),
                elapsed,
                row.get("note", "")[:60],
            )
        return table

    def _line(self, text: str) -> None:
        if not self.live_mode:
            self.stream.write(text + "\n")
            self.stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.run_id = event.run_id
            for task_id in event.task_ids:
                self.rows[task_id] = {"state": "pending"}
            self._line(f"run {event.run_id}: {len(event.task_ids)} task(s) of {event.mission_id}")
            if self.live_mode:
                self._live = Live(
                    self._table(),
                    console=self.console,
                    refresh_per_second=4,
                    transient=False,
                    get_renderable=self._table,
                )
                self._live.start()
        elif isinstance(event, TaskUpdate):
            row = self.rows.setdefault(event.task_id, {})
            row["state"] = event.status
            if event.worker:
                row["worker"] = event.worker
            row["note"] = event.message.splitlines()[0] if event.message else ""
            if event.status == "running":
                self.started.setdefault(event.task_id, time.monotonic())
            if event.status in ("running", "retrying", "worker-lost"):
                where = f" on {event.worker}" if event.worker else ""
                self._line(f"  {event.task_id}: {event.status}{where} {row['note']}".rstrip())
        elif isinstance(event, TaskFinished):
            result = event.result
            row = self.rows.setdefault(result.task_id, {})
            row.update(
                state=result.status,
                worker=result.worker or "",
                elapsed=f"{result.duration_ms / 1000:.1f}s",
                note=(result.error or "").splitlines()[0] if result.error else "",
            )
            note = f": {row['note']}" if row["note"] else ""
            self._line(f"  {result.task_id}: {result.status} ({row['elapsed']}){note}")
            self._answer(event.run_id, result)
            self._change(result)
        elif isinstance(event, CodexEvent) and event.method == "turn/diff/updated":
            # Codex's diff of the turn so far (its file edits): the row says how far it is
            diff = str(event.params.get("diff") or "")
            files = sum(1 for line in diff.splitlines() if line.startswith("diff --git "))
            row = self.rows.setdefault(event.task_id, {"state": "running"})
            row["note"] = f"changing {files} file(s)"
        elif isinstance(event, RunFinished):
            self.close()
            summary = event.summary
            counts = ", ".join(f"{v} {k}" for k, v in sorted(summary.counts.items()))
            self.console.print(
                f"run {summary.run_id} {summary.status}: {counts} "
                f"in {summary.duration_ms / 1000:.1f}s"
                + (f", {tokens_of(summary.usage)} tokens" if summary.usage else "")
                + f"; details in {summary.run_dir}",
                highlight=False,
                soft_wrap=True,
            )

    def _answer(self, run_id: str, result: TaskResult) -> None:
        """The task's answer under its line (above the live table on a terminal)."""
        if not (self.answers and result.final_message):
            return
        answer, cut = short_answer(result.final_message)
        line = f"    {result.task_id} answered: {answer}"
        if cut and self.runs_dir is not None:
            line += (
                f" (whole answer: {self.runs_dir / run_id / 'tasks' / result.task_id / 'final.md'})"
            )
        if self._live is not None:
            self._live.console.print(escape(line), soft_wrap=True)
        else:
            self._line(line)

    def _change(self, result: TaskResult) -> None:
        """A worktree task's change under its line: its size and its patch."""
        if result.diff is None:
            return
        line = f"    {result.task_id} changed: {result.diff.describe()}"
        if result.diff.patch:
            line += f" (patch: {result.diff.patch})"
        if self._live is not None:
            self._live.console.print(escape(line), soft_wrap=True)
        else:
            self._line(line)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
