"""The wrapper's own spans, exported over OTLP/HTTP: imported only when the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (``codex.telemetry``), never by the engine.

- ``RunSpans``: a local run's trace: ``run RUN_ID`` (its root, linked to the span that
  started it if any, e.g. ``serve``'s MCP call), ``task TASK_ID`` from the task's queueing to
  its result, an ``attempt TASK_ID`` per attempt (``TracedExecutor``).
- ``AttemptEvents``: an attempt's ``EventSink`` that reads Codex's notifications as they pass
  and makes a ``turn N`` span per turn (``turn/started`` .. ``turn/completed``) and under it a
  ``command`` span per command execution and a ``tool SERVER.TOOL`` span per MCP tool call
  (``item/started`` .. ``item/completed``), each with the times the events arrived. Local
  runs and Temporal hosts both pass their attempts' events through it (``LocalExecutor``).

Every text an attribute or a status holds goes through the run's redactor first: secrets
never reach the exporter. Exceptions are never recorded as span events (their messages and
tracebacks could hold anything). Spans are exported as they end (a simple processor): the CLI
leaves with ``os._exit``, which would drop a batch still waiting.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from codex_mcp_wrapper.codex.evidence import unwrap_shell
from codex_mcp_wrapper.engine.events import Event, TaskFinished, TaskUpdate
from codex_mcp_wrapper.engine.results import TaskState
from codex_mcp_wrapper.engine.seams import EventSink, TaskExecutor, TaskOutcome, TaskRequest

Redact = Callable[[str], str]
AttemptEnded = Callable[[TaskOutcome], None]
NOT_OK = ("failed", "timeout", "cancelled")  # task statuses that end a span in error
# Codex's token counts (``thread/tokenUsage/updated`` ``last``) -> the turn span's attributes
USAGE_ATTRIBUTES = {
    "inputTokens": "gen_ai.usage.input_tokens",
    "outputTokens": "gen_ai.usage.output_tokens",
    "cachedInputTokens": "codex.usage.cached_input_tokens",
    "totalTokens": "codex.usage.total_tokens",
}
_process: list[Tracing] = []  # this process's tracing, once made


def process_tracing(service: str) -> Tracing:
    """This process's tracing: the tracer provider already set (Temporal's host, or a program
    using the Python API that set its own), else one exporting to the endpoint variable."""
    if not _process:
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider):  # nobody set one
            ours = TracerProvider(resource=Resource.create({"service.name": service}))
            ours.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
            trace.set_tracer_provider(ours)
            provider = ours
        _process.append(Tracing(provider.get_tracer("codex_mcp_wrapper")))
    return _process[0]


def _now() -> int:
    return time.time_ns()


def _fail(span: Span, description: str) -> None:
    span.set_status(Status(StatusCode.ERROR, description))


@dataclass
class Tracing:
    """Makes the wrapper's spans with one tracer."""

    tracer: Tracer

    @contextlib.contextmanager
    def run(self, run_id: str, mission_id: str, redact: Redact) -> Iterator[RunSpans]:
        """A local run's spans, its root ending with the block."""
        spans = RunSpans(self, run_id, mission_id, redact)
        try:
            yield spans
        except BaseException as exc:
            spans.end(exc)
            raise
        spans.end()

    @contextlib.contextmanager
    def attempt(
        self, request: TaskRequest, redact: Redact, parent: otel_context.Context | None = None
    ) -> Iterator[AttemptEnded]:
        """An ``attempt TASK_ID`` span (under ``parent``, else the current span), current
        while the attempt runs; the caller hands it the attempt's outcome."""
        span = self.tracer.start_span(
            f"attempt {request.task_id}",
            context=parent,
            attributes={
                "run.id": request.run_id,
                "task.id": request.task_id,
                "task.attempt": request.attempt,
            },
        )

        def ended(outcome: TaskOutcome) -> None:
            span.set_attribute("task.status", outcome.status)
            if outcome.thread_id:
                span.set_attribute("codex.thread.id", outcome.thread_id)
            if outcome.worker:
                span.set_attribute("task.worker", outcome.worker)
            if outcome.status in NOT_OK:
                _fail(span, redact(outcome.error or f"the attempt ended {outcome.status}"))

        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                yield ended
        except BaseException as exc:
            _fail(span, f"the attempt ended by {type(exc).__name__}")
            raise
        finally:
            span.end()

    def attempt_events(
        self, redact: Redact
    ) -> Callable[[TaskRequest, EventSink], contextlib.AbstractContextManager[EventSink]]:
        """For ``LocalExecutor``: an attempt's sink wrapped in ``AttemptEvents`` (under the
        current span, the attempt's), whose spans left open when it ends end in error."""

        @contextlib.contextmanager
        def wrap(request: TaskRequest, sink: EventSink) -> Iterator[EventSink]:
            events = AttemptEvents(sink, self.tracer, request, redact, otel_context.get_current())
            try:
                yield events
            except BaseException as exc:
                events.close(f"the attempt ended by {type(exc).__name__} before it completed")
                raise
            events.close("the attempt ended before it completed")

        return wrap


