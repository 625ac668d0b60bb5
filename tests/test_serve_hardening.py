"""``serve`` hardened: a clean stop on SIGTERM and Ctrl-C, the bearer token and where it comes
from, and the Host allowlist of a wildcard bind. Every test runs the installed command as a
real subprocess and talks to it over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from codex_mcp_wrapper.same_origin import host_allowlist, interface_addresses
from tests.helpers.procs import codex_processes, environ, wait_gone, wait_until

CLI = Path(sys.executable).with_name("codex-mcp-wrapper")
START_TIMEOUT = 60  # the server prints its address once it listens (generous: loaded CI)
STOP_TIMEOUT = 30  # a stopped server has ended its streams, cancelled its runs, reaped workers
REQUEST_TIMEOUT = 30
TOKEN = "tok-hardening-7a1c"
URL_LINE = re.compile(rb"MCP server on (http://\S+/mcp)")
PROTOCOL = "2025-06-18"  # handshake-era: a session id and a standalone GET stream
JSON_AND_SSE = {"Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": PROTOCOL,
        "capabilities": {},
        "clientInfo": {"name": "hardening", "version": "0"},
    },
}
HANGING_TASK = {"prompt": "hang", "script": [{"hang": 300}], "idle_timeout_sec": 600}


class Output:
    """A child's stdout or stderr (a pipe or a pty), read with a deadline: never a read that
    can block forever on a server that hangs."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.data = b""
        self.ended = False

    def _read_some(self, deadline: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # a pty whose other side has closed: EIO
            chunk = b""
        self.data += chunk
        self.ended = not chunk
        return True

    def wait_for(self, pattern: re.Pattern[bytes], timeout: float) -> re.Match[bytes]:
        deadline = time.monotonic() + timeout
        while not (match := pattern.search(self.data)):
            if self.ended or not self._read_some(deadline):
                raise AssertionError(f"no {pattern.pattern!r} on stderr: {self.text()}")
        return match

    def read_to_end(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while not self.ended and self._read_some(deadline):
            pass
        assert self.ended, f"output still open after exit: {self.text()}"
        return self.text()

    def text(self) -> str:
        return self.data.decode(errors="replace")


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_MCP_WRAPPER_")}
    return {**env, **extra}


def allow_tmp(state_dir: Path) -> list[str]:
    """Clients may use the test's temporary directory, where its workspaces are."""
    return ["--allow-workspace", str(state_dir.parent)]


@contextlib.contextmanager
def served(
    state_dir: Path, *args: str, env: dict[str, str] | None = None, tty: bool = False
) -> Iterator[tuple[subprocess.Popen[bytes], Output]]:
    """``codex-mcp-wrapper serve ARGS`` with stdin an open pipe nothing is written to and stderr
    a pipe (or a pty: a terminal makes stdio serving say it is ready). Killed if a test leaves
    it running."""
    master = slave = -1
    if tty:
        master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(CLI), "--state-dir", str(state_dir), "serve", *allow_tmp(state_dir), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=slave if tty else subprocess.PIPE,
        env=env or server_env(),
    )
    if tty:
        os.close(slave)
        output = Output(master)
    else:
        assert proc.stderr is not None
        output = Output(proc.stderr.fileno())
    try:
        yield proc, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        if tty:
            os.close(master)


def stop(proc: subprocess.Popen[bytes], output: Output, sig: signal.Signals) -> str:
    """Send ``sig``, wait for the exit (bounded) and return all of stderr; exit code 0."""
    proc.send_signal(sig)
    assert wait_gone([proc.pid], timeout=STOP_TIMEOUT), f"still running after {sig.name}"
    assert proc.wait(timeout=STOP_TIMEOUT) == 0, output.read_to_end(STOP_TIMEOUT)
    return output.read_to_end(STOP_TIMEOUT)


def assert_clean(stderr: str) -> None:
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr
    assert "codex-mcp-wrapper MCP server stopped." in stderr, stderr


def initialize(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        url, json=INITIALIZE, headers={**JSON_AND_SSE, **(headers or {})}, timeout=REQUEST_TIMEOUT
    )


def accepted(response: httpx.Response) -> bool:
    return response.status_code == 200 and '"serverInfo"' in response.text


def workers_of(state_dir: Path) -> list[int]:
    return [p for p in codex_processes() if str(state_dir) in environ(p).get("CODEX_HOME", "")]


def turns_in_flight(state_dir: Path, count: int) -> Callable[[], bool]:
    return lambda: len(list(state_dir.glob("runs/*/model-requests.jsonl"))) == count


async def read_to_the_end(response: httpx.Response) -> bytes:
    """The whole body; a stream cut off instead of ended raises ``httpx.RemoteProtocolError``."""
    body = b""
    async for chunk in response.aiter_raw():
        body += chunk
    return body


@pytest.mark.codex
@pytest.mark.anyio
async def test_sigterm_stops_an_http_server_with_open_sessions_and_streams_cleanly(
    state_dir: Path, workspace: Path
) -> None:
    with served(state_dir, "--transport", "http", "--port", "0", "--scripted") as (proc, out):
        url = out.wait_for(URL_LINE, START_TIMEOUT).group(1).decode()
        mission = {"workspace_root": str(workspace), "tasks": [HANGING_TASK]}
        async with contextlib.AsyncExitStack() as stack:
            # An official client's session with a mission running in the background ...
            client = await stack.enter_async_context(Client(url))
            started = await client.call_tool("mission_start", {"mission": mission})
            assert started.structured_content["status"] == "running"  # type: ignore[index]
            # ... and a raw session with its standalone GET stream and a call in flight.
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=REQUEST_TIMEOUT))
            hello = await http.post(url, json=INITIALIZE, headers=JSON_AND_SSE)
            session = {"mcp-session-id": hello.headers["mcp-session-id"]}
            session["mcp-protocol-version"] = PROTOCOL
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await http.post(url, json=note, headers={**JSON_AND_SSE, **session})).is_success
            get = await stack.enter_async_context(
                http.stream("GET", url, headers={"Accept": "text/event-stream", **session})
            )
            assert get.status_code == 200
            call: dict[str, Any] = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
            call["params"] = {"name": "batch", "arguments": {"mission": mission}}
            post = await stack.enter_async_context(
                http.stream("POST", url, json=call, headers={**JSON_AND_SSE, **session})
            )
            assert post.status_code == 200
            # Both turns reached the model: the runs are recorded and their threads mid-turn.
            both_turns = await asyncio.to_thread(
                wait_until, turns_in_flight(state_dir, 2), START_TIMEOUT
            )
            assert both_turns, "the two hanging tasks did not reach the model"
            workers = workers_of(state_dir)
            assert len(workers) == 1, workers  # both runs' threads on one warm process
            readers = [asyncio.create_task(read_to_the_end(r)) for r in (get, post)]

            stderr = await asyncio.to_thread(stop, proc, out, signal.SIGTERM)

            # Both streams were ended properly, not cut off (that would raise here).
            await asyncio.wait_for(asyncio.gather(*readers), STOP_TIMEOUT)
        assert_clean(stderr)
        assert wait_gone(workers, timeout=STOP_TIMEOUT), "Codex workers outlived the server"
        assert not workers_of(state_dir), "a Codex worker was started while stopping"
    # Both runs, the background one and the call's, are recorded as cancelled: resumable.
    summaries = [json.loads(s.read_text()) for s in state_dir.glob("runs/*/summary.json")]
    assert [s["status"] for s in summaries] == ["cancelled", "cancelled"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stdio_server_whose_client_sends_nothing_stops_at_once_on_a_signal(
    state_dir: Path, sig: signal.Signals
) -> None:
    with served(state_dir, "--scripted", tty=True) as (proc, out):
        out.wait_for(re.compile(rb"waiting for an MCP client"), START_TIMEOUT)
        assert_clean(stop(proc, out, sig))
        assert proc.stdout is not None  # stdout is the protocol's: nothing asked, nothing said
        assert Output(proc.stdout.fileno()).read_to_end(STOP_TIMEOUT) == ""


def test_the_bearer_scheme_is_case_insensitive_and_a_wrong_token_is_refused(
    state_dir: Path,
) -> None:
    env = server_env(CODEX_MCP_WRAPPER_TOKEN=TOKEN)
    with served(state_dir, "--transport", "http", "--port", "0", env=env) as (proc, out):
        url = out.wait_for(URL_LINE, START_TIMEOUT).group(1).decode()
        assert accepted(initialize(url, {"Authorization": f"bearer {TOKEN}"}))
        assert accepted(initialize(url, {"Authorization": f"BEARER {TOKEN}"}))
        for wrong in (f"Bearer {TOKEN}x", "Bearer", f"Basic {TOKEN}", TOKEN):
            refused = initialize(url, {"Authorization": wrong})
            assert refused.status_code == 401, wrong
            assert refused.headers["www-authenticate"] == "Bearer"
        assert initialize(url).status_code == 401
        assert_clean(stop(proc, out, signal.SIGTERM))


@pytest.mark.parametrize("source", ["token-file", "environment"])
def test_a_token_from_a_file_or_the_environment_is_enforced_and_not_in_the_process_list(
    state_dir: Path, tmp_path: Path, source: str
) -> None:
    if source == "token-file":
        token_file = tmp_path / "token"
        token_file.write_text(f"{TOKEN}\nthe first line only\n")
        args, env = ["--token-file", str(token_file)], server_env()
    else:
        args, env = [], server_env(CODEX_MCP_WRAPPER_TOKEN=TOKEN)
    with served(state_dir, "--transport", "http", "--port", "0", *args, env=env) as (proc, out):
        url = out.wait_for(URL_LINE, START_TIMEOUT).group(1).decode()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert b"serve" in cmdline and TOKEN.encode() not in cmdline
        assert accepted(initialize(url, {"Authorization": f"Bearer {TOKEN}"}))
        assert initialize(url).status_code == 401
        assert_clean(stop(proc, out, signal.SIGTERM))


def machine_ipv4() -> list[str]:
    """This machine's IPv4 addresses a client elsewhere could use, read from its interfaces."""
    return sorted(
        str(a)
        for a in interface_addresses()
        if isinstance(a, ipaddress.IPv4Address) and not (a.is_loopback or a.is_link_local)
    )


def test_a_wildcard_bind_accepts_the_machines_names_and_allowed_hosts_and_no_other(
    state_dir: Path,
) -> None:
    args = ("--transport", "http", "--host", "0.0.0.0", "--port", "0")
    extra = ("--allow-host", "MyName.Example", "--allow-host", "other.example:8443")
    env = server_env(CODEX_MCP_WRAPPER_TOKEN=TOKEN)
    with served(state_dir, *args, *extra, env=env) as (proc, out):
        port = int(out.wait_for(re.compile(rb":(\d+)/mcp"), START_TIMEOUT).group(1))
        shown = out.wait_for(re.compile(rb"accepted Host headers: ([^\n]*)"), START_TIMEOUT)
        url = f"http://127.0.0.1:{port}/mcp"  # always connect over loopback; vary the Host

        def status(host: str, origin: str | None = None) -> int:
            headers = {"Authorization": f"Bearer {TOKEN}", "Host": host}
            return initialize(url, headers | ({"Origin": origin} if origin else {})).status_code

        # The machine's own addresses and name (none besides loopback: only --allow-host left).
        for address in machine_ipv4():
            assert status(f"{address}:{port}") == 200, address
            assert f"{address}:{port}".encode() in shown.group(1)
        hostname = socket.gethostname()
        if hostname not in ("", "localhost"):
            assert status(f"{hostname}:{port}") == 200
        # --allow-host names, case-insensitively, on the server's port unless one is given.
        assert status(f"myname.example:{port}") == 200
        assert status(f"MyName.Example:{port}") == 200
        assert status("other.example:8443") == 200
        assert status(f"other.example:{port}") == 421
        # Anything else is a DNS-rebinding attempt.
        assert status(f"evil.example:{port}") == 421
        assert status(f"myname.example:{port + 1}") == 421
        # Origin is held to the same list.
        local = f"127.0.0.1:{port}"
        assert status(local, f"http://myname.example:{port}") == 200
        assert status(local, f"http://evil.example:{port}") == 403
        assert_clean(stop(proc, out, signal.SIGTERM))


def test_a_machine_named_in_capitals_is_also_accepted_in_lower_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Clients send host names as the user typed them, browsers in lower case.
    monkeypatch.setattr(socket, "gethostname", lambda: "MyBox")
    accepted_hosts = host_allowlist("0.0.0.0", 4105, [("Proxy.Example", 443)]).hosts
    assert {"MyBox:4105", "mybox:4105", "Proxy.Example", "proxy.example"} <= accepted_hosts


@pytest.mark.parametrize("value", ["http://x/y", "host:99999", "[::1]80", "two words"])
def test_a_malformed_allow_host_is_a_one_line_error_with_exit_code_2(
    state_dir: Path, value: str
) -> None:
    serve = ["serve", "--transport", "http", "--port", "0", "--allow-host", value]
    proc = subprocess.run(
        [str(CLI), "--state-dir", str(state_dir), *serve],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        env=server_env(),
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: --allow-host ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
