"""Serving the MCP server over stdio or streamable HTTP (loopback by default; a bearer token
and Host/Origin checks guard HTTP).

Stopping: the CLI's ``run_async`` turns SIGTERM and Ctrl-C into cancelling the serving
coroutine. Both transports then stop their server from the inside and wait for it, instead of
letting the cancellation tear through it: for HTTP, uvicorn's own graceful shutdown (open
streams ended, then the ASGI lifespan shutdown that closes the SDK's session manager); for
stdio, end of input for the SDK's stdin reader. Then the runs are cancelled and their workers
reaped, and the cancellation goes on up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import select
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.errors import EnvironmentProblem, InputError
from codex_mcp_wrapper.mcp.server import build_server

MCP_PATH = "/mcp"
LOOPBACK_NAMES = ("localhost",)
WILDCARD_BINDS = ("0.0.0.0", "::")
STDIO_BANNER = (
    "codex-mcp-wrapper MCP server on stdio: waiting for an MCP client on stdin/stdout "
    "(Ctrl-C to stop)"
)
# Once stopping, how long uvicorn lets open requests finish before cancelling them. Streams
# are ended at once (``EndStreamsOnStop``), so this only bounds a request that hangs anyway.
SHUTDOWN_GRACE = 5
_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- authentication ----------------------------------------------------------------------------
class BearerAuth:
    """Requires ``Authorization: Bearer TOKEN`` on every HTTP request. The scheme name is
    case-insensitive (RFC 7235); the token is compared in constant time (as SHA-256 digests,
    so not even its length shows in the timing)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = hashlib.sha256(token.encode()).digest()

    def accepts(self, header: bytes) -> bool:
        scheme, _, credentials = header.strip().partition(b" ")
        given = hashlib.sha256(credentials.strip()).digest()
        # Compare even when the scheme is wrong, so every refusal costs the same.
        return hmac.compare_digest(given, self.expected) and scheme.lower() == b"bearer"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not self.accepts(given):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"text/plain"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b"a bearer token is required\n"})
                return
        await self.app(scope, receive, send)


# -- Host/Origin allowlist -------------------------------------------------------------------
def parse_allowed_host(value: str) -> tuple[str, int | None]:
    """An ``--allow-host`` value (``NAME``, ``NAME:PORT``, ``ADDRESS``, ``[IPV6]:PORT``) as the
    host part of a Host header (IPv6 in brackets) and its port (None: the server's)."""
    bad = InputError(
        f"--allow-host '{value}' is not HOST or HOST:PORT (a host name or an IP address, "
        "IPv6 in brackets when a port follows; no scheme, no path)."
    )
    text = value.strip()
    port_text: str | None = None
    if text.startswith("["):
        address, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise bad
        port_text = rest[1:] if rest else None
        name = address
    elif text.count(":") > 1:  # a bare IPv6 address: no port
        name = text
    else:
        name, sep, after = text.partition(":")
        port_text = after if sep else None
    if ":" in name:
        try:
            name = f"[{ipaddress.IPv6Address(name).compressed}]"
        except ValueError:
            raise bad from None
    elif not _NAME.fullmatch(name):
        raise bad
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise bad
        port = int(port_text)
    return name, port


def _sockaddr_ip(pointer: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    raw = ctypes.string_at(pointer, 16)
    family = int.from_bytes(raw[:2], sys.byteorder) if sys.platform == "linux" else raw[1]
    if family == socket.AF_INET:
        return ipaddress.IPv4Address(raw[4:8])
    if family == socket.AF_INET6:
        return ipaddress.IPv6Address(ctypes.string_at(pointer, 24)[8:24])
    return None


class _IfAddrs(ctypes.Structure):
    pass


_IfAddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_IfAddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.c_void_p),
]


