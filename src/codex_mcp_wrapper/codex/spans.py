"""The wrapper's own spans, exported over OTLP/HTTP: imported only when the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (``codex.telemetry``), never by the engine.

- ``RunSpans``: a local run's trace: ``run RUN_ID`` (its root, linked to the span that
  started it if any, e.g. ``serve``'s MCP call), ``task TASK_ID`` from the task's queueing to
  its result, an ``attempt TASK_ID`` per attempt (``TracedExecutor``).
- ``Tracing.attempt_events``: an attempt's events, as ``LocalExecutor`` passes them on (for
  local runs and Temporal hosts alike), through ``codex.turn_spans.AttemptEvents``: the
  ``turn N`` spans and their ``command`` and ``tool SERVER.TOOL`` spans.

Every text an attribute or a status holds goes through the run's redactor first: secrets
never reach the exporter. Exceptions are never recorded as span events (their messages and
tracebacks could hold anything). Spans are exported from a thread of the SDK's within
``EXPORT_DELAY_MS`` of their end; ``flush`` sends what is left when the process exits (the
CLI calls it before ``os._exit``), for a bounded time.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Tracer

from codex_mcp_wrapper.codex.turn_spans import AttemptEvents, Redact, fail
from codex_mcp_wrapper.engine.events import Event, TaskFinished, TaskUpdate
from codex_mcp_wrapper.engine.results import TaskState
from codex_mcp_wrapper.engine.seams import EventSink, TaskExecutor, TaskOutcome, TaskRequest

AttemptEnded = Callable[[TaskOutcome], None]
NOT_OK = ("failed", "timeout", "cancelled")  # task statuses that end a span in error
# Spans go out from a thread of the SDK's, never from the event loop: an exporter waits and
# retries for seconds when the collector is slow or down (measured: ~6 s per span with
# nothing listening, which held up every turn of a run by as much). They leave this often
# (no need to wait for a full batch), and what is left is sent when the process exits, for a
# bounded time (``flush``: the SDK's own flush at exit may wait 30 s, and ``os._exit`` skips it).
EXPORT_DELAY_MS = 200
_process: list[Tracing] = []  # this process's tracing, once made
_ours: list[TracerProvider] = []  # the provider this module made (not a program's own)


def process_tracing(service: str, flush_within: float) -> Tracing:
    """This process's tracing: the tracer provider already set (a program using the Python
    API that set its own), else one exporting to the endpoint variable, flushed at exit
    within ``flush_within`` seconds."""
    if not _process:
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider):  # nobody set one
            ours = TracerProvider(
                resource=Resource.create({"service.name": service}), shutdown_on_exit=False
            )
            ours.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=EXPORT_DELAY_MS)
            )
            trace.set_tracer_provider(ours)
            _ours.append(ours)
            atexit.register(flush, flush_within)
            provider = ours
        _process.append(Tracing(provider.get_tracer("codex_mcp_wrapper")))
    return _process[0]


def flush(within: float) -> None:
    """Send the spans not yet exported, waiting at most ``within`` seconds (a collector that
    is down does not hold the exit up): the flush runs in a thread of its own, let go after."""
    for provider in _ours:
        sending = threading.Thread(target=provider.force_flush, name="otel-flush", daemon=True)
        sending.start()
        sending.join(within)


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
                fail(span, redact(outcome.error or f"the attempt ended {outcome.status}"))

        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                yield ended
        except BaseException as exc:
            fail(span, f"the attempt ended by {type(exc).__name__}")
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
                fail(span, self.redact(result.error or f"the task ended {result.status}"))
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
                fail(span, "the run ended before the task finished")
                span.end()
        not_ok = sorted(t for t, s in self.statuses.items() if s in NOT_OK)
        self.span.set_attribute("run.tasks", len(self.statuses))
        if cut is not None:
            fail(self.span, f"the run ended by {type(cut).__name__}")
        elif not_ok:
            fail(self.span, f"{len(not_ok)} task(s) did not finish ok: {', '.join(not_ok)}")
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
