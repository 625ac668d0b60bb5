"""Codex's requests to the wrapper (approvals, calls of the orchestrator's tools), answered
for the task whose thread asked: a headless turn never waits on one.

Codex names only the item in some requests (a file change's approval; an MCP tool call's
approval names the server, not the tool), so ``PendingItems`` watches each item as it starts
and the answer is decided on what it was.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.codex.approval_wire import APPROVAL_METHODS, answer, read_request
from codex_mcp_wrapper.codex.jsonrpc import Notification, ServerRequest
from codex_mcp_wrapper.engine.seams import (
    ApprovalHandler,
    ApprovalRequest,
    EventSink,
    ToolCall,
    ToolHandler,
)

ITEMS_KEPT = 256  # pending items remembered per process
_TOOL_IN_MESSAGE = re.compile(r'run tool "([^"]+)"')


@dataclass(frozen=True)
class RunningTask:
    """The task a thread of a process runs: where its approvals, tool calls and events go."""

    run_id: str
    task_id: str
    sink: EventSink
    approvals: ApprovalHandler
    cwd: str = "."
    tools: ToolHandler | None = None


class PendingItems:
    """The files of each pending file change and the tool of each thread's pending MCP call,
    from their ``item/started`` notifications (seen before the request that names them)."""

    def __init__(self) -> None:
        self._files: dict[str, list[str]] = {}
        self._tools: dict[str, str] = {}  # thread id -> SERVER.TOOL

    def watch(self, note: Notification) -> None:
        item = note.params.get("item") if note.method == "item/started" else None
        if not isinstance(item, dict):
            return
        if item.get("type") == "fileChange" and item.get("id"):
            changes = item.get("changes") or []
            paths = [str(c["path"]) for c in changes if isinstance(c, dict) and c.get("path")]
            self._files[str(item["id"])] = paths
            while len(self._files) > ITEMS_KEPT:
                self._files.pop(next(iter(self._files)))
        elif item.get("type") == "mcpToolCall":
            thread = str(note.params.get("threadId"))
            self._tools[thread] = f"{item.get('server')}.{item.get('tool')}"
            while len(self._tools) > ITEMS_KEPT:
                self._tools.pop(next(iter(self._tools)))

    def files(self, item_id: Any, cwd: str) -> tuple[str, ...]:
        """The change's files, relative to ``cwd`` when inside it (as rules are written)."""
        root = Path(cwd)
        out = []
        for raw in self._files.pop(str(item_id), []):
            path = Path(raw)
            inside = path.is_absolute() and path.is_relative_to(root)
            out.append(str(path.relative_to(root)) if inside else raw)
        return tuple(out)

    def tool(self, thread_id: str, server: Any, message: Any) -> str | None:
        """The MCP call an approval is about: named in its message (``... run tool "add"?``),
        else the thread's pending call of that server; None when unknown (no tool rule then
        applies)."""
        pending = self._tools.pop(thread_id, None)
        named = _TOOL_IN_MESSAGE.search(str(message or ""))
        if named is not None:
            return f"{server}.{named.group(1)}"
        return pending if pending is not None and pending.startswith(f"{server}.") else None


def _approval(
    request: ServerRequest, running: RunningTask | None, items: PendingItems
) -> ApprovalRequest:
    run_id, task_id = (running.run_id, running.task_id) if running else ("", "")
    approval = read_request(request.method, run_id, task_id, request.params)
    if approval.kind == "file_change" and running is not None:
        paths = items.files(request.params.get("itemId"), running.cwd)
        approval = dataclasses.replace(approval, paths=paths)
    elif approval.kind == "mcp_tool":
        thread = str(request.params.get("threadId"))
        tool = items.tool(thread, request.params.get("serverName"), request.params.get("message"))
        approval = dataclasses.replace(approval, tool=tool)
    return approval


async def answer_request(
    request: ServerRequest,
    running: RunningTask | None,
    items: PendingItems,
    fallback: ApprovalHandler,
) -> dict[str, Any]:
    """Codex's request answered: approvals by the task's handler (and into its transcript),
    tool calls by its tool handler, anything else neutrally."""
    method = request.method
    if method in APPROVAL_METHODS:
        approval = _approval(request, running, items)
        handler = running.approvals if running is not None else fallback
        decision = await handler(approval)
        if running is not None:
            running.sink.codex_event(
                approval.task_id,
                "wrapper/approval",
                {"request": method, "decision": decision, "params": request.params},
            )
        return answer(approval, decision)
    if method == "item/tool/call":
        if running is None or running.tools is None:
            text = "this tool has no handler in the wrapper"
            return {"contentItems": [{"type": "inputText", "text": text}], "success": False}
        call = ToolCall(
            running.run_id,
            running.task_id,
            str(request.params.get("tool")),
            request.params.get("arguments"),
            str(request.params.get("callId", "")),
        )
        result = await running.tools(call)
        return {"contentItems": [{"type": "inputText", "text": result.text}], "success": result.ok}
    if method == "item/tool/requestUserInput":
        return {"answers": {}}
    return {}