def interface_addresses() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every IP address of the machine's network interfaces (getifaddrs(3)); empty when the
    C library cannot tell."""
    try:
        libc = ctypes.CDLL(None)
        head = ctypes.POINTER(_IfAddrs)()
        if libc.getifaddrs(ctypes.byref(head)) != 0:
            return set()
    except (OSError, AttributeError):
        return set()
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    try:
        node = head
        while node:
            entry = node.contents
            if entry.ifa_addr:
                address = _sockaddr_ip(entry.ifa_addr)
                if address is not None:
                    found.add(address)
            node = entry.ifa_next
    finally:
        libc.freeifaddrs(head)
    return found


def machine_names(bind_host: str) -> list[str]:
    """For a wildcard bind: the host name and the non-loopback addresses clients may use to
    reach this machine (IPv4 for ``0.0.0.0``; IPv4 and IPv6 for ``::``, which accepts both).
    IPv6 link-local addresses need a zone id no Host header carries, so they are left out."""
    names = {socket.gethostname()} - {"", "localhost"}
    for address in interface_addresses():
        if address.is_loopback or address.is_link_local:
            continue
        if address.version == 4:
            names.add(str(address))
        elif bind_host == "::":
            names.add(f"[{address.compressed}]")
    return sorted(names)


def host_allowlist(
    bind_host: str, port: int, extra: Iterable[tuple[str, int | None]]
) -> TransportSecuritySettings:
    """Host and Origin values accepted (DNS-rebinding protection): the bind address,
    loopback, the machine's own names for a wildcard bind, and ``extra`` (``--allow-host``),
    each on the server's port unless it names one."""
    shown = f"[{bind_host}]" if ":" in bind_host else bind_host
    entries: set[tuple[str, int]] = {
        (name, port) for name in (shown, "127.0.0.1", "localhost", "[::1]")
    }
    if bind_host in WILDCARD_BINDS:
        entries |= {(name, port) for name in machine_names(bind_host)}
    for name, given_port in extra:
        entries |= {(form, given_port or port) for form in {name, name.lower()}}
    hosts: set[str] = set()
    origins: set[str] = set()
    for name, at in entries:
        hosts.add(f"{name}:{at}")
        origins |= {f"http://{name}:{at}", f"https://{name}:{at}"}
        # Default ports are left out of Host and Origin (behind a proxy on 80 or 443).
        if at == 80:
            hosts.add(name)
            origins.add(f"http://{name}")
        elif at == 443:
            hosts.add(name)
            origins.add(f"https://{name}")
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(hosts),
        allowed_origins=sorted(origins),
    )


# -- stopping ----------------------------------------------------------------------------------
async def _run_until_stopped(task: asyncio.Task[None], stop: Callable[[], None]) -> None:
    """Await ``task``. When this coroutine is cancelled (SIGTERM, Ctrl-C), ``stop`` asks the
    task to wind down by itself; wait for it (a repeated signal does not cut that short), then
    re-raise the cancellation. Cancelling the task from outside instead would skip its
    shutdown (for uvicorn: the lifespan shutdown, whose orphaned task then logs a traceback
    when ``asyncio.run`` cancels it at exit)."""
    try:
        await asyncio.shield(task)
        return
    except asyncio.CancelledError:
        if task.done():
            raise
        stop()
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error from None
        raise


