"""Codex's server-to-client approval requests, read into ``ApprovalRequest`` and answered in
the shape each one expects. Whoever decides (a policy, an MCP client, a person) never sees a
Codex wire format."""

from __future__ import annotations

from typing import Any

from codex_mcp_wrapper.codex.evidence import unwrap_shell
from codex_mcp_wrapper.engine.seams import ApprovalDecision, ApprovalKind, ApprovalRequest

COMMAND_APPROVALS = ("item/commandExecution/requestApproval", "execCommandApproval")
FILE_APPROVALS = ("item/fileChange/requestApproval", "applyPatchApproval")
APPROVAL_METHODS = (
    *COMMAND_APPROVALS,
    *FILE_APPROVALS,
    "item/permissions/requestApproval",
    "mcpServer/elicitation/request",
)


def _command(params: dict[str, Any]) -> str | None:
    command = params.get("command")
    if command is None:
        return None
    text = " ".join(str(c) for c in command) if isinstance(command, list) else str(command)
    return unwrap_shell(text)


def read_request(method: str, run_id: str, task_id: str, params: dict[str, Any]) -> ApprovalRequest:
    kind: ApprovalKind = "other"
    if method in COMMAND_APPROVALS:
        kind = "command"
    elif method in FILE_APPROVALS:
        kind = "file_change"
    elif method == "item/permissions/requestApproval":
        kind = "permissions"
    elif method == "mcpServer/elicitation/request":
        meta = params.get("_meta")
        tool_call = isinstance(meta, dict) and meta.get("codex_approval_kind") == "mcp_tool_call"
        kind = "mcp_tool" if tool_call else "mcp_elicitation"
    reason = params.get("reason")
    return ApprovalRequest(
        kind=kind,
        run_id=run_id,
        task_id=task_id,
        method=method,
        params=params,
        command=_command(params),
        reason=str(reason) if reason else None,
    )


def answer(request: ApprovalRequest, decision: ApprovalDecision) -> dict[str, Any]:
    """The reply Codex expects for ``request.method``."""
    accepted = decision == "accept"
    method = request.method
    if method in ("item/commandExecution/requestApproval", "item/fileChange/requestApproval"):
        return {"decision": decision}
    if method in ("execCommandApproval", "applyPatchApproval"):
        return {"decision": "approved" if accepted else "denied"}
    if method == "item/permissions/requestApproval":
        granted = request.params.get("permissions", {}) if accepted else {}
        return {"permissions": granted, "scope": "turn"}
    if method == "mcpServer/elicitation/request":
        return {"action": "accept" if accepted else "decline", "content": None}
    return {}
