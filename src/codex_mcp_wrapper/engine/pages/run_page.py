"""What the run page shows of a run, built once for both of its readers: the web UI's live
page (``live=True``: its event stream, the cancel, steer and apply forms, links into the UI)
and the HTML report (``live=False``: the same page frozen, self-contained, its transcript links
relative to where it is written). Each reader says how it reaches a task's transcript and
patch; ``render`` draws the page from ``templates/run.html``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from codex_mcp_wrapper.engine.pages.timeline import Bar, lane_rows, timeline, timeline_span
from codex_mcp_wrapper.engine.results import RunSummary, TaskResult
from codex_mcp_wrapper.engine.run_state import RunState
from codex_mcp_wrapper.engine.spending import tokens_of

if TYPE_CHECKING:
    import jinja2

PATCH_SHOWN = 200_000  # characters of a patch the page shows; the file has it all
_FILE_LINE = ("diff --git", "index ", "+++ ", "--- ", "new file", "deleted file")
_LINE_CLASS = {"+": "add", "-": "del", "@": "hunk"}


@dataclass(frozen=True)
class PatchLine:
    """A line of a patch and how it is coloured (``add``, ``del``, ``hunk``, ``file``, none)."""

    css: str
    text: str


def patch_lines(text: str) -> tuple[tuple[PatchLine, ...], bool]:
    """The lines of a patch (its first ``PATCH_SHOWN`` characters) and whether it was cut."""
    shown = text[:PATCH_SHOWN]
    lines = tuple(
        PatchLine("file" if line.startswith(_FILE_LINE) else _LINE_CLASS.get(line[:1], ""), line)
        for line in shown.splitlines()
    )
    return lines, len(text) > PATCH_SHOWN


@dataclass(frozen=True)
class TaskView:
    """A task as the page shows it: its row, its result once it ended, the link to its
    transcript (None: nothing to link) and the lines of its patch."""

    task_id: str
    status: str
    worker: str | None = None
    result: TaskResult | None = None
    transcript: str | None = None
    patch: tuple[PatchLine, ...] = ()
    patch_cut: bool = False

    @property
    def tokens(self) -> int | None:
        return tokens_of(self.result.usage) if self.result is not None else None

    @property
    def checks_passed(self) -> int:
        return sum(1 for c in self.result.checks if c.ok) if self.result is not None else 0

    @property
    def checks_failed(self) -> int:
        return len(self.result.checks) - self.checks_passed if self.result is not None else 0


@dataclass(frozen=True)
class RunPage:
    """A run as its page shows it: live in the UI, or frozen in the report."""

    run_id: str
    mission_id: str
    status: str
    done: bool
    live: bool
    summary: RunSummary | None = None
    tasks: list[TaskView] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    lanes: dict[str, int] = field(default_factory=dict)
    span: float = 0.0
    notes: str | None = None
    run_dir: str | None = None
    error: str | None = None  # why a run that has not finished could not go on
    message: str = ""  # what an action of the UI did

    @property
    def started(self) -> str:
        if self.summary is None:
            return ""
        when = datetime.fromtimestamp(self.summary.started_at, UTC)
        return when.strftime("%Y-%m-%d %H:%M:%S UTC")

    @property
    def counts(self) -> str:
        counts = self.summary.counts if self.summary is not None else {}
        return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))

    @property
    def tokens(self) -> int:
        return tokens_of(self.summary.usage) if self.summary is not None else 0


def run_page(
    state: RunState,
    *,
    live: bool,
    transcript: Callable[[str], str | None],
    patch: Callable[[TaskResult], str],
    notes: str | None = None,
    run_dir: str | None = None,
    message: str = "",
) -> RunPage:
    """The page of the run in ``state``: ``transcript(task_id)`` is the link to a task's
    transcript (None: none), ``patch(result)`` a worktree task's patch text (``""``: none)."""
    summary = state.summary
    results = {t.task_id: t for t in summary.tasks} if summary is not None else {}
    rows = summary.tasks if summary is not None else state.tasks
    tasks = []
    for row in rows:
        result = results.get(row.task_id)
        text = patch(result) if result is not None and result.diff is not None else ""
        lines, cut = patch_lines(text)
        tasks.append(
            TaskView(
                task_id=row.task_id,
                status=str(row.status),
                worker=row.worker,
                result=result,
                transcript=transcript(row.task_id),
                patch=lines,
                patch_cut=cut,
            )
        )
    bars = timeline(summary) if summary is not None else []
    return RunPage(
        run_id=state.run_id,
        mission_id=state.mission_id or (summary.mission_id if summary is not None else ""),
        status=state.status,
        done=state.done,
        live=live,
        summary=summary,
        tasks=tasks,
        bars=bars,
        lanes=lane_rows(bars),
        span=timeline_span(summary) if summary is not None else 0.0,
        notes=notes,
        run_dir=run_dir if run_dir is not None else (summary.run_dir if summary else None),
        error=state.error,
        message=message,
    )


@functools.cache
def environment(*packages: str) -> jinja2.Environment:
    """The templates of ``packages`` (each a package with a ``templates`` folder; the first
    that has a template wins) over the run page's, HTML-escaped."""
    import jinja2

    names = (*packages, __package__ or "codex_mcp_wrapper.engine.pages")
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.PackageLoader(name, "templates") for name in names]),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(page: RunPage, env: jinja2.Environment | None = None, **values: Any) -> str:
    """The run page as HTML (with ``values``, more for the template: the UI's baselines)."""
    env = env if env is not None else environment()
    return env.get_template("run.html").render(page=page, live=page.live, **values)