class RunSpans:
    """A local run's trace: the ``run`` root span and a ``task`` span per task, kept from the
    run's events (``observe``); ``TracedExecutor`` puts the attempts under them."""

    def __init__(self, tracing: Tracing, run_id: str, mission_id: str, redact: Redact) -> None:
        self.tracing = tracing
        self.redact = redact
        self.run_id = run_id
        caller = trace.get_current_span().get_span_context()  # e.g. serve's MCP call
        self.span = tracing.tracer.start_span(
            f"run {run_id}",
            context=otel_context.Context(),  # a root: one trace per run
            attributes={"run.id": run_id, "mission.id": mission_id},
            links=[trace.Link(caller)] if caller.is_valid else None,
        )
        self.tasks: dict[str, Span] = {}
        self.statuses: dict[str, TaskState] = {}

    def _task(self, task_id: str) -> Span:
        span = self.tasks.get(task_id)
        if span is None:
            span = self.tasks[task_id] = self.tracing.tracer.start_span(
                f"task {task_id}",
                context=trace.set_span_in_context(self.span),
                attributes={"run.id": self.run_id, "task.id": task_id},
            )
        return span

    def observe(self, event: Event) -> None:
        """A run event: a task queued starts its span, a task's result ends it (a task that
        never started, skipped, gets a span of no length)."""
        if isinstance(event, TaskUpdate) and event.status == "queued":
            self._task(event.task_id)
        elif isinstance(event, TaskFinished):
            result = event.result
            span = self._task(result.task_id)
            span.set_attribute("task.status", result.status)
            span.set_attribute("task.attempts", result.attempts)
            if result.status in NOT_OK:
                _fail(span, self.redact(result.error or f"the task ended {result.status}"))
            self.statuses[result.task_id] = result.status
            span.end()

    def publishing(self, publish: Callable[[Event], None]) -> Callable[[Event], None]:
        """``publish``, the run's events seen here first."""

        def observed(event: Event) -> None:
            self.observe(event)
            publish(event)

        return observed

    def traced(self, executor: TaskExecutor) -> TaskExecutor:
        """``executor``, its attempts under this run's task spans."""
        return TracedExecutor(executor, self)

    def attempt(self, request: TaskRequest) -> contextlib.AbstractContextManager[AttemptEnded]:
        parent = trace.set_span_in_context(self._task(request.task_id))
        return self.tracing.attempt(request, self.redact, parent)

    def end(self, cut: BaseException | None = None) -> None:
        """The run is over (``cut``: by that exception); task spans still open end too."""
        for task_id, span in self.tasks.items():
            if task_id not in self.statuses:
                _fail(span, "the run ended before the task finished")
                span.end()
        not_ok = sorted(t for t, s in self.statuses.items() if s in NOT_OK)
        self.span.set_attribute("run.tasks", len(self.statuses))
        if cut is not None:
            _fail(self.span, f"the run ended by {type(cut).__name__}")
        elif not_ok:
            _fail(self.span, f"{len(not_ok)} task(s) did not finish ok: {', '.join(not_ok)}")
        self.span.end()


class TracedExecutor:
    """A run's executor whose every attempt runs inside its ``attempt`` span."""

    def __init__(self, inner: TaskExecutor, spans: RunSpans) -> None:
        self.inner = inner
        self.spans = spans

    async def execute(self, request: TaskRequest, sink: EventSink) -> TaskOutcome:
        with self.spans.attempt(request) as ended:
            outcome = await self.inner.execute(request, sink)
            ended(outcome)
        return outcome


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
        elif method == "item/started" and item.get("type") in ("commandExecution", "mcpToolCall"):
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
            _fail(current.span, self._redact(error))
        current.span.end(end_time=_now())
        self._turn = None

    def _start_item(self, item: dict[str, Any]) -> None:
        parent = (
            trace.set_span_in_context(self._turn.span) if self._turn is not None else self._parent
        )
        if item.get("type") == "commandExecution":
            name = "command"
            attributes: dict[str, Any] = {
                "process.command_line": self._redact(unwrap_shell(str(item.get("command", "")))),
            }
        else:
            server, tool = str(item.get("server", "")), str(item.get("tool", ""))
            name = f"tool {server}.{tool}"
            attributes = {"mcp.server": server, "mcp.tool": tool}
        attributes["codex.item.id"] = str(item.get("id", ""))
        attributes["task.id"] = self._request.task_id
        self._items[str(item.get("id"))] = self._tracer.start_span(
            self._redact(name), context=parent, start_time=_now(), attributes=attributes
        )

    def _end_item(self, item: dict[str, Any]) -> None:
        span = self._items.pop(str(item.get("id")))
        status = str(item.get("status", ""))
        span.set_attribute("codex.item.status", status)
        exit_code = item.get("exitCode")
        if isinstance(exit_code, int):
            span.set_attribute("process.exit.code", exit_code)
        if isinstance(item.get("durationMs"), int):
            span.set_attribute("codex.item.duration_ms", item["durationMs"])
        failed = status not in ("completed", "") or (isinstance(exit_code, int) and exit_code != 0)
        if failed:
            error = item.get("error")
            if isinstance(error, dict):
                error = error.get("message")
            reason = error or (
                f"exit code {exit_code}" if isinstance(exit_code, int) else f"ended {status}"
            )
            _fail(span, self._redact(str(reason)))
        span.end(end_time=_now())

    def _close_items(self, reason: str) -> None:
        for span in self._items.values():
            _fail(span, self._redact(reason))
            span.end(end_time=_now())
        self._items.clear()

    def close(self, reason: str) -> None:
        """The attempt is over: whatever is still open ends in error, with ``reason``."""
        if self._turn is not None:
            self._close_turn(reason)
        self._close_items(reason)
