"""``codex/event`` notifications as the removed ``codex mcp-server`` (0.153.4) sent them.

Its clients read the session's thread id from ``session_configured`` and follow a call by
``msg.type``; ``LegacyEvents`` turns a task's transcript events (Codex's app-server
notifications, already redacted, plus the wrapper's ``wrapper/thread``) into those messages.
The shapes follow tests/data/old-mcp-server.jsonl, captured from 0.153.4 with
scripts/capture_old_mcp_server.py; fields the app-server does not report are left out rather
than invented.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

# The msg types this module sends, in the order a call sees them.
MSG_TYPES = (
    "session_configured",
    "task_started",
    "user_message",
    "exec_approval_request",
    "exec_command_begin",
    "exec_command_end",
    "mcp_tool_call_begin",
    "mcp_tool_call_end",
    "agent_message_content_delta",
    "agent_message",
    "token_count",
    "stream_error",
    "error",
    "task_complete",
)


def _snake_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if not usage:
        return None
    names = {
        "inputTokens": "input_tokens",
        "cachedInputTokens": "cached_input_tokens",
        "cacheWriteInputTokens": "cache_write_input_tokens",
        "outputTokens": "output_tokens",
        "reasoningOutputTokens": "reasoning_output_tokens",
        "totalTokens": "total_tokens",
    }
    return {snake: usage[camel] for camel, snake in names.items() if camel in usage}


def _argv(command: Any) -> list[str]:
    if isinstance(command, list):
        return [str(part) for part in command]
    try:
        return shlex.split(str(command or ""))
    except ValueError:
        return [str(command)]


@dataclass
class LegacyEvents:
    """The old server's events for one tool call: ``translate`` each transcript event;
    ``params`` wraps a message for the wire."""

    request_id: Any
    thread_id: str | None = None
    turn_id: str = ""
    last_message: str | None = None
    # Commands announced before they run (they wait for an approval): the old server said
    # exec_command_begin only once one ran, after its exec_approval_request.
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)

    def params(self, event_id: str, msg: dict[str, Any]) -> dict[str, Any]:
        meta = {"requestId": self.request_id, "threadId": self.thread_id}
        return {"_meta": meta, "id": event_id, "msg": msg}

    def approval(self, command: str | None, cwd: str | None, reason: str | None) -> dict[str, Any]:
        """``exec_approval_request``, sent before the client is asked."""
        return {
            "type": "exec_approval_request",
            "turn_id": self.turn_id,
            "command": _argv(command),
            "cwd": cwd,
            "reason": reason,
        }

    def translate(self, method: str, p: dict[str, Any]) -> list[dict[str, Any]]:
        """The old messages for one app-server notification (often none)."""
        if method == "wrapper/thread":
            self.thread_id = str(p.get("threadId") or "") or self.thread_id
            if p.get("resumed"):  # codex-reply: the old server configured no new session
                return []
            configured = {
                "type": "session_configured",
                "session_id": self.thread_id,
                "thread_id": self.thread_id,
                "model": p.get("model"),
                "model_provider_id": p.get("modelProvider"),
                "approval_policy": p.get("approvalPolicy"),
                "approvals_reviewer": p.get("approvalsReviewer"),
                "reasoning_effort": p.get("reasoningEffort"),
                "cwd": p.get("cwd"),
                "rollout_path": p.get("path"),
            }
            return [{k: v for k, v in configured.items() if v is not None or k == "model"}]
        if method == "turn/started":
            turn = p.get("turn") or {}
            self.turn_id = str(turn.get("id") or "")
            return [
                {
                    "type": "task_started",
                    "turn_id": self.turn_id,
                    "started_at": turn.get("startedAt"),
                }
            ]
        if method == "item/agentMessage/delta":
            return [
                {
                    "type": "agent_message_content_delta",
                    "thread_id": self.thread_id,
                    "turn_id": self.turn_id,
                    "item_id": p.get("itemId"),
                    "delta": p.get("delta", ""),
                }
            ]
        if method in ("item/started", "item/completed"):
            return self._item(method == "item/started", p.get("item") or {})
        if method == "thread/tokenUsage/updated":
            usage = p.get("tokenUsage") or {}
            info = {
                "total_token_usage": _snake_usage(usage.get("total")),
                "last_token_usage": _snake_usage(usage.get("last")),
                "model_context_window": usage.get("modelContextWindow"),
            }
            return [{"type": "token_count", "info": info}]
        if method == "error":
            error = p.get("error") or {}
            kind = "stream_error" if p.get("willRetry") else "error"
            return [{"type": kind, "message": error.get("message", "")}]
        if method == "turn/completed":
            return self._turn_completed(p.get("turn") or {})
        if method == "wrapper/approval":  # decided: an approved command starts now
            item = self.pending.pop(str((p.get("params") or {}).get("itemId")), None)
            if item is not None and p.get("decision") == "accept":
                return [self._command(True, item)]
        return []

    def _item(self, started: bool, item: dict[str, Any]) -> list[dict[str, Any]]:
        kind = item.get("type")
        if kind == "userMessage" and started:
            texts = [
                c.get("text", "") for c in item.get("content") or [] if c.get("type") == "text"
            ]
            return [{"type": "user_message", "message": "\n".join(texts), "images": []}]
        if kind == "agentMessage" and not started:
            self.last_message = str(item.get("text") or "")
            return [{"type": "agent_message", "message": self.last_message}]
        if kind == "commandExecution":
            call_id = str(item.get("id"))
            if started and item.get("processId") is None:  # waits for an approval
                self.pending[call_id] = item
                return []
            if not started and call_id in self.pending:
                return [self._command(True, self.pending.pop(call_id)), self._command(False, item)]
            return [self._command(started, item)]
        if kind == "mcpToolCall":
            invocation = {
                "server": item.get("server"),
                "tool": item.get("tool"),
                "arguments": item.get("arguments"),
            }
            if started:
                return [
                    {
                        "type": "mcp_tool_call_begin",
                        "call_id": item.get("id"),
                        "invocation": invocation,
                    }
                ]
            result = (
                {"Err": (item.get("error") or {}).get("message")}
                if item.get("error")
                else {"Ok": item.get("result")}
            )
            return [
                {
                    "type": "mcp_tool_call_end",
                    "call_id": item.get("id"),
                    "invocation": invocation,
                    "result": result,
                }
            ]
        return []

    def _command(self, started: bool, item: dict[str, Any]) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "exec_command_begin" if started else "exec_command_end",
            "call_id": item.get("id"),
            "process_id": item.get("processId"),
            "turn_id": self.turn_id,
            "command": _argv(item.get("command")),
            "cwd": item.get("cwd"),
            "parsed_cmd": [
                {"type": a.get("type"), "cmd": a.get("command")}
                for a in item.get("commandActions") or []
            ],
        }
        if not started:
            output = item.get("aggregatedOutput") or ""
            millis = int(item.get("durationMs") or 0)
            msg.update(
                stdout=output,
                stderr="",
                aggregated_output=output,
                formatted_output=output,
                exit_code=item.get("exitCode"),
                duration={"secs": millis // 1000, "nanos": (millis % 1000) * 1_000_000},
                status=item.get("status"),
            )
        return msg

    def _turn_completed(self, turn: dict[str, Any]) -> list[dict[str, Any]]:
        status = turn.get("status")
        if status == "completed":
            return [
                {
                    "type": "task_complete",
                    "turn_id": self.turn_id,
                    "last_agent_message": self.last_message,
                    "started_at": turn.get("startedAt"),
                    "completed_at": turn.get("completedAt"),
                    "duration_ms": turn.get("durationMs"),
                }
            ]
        error = turn.get("error") or {}
        return [{"type": "error", "message": error.get("message") or f"the turn ended {status}"}]
