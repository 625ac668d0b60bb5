"""Reports of a run for CI systems and people: JUnit XML and a self-contained HTML page, the
web UI's run page frozen (rendered from the same templates, ``engine.pages``).

Both are functions of the run summary (plus the mission's notes; the page also links the
transcripts found in the run folder), written by ``ReportWriter``, a subscriber that renders
them into the run folder, and to extra paths on request, when the run finishes.
``codex-mcp-wrapper report RUN_ID`` renders them again from the store.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from codex_mcp_wrapper.engine.events import Event, RunFinished, RunStarted
from codex_mcp_wrapper.engine.pages.run_page import render, run_page
from codex_mcp_wrapper.engine.redaction import Redactor
from codex_mcp_wrapper.engine.results import RunSummary, TaskResult
from codex_mcp_wrapper.engine.run_state import RunState
from codex_mcp_wrapper.engine.spending import tokens_of
from codex_mcp_wrapper.errors import EnvironmentProblem

EXCERPT = 4000


def diff_excerpt(task: TaskResult) -> list[str]:
    """The lines of the JUnit excerpt about a worktree task's change."""
    if task.diff is None:
        return []
    lines = [f"diff: {task.diff.describe()}"]
    lines += [f"  {name}" for name in task.diff.files[:20]]
    if task.diff.patch:
        lines.append(f"patch: {task.diff.patch}")
    return lines


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


def _patch_file(result: TaskResult) -> str:
    """A worktree task's patch as its file holds it (``""``: none, or unreadable)."""
    patch = result.diff.patch if result.diff is not None else None
    if not patch:
        return ""
    try:
        return Path(patch).read_text(errors="replace")
    except OSError:
        return ""


def html_report(
    summary: RunSummary,
    notes: str | None = None,
    link_base: Path | None = None,
    page: Path | None = None,
) -> str:
    """The run page of the web UI, frozen: self-contained (inline CSS, no script, no form),
    rendered from the same templates (``engine.pages``).

    With ``link_base`` (the run folder) each task whose transcript exists there links to it,
    relative to ``page``, the path the page is written to (default: in the run folder)."""

    def transcript(task_id: str) -> str | None:
        if link_base is None or not (link_base / "tasks" / task_id / "events.jsonl").is_file():
            return None
        return transcript_href(link_base, task_id, page)

    frozen = run_page(
        RunState.of_summary(summary),
        live=False,
        transcript=transcript,
        patch=_patch_file,
        notes=notes,
        run_dir=str(link_base) if link_base is not None else "",
    )
    return render(frozen)


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
