"""The stdio server's front: ready at once, while the MCP SDK loads behind it.

A stdio MCP client gives its server little time: Codex offers a server's tools only if it has
answered ``initialize`` and ``tools/list`` within about a second, and importing the ``mcp`` SDK
alone takes 0.4 s warm and several seconds on a cold machine. So ``serve`` over stdio starts
this front before it imports anything heavy (it is the standard library only):

- fd 0 becomes a pipe, filled by a thread from the real stdin (``relay``): everything the
  client sends reaches the SDK's own stdio transport unchanged, in order, once it is up;
- fd 1 becomes a pipe too, whose thread copies the SDK's output to the real stdout;
- an ``initialize`` of a handshake-era revision the front knows, and the ``tools/list`` after
  it, are answered at once from ``handshake.json``: the answers the full server gives, recorded
  from it (``scripts/handshake_manifest.py``; a test checks them against the server for each
  revision). The SDK still sees both requests (its session needs the ``initialize``); its own
  responses to those two ids are dropped, after checking they equal what was sent (a
  difference is reported on stderr).

Everything else (2026-07-28 requests, tool calls, a client declaring extensions, an unknown
revision) goes to the SDK as it is. ``stop`` ends the SDK's input (``StdinRelay``'s old job):
the SDK's reader never blocks a shutdown on an idle client. The front also knows which of the
client's requests are still unanswered: a stopping server waits (``answered``) until the
answers of its calls in flight are on stdout before it ends the SDK's input.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import threading
from importlib import resources
from types import TracebackType
from typing import Any

DRAIN_TIMEOUT = 5.0  # seconds the output thread gets to copy the SDK's last lines at exit
MAX_LINE = 64 * 1024  # a longer line is no handshake: passed to the SDK without a look


def load_manifest() -> dict[str, dict[str, Any]]:
    """The recorded answers by protocol revision: {revision: {method: result}}."""
    text = resources.files("codex_mcp_wrapper.mcp").joinpath("handshake.json").read_text()
    manifest: dict[str, dict[str, Any]] = json.loads(text)["revisions"]
    return manifest


class StdioFront:
    """Use as a context manager around the whole stdio server; ``stop`` ends its input."""

    def __init__(self, manifest: dict[str, dict[str, Any]] | None = None) -> None:
        self.manifest = manifest if manifest is not None else load_manifest()
        self.revision: str | None = None  # of the initialize the front answered
        self._sent: dict[Any, Any] = {}  # id -> result the front answered with
        # Ids of the client's requests not answered yet: a stopping server writes their
        # answers before it ends (``answered``).
        self._pending: set[str] = set()
        self._answered = threading.Condition()
        self._lock = threading.Lock()  # one writer on the real stdout at a time
        self._wake_r, self._wake_w = os.pipe()
        self._stdin = self._stdout = -1
        self._to_sdk = -1
        self._out: threading.Thread | None = None

    # -- set-up and tear-down ----------------------------------------------------------------
    def __enter__(self) -> StdioFront:
        with contextlib.suppress(OSError):
            sys.stdout.flush()
            self._stdout = os.dup(1)
            from_sdk, sdk_out = os.pipe()
            os.dup2(sdk_out, 1)
            os.close(sdk_out)
            self._out = threading.Thread(
                target=self._copy_output, args=(from_sdk,), name="stdio-out", daemon=True
            )
            self._out.start()
        try:
            self._stdin = os.dup(0)
        except OSError:  # no stdin at all: the SDK reads end of input at once anyway
            return self
        sdk_in, self._to_sdk = os.pipe()
        os.dup2(sdk_in, 0)
        os.close(sdk_in)
        threading.Thread(target=self._relay, name="stdio-in", daemon=True).start()
        return self

    def stop(self) -> None:
        """End the SDK's input: its stdin reader returns, so the server can wind down."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._stdin >= 0:
            # The relay may still block reading the real stdin: keep its descriptor open.
            with contextlib.suppress(OSError):
                os.dup2(self._stdin, 0)
        if self._stdout >= 0:
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.flush()
            with contextlib.suppress(OSError):
                os.dup2(self._stdout, 1)  # the pipe's last writer is gone: the copier drains
            if self._out is not None:
                self._out.join(DRAIN_TIMEOUT)

    # -- the client's input ------------------------------------------------------------------
    def _relay(self) -> None:
        poller = select.poll()
        poller.register(self._stdin, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        pending, skipping = b"", False
        try:
            while True:
                ready = {fd for fd, _ in poller.poll()}
                if self._wake_r in ready:
                    break
                data = os.read(self._stdin, 65536)
                if not data:
                    break
                *lines, rest = data.split(b"\n")
                for line in lines:
                    if not skipping:
                        self._track(pending + line)
                        self._answer(pending + line)
                    pending, skipping = b"", False
                pending += rest
                if len(pending) > MAX_LINE:  # not a handshake: only the SDK reads it
                    pending, skipping = b"", True
                _write_all(self._to_sdk, data)
        except OSError:
            pass
        finally:
            os.close(self._to_sdk)

    def answered(self, timeout: float) -> bool:
        """Wait, at most ``timeout`` s, until every request the client sent has its answer
        written to stdout (a request line over ``MAX_LINE`` is not waited for)."""
        with self._answered:
            return self._answered.wait_for(lambda: not self._pending, timeout)

    def _track(self, line: bytes) -> None:
        """Note a request of the client's (a message with a method and an id)."""
        if b'"id"' not in line or b'"method"' not in line:
            return
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and "method" in message and "id" in message:
                with self._answered:
                    self._pending.add(json.dumps(message["id"]))

    def _settle(self, line: bytes) -> None:
        """Note an answer going to the client (a message with an id and no method)."""
        if not self._pending or b'"id"' not in line:
            return
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and "method" not in message:
                with self._answered:
                    self._pending.discard(json.dumps(message.get("id")))
                    self._answered.notify_all()

    def _answer(self, line: bytes) -> None:
        """Answer ``line`` at once when it is the handshake the front knows."""
        if b'"initialize"' not in line and b'"tools/list"' not in line:
            return  # the common case, without parsing
        try:
            message = json.loads(line)
        except ValueError:
            return
        if not isinstance(message, dict) or "id" not in message:
            return
        method, params = message.get("method"), message.get("params") or {}
        if method == "initialize" and isinstance(params, dict):
            revision = params.get("protocolVersion")
            capabilities = params.get("capabilities") or {}
            if revision in self.manifest and "extensions" not in capabilities:
                self.revision = revision
                self._send(message["id"], self.manifest[revision]["initialize"])
        elif (
            method == "tools/list"
            and self.revision is not None
            and not (isinstance(params, dict) and params.get("cursor"))
        ):
            self._send(message["id"], self.manifest[self.revision]["tools/list"])

    def _send(self, request_id: Any, result: Any) -> None:
        key = json.dumps(request_id)
        with self._lock:
            self._sent[key] = result
            self._write({"jsonrpc": "2.0", "id": request_id, "result": result})

    # -- the SDK's output --------------------------------------------------------------------
    def _copy_output(self, from_sdk: int) -> None:
        pending = b""
        try:
            while True:
                data = os.read(from_sdk, 65536)
                if not data:
                    break
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._forward(line)
            if pending:
                self._forward(pending)
        except OSError:
            pass
        finally:
            os.close(from_sdk)

    def _forward(self, line: bytes) -> None:
        with self._lock:
            if self._sent and b'"result"' in line:
                with contextlib.suppress(ValueError):
                    message = json.loads(line)
                    key = json.dumps(message.get("id")) if isinstance(message, dict) else None
                    if key in self._sent:
                        ours = self._sent.pop(key)
                        if ours != message.get("result"):
                            print(
                                "codex-mcp-wrapper: the fast handshake answered differently "
                                f"from the server (request {key}); regenerate "
                                "mcp/handshake.json with scripts/handshake_manifest.py",
                                file=sys.stderr,
                                flush=True,
                            )
                        return
            _write_all(self._stdout, line + b"\n")
        self._settle(line)

    def _write(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        _write_all(self._stdout if self._stdout >= 0 else 1, data)
        self._settle(data.rstrip(b"\n"))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
