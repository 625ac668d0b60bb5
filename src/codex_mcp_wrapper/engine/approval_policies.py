"""Approval policies: the handlers at the end of a run's approval chain, which a caller picks
(``fixed``: the settings' policy; ``asking``: an MCP client or a person, with a deadline), and
``redacting``, which shows whoever decides the request with the run's secrets masked.

A headless run must never hang on an approval: every handler answers, and the interactive one
has a deadline after which it falls back. Each decision is logged with the task it was for.
How the chain in front of them is built is ``engine/approval_chain.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from codex_mcp_wrapper.engine.seams import ApprovalDecision, ApprovalHandler, ApprovalRequest
from codex_mcp_wrapper.logs import bind
from codex_mcp_wrapper.settings import Timeouts
from codex_mcp_wrapper.strings import map_strings

log = logging.getLogger("codex_mcp_wrapper.approvals")
# How long someone asked about an approval has to answer before the fallback decides: long
# enough for a person at an MCP client, short enough that a headless run never hangs.
APPROVAL_TIMEOUT = Timeouts.approval


def fixed(decision: ApprovalDecision) -> ApprovalHandler:
    """Always answer ``decision`` (the CLI's policy: decline, or accept with --auto-approve)."""

    async def handler(request: ApprovalRequest) -> ApprovalDecision:
        bind(log, run=request.run_id, task=request.task_id).info(
            "%s -> %s (policy)", request.describe(), decision
        )
        return decision

    return handler


# Asks about a request (the message is its one-line question); True/False, None for no answer.
Asker = Callable[[ApprovalRequest, str], Awaitable[bool | None]]


def asking(
    ask: Asker, fallback: ApprovalDecision, timeout: float = APPROVAL_TIMEOUT
) -> ApprovalHandler:
    """Ask someone (``ask`` returns True/False, None for no answer); ``fallback`` on silence."""

    async def handler(request: ApprovalRequest) -> ApprovalDecision:
        what, task_id = request.describe(), request.task_id
        task_log = bind(log, run=request.run_id, task=task_id)
        try:
            async with asyncio.timeout(timeout):
                answer = await ask(request, f"Codex task {task_id} asks to {what}. Allow?")
        except TimeoutError:
            task_log.warning("no answer to '%s' within %g s -> %s", what, timeout, fallback)
            return fallback
        except Exception as exc:  # noqa: BLE001 - the asker failed; Codex still needs an answer
            task_log.warning("could not ask about '%s' (%s) -> %s", what, exc, fallback)
            return fallback
        decision: ApprovalDecision = (
            fallback if answer is None else ("accept" if answer else "decline")
        )
        task_log.info("%s -> %s (asked)", what, decision)
        return decision

    return handler


def redacting(handler: ApprovalHandler, redact: Callable[[str], str]) -> ApprovalHandler:
    """``handler`` seeing the request with the run's secrets redacted (the command, its reason,
    the params), so whoever is asked (an MCP client, a log) never reads them; Codex still gets
    its answer for the request as it was."""

    async def decide(request: ApprovalRequest) -> ApprovalDecision:
        shown = dataclasses.replace(
            request,
            command=redact(request.command) if request.command is not None else None,
            reason=redact(request.reason) if request.reason is not None else None,
            params=map_strings(request.params, redact),
        )
        return await handler(shown)

    return decide
