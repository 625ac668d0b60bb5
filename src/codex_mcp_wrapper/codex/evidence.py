"""Reading what Codex did from its ``item/completed`` notifications into evidence records."""

from __future__ import annotations

import re
import shlex
from typing import Any

from codex_mcp_wrapper.missions.checks import CommandRecord, Evidence, ToolCallRecord
from codex_mcp_wrapper.missions.review import parse_review

_SHELL = re.compile(r"^(?:/usr)?/bin/(?:ba|z)?sh -l?c (?P<rest>.*)$", re.DOTALL)


def unwrap_shell(command: str) -> str:
    """``/bin/bash -lc 'make test'`` -> ``make test``, ``/bin/bash -lc make`` -> ``make``:
    patterns match what the model asked to run, not the shell Codex wraps it in."""
    match = _SHELL.match(command)
    if not match:
        return command
    rest = match.group("rest")
    try:
        words = shlex.split(rest)
    except ValueError:
        return rest
    return words[0] if len(words) == 1 else rest


def gather(evidence: Evidence, method: str, params: dict[str, Any]) -> None:
    """Add what a Codex notification shows (an MCP tool call, a command) to ``evidence``; the
    wrapper's ``wrapper/interrupted`` event adds what a crash cut short, ``interrupted``."""
    if method == "wrapper/interrupted":
        for cut in params.get("items") or []:
            _add(evidence, {**cut, "status": "interrupted", "exitCode": None})
        return
    item = params.get("item") or {}
    if method == "item/started" and item.get("type") == "agentMessage":
        text = str(item.get("text", ""))
        if text.lstrip().startswith("{"):  # in review mode: the model's review, as JSON
            evidence.review_answer = text
    if method != "item/completed":
        return
    _add(evidence, item)


def _add(evidence: Evidence, item: dict[str, Any]) -> None:
    if item.get("type") == "exitedReviewMode":  # a review task's review (review/start)
        evidence.review = parse_review(str(item.get("review", "")), evidence.review_answer)
    elif item.get("type") == "mcpToolCall":
        evidence.tool_calls.append(
            ToolCallRecord(
                server=item.get("server"),
                tool=item.get("tool"),
                arguments=item.get("arguments"),
                status=item.get("status"),
            )
        )
    elif item.get("type") == "commandExecution":
        exit_code = item.get("exitCode")
        evidence.commands.append(
            CommandRecord(
                command=unwrap_shell(str(item.get("command", ""))),
                exit_code=exit_code if isinstance(exit_code, int) else None,
                status=item.get("status"),
            )
        )
