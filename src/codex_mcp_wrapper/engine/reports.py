"""Reports of a run for CI systems and people: JUnit XML and a self-contained HTML page.

Both are functions of the run summary (plus the mission's notes; the page also links the
transcripts found in the run folder), written by ``ReportWriter``, a subscriber that renders
them into the run folder, and to extra paths on request, when the run finishes.
``codex-mcp-wrapper report RUN_ID`` renders them again from the store.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from codex_mcp_wrapper.engine.events import Event, RunFinished, RunStarted
from codex_mcp_wrapper.engine.patch_view import PATCH_CSS, diff_excerpt, diff_section
from codex_mcp_wrapper.engine.redaction import Redactor
from codex_mcp_wrapper.engine.results import RunSummary, TaskResult
from codex_mcp_wrapper.engine.spending import tokens_of
from codex_mcp_wrapper.errors import EnvironmentProblem

EXCERPT = 4000
STATUS_COLOUR = {
    "ok": "#1a7f37",
    "failed": "#cf222e",
    "timeout": "#bc4c00",
    "cancelled": "#6e7781",
    "skipped": "#9a6700",
}


def _checks_cell(task: TaskResult) -> str:
    """The checks of a task in the tasks table: how many passed, of how many, and failed."""
    if not task.checks:
        return "-"
    passed = sum(1 for c in task.checks if c.ok)
    failed = len(task.checks) - passed
    text = f"{passed} of {len(task.checks)} passed"
    return text + (f', <span class="failed">{failed} failed</span>' if failed else "")


def _excerpt(task: TaskResult) -> str:
    lines = [f"status: {task.status}"]
    lines += [f"worker: {task.worker}"] if task.worker else []
    lines += [f"thread: {task.thread_id}"] if task.thread_id else []
    for command in task.commands[-10:]:
        lines.append(f"$ {command.command}  (exit {command.exit_code})")
    for call in task.tool_calls[-10:]:
        lines.append(
            f"tool {call.server}.{call.tool} {json.dumps(call.arguments)} -> {call.status}"
        )
    lines += diff_excerpt(task)
    lines.append("final message:")
    lines.append(task.final_message or "(none)")
    text = "\n".join(lines)
    return text if len(text) <= EXCERPT else text[: EXCERPT - 3] + "..."


def junit_xml(summary: RunSummary) -> str:
    """One testsuite for the mission, one testcase per task."""
    tests = len(summary.tasks)
    failures = sum(1 for t in summary.tasks if t.status in ("failed", "timeout"))
    errors = sum(1 for t in summary.tasks if t.status == "cancelled")
    skipped = sum(1 for t in summary.tasks if t.status == "skipped")
    suites = ET.Element(
        "testsuites",
        name="codex-mcp-wrapper",
        tests=str(tests),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{summary.duration_ms / 1000:.3f}",
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=summary.mission_id,
        tests=str(tests),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{summary.duration_ms / 1000:.3f}",
        timestamp=datetime.fromtimestamp(summary.started_at, UTC).isoformat(timespec="seconds"),
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="run_id", value=summary.run_id)
    ET.SubElement(props, "property", name="tokens", value=str(tokens_of(summary.usage)))
    for task in summary.tasks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=summary.mission_id,
            name=task.task_id,
            time=f"{task.duration_ms / 1000:.3f}",
        )
        failed_checks = [c for c in task.checks if not c.ok]
        if task.status in ("failed", "timeout"):
            body = "\n".join(
                f"{c.name}: expected {c.expected}, observed {c.observed}" for c in failed_checks
            )
            failure = ET.SubElement(
                case, "failure", type=task.status, message=(task.error or task.status)[:1000]
            )
            failure.text = body or task.error or task.status
        elif task.status == "cancelled":
            ET.SubElement(case, "error", type="cancelled", message=task.error or "cancelled")
        elif task.status == "skipped":
            ET.SubElement(case, "skipped", message=task.error or "skipped")
        out = ET.SubElement(case, "system-out")
        out.text = _excerpt(task)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1f2328;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}.muted{color:#656d76}
.failed{color:#cf222e;font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600}
table{border-collapse:collapse;width:100%;margin:12px 0}
td,th{border-bottom:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}
.timeline{position:relative;border:1px solid #d0d7de;border-radius:6px;margin:12px 0;
padding:6px 6px 6px 60px}
.lane{position:relative;height:26px;border-bottom:1px dashed #eaeef2}
.lane-label{position:absolute;left:-54px;top:4px;font-weight:600}
.bar{position:absolute;top:3px;height:20px;border-radius:4px;color:#fff;font-size:12px;
overflow:hidden;white-space:nowrap;padding:0 4px;box-sizing:border-box;min-width:3px}
details{border:1px solid #d0d7de;border-radius:6px;margin:10px 0;padding:8px 12px}
summary{cursor:pointer;font-weight:600}pre{background:#f6f8fa;padding:8px;overflow:auto;
white-space:pre-wrap}.ok{color:#1a7f37}.fail{color:#cf222e}
"""


