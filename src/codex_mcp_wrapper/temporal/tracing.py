"""OpenTelemetry traces across the Temporal hop, when the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: the submitter's client and each host's workers get
Temporal's ``TracingInterceptor``, so starting a mission's workflow, the workflow and each
task's activity on a host are spans of one trace, exported over OTLP/HTTP.

Nothing here is imported unless the variable is set (the ``otel`` extra: opentelemetry-sdk
and its OTLP/HTTP exporter). Spans are exported as they end (a simple processor): the CLI
leaves with ``os._exit``, which would drop a batch still waiting.
"""

from __future__ import annotations

import contextlib
import os
from contextlib import AbstractContextManager
from typing import Any

from codex_mcp_wrapper.errors import EnvironmentProblem

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_EXTRA = (
    f"{ENDPOINT_ENV} is set but tracing is not installed here; install it with "
    "`pip install 'codex-mcp-wrapper[otel]'` or unset the variable."
)
_installed: list[Any] = []  # the process's tracer provider, once made


def tracing_interceptors(role: str) -> list[Any]:
    """Temporal interceptors tracing this process (``role``: submitter or host, its service
    name unless ``OTEL_SERVICE_NAME`` says otherwise); none without the endpoint variable."""
    if not os.environ.get(ENDPOINT_ENV):
        return []
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError as exc:
        raise EnvironmentProblem(OTEL_EXTRA) from exc
    if not _installed:
        name = os.environ.get("OTEL_SERVICE_NAME") or f"codex-mcp-wrapper-{role}"
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _installed.append(provider)
    return [TracingInterceptor()]


def attempt_span(run_id: str, task_id: str, attempt: int) -> AbstractContextManager[Any]:
    """A span for one attempt of a task on this host, inside the activity's span (nothing
    when this process is not traced)."""
    if not _installed:
        return contextlib.nullcontext()
    from opentelemetry import trace

    return trace.get_tracer("codex_mcp_wrapper").start_as_current_span(
        f"attempt {task_id}",
        attributes={"run.id": run_id, "task.id": task_id, "task.attempt": attempt},
    )
