"""Whether this process traces, and the tracing code loaded only then.

Tracing is on when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; only then is
``codex.spans`` (and OpenTelemetry with it) imported: a run without the variable never loads
it, and without the ``otel`` extra installed the variable fails in one sentence.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from codex_mcp_wrapper.errors import EnvironmentProblem

if TYPE_CHECKING:
    from codex_mcp_wrapper.codex.spans import Tracing

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
SERVICE_ENV = "OTEL_SERVICE_NAME"
LOCAL_SERVICE = "codex-mcp-wrapper"  # the service name of local runs' spans
FLUSH_WITHIN = 5.0  # s: the spans left when a process exits; a collector that is down costs this
OTEL_EXTRA = (
    f"{ENDPOINT_ENV} is set but tracing is not installed here; install it with "
    "`pip install 'codex-mcp-wrapper[otel]'` or unset the variable."
)


def endpoint() -> str | None:
    """Where traces go (the standard variable), or None: this process does not trace."""
    return os.environ.get(ENDPOINT_ENV) or None


def tracing(service: str = LOCAL_SERVICE) -> Tracing | None:
    """This process's tracing (its tracer provider made on first use, named ``service``
    unless ``OTEL_SERVICE_NAME`` says otherwise), or None without the endpoint variable."""
    if endpoint() is None:
        return None
    try:
        from codex_mcp_wrapper.codex.spans import process_tracing
    except ImportError as exc:
        raise EnvironmentProblem(OTEL_EXTRA) from exc
    return process_tracing(os.environ.get(SERVICE_ENV) or service, FLUSH_WITHIN)


def flush_traces(within: float = FLUSH_WITHIN) -> None:
    """Send the spans not yet exported, if this process traced at all (bounded: a collector
    that is down does not hold the exit up longer than ``within`` seconds)."""
    spans = sys.modules.get("codex_mcp_wrapper.codex.spans")
    if spans is not None:
        spans.flush(within)
