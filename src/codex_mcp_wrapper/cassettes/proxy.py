"""``RecordingProxy``: forwards Codex's requests to the real provider unchanged and streams the
answers back as they come (no buffering), keeping of each exchange what a cassette needs: the
thread, the last user prompt, the tools offered, and the answer's output items. Headers (the
credentials) are never kept; strings pass through the run's redaction before they are."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from codex_mcp_wrapper.process import finish
from codex_mcp_wrapper.scripted.player import last_user_prompt, offered_tools, thread_key
from codex_mcp_wrapper.scripted.server import serve_app
from codex_mcp_wrapper.strings import map_strings

HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}


class RecordingProxy:
    def __init__(
        self,
        upstream: str,
        redact: Callable[[str], str] = lambda text: text,
        log: Path | None = None,
    ) -> None:
        """``log``: each exchange is also appended there as a JSON line (a run's
        ``recording.jsonl``, which ``build_cassette`` reads)."""
        self.upstream = upstream.rstrip("/")
        self.redact = redact
        self.log = log
        self.records: list[dict[str, Any]] = []
        self.base_url = ""
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=30.0))

    def _keep(self, record: dict[str, Any]) -> None:
        line = json.dumps(map_strings(record, self.redact))  # strings, not escaped JSON
        self.records.append(json.loads(line))
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with self.log.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    async def _forward(self, request: Request) -> Response:
        path = request.url.path.removeprefix("/v1")
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers["accept-encoding"] = "identity"  # the stream is read on its way: uncompressed
        upstream = self._client.build_request(
            request.method,
            f"{self.upstream}{path}",
            headers=headers,
            content=body,
            params=request.query_params,
        )
        try:
            answer = await self._client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            message = f"the recording proxy cannot reach {self.upstream}: {exc}"
            return Response(json.dumps({"error": {"message": message}}), status_code=502)
        record: dict[str, Any] | None = None
        if request.method == "POST" and path.endswith("/responses"):
            try:
                sent = json.loads(body)
            except json.JSONDecodeError:
                sent = {}
            lowered = {k.lower(): v for k, v in request.headers.items()}
            record = {
                "thread": thread_key(lowered, sent),
                "prompt": last_user_prompt(sent),
                "offered": offered_tools(sent),
                "items": [],
                "error": None,
            }
        back = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
        return StreamingResponse(
            self._relay(answer, record), status_code=answer.status_code, headers=back
        )

    async def _relay(
        self, answer: httpx.Response, record: dict[str, Any] | None
    ) -> AsyncIterator[bytes]:
        pending = b""
        completed = False
        error_body = b""
        try:
            async for chunk in answer.aiter_raw():
                yield chunk  # first to Codex, then read
                if record is None:
                    continue
                if answer.status_code != 200:
                    error_body += chunk
                    continue
                pending += chunk.replace(b"\r\n", b"\n")
                while b"\n\n" in pending:
                    event, pending = pending.split(b"\n\n", 1)
                    completed = self._read_event(event, record) or completed
        finally:
            if record is not None and pending.strip():
                completed = self._read_event(pending, record) or completed
            if record is not None:
                if answer.status_code != 200:
                    message = error_body.decode(errors="replace")[:500]
                    record["error"] = {"status": answer.status_code, "message": message}
                elif not completed:
                    record["error"] = {"status": 200, "message": "the stream ended early"}
                self._keep(record)  # before any await: a cancel cannot lose it
            await answer.aclose()

    @staticmethod
    def _read_event(event: bytes, record: dict[str, Any]) -> bool:
        for line in event.splitlines():
            if not line.startswith(b"data:"):
                continue
            try:
                data = json.loads(line[5:].strip())
            except json.JSONDecodeError:
                continue
            kind = data.get("type")
            if kind == "response.output_item.done" and isinstance(data.get("item"), dict):
                record["items"].append(data["item"])
            elif kind == "response.completed":
                return True
            elif kind == "response.failed":
                record["error"] = {"status": 200, "message": "response.failed"}
        return False

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._forward, methods=["GET", "POST"])])

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Listen on a free loopback port; yields the base URL Codex is given."""
        try:
            async with serve_app(self.app(), 0, "the recording proxy") as url:
                self.base_url = url
                yield url
        finally:
            await finish(self._client.aclose())