def _badge(status: str) -> str:
    colour = STATUS_COLOUR.get(status, "#57606a")
    return (
        f'<span class="badge status-{html.escape(status)}" style="background:{colour}">'
        f"{html.escape(status)}</span>"
    )


def _timeline(summary: RunSummary) -> str:
    timed = [t for t in summary.tasks if t.started_at and t.finished_at]
    if not timed:
        return '<div class="timeline" id="timeline"><p class="muted">no task ran</p></div>'
    start = min(t.started_at or 0 for t in timed)
    end = max(t.finished_at or 0 for t in timed)
    span = max(end - start, 1e-3)
    lanes: dict[str, list[TaskResult]] = {}
    for task in timed:
        lanes.setdefault(task.worker or "-", []).append(task)
    rows = []
    for worker in sorted(lanes):
        bars = []
        for task in lanes[worker]:
            left = ((task.started_at or start) - start) / span * 100
            width = max(((task.finished_at or end) - (task.started_at or start)) / span * 100, 0.3)
            colour = STATUS_COLOUR.get(task.status, "#57606a")
            bars.append(
                f'<div class="bar" data-task="{html.escape(task.task_id)}" '
                f'data-status="{html.escape(task.status)}" title="{html.escape(task.task_id)}: '
                f'{html.escape(task.status)}, {task.duration_ms} ms" style="left:{left:.2f}%;'
                f'width:{width:.2f}%;background:{colour}">{html.escape(task.task_id)}</div>'
            )
        rows.append(
            f'<div class="lane" data-worker="{html.escape(worker)}"><span '
            f'class="lane-label">{html.escape(worker)}</span>{"".join(bars)}</div>'
        )
    return (
        f'<div class="timeline" id="timeline">{"".join(rows)}</div>'
        f'<p class="muted">{span:.1f} s from first task start to last task end</p>'
    )


def transcript_href(run_dir: Path, task_id: str, page: Path | None = None) -> str:
    """The link from a report at ``page`` to a task's transcript in ``run_dir``.

    Relative, so it works wherever the page and the run folder travel together (the run
    folder's own report; a CI artifact holding the copy and the run folder): ``tasks/<id>/...``
    in the run folder, and computed from the copy's folder for a copy written elsewhere. Paths
    are made absolute lexically, as a browser resolves links. Where no relative path exists
    (another drive), an absolute ``file://`` URI."""
    target = Path(os.path.abspath(run_dir / "tasks" / task_id / "events.jsonl"))
    folder = Path(os.path.abspath(page.parent if page is not None else run_dir))
    try:
        relative = os.path.relpath(target, folder)
    except ValueError:
        return target.as_uri()
    return urllib.parse.quote(Path(relative).as_posix())


