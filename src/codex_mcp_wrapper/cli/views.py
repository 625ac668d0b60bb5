"""What a person reads of one run (``runs show``), rendered with rich: colours on a terminal
only, none with ``NO_COLOR`` or into a pipe, and no wrapping into a pipe. The plain formats
(answers, times, the runs table) are ``cli/formats.py``."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from codex_mcp_wrapper.cli.formats import STYLE, duration, short_answer, when
from codex_mcp_wrapper.engine.results import RunSummary, TaskResult
from codex_mcp_wrapper.engine.run_state import RunRecord
from codex_mcp_wrapper.engine.spending import tokens_of

PIPE_WIDTH = 200  # the width rendered into a pipe or file (rich would wrap at 80)


def console(stream: TextIO) -> Console:
    return Console(file=stream, width=None if stream.isatty() else PIPE_WIDTH, highlight=False)


def styled(status: str) -> str:
    return f"[{STYLE.get(status, 'white')}]{escape(status)}[/]"


def _task_lines(task: TaskResult, run_dir: Path) -> list[str]:
    """A task of ``runs show``: its line, then its answer, checks, error and files."""
    where = " · ".join(
        part
        for part in (
            f"on {task.worker}" if task.worker else "",
            duration(task.duration_ms) if task.started_at else "",
            f"{task.attempts} attempts" if task.attempts > 1 else "",
            f"{tokens_of(task.usage)} tokens" if task.usage else "",
        )
        if part
    )
    lines = [f"  [bold]{escape(task.task_id)}[/] {styled(task.status)} {escape(where)}".rstrip()]
    answer, _ = short_answer(task.final_message, 400)
    if answer:
        lines.append(f"    answer: {escape(answer)}")
    if task.checks:
        passed = sum(1 for c in task.checks if c.ok)
        failed = [c.name for c in task.checks if not c.ok]
        verdict = f"{passed} of {len(task.checks)} passed"
        if failed:
            verdict += f"; failed: {', '.join(failed)}"
        lines.append(f"    checks: {escape(verdict)}")
    if task.review is not None:
        found = "; ".join(
            f"[P{f.priority}] {f.title}" if f.priority is not None else f.title
            for f in task.review.findings
        )
        shown = f": {escape(short_answer(found, 400)[0])}" if found else ""
        lines.append(f"    review: {len(task.review.findings)} finding(s){shown}")
    if task.error:
        lines.append(f"    [red]error:[/] {escape(short_answer(task.error, 400)[0])}")
    if task.diff is not None:
        lines.extend(_diff_lines(task))
    files = run_dir / "tasks" / task.task_id
    if task.final_message:
        lines.append(f"    full answer: {escape(str(files / 'final.md'))}")
    return lines


def _diff_lines(task: TaskResult) -> list[str]:
    """A worktree task's change: its size, files, patch, and its worktree while kept."""
    assert task.diff is not None
    diff = task.diff
    shown = ", ".join(diff.files[:10]) + (
        f" (+{len(diff.files) - 10} more)" if len(diff.files) > 10 else ""
    )
    lines = [f"    diff: {escape(diff.describe())}" + (f": {escape(shown)}" if shown else "")]
    if diff.patch:
        lines.append(f"    patch: {escape(diff.patch)} (`runs apply` brings it in)")
    if diff.worktree:
        lines.append(f"    worktree kept: {escape(diff.worktree)} (branch {escape(diff.branch)})")
    return lines


def run_details(shown: RunSummary | RunRecord, out: Console) -> None:
    """``runs show``: the run, then each task; everything a person looks for first."""
    if isinstance(shown, RunRecord):
        out.print(
            f"run {shown.run_id} of {escape(shown.mission_id)}: {styled(shown.status)} "
            f"(no summary yet), started {when(shown.created_at)}"
        )
        for row in shown.tasks:
            worker = f" on {row.worker}" if row.worker else ""
            out.print(f"  [bold]{escape(row.task_id)}[/] {styled(row.status)}{escape(worker)}")
        out.print(f"files: {escape(str(shown.run_dir))}")
        return
    counts = ", ".join(f"{n} {status}" for status, n in sorted(shown.counts.items()))
    out.print(
        f"run {shown.run_id} of {escape(shown.mission_id)}: {styled(shown.status)} "
        f"({counts}), started {when(shown.started_at)}, took {duration(shown.duration_ms)}"
        + (f", used {tokens_of(shown.usage)} tokens" if shown.usage else "")
    )
    run_dir = Path(shown.run_dir or ".")
    for task in shown.tasks:
        for line in _task_lines(task, run_dir):
            out.print(line, soft_wrap=True)
    for failure in shown.hook_failures:
        out.print(f"[red]hook failed:[/] {escape(failure)}")
    if shown.applied:
        out.print(f"applied to the workspace: {escape(', '.join(shown.applied))}")
    if shown.apply_error:
        out.print(f"[red]not applied:[/] {escape(shown.apply_error)}")
    out.print(f"files: {escape(str(run_dir))} (summary.json, report.html, junit.xml, tasks/)")
