"""The approval chain: how a run answers Codex's approval requests (commands, file changes,
permissions, elicitations), in the order it asks.

``rule_approvals`` puts the mission's rules first (``missions.rules.match_rule``), then its
``approval`` hooks, then the rules' ``default``, then the run's own handler (a policy from
``engine/approval_policies.py``). ``contained`` wraps the whole chain for a client whose runs
may not leave the sandbox. Each decision is recorded as a ``wrapper/approval-rule`` event of
the task, naming what decided. Only the run's assembly (``engine/assembly.py``) builds a
chain (an import-linter contract keeps it so); the wire shapes of the requests are
``codex/approval_wire.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from codex_mcp_wrapper.engine.events import CodexEvent, Event
from codex_mcp_wrapper.engine.seams import ApprovalDecision, ApprovalHandler, ApprovalRequest
from codex_mcp_wrapper.logs import bind
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.missions.rules import Kind as RuleKind
from codex_mcp_wrapper.missions.rules import match_rule, rule_default

if TYPE_CHECKING:
    from codex_mcp_wrapper.engine.hooks import HookRunner

log = logging.getLogger("codex_mcp_wrapper.approvals")


# Requests whose acceptance lets a task act beyond the sandbox it was given: a command asking
# to run outside it (or with network), a file change outside the writable roots, extra
# permissions. (Codex 0.163 marks no escalation as such in the request, so all of them.)
ESCALATING = frozenset({"command", "file_change", "permissions"})


def contained(handler: ApprovalHandler) -> ApprovalHandler:
    """``handler`` for an MCP client's run where the server's policy allows no escape from
    the sandbox: escalating requests are declined without asking; others go to ``handler``."""

    async def decide(request: ApprovalRequest) -> ApprovalDecision:
        if request.kind in ESCALATING:
            bind(log, run=request.run_id, task=request.task_id).info(
                "%s -> decline (the server's policy: no escape from the sandbox for clients; "
                "--allow-danger-full-access allows it)",
                request.describe(),
            )
            return "decline"
        return await handler(request)

    return decide


def approval_subjects(request: ApprovalRequest) -> tuple[RuleKind, list[str]] | None:
    """Which rules apply to ``request`` and what they match: the command, the changed
    paths, or ``SERVER.TOOL``."""
    if request.kind == "command" and request.command is not None:
        return "commands", [request.command]
    if request.kind == "file_change" and request.paths:
        return "files", list(request.paths)
    if request.tool is not None:
        return "tools", [request.tool]
    return None


def _levels(mission: Mission, task_id: str) -> list[tuple[str, Any]]:
    task = next((t for t in mission.tasks if t.id == task_id), None)
    return [
        ("task", task.approvals if task is not None else None),
        ("defaults", mission.defaults.approvals),
        ("mission", mission.approvals),
    ]


def rule_approvals(
    mission: Mission,
    fallback: ApprovalHandler,
    publish: Callable[[Event], None],
    hooks: HookRunner | None = None,
) -> ApprovalHandler:
    """The run's approval handler with the mission's rules and approval hooks in front."""
    if not (
        mission.approvals
        or mission.defaults.approvals
        or any(t.approvals for t in mission.tasks)
        or (hooks is not None and hooks.has("approval"))
    ):
        return fallback

    async def handler(request: ApprovalRequest) -> ApprovalDecision:
        subjects = approval_subjects(request)
        levels = _levels(mission, request.task_id)
        rule = match_rule(levels, subjects[0], subjects[1]) if subjects else None
        decided: tuple[ApprovalDecision, str] | None = None
        if rule is not None and rule.decision != "ask":
            decided = (rule.decision, rule.rule)
        elif hooks is not None:
            decided = await hooks.approval(request)
        default = rule_default(levels)
        if decided is None and default is not None and default.decision != "ask":
            decided = (default.decision, default.rule)
        if decided is None:
            decided = (await fallback(request), "policy")
        decision, by = decided
        publish(
            CodexEvent(
                request.run_id,
                request.task_id,
                "wrapper/approval-rule",
                {
                    "kind": request.kind,
                    "subject": request.describe(),
                    "command": request.command,
                    "paths": list(request.paths),
                    "tool": request.tool,
                    "decision": decision,
                    "by": by,
                },
            )
        )
        return decision

    return handler