def _findings(task: TaskResult) -> str:
    """A review task's findings, as a table."""
    assert task.review is not None
    rows = "".join(
        f'<tr class="finding"><td>{"-" if f.priority is None else f"P{f.priority}"}</td>'
        f"<td>{html.escape(f.title)}</td><td><code>{html.escape(f.file or '')}"
        f"{f':{f.lines[0]}-{f.lines[1]}' if f.lines else ''}</code></td>"
        f"<td>{html.escape(f.body)}</td></tr>"
        for f in task.review.findings
    )
    verdict = html.escape(task.review.overall_correctness or "")
    return (
        f"<h4>Review findings</h4><p>{verdict}</p><table><tr><th>priority</th><th>title</th>"
        f"<th>where</th><th>what</th></tr>{rows}</table>"
    )


def _task_section(task: TaskResult, run_dir: Path | None, page: Path | None) -> str:
    parts = [
        f'<details class="task" id="task-{html.escape(task.task_id)}" open>'
        f"<summary>{html.escape(task.task_id)} {_badge(task.status)}</summary>"
    ]
    if task.error:
        parts.append(f'<p class="fail">{html.escape(task.error)}</p>')
    if task.checks:
        rows = "".join(
            f'<tr class="check {"ok" if c.ok else "fail"}"><td>{"✔" if c.ok else "✘"}</td>'
            f"<td>{html.escape(c.name)}</td><td>{html.escape(c.expected)}</td>"
            f"<td>{html.escape(c.observed)}</td></tr>"
            for c in task.checks
        )
        parts.append(
            "<h4>Checks</h4><table><tr><th></th><th>check</th><th>expected</th>"
            f"<th>observed</th></tr>{rows}</table>"
        )
    if task.review is not None:
        parts.append(_findings(task))
    if task.tool_calls:
        rows = "".join(
            f"<tr><td>{html.escape(str(c.server))}.{html.escape(str(c.tool))}</td>"
            f"<td><code>{html.escape(json.dumps(c.arguments))}</code></td>"
            f"<td>{html.escape(str(c.status))}</td></tr>"
            for c in task.tool_calls
        )
        parts.append(
            "<h4>MCP tool calls</h4><table><tr><th>tool</th><th>arguments</th>"
            f"<th>status</th></tr>{rows}</table>"
        )
    if task.commands:
        rows = "".join(
            f"<tr><td><code>{html.escape(c.command)}</code></td>"
            f"<td>{html.escape(str(c.exit_code))}</td></tr>"
            for c in task.commands
        )
        parts.append(
            f"<h4>Commands</h4><table><tr><th>command</th><th>exit</th></tr>{rows}</table>"
        )
    parts.append(diff_section(task))
    usage = ", ".join(f"{k} {v}" for k, v in task.usage.items()) or "none recorded"
    facts = [f"<b>Tokens:</b> {html.escape(usage)}"]
    if task.worker:  # a task that never ran (skipped, cancelled early) had none
        facts.append(f"<b>worker</b> {html.escape(task.worker)}")
    facts.append(f"<b>attempts</b> {task.attempts}")
    if task.thread_id:
        facts.append(f"<b>thread</b> <code>{html.escape(task.thread_id)}</code>")
    parts.append(f"<p>{' · '.join(facts)}</p>")
    parts.append(f"<h4>Final message</h4><pre>{html.escape(task.final_message or '(none)')}</pre>")
    if run_dir is not None and (run_dir / "tasks" / task.task_id / "events.jsonl").is_file():
        href = transcript_href(run_dir, task.task_id, page)
        parts.append(
            f'<p><a class="transcript" href="{html.escape(href)}">transcript</a> '
            f'<span class="muted">(<code>tasks/{html.escape(task.task_id)}/events.jsonl'
            "</code> in the run folder)</span></p>"
        )
    parts.append("</details>")
    return "".join(parts)


