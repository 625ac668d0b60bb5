"""A task's transcript for people: the lines of its ``events.jsonl`` that say what happened
(messages, commands with their output, tool calls, approvals, steers), in order."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_OUTPUT = 4000  # characters of a command's output shown; the file has the rest


@dataclass(frozen=True)
class Entry:
    """One line of a transcript: what kind of thing happened, and its text."""

    kind: str  # message, command, tool call, approval
    title: str
    body: str = ""


def _item_entry(item: dict[str, Any]) -> Entry | None:
    kind = item.get("type")
    if kind == "agentMessage":
        return Entry("message", "Codex", str(item.get("text", "")))
    if kind == "userMessage":
        parts = item.get("content") or []
        text = " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
        return Entry("message", "prompt", text)
    if kind == "commandExecution":
        output = str(item.get("aggregatedOutput") or "")[:MAX_OUTPUT]
        code = item.get("exitCode")
        return Entry("command", f"$ {item.get('command', '')} (exit {code})", output)
    if kind == "mcpToolCall":
        title = f"{item.get('server', '')}.{item.get('tool', '')}"
        return Entry("tool call", title, json.dumps(item.get("arguments"), indent=1)[:MAX_OUTPUT])
    if kind == "fileChange":
        paths = [str(c.get("path", "")) for c in item.get("changes") or [] if isinstance(c, dict)]
        return Entry("file change", ", ".join(paths))
    return None


def _entry(record: dict[str, Any]) -> Entry | None:
    method = str(record.get("method", ""))
    params = record.get("params") or {}
    if method == "item/completed" and isinstance(params.get("item"), dict):
        return _item_entry(params["item"])
    if method == "wrapper/steer":
        return Entry("steer", "steered", str(params.get("text", "")))
    if method == "wrapper/approval":  # the wrapper's decision on a request of Codex
        asked = params.get("params")
        asked = asked if isinstance(asked, dict) else {}
        what = asked.get("command") or asked.get("reason") or ""
        return Entry(
            "approval", f"{params.get('request', '')}: {params.get('decision', '')}", str(what)
        )
    return None


def transcript(path: Path) -> list[Entry]:
    """The entries of the ``events.jsonl`` at ``path``; lines that are not JSON are skipped."""
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        entry = _entry(record) if isinstance(record, dict) else None
        if entry is not None:
            entries.append(entry)
    return entries
