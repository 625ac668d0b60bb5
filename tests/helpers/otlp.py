"""A tiny OTLP/HTTP trace receiver on 127.0.0.1: it decodes each export (protobuf, with
opentelemetry-proto) and keeps the spans, each with its service's name, its parent, its
attributes (as plain values) and its status."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

STATUS_ERROR = Status.STATUS_CODE_ERROR


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    name: str
    service: str
    span_id: str = ""
    parent_id: str = ""  # "" for a trace's root
    attributes: dict[str, Any] = field(default_factory=dict)
    error: bool = False  # its status is ERROR
    status_message: str = ""
    start_ns: int = 0
    end_ns: int = 0
    links: tuple[str, ...] = ()  # the span ids it links to

    @classmethod
    def of(cls, span: Span, service: str) -> ReceivedSpan:
        return cls(
            span.trace_id.hex(),
            span.name,
            service,
            span.span_id.hex(),
            span.parent_span_id.hex(),
            {
                a.key: getattr(a.value, a.value.WhichOneof("value") or "string_value")
                for a in span.attributes
            },
            span.status.code == STATUS_ERROR,
            span.status.message,
            span.start_time_unix_nano,
            span.end_time_unix_nano,
            tuple(link.span_id.hex() for link in span.links),
        )


class Receiver:
    """The spans received so far, and ``changed`` to wait on."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.posts: list[str] = []  # the path of every export received (logs, traces, ...)
        self.changed = threading.Condition()
        self.url = ""

    def take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        got = []
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope in resource_spans.scope_spans:
                got += [ReceivedSpan.of(s, service) for s in scope.spans]
        with self.changed:
            self.spans += got
            self.changed.notify_all()

    def wait(self, holds: Callable[[Receiver], bool], what: str, timeout: float) -> None:
        """Until ``holds(self)``; fails naming ``what`` after ``timeout`` s."""
        with self.changed:
            if not self.changed.wait_for(lambda: holds(self), timeout):
                raise AssertionError(f"no {what}: {self.posts} {self.spans[:20]}")

    def wait_for_trace(
        self, wanted: set[tuple[str, str]], timeout: float, at_least: dict[str, int] | None = None
    ) -> list[ReceivedSpan]:
        """The spans of a trace holding every (service, span name) of ``wanted`` and, for each
        name of ``at_least``, that many spans of it (spans arrive in batches: wait for the
        last ones); fails after ``timeout`` s."""

        def found() -> list[ReceivedSpan] | None:
            for trace_id in {s.trace_id for s in self.spans}:
                spans = [s for s in self.spans if s.trace_id == trace_id]
                counts = {n: sum(s.name == n for s in spans) for n in at_least or {}}
                enough = all(counts[n] >= k for n, k in (at_least or {}).items())
                if wanted <= {(s.service, s.name) for s in spans} and enough:
                    return spans
            return None

        with self.changed:
            if not self.changed.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"no trace of {wanted}: {self.spans}")
            spans = found()
            assert spans is not None
            return spans


@contextlib.contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.changed:
                receiver.posts.append(self.path)
                receiver.changed.notify_all()
            if self.path == "/v1/traces":
                receiver.take(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