def html_report(
    summary: RunSummary,
    notes: str | None = None,
    link_base: Path | None = None,
    page: Path | None = None,
) -> str:
    """A self-contained page (inline CSS, no scripts): summary, timeline, tasks, checks.

    With ``link_base`` (the run folder) each task whose transcript exists there links to it,
    relative to ``page``, the path the page is written to (default: in the run folder)."""
    counts = ", ".join(f"{v} {k}" for k, v in sorted(summary.counts.items()))
    rows = "".join(
        f'<tr class="task-row" data-task="{html.escape(t.task_id)}" '
        f'data-status="{html.escape(t.status)}"><td><a href="#task-{html.escape(t.task_id)}">'
        f"{html.escape(t.task_id)}</a></td><td>{_badge(t.status)}</td>"
        f"<td>{html.escape(str(t.worker or '-'))}</td><td>{t.duration_ms / 1000:.1f} s</td>"
        f"<td>{tokens_of(t.usage)}</td><td>{_checks_cell(t)}</td></tr>"
        for t in summary.tasks
    )
    started = datetime.fromtimestamp(summary.started_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    run_folder = (
        f' · run folder <code id="run-dir">{html.escape(str(link_base))}</code>'
        if link_base is not None
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(summary.mission_id)} ·
{html.escape(summary.status)}</title><style>{_CSS}{PATCH_CSS}</style></head><body>
<h1>{html.escape(summary.mission_id)} {_badge(summary.status)}</h1>
<p class="muted">run <code id="run-id">{html.escape(summary.run_id)}</code> · {started} ·
{summary.duration_ms / 1000:.1f} s · {html.escape(counts)} ·
<span id="tokens">{tokens_of(summary.usage)} tokens</span> · exit code {summary.exit_code}</p>
{f"<p>{html.escape(str(notes))}</p>" if notes else ""}
<p class="muted">workspace {html.escape(str(summary.workspace_root))}{run_folder}</p>
<h2>Timeline</h2>{_timeline(summary)}
<h2>Tasks</h2><table id="tasks"><tr><th>task</th><th>status</th><th>worker</th><th>time</th>
<th>tokens</th><th>checks</th></tr>{rows}</table>
{"".join(_task_section(t, link_base, page) for t in summary.tasks)}
</body></html>
"""


def write_reports(
    summary: RunSummary,
    run_dir: Path,
    notes: str | None = None,
    junit: Sequence[Path] = (),
    html_paths: Sequence[Path] = (),
    *,
    in_run_dir: bool = True,
) -> list[Path]:
    """``junit.xml`` and ``report.html`` in the run folder (unless ``in_run_dir`` is false),
    and copies where asked; returns the paths written. A copy of the HTML report written
    elsewhere links to the transcripts in the run folder by paths relative to where the copy
    is (see ``transcript_href``)."""
    xml_text = junit_xml(summary)
    targets: list[tuple[Path, str]] = []
    if in_run_dir:
        targets += [
            (run_dir / "junit.xml", xml_text),
            (run_dir / "report.html", html_report(summary, notes, run_dir)),
        ]
    targets += [(path, xml_text) for path in junit]
    targets += [(path, html_report(summary, notes, run_dir, path)) for path in html_paths]
    for path, text in targets:
        _replace(path, text)
    return [path for path, _ in targets]


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: no half-written ``.tmp`` stays behind a full disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


class ReportWriter:
    """Subscriber: renders the reports (secrets redacted) when the run finishes. It keeps what
    it needs from the events themselves, so it never depends on another subscriber."""

    def __init__(
        self, redactor: Redactor, junit: Sequence[Path] = (), html_paths: Sequence[Path] = ()
    ) -> None:
        self.redactor = redactor
        self.junit = list(junit)
        self.html_paths = list(html_paths)
        self.notes: str | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            notes = event.mission.get("notes")
            self.notes = self.redactor.text(notes) if isinstance(notes, str) else None
        elif isinstance(event, RunFinished) and event.summary.run_dir:
            summary = RunSummary.model_validate(self.redactor.data(event.summary.model_dump()))
            try:
                write_reports(
                    summary, Path(event.summary.run_dir), self.notes, self.junit, self.html_paths
                )
            except OSError as exc:
                raise EnvironmentProblem(
                    f"cannot write the reports of run {summary.run_id} ({exc}); free disk space "
                    f"or fix permissions, then `codex-mcp-wrapper report {summary.run_id}`."
                ) from exc
