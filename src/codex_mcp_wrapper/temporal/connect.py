"""Connecting to Temporal the same way on every side: the data converter (pydantic's, as the
engine's dataclasses hold pydantic models; payloads over 64 KiB compressed), one sentence
when the server is not there, the SDK core's own log lines routed to Python logging, waiting
(bounded) for a server that went away, and the workflow sandbox's pass-through modules.

The SDK core writes its log lines (``WARN temporalio_client::retry ... tcp connect error``
while the server restarts) to the console, which is stdout: ``run --json`` could then not be
parsed. ``runtime()`` forwards them to the ``codex_mcp_wrapper.temporal.sdk`` logger instead
(stderr, or a host's log).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from datetime import timedelta

from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
)

from codex_mcp_wrapper.errors import EnvironmentProblem
from codex_mcp_wrapper.settings import TemporalSettings
from codex_mcp_wrapper.temporal.tracing import tracing_interceptors

SDK_LOG = logging.getLogger("codex_mcp_wrapper.temporal.sdk")

# What a server that is away or restarting answers; anything else is not weather.
SERVER_AWAY = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
        RPCStatusCode.UNKNOWN,
    }
)
HEALTH_CHECK_TIMEOUT = timedelta(seconds=5)  # one look at the server, within its retries

# Third-party modules the engine imports that may not be re-imported in the sandbox
# (jsonschema -> attrs calls platform.* at import); they hold no workflow state.
PASSTHROUGH = (
    "jsonschema",
    "jsonschema_specifications",
    "referencing",
    "rpds",
    "attr",
    "attrs",
    "platformdirs",
    "yaml",
)


@functools.cache
def runtime() -> Runtime:
    """This process's Temporal runtime, its core's log lines forwarded to ``SDK_LOG``; made
    the SDK's default (the one a program embedding the wrapper set first is kept)."""
    ours = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=SDK_LOG),
            )
        )
    )
    try:
        Runtime.set_default(ours)
    except RuntimeError:  # a default exists: clients made with it stay on it anyway
        return Runtime.default()
    return ours


class _DemotedRetries(logging.Filter):
    """The core's per-call retry warnings, as debug lines: the submitter says in its own words
    that it lost the server and when it has it back."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "temporalio_client::retry" in record.name:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= SDK_LOG.getEffectiveLevel()


def demote_retry_warnings() -> None:
    if not any(isinstance(f, _DemotedRetries) for f in SDK_LOG.filters):
        SDK_LOG.addFilter(_DemotedRetries())


async def connect(target: TemporalSettings, role: str = "submitter") -> Client:
    """A client of ``target`` (traced as ``role`` when OTEL_EXPORTER_OTLP_ENDPOINT is set);
    raises ``EnvironmentProblem`` in one sentence when it is not reachable."""
    try:
        return await Client.connect(
            target.address,
            namespace=target.namespace,
            data_converter=DATA_CONVERTER,
            runtime=runtime(),
            interceptors=tracing_interceptors(role),
        )
    except RuntimeError as exc:
        raise EnvironmentProblem(
            f"cannot reach the Temporal server at {target.address} ({_reason(exc)}); start it "
            "(`temporal server start-dev`, see docs/scale-out.md) or fix --temporal."
        ) from exc


def server_away(exc: BaseException) -> bool:
    """The call failed because the server is not there (yet), not because of what it asked."""
    return isinstance(exc, RPCError) and exc.status in SERVER_AWAY


async def server_answers(
    client: Client, within: float, still_away: Callable[[float], None] = lambda _: None
) -> bool:
    """True once the server answers a health check, at once or within ``within`` seconds
    (retried by tenacity, backing off to 5 s; ``still_away(seconds)`` before each retry);
    False when it has not by then."""
    since = time.monotonic()

    def retrying(state: RetryCallState) -> None:
        still_away(time.monotonic() - since)

    retries = AsyncRetrying(
        retry=retry_if_exception(server_away) | retry_if_result(lambda ok: not ok),
        stop=stop_after_delay(within),
        wait=wait_exponential(multiplier=0.25, max=5.0),
        before_sleep=retrying,
        retry_error_callback=lambda _: False,
    )
    answered: bool = await retries(client.service_client.check_health, timeout=HEALTH_CHECK_TIMEOUT)
    return answered


ZLIB = b"binary/zlib"
COMPRESS_OVER = 64 * 1024  # bytes: a task's request and outcome stay readable in the UI


class CompressLarge(PayloadCodec):
    """Compresses payloads over ``COMPRESS_OVER`` bytes (a large mission's plan and results:
    JSON of many alike tasks shrinks 10-50x; Temporal refuses a payload over 2 MB); small ones,
    each attempt's request and outcome, stay plain JSON for whoever reads the history."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload(metadata={"encoding": ZLIB}, data=zlib.compress(p.SerializeToString(), 6))
            if len(p.data) > COMPRESS_OVER
            else p
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload.FromString(zlib.decompress(p.data)) if p.metadata.get("encoding") == ZLIB else p
            for p in payloads
        ]


DATA_CONVERTER: DataConverter = dataclasses.replace(
    pydantic_data_converter, payload_codec=CompressLarge()
)


def _reason(exc: RuntimeError) -> str:
    text = str(exc).removeprefix("Failed client connect: ")
    return text.splitlines()[0][:160] if text else type(exc).__name__


def sandbox_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )
