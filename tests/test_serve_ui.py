"""``serve --ui``: the web UI served by the MCP server over the runs of its clients. Over HTTP
on the server's own port behind the same bearer tokens (each client sees its own runs; a
request without a token is refused), driven by the official ``mcp`` client and by chromium;
over stdio on a loopback port of its own, printed on stderr. A server without ``--ui`` loads
none of the UI's modules."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client

from tests.helpers.cli import REPO
from tests.helpers.mcp_client import START_TIMEOUT, http_server, raw_session, server_argv
from tests.helpers.mcp_matrix import open_client
from tests.test_ui import LIVE, browser  # noqa: F401 - the fixture

ALICE, BOB = "alice-token-0123456789", "bob-token-0123456789"
REVISION = "2026-07-28"
EVIL = "http://evil.example/"
CALL_TIMEOUT = 120.0  # a codex call on the scripted model, Codex starting included


async def codex_call(url: str, token: str, prompt: str) -> dict[str, Any]:
    """A ``codex`` call over streamable HTTP as the client ``token`` names; its result."""
    origin = url.removesuffix("/mcp")
    headers = {"Authorization": f"Bearer {token}", "Origin": origin}
    async with httpx2.AsyncClient(headers=headers, timeout=120) as http:
        transport = streamable_http_client(url, http_client=http)
        async with open_client(transport, REVISION) as client:
            result = await client.call_tool("codex", {"prompt": prompt})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def get(url: str, **headers: str) -> tuple[int, str]:
    """The status and body of a GET."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def post(url: str, **headers: str) -> int:
    """The status of an empty form's POST, redirects not followed."""

    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
            return None

    request = urllib.request.Request(url, data=b"", headers=headers, method="POST")
    try:
        with urllib.request.build_opener(Stay).open(request) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def run_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-run="([^"]+)"', html)


def test_serve_http_ui_shows_each_client_its_runs_started_over_mcp_and_refuses_no_token(
    tmp_path: Path,
    browser: object,  # noqa: F811 - the fixture
) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"alice {ALICE}\nbob {BOB}\n")
    tokens.chmod(0o600)
    state = tmp_path / "state"
    with http_server(state, "--scripted", "--ui", "--tokens-file", str(tokens)) as (proc, url):
        base = url.removesuffix("/mcp")
        # On a thread of its own: Playwright's sync API holds this thread's event loop.
        with ThreadPoolExecutor(1) as pool:
            call = pool.submit(asyncio.run, codex_call(url, ALICE, "hello from alice"))
            done = call.result(timeout=CALL_TIMEOUT)
        assert "hello from alice" in str(done)
        status, _ = get(f"{base}/")
        assert status == 401  # no token: refused, as MCP requests are
        status, _ = get(f"{base}/", Authorization="Bearer not-a-token")
        assert status == 401
        status, _ = get(f"{base}/", Authorization=f"Bearer {ALICE}", Host="evil.example")
        assert status == 421  # DNS rebinding: a name the server does not answer to
        status = post(f"{base}/runs/any/cancel", Authorization=f"Bearer {ALICE}", Referer=EVIL)
        assert status == 403  # another site's form, even one whose browser hides its Origin
        status, html = get(f"{base}/", Authorization=f"Bearer {ALICE}")
        assert status == 200
        (run_id,) = run_ids(html)
        status, html = get(f"{base}/", Authorization=f"Bearer {BOB}")
        assert (status, run_ids(html)) == (200, [])  # another client's run is not shown
        status, _ = get(f"{base}/runs/{run_id}", Authorization=f"Bearer {BOB}")
        assert status == 404  # nor reachable by its id

        context = browser.new_context()  # a browser: no bearer header, it signs in
        page = context.new_page()
        page.goto(f"{base}/runs/{run_id}")
        page.wait_for_url("**/login")
        page.get_by_label("Token").fill("not-a-token")
        page.get_by_role("button", name="Sign in").click()
        assert "not a token of this server" in page.get_by_role("alert").inner_text()
        page.get_by_label("Token").fill(ALICE)
        page.get_by_role("button", name="Sign in").click()
        page.click(f'#runs tr[data-run="{run_id}"] a')
        page.wait_for_selector("#run-status.ok", timeout=LIVE)
        assert page.locator("#tasks .status.ok").count() == 1
        assert "hello from alice" in page.inner_text("#tasks")
        (cookie,) = context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert ALICE not in cookie["value"]  # a session id, never the token
        status, _ = get(f"{base}/", Cookie=f"{cookie['name']}=guessed")
        assert status == 401
        page.goto(f"{base}/")  # the runs list's event stream is open while the server stops
        proc.terminate()
        assert proc.wait(timeout=START_TIMEOUT) == 0
        context.close()


def test_serve_stdio_ui_serves_the_page_on_a_loopback_port_beside_the_server(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        state = tmp_path / "state"
        async with raw_session(state, "--scripted", "--ui", stderr=subprocess.PIPE) as session:
            assert session.proc.stderr is not None
            line = await asyncio.wait_for(session.proc.stderr.readline(), START_TIMEOUT)
            match = re.search(r"UI on (http://127\.0\.0\.1:\d+/)", line.decode())
            assert match, line
            called = await session.request(
                "tools/call", {"name": "codex", "arguments": {"prompt": "hello over stdio"}}
            )
            assert not called["result"].get("isError"), called
            status, html = await asyncio.to_thread(get, match.group(1))
            assert status == 200 and len(run_ids(html)) == 1, html
            status = await asyncio.to_thread(post, f"{match.group(1)}runs/x/cancel", Origin=EVIL)
            assert status == 403  # another site's form
            status, _ = await asyncio.to_thread(get, match.group(1), Host="evil.example")
            assert status == 421  # DNS rebinding

    asyncio.run(body())


@pytest.mark.parametrize("ui", [False, True], ids=["without --ui", "with --ui"])
def test_a_stdio_server_loads_the_ui_only_with_ui(tmp_path: Path, ui: bool) -> None:
    argv = server_argv(tmp_path / "state", "--scripted", *(["--ui"] if ui else []))
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv[1:]],
        input="",  # end of input: the server stops at once
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=START_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr, re.M))
    assert "codex_mcp_wrapper.mcp.transports" in modules  # the server did start
    loaded = {m for m in modules if m == "jinja2" or m.startswith("codex_mcp_wrapper.ui")}
    assert bool(loaded) == ui, sorted(loaded)
