"""What keeps other web sites out of the wrapper's HTTP servers (``serve`` over HTTP, the web
UI of ``ui`` and ``serve --ui``): the Host/Origin allowlist (``host_allowlist``: the bind
address, loopback, the machine's own names for a wildcard bind, and ``--allow-host`` values
read by ``parse_allowed_host``) and ``SameOriginGuard``, the ASGI guard the pages sit behind.

Two attacks from a page the user happens to visit, and what stops each:

- DNS rebinding: ``evil.example`` resolves to 127.0.0.1, so the attacker's script reads and
  posts to our pages as if they were its own. Its requests carry ``Host: evil.example:PORT``:
  a Host not in the allowlist is refused (421).
- Cross-site request forgery: another site's page posts a form (or a ``fetch``) to
  ``http://127.0.0.1:PORT/runs/R/tasks/T/apply``. A browser says where a request comes from:
  a request that changes state (any method but GET, HEAD, OPTIONS) must come from one of the
  allowlist's origins by its ``Origin`` header, else by its ``Referer``; another origin, or
  ``Origin: null`` (a sandboxed frame, a ``data:`` page), is refused (403), and so is a request
  with neither whose ``Sec-Fetch-Site`` says another site sent it. A request with none of the
  three is not a browser's (every browser sends ``Origin`` with a POST): a script such as
  ``curl`` on this machine, which could do what the page does anyway; it is let through.
  Any request with an ``Origin`` from elsewhere is refused, as the MCP SDK's check does.

The guard also forbids framing the pages (``frame-ancestors 'none'``), so another site cannot
show them under its own buttons (clickjacking) and have the user's clicks post our forms.

The guard needs no cookie to work: the ``ui`` pages set none, and ``serve --ui``'s session
cookie is SameSite=Strict on top of it.
"""

from __future__ import annotations

import ctypes
import ipaddress
import re
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codex_mcp_wrapper.errors import InputError

LOOPBACK_NAMES = ("localhost",)
WILDCARD_BINDS = ("0.0.0.0", "::")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # read only: no state changes
# What Sec-Fetch-Site says of a request another site's page sent ("same-site" includes another
# port of this machine: another local server's page).
FOREIGN_FETCH_SITES = frozenset({b"cross-site", b"same-site"})
NO_FRAMING = [
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
]
_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (``localhost`` or a loopback address)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Allowlist:
    """The Host header values and the origins a server accepts."""

    hosts: frozenset[str]
    origins: frozenset[str]


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
    bind_host: str, port: int, extra: Iterable[tuple[str, int | None]] = ()
) -> Allowlist:
    """Host and Origin values accepted: the bind address, loopback, the machine's own names
    for a wildcard bind, and ``extra`` (``--allow-host``), each on the server's port unless it
    names one."""
    shown = f"[{bind_host}]" if ":" in bind_host else bind_host
    entries: set[tuple[str, int]] = {
        (name, port) for name in (shown, "127.0.0.1", "localhost", "[::1]")
    }
    if bind_host in WILDCARD_BINDS:
        entries |= {(name, port) for name in machine_names(bind_host)}
    entries |= {(name, given_port or port) for name, given_port in extra}
    # Host names are case-insensitive and clients tend to send them in lower case: a machine
    # named MyBox is reached as mybox. Each name is accepted as given and in lower case.
    entries |= {(name.lower(), at) for name, at in entries}
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
    return Allowlist(frozenset(hosts), frozenset(origins))


def refusal(allowed: Allowlist, method: str, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
    """Why a request is refused (its status and one sentence), or None: it may go on."""
    if headers.get(b"host", b"").decode("latin-1") not in allowed.hosts:
        return 421, "this server answers only to its own addresses (Host not allowed)"
    origin = headers.get(b"origin")
    if origin is not None and origin.decode("latin-1") not in allowed.origins:
        return 403, "a page of another site cannot use this server (Origin not allowed)"
    if method in SAFE_METHODS or origin is not None:
        return None
    referer = headers.get(b"referer")
    if referer is not None:
        parts = urlsplit(referer.decode("latin-1"))
        host = parts.netloc.rpartition("@")[2]
        if f"{parts.scheme}://{host}" not in allowed.origins:
            return 403, "a page of another site cannot use this server (Referer not allowed)"
        return None
    if headers.get(b"sec-fetch-site") in FOREIGN_FETCH_SITES:
        return 403, "a page of another site cannot use this server (sent cross-site)"
    return None


class SameOriginGuard:
    """The pages' guard: a request passes only for one of ``allowed``'s hosts, and a request
    that changes state only from one of its origins (see the module's docstring); every answer
    forbids framing."""

    def __init__(self, app: ASGIApp, allowed: Allowlist) -> None:
        self.app = app
        self.allowed = allowed

    def __repr__(self) -> str:
        return f"<SameOriginGuard [{len(self.allowed.hosts)} hosts]>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = refusal(self.allowed, scope["method"], dict(scope.get("headers") or []))
        if refused is not None:
            status, sentence = refused
            await _answer(send, status, sentence)
            return

        async def unframed(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *NO_FRAMING]}
            await send(message)

        await self.app(scope, receive, unframed)


async def _answer(send: Send, status: int, sentence: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *NO_FRAMING],
        }
    )
    await send({"type": "http.response.body", "body": f"{sentence}.\n".encode()})