class EndStreamsOnStop:
    """Ends streaming responses (SSE streams of MCP calls and the standalone GET stream)
    once the server stops: uvicorn waits for every open response before the lifespan shutdown,
    and an SSE stream never ends by itself. The app is told its client left (``http.disconnect``),
    and the response is then terminated properly, so the client sees a clean end of stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = complete = body_read = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, complete
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True
            await send(message)

        async def receive_until_stop() -> Message:
            nonlocal body_read
            if not body_read:  # the request body is read as usual
                message = await receive()
                body_read = message["type"] != "http.request" or not message.get("more_body")
                return message
            # After the body, a client can only disconnect: say so when the server stops.
            if self.stopping.is_set():
                return {"type": "http.disconnect"}
            get = asyncio.ensure_future(receive())
            stop = asyncio.ensure_future(self.stopping.wait())
            try:
                await asyncio.wait((get, stop), return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                get.cancel()
            if get.done() and not get.cancelled():
                return get.result()
            return {"type": "http.disconnect"}

        await self.app(scope, receive_until_stop, tracking_send)
        if started and not complete and self.stopping.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class _StdinRelay:
    """Puts a pipe under fd 0, filled from the real stdin by a daemon thread, so that stopping
    can end the SDK's input. The SDK reads stdin in a worker thread that cancellation has to wait
    for; on a terminal or an idle client's pipe that read never returns, so SIGTERM and Ctrl-C
    could not stop ``serve`` until the client wrote a line or closed stdin. ``stop`` makes the
    relay close the pipe: the SDK reads end of input and its reader returns."""

    def __init__(self) -> None:
        self._stdin = -1
        self._pipe_w = -1
        self._wake_r, self._wake_w = os.pipe()

    def __enter__(self) -> _StdinRelay:
        try:
            self._stdin = os.dup(0)
        except OSError:  # no stdin at all: the SDK reads end of input at once anyway
            return self
        pipe_r, self._pipe_w = os.pipe()
        os.dup2(pipe_r, 0)
        os.close(pipe_r)
        threading.Thread(target=self._relay, name="stdin-relay", daemon=True).start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _relay(self) -> None:
        poller = select.poll()
        poller.register(self._stdin, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            while True:
                ready = {fd for fd, _ in poller.poll()}
                if self._wake_r in ready:
                    break
                data = os.read(self._stdin, 65536)
                if not data:
                    break
                view = memoryview(data)
                while view:
                    view = view[os.write(self._pipe_w, view) :]
        except OSError:
            pass
        finally:
            os.close(self._pipe_w)

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


# -- serving -----------------------------------------------------------------------------------
def _configure_logging() -> None:
    # Under stdio, stdout carries the protocol: every log goes to stderr.
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


async def serve_stdio(runs: Runs) -> None:
    """Serve over stdin/stdout. Nothing but protocol ever goes to stdout; on a terminal a
    one-line banner on stderr says that the server waits for a client."""
    _configure_logging()
    if sys.stderr.isatty():
        print(STDIO_BANNER, file=sys.stderr, flush=True)
    with _StdinRelay() as relay:
        async with runs:
            task = asyncio.create_task(build_server(runs).run_stdio_async())

            def stop() -> None:
                relay.stop()
                task.cancel()

            await _run_until_stopped(task, stop)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise EnvironmentProblem(
            f"cannot listen on {host}:{port} ({exc.strerror}); another server holds it? "
            "Choose another --port."
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve_http(
    runs: Runs,
    host: str,
    port: int,
    token: str | None,
    allow_hosts: Sequence[str] = (),
    ready: asyncio.Event | None = None,
) -> None:
    if not is_loopback(host) and not token:
        raise InputError(
            f"refusing to serve on {host} without a bearer token: pass --token-file, set "
            "CODEX_MCP_WRAPPER_TOKEN or pass --token (loopback binds do not need one)."
        )
    extra = [parse_allowed_host(value) for value in allow_hosts]
    _configure_logging()
    sock = bind(host, port)
    port = sock.getsockname()[1]
    security = host_allowlist(host, port, extra)
    async with runs:
        streams = EndStreamsOnStop(
            build_server(runs).streamable_http_app(
                streamable_http_path=MCP_PATH, transport_security=security, host=host
            )
        )
        app: ASGIApp = BearerAuth(streams, token) if token else streams
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on",
            access_log=False,
            timeout_graceful_shutdown=SHUTDOWN_GRACE,
        )
        server = uvicorn.Server(config)
        # Signals stay with run_async, which cancels this coroutine; see _run_until_stopped.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        where = f"[{host}]" if ":" in host else host
        print(
            f"codex-mcp-wrapper MCP server on http://{where}:{port}{MCP_PATH}",
            file=sys.stderr,
            flush=True,
        )
        if not is_loopback(host) or extra:
            print(
                f"accepted Host headers: {', '.join(security.allowed_hosts)} "
                "(add names with --allow-host)",
                file=sys.stderr,
                flush=True,
            )
        task = asyncio.create_task(server.serve(sockets=[sock]))

        def stop() -> None:
            server.should_exit = True  # what uvicorn's own signal handler does
            streams.stop()

        try:
            if ready is not None:
                ready.set()
            await _run_until_stopped(task, stop)
        finally:
            sock.close()
