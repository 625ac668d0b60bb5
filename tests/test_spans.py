"""``codex.spans.AttemptEvents`` at its seam: Codex's notifications (in the app-server's
shapes) go through an attempt's sink into real OpenTelemetry spans, kept by the SDK's
in-memory exporter; what an attempt leaves open when it ends, however it ends, ends in error.
The end-to-end traces (real Codex, a real OTLP receiver) are in test_tracing.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from codex_mcp_wrapper.codex.spans import Tracing
from codex_mcp_wrapper.codex.turn import TraceCarrier
from codex_mcp_wrapper.engine.redaction import Redactor
from codex_mcp_wrapper.engine.seams import TaskRequest, TaskSpec
from tests.helpers.sinks import RecordingSink

SECRET = "sekrit-token-4242"


def request(turns_done: int = 0) -> TaskRequest:
    return TaskRequest(
        run_id="r1",
        task_id="t1",
        index=0,
        attempt=2,
        prompts=("one", "two"),
        timeout_sec=60,
        turns_done=turns_done,
        spec=TaskSpec(cwd="."),
    )


@pytest.fixture
def traced() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()  # this test's own: the process's global one is left alone
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider.get_tracer("test")), exporter


def turn_started(turn_id: str) -> tuple[str, dict[str, Any]]:
    return "turn/started", {"threadId": "th", "turn": {"id": turn_id, "status": "inProgress"}}


def turn_completed(turn_id: str, status: str, error: str | None = None) -> tuple[str, Any]:
    turn = {"id": turn_id, "status": status, "error": {"message": error} if error else None}
    return "turn/completed", {"threadId": "th", "turn": turn}


def command(kind: str, **item: Any) -> tuple[str, dict[str, Any]]:
    base = {"id": "c1", "type": "commandExecution", "command": f"/bin/bash -lc 'echo {SECRET}'"}
    return f"item/{kind}", {"threadId": "th", "turnId": "u1", "item": {**base, **item}}


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in exporter.get_finished_spans()}


def test_spans_of_a_turn_hold_its_usage_and_its_command_redacted_and_events_pass_on(
    traced: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = traced
    sink = RecordingSink()
    redact = Redactor([SECRET]).text
    events = [
        turn_started("u1"),
        command("started", status="inProgress"),
        command("completed", status="completed", exitCode=0, durationMs=5),
        (
            "thread/tokenUsage/updated",
            {"threadId": "th", "tokenUsage": {"last": {"inputTokens": 7, "outputTokens": 3}}},
        ),
        turn_completed("u1", "completed"),
    ]
    with (
        tracing.attempt(request(turns_done=1), redact),
        tracing.attempt_events(redact)(request(turns_done=1), sink) as attempt,
    ):
        for method, params in events:
            attempt.codex_event("t1", method, params)
    assert [(m, p) for _, m, p in sink.events] == events  # passed on as they were
    spans = by_name(exporter)
    assert set(spans) == {"attempt t1", "turn 2", "command"}  # its thread's second turn
    turn, cmd = spans["turn 2"], spans["command"]
    assert cmd.attributes is not None and turn.attributes is not None
    assert cmd.attributes["process.command_line"] == "echo [REDACTED]"
    assert cmd.attributes["process.exit.code"] == 0
    assert cmd.parent is not None and cmd.parent.span_id == turn.context.span_id
    assert turn.parent is not None and turn.parent.span_id == spans["attempt t1"].context.span_id
    assert turn.attributes["gen_ai.usage.input_tokens"] == 7
    assert turn.attributes["gen_ai.usage.output_tokens"] == 3
    assert turn.status.status_code is StatusCode.UNSET


def test_what_a_dead_worker_left_open_ends_in_error_with_the_attempt(
    traced: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = traced
    with tracing.attempt_events(str)(request(), RecordingSink()) as attempt:
        for method, params in (turn_started("u1"), command("started")):
            attempt.codex_event("t1", method, params)
        # the worker exits here: no item/completed, no turn/completed
    spans = by_name(exporter)
    for name in ("turn 1", "command"):
        assert spans[name].status.status_code is StatusCode.ERROR, name
        assert spans[name].status.description == "the attempt ended before it completed"


def test_a_cancelled_attempt_ends_its_spans_in_error(
    traced: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = traced
    with (
        pytest.raises(asyncio.CancelledError),
        tracing.attempt(request(), str),
        tracing.attempt_events(str)(request(), RecordingSink()) as attempt,
    ):
        attempt.codex_event("t1", *turn_started("u1"))
        raise asyncio.CancelledError
    spans = by_name(exporter)
    assert spans["turn 1"].status.description == (
        "the attempt ended by CancelledError before it completed"
    )
    assert spans["attempt t1"].status.status_code is StatusCode.ERROR


def test_a_failed_turn_and_tool_call_end_in_error_with_their_reasons_redacted(
    traced: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = traced
    redact = Redactor([SECRET]).text
    tool = {"id": "m1", "type": "mcpToolCall", "server": "fs", "tool": "grep"}
    failed_tool = {**tool, "status": "failed", "error": {"message": f"bad {SECRET}"}}
    with tracing.attempt_events(redact)(request(), RecordingSink()) as attempt:
        attempt.codex_event("t1", *turn_started("u1"))
        attempt.codex_event("t1", "item/started", {"turnId": "u1", "item": tool})
        attempt.codex_event("t1", "item/completed", {"turnId": "u1", "item": failed_tool})
        attempt.codex_event("t1", *turn_completed("u0", "interrupted"))  # an earlier turn's
        attempt.codex_event("t1", *turn_completed("u1", "failed", f"stream {SECRET}"))
    spans = by_name(exporter)
    assert spans["tool fs.grep"].status.description == "bad [REDACTED]"
    assert spans["tool fs.grep"].attributes == {
        "mcp.server": "fs",
        "mcp.tool": "grep",
        "codex.item.id": "m1",
        "task.id": "t1",
        "codex.item.status": "failed",
    }
    assert spans["turn 1"].status.description == "stream [REDACTED]"
    assert spans["turn 1"].attributes is not None
    assert spans["turn 1"].attributes["codex.turn.status"] == "failed"


def test_a_call_of_a_mission_tool_is_a_span_failing_when_the_tool_answered_an_error(
    traced: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = traced
    call = {"id": "d1", "type": "dynamicToolCall", "tool": "ask_orchestrator", "arguments": {}}
    with tracing.attempt_events(str)(request(), RecordingSink()) as attempt:
        attempt.codex_event("t1", *turn_started("u1"))
        attempt.codex_event("t1", "item/started", {"turnId": "u1", "item": call})
        done = {**call, "status": "completed", "success": False}
        attempt.codex_event("t1", "item/completed", {"turnId": "u1", "item": done})
        attempt.codex_event("t1", *turn_completed("u1", "completed"))
    spans = by_name(exporter)
    span = spans["tool ask_orchestrator"]
    assert span.attributes is not None and span.attributes["codex.tool.name"] == "ask_orchestrator"
    assert span.status.description == "the tool answered with an error"
    assert spans["turn 1"].status.status_code is StatusCode.UNSET


def test_the_trace_context_codex_gets_names_the_attempt_and_only_the_sampled_flag(
    traced: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = traced
    with (
        tracing.attempt(request(), str),
        tracing.attempt_events(str)(request(), RecordingSink()) as attempt,
    ):
        assert isinstance(attempt, TraceCarrier)  # what the worker looks for
        context = attempt.trace_context()
    span = by_name(exporter)["attempt t1"].context
    # Codex's propagator refuses a version-00 traceparent with flags beyond "sampled"
    assert context["traceparent"] == f"00-{span.trace_id:032x}-{span.span_id:016x}-01"
