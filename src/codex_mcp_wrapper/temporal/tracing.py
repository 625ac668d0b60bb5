"""OpenTelemetry traces across the Temporal hop, when the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: the submitter's client and each host's workers get
Temporal's ``TracingInterceptor``, so starting a mission's workflow, the workflow and each
task's activity on a host are spans of one trace, exported over OTLP/HTTP. On a host each
activity holds an ``attempt TASK_ID`` span, and under it the attempt's turns, commands and
tool calls (``codex.spans``, from the events the attempt's executor passes on).

Nothing of OpenTelemetry is imported unless the variable is set (``codex.telemetry``; the
``otel`` extra: opentelemetry-sdk and its OTLP/HTTP exporter).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from codex_mcp_wrapper.codex.telemetry import LOCAL_SERVICE, OTEL_EXTRA, endpoint, tracing
from codex_mcp_wrapper.engine.seams import TaskOutcome, TaskRequest
from codex_mcp_wrapper.errors import EnvironmentProblem

AttemptEnded = Callable[[TaskOutcome], None]  # takes the attempt's outcome, for its span


def tracing_interceptors(role: str) -> list[Any]:
    """Temporal interceptors tracing this process (``role``: submitter or host, its service
    name ``codex-mcp-wrapper-ROLE`` unless ``OTEL_SERVICE_NAME`` says otherwise); none
    without the endpoint variable."""
    if endpoint() is None:
        return []
    try:
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError as exc:
        raise EnvironmentProblem(OTEL_EXTRA) from exc
    tracing(f"{LOCAL_SERVICE}-{role}")  # this process's provider, before the interceptor's use
    return [TracingInterceptor()]


def _untraced(_outcome: TaskOutcome) -> None:
    pass


def attempt_span(
    request: TaskRequest, redact: Callable[[str], str]
) -> AbstractContextManager[AttemptEnded]:
    """A span for one attempt of a task on this host, inside the activity's span; it yields
    what takes the attempt's outcome (nothing when this process is not traced)."""
    traces = tracing()
    if traces is None:
        return contextlib.nullcontext(_untraced)
    return traces.attempt(request, redact)
