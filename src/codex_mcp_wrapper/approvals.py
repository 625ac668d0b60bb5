"""Answers to Codex's approval requests (commands, file changes, permissions, elicitations).

A headless run must never hang on an approval: every handler answers, and the interactive one
(asking an MCP client) has a deadline after which it declines. Each decision is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from codex_mcp_wrapper.execution import ApprovalDecision, ApprovalHandler

log = logging.getLogger("codex_mcp_wrapper.approvals")
APPROVAL_TIMEOUT = 120.0


def describe(kind: str, params: dict[str, Any]) -> str:
    """A one-line description of what Codex asks to do."""
    if "command" in params:
        command = params["command"]
        text = " ".join(command) if isinstance(command, list) else str(command)
        return f"run `{text}`" + (f" ({params['reason']})" if params.get("reason") else "")
    if kind.startswith("item/fileChange") or kind == "applyPatchApproval":
        return "apply file changes" + (f" ({params['reason']})" if params.get("reason") else "")
    if kind == "mcpServer/elicitation/request":
        return f"answer MCP server {params.get('serverName', '?')}: {params.get('message', '')}"
    return kind


def fixed(decision: ApprovalDecision) -> ApprovalHandler:
    """Always answer ``decision`` (the CLI's policy: decline, or accept with --auto-approve)."""

    async def handler(kind: str, task_id: str, params: dict[str, Any]) -> ApprovalDecision:
        log.info("task %s: %s -> %s (policy)", task_id, describe(kind, params), decision)
        return decision

    return handler


Asker = Callable[[str], Awaitable[bool | None]]


def asking(
    ask: Asker, fallback: ApprovalDecision, timeout: float = APPROVAL_TIMEOUT
) -> ApprovalHandler:
    """Ask someone (``ask`` returns True/False, None for no answer); ``fallback`` on silence."""

    async def handler(kind: str, task_id: str, params: dict[str, Any]) -> ApprovalDecision:
        what = describe(kind, params)
        try:
            async with asyncio.timeout(timeout):
                answer = await ask(f"Codex task {task_id} asks to {what}. Allow?")
        except TimeoutError:
            log.warning(
                "task %s: no answer to '%s' within %g s -> %s", task_id, what, timeout, fallback
            )
            return fallback
        except Exception as exc:  # noqa: BLE001 - the asker failed; Codex still needs an answer
            log.warning(
                "task %s: could not ask about '%s' (%s) -> %s", task_id, what, exc, fallback
            )
            return fallback
        decision: ApprovalDecision = (
            fallback if answer is None else ("accept" if answer else "decline")
        )
        log.info("task %s: %s -> %s (asked)", task_id, what, decision)
        return decision

    return handler
