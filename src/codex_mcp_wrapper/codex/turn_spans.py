"""``AttemptEvents``: an attempt's ``EventSink`` that reads Codex's notifications as they
pass and makes a ``turn N`` span per turn (``turn/started`` .. ``turn/completed``) and under it
a ``command`` span per command execution, a ``tool SERVER.TOOL`` span per MCP tool call and
a ``tool NAME`` span per call of the mission's own tools (``item/started`` ..
``item/completed``), each with the time its event arrived. Every text a
span holds goes through the run's redactor. Imported only when tracing (``codex.spans``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from codex_mcp_wrapper.codex.evidence import unwrap_shell
from codex_mcp_wrapper.engine.results import TaskState
from codex_mcp_wrapper.engine.seams import EventSink, TaskRequest

Redact = Callable[[str], str]
# The items of a turn that get a span: commands, MCP tool calls, calls of the mission's tools
SPAN_ITEMS = ("commandExecution", "mcpToolCall", "dynamicToolCall")
# Codex's token counts (``thread/tokenUsage/updated`` ``last``) -> the turn span's attributes
USAGE_ATTRIBUTES = {
    "inputTokens": "gen_ai.usage.input_tokens",
    "outputTokens": "gen_ai.usage.output_tokens",
    "cachedInputTokens": "codex.usage.cached_input_tokens",
    "totalTokens": "codex.usage.total_tokens",
}


def _now() -> int:
    return time.time_ns()


def fail(span: Span, description: str) -> None:
    """Mark ``span`` as failed, saying why (it ends in error)."""
    span.set_status(Status(StatusCode.ERROR, description))


def _failure(item: dict[str, Any], status: str, exit_code: Any) -> str | None:
    """Why a completed item failed (its error, its exit code, its status), or None."""
    error = item.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    if error:
        return str(error)
    if isinstance(exit_code, int) and exit_code != 0:
        return f"exit code {exit_code}"
    if status not in ("completed", ""):
        return f"the {item.get('type')} ended {status}"
    if item.get("success") is False:
        return "the tool answered with an error"
    return None


@dataclass
class _Turn:
    span: Span
    turn_id: str
    usage: dict[str, int] = field(default_factory=dict)


class AttemptEvents:
    """An attempt's ``EventSink``: passes every event on, and makes spans of its turns and of
    their commands and MCP tool calls (module docstring)."""

    def __init__(
        self,
        sink: EventSink,
        tracer: Tracer,
        request: TaskRequest,
        redact: Redact,
        parent: otel_context.Context,
    ) -> None:
        self._sink = sink
        self._tracer = tracer
        self._request = request
        self._redact = redact
        self._parent = parent
        self._turns_started = 0
        self._turn: _Turn | None = None
        self._items: dict[str, Span] = {}

    def trace_context(self) -> dict[str, str]:
        """The attempt's W3C trace context (``traceparent``), for Codex's own spans
        (``codex.turn.TraceCarrier``)."""
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, context=self._parent)
        version, trace_id, span_id, flags = (carrier.get("traceparent") or "---").split("-")
        if not trace_id:
            return {}
        # Only the sampled flag: Codex's propagator refuses a version-00 traceparent whose
        # flags say more (the SDK's "random trace id" bit, 0x02, is set by default).
        sampled = int(flags, 16) & 0x01
        return {**carrier, "traceparent": f"{version}-{trace_id}-{span_id}-{sampled:02x}"}

    def codex_event(self, task_id: str, method: str, params: dict[str, Any]) -> None:
        self._see(method, params)
        self._sink.codex_event(task_id, method, params)

    def task_state(self, task_id: str, state: TaskState, worker: str | None, message: str) -> None:
        self._sink.task_state(task_id, state, worker, message)

    def thread_progress(self, task_id: str, thread_id: str, worker: str, turns_done: int) -> None:
        self._sink.thread_progress(task_id, thread_id, worker, turns_done)

    def _see(self, method: str, params: dict[str, Any]) -> None:
        item = params.get("item") or {}
        if method == "turn/started":
            self._start_turn(params)
        elif method == "item/started" and item.get("type") in SPAN_ITEMS:
            self._start_item(item)
        elif method == "item/completed" and str(item.get("id")) in self._items:
            self._end_item(item)
        elif method == "thread/tokenUsage/updated" and self._turn is not None:
            last = (params.get("tokenUsage") or {}).get("last") or {}
            for key in USAGE_ATTRIBUTES:
                if isinstance(last.get(key), int):
                    self._turn.usage[key] = self._turn.usage.get(key, 0) + last[key]
        elif method == "turn/completed":
            self._end_turn(params.get("turn") or {})

    def _start_turn(self, params: dict[str, Any]) -> None:
        if self._turn is not None:  # a turn whose end never came
            self._close_turn("a new turn started before this one completed")
        turn = params.get("turn") or {}
        self._turns_started += 1
        number = self._request.turns_done + self._turns_started
        turn_id = str(turn.get("id", ""))
        span = self._tracer.start_span(
            f"turn {number}",
            context=self._parent,
            start_time=_now(),
            attributes={
                "task.id": self._request.task_id,
                "task.attempt": self._request.attempt,
                "codex.turn.number": number,
                "codex.turn.id": turn_id,
                "codex.thread.id": str(params.get("threadId", "")),
            },
        )
        self._turn = _Turn(span, turn_id)

    def _end_turn(self, turn: dict[str, Any]) -> None:
        current = self._turn
        if current is None or turn.get("id") not in (None, current.turn_id):
            return  # a late end of an earlier, interrupted turn
        status = str(turn.get("status", ""))
        current.span.set_attribute("codex.turn.status", status)
        if status != "completed":
            reason = (turn.get("error") or {}).get("message") or f"the turn ended {status}"
            self._close_turn(str(reason))
            return
        self._close_turn(None)

    def _close_turn(self, error: str | None) -> None:
        """End the current turn (in error, with ``error``), and its items still open."""
        current = self._turn
        assert current is not None
        self._close_items(error or "the turn completed before the item")
        for key, value in current.usage.items():
            current.span.set_attribute(USAGE_ATTRIBUTES[key], value)
        if error is not None:
            fail(current.span, self._redact(error))
        current.span.end(end_time=_now())
        self._turn = None

    def _start_item(self, item: dict[str, Any]) -> None:
        parent = (
            trace.set_span_in_context(self._turn.span) if self._turn is not None else self._parent
        )
        name, attributes = self._describe(item)
        attributes["codex.item.id"] = str(item.get("id", ""))
        attributes["task.id"] = self._request.task_id
        self._items[str(item.get("id"))] = self._tracer.start_span(
            self._redact(name), context=parent, start_time=_now(), attributes=attributes
        )

    def _describe(self, item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """An item's span name and its first attributes."""
        if item.get("type") == "commandExecution":
            command = self._redact(unwrap_shell(str(item.get("command", ""))))
            return "command", {"process.command_line": command}
        tool = str(item.get("tool", ""))
        if item.get("type") == "dynamicToolCall":  # a tool of the mission's, answered here
            return f"tool {tool}", {"codex.tool.name": tool}
        server = str(item.get("server", ""))
        return f"tool {server}.{tool}", {"mcp.server": server, "mcp.tool": tool}

    def _end_item(self, item: dict[str, Any]) -> None:
        span = self._items.pop(str(item.get("id")))
        status = str(item.get("status", ""))
        span.set_attribute("codex.item.status", status)
        exit_code = item.get("exitCode")
        if isinstance(exit_code, int):
            span.set_attribute("process.exit.code", exit_code)
        if isinstance(item.get("durationMs"), int):
            span.set_attribute("codex.item.duration_ms", item["durationMs"])
        reason = _failure(item, status, exit_code)
        if reason is not None:
            fail(span, self._redact(reason))
        span.end(end_time=_now())

    def _close_items(self, reason: str) -> None:
        for span in self._items.values():
            fail(span, self._redact(reason))
            span.end(end_time=_now())
        self._items.clear()

    def close(self, reason: str) -> None:
        """The attempt is over: whatever is still open ends in error, with ``reason``."""
        if self._turn is not None:
            self._close_turn(reason)
        self._close_items(reason)
