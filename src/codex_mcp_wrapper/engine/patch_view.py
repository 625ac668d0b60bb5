"""A worktree task's change as the reports show it: the HTML section with its patch, readable
(coloured lines, file headers), and the lines of the JUnit excerpt."""

from __future__ import annotations

import html
from pathlib import Path

from codex_mcp_wrapper.engine.results import TaskResult

PATCH_SHOWN = 200_000  # characters of a patch the HTML report shows; the file has it all
_LINE_CLASS = {"+": "add", "-": "del", "@": "hunk"}


def _patch_text(patch: str | None) -> tuple[str, bool]:
    """The patch (at most ``PATCH_SHOWN`` characters) and whether it was cut."""
    if not patch:
        return "", False
    try:
        text = Path(patch).read_text(errors="replace")
    except OSError:
        return "", False
    return text[:PATCH_SHOWN], len(text) > PATCH_SHOWN


def _line(line: str) -> str:
    if line.startswith(("diff --git", "index ", "+++ ", "--- ", "new file", "deleted file")):
        css = "file"
    else:
        css = _LINE_CLASS.get(line[:1], "")
    text = html.escape(line)
    return f'<span class="{css}">{text}</span>' if css else text


def diff_section(task: TaskResult) -> str:
    """The task's change: its size, its files, and the patch itself (``""`` without a diff)."""
    diff = task.diff
    if diff is None:
        return ""
    files = "".join(f"<li><code>{html.escape(f)}</code></li>" for f in diff.files)
    parts = [
        f'<h4>Change</h4><p class="diff-size">{html.escape(diff.describe())} on branch '
        f"<code>{html.escape(diff.branch)}</code></p>"
    ]
    if files:
        parts.append(f"<ul>{files}</ul>")
    text, cut = _patch_text(diff.patch)
    if text:
        body = "\n".join(_line(line) for line in text.splitlines())
        more = "\n… (cut: the whole patch is in the file)" if cut else ""
        parts.append(
            f'<pre class="patch">{body}{html.escape(more)}</pre><p class="muted">patch: '
            f"<code>{html.escape(diff.patch or '')}</code> (<code>codex-mcp-wrapper runs apply"
            f" RUN_ID {html.escape(task.task_id)}</code> brings it into the workspace)</p>"
        )
    return "".join(parts)


def diff_excerpt(task: TaskResult) -> list[str]:
    """The lines of the JUnit excerpt about the task's change."""
    if task.diff is None:
        return []
    lines = [f"diff: {task.diff.describe()}"]
    lines += [f"  {name}" for name in task.diff.files[:20]]
    if task.diff.patch:
        lines.append(f"patch: {task.diff.patch}")
    return lines


PATCH_CSS = (
    ".patch .add{color:#1a7f37}.patch .del{color:#cf222e}.patch .hunk{color:#8250df}"
    ".patch .file{font-weight:600}"
)
