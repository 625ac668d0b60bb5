"""What the MCP server does differently by transport or protocol revision, driven by the
official ``mcp`` client: the HTTP transport's Origin and token checks, how it refuses to start,
stdio's clean stdout, and elicitation mid-call (handshake revisions only; on 2026-07-28 it is the
input-required round trip: tests/test_mcp_tasks.py). The behaviour that is the same everywhere
runs over every transport and revision in tests/test_mcp_server.py."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp import types as mt
from mcp.client.streamable_http import streamable_http_client

from tests.helpers.mcp_client import http_server, initialize_line, server_argv, stdio_client
from tests.helpers.missions import mission_data

pytestmark = pytest.mark.anyio


async def test_an_approval_becomes_a_standard_elicitation_and_a_decline_is_honoured(
    state_dir: Path, workspace: Path
) -> None:
    asked: list[str] = []

    async def elicit(context: Any, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        asked.append(params.message)
        return mt.ElicitResult(action="accept", content={"approve": False})

    task = {
        "prompt": "p",
        "approval_policy": "on-request",
        "script": [{"escalate": "touch escaped.txt"}, {"say": "after: {last_output}"}],
    }
    # Handshake-era clients (2025-06-18) take server-initiated elicitation/create requests;
    # the 2026-07-28 protocol forbids them, and there the configured policy applies.
    async with stdio_client(
        state_dir,
        "--scripted",
        "--allow-danger-full-access",  # the owner lets clients approve escalations
        elicitation_callback=elicit,
        mode="legacy",
    ) as client:
        result = await client.call_tool("batch", {"mission": mission_data(workspace, [task])})
    assert result.structured_content["status"] == "ok"  # type: ignore[index]
    assert len(asked) == 1 and "touch escaped.txt" in asked[0]
    assert not (workspace / "escaped.txt").exists()


async def test_http_transport_serves_batch_and_checks_origin_and_token(
    state_dir: Path, workspace: Path
) -> None:
    mission = mission_data(workspace, [{"prompt": "over http"}])
    with http_server(state_dir, "--scripted") as (_, url):
        async with Client(url) as client:
            result = await client.call_tool("batch", {"mission": mission})
        assert result.structured_content["results"][0]["stdout"] == "echo: over http"  # type: ignore[index]
        async with httpx.AsyncClient() as http:
            evil = await http.post(
                url,
                json={},
                headers={"Origin": "http://evil.example", "Content-Type": "application/json"},
            )
        assert evil.status_code in (400, 403)
    with http_server(state_dir, "--scripted", env={"CODEX_MCP_WRAPPER_TOKEN": "s3cret-token"}) as (
        _,
        url,
    ):
        async with httpx.AsyncClient() as http:
            denied = await http.post(url, json={})
        assert denied.status_code == 401
        headers = {"Authorization": "Bearer s3cret-token"}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http_client:
            transport = streamable_http_client(url, http_client=http_client)
            async with Client(transport) as client:
                tools = await client.list_tools()
        assert any(t.name == "batch" for t in tools.tools)


def test_a_non_loopback_bind_without_a_token_is_refused(state_dir: Path) -> None:
    proc = subprocess.run(
        server_argv(state_dir, "--transport", "http", "--host", "0.0.0.0", "--port", "0"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "refusing to serve on 0.0.0.0 without a bearer token" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_a_busy_port_is_a_clear_error(state_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = subprocess.run(
            server_argv(state_dir, "--transport", "http", "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr


def test_stdio_keeps_stdout_for_the_protocol(state_dir: Path) -> None:
    """Anything on stdout that is not JSON-RPC would break clients."""
    proc = subprocess.run(
        server_argv(state_dir, "--scripted"),
        input=initialize_line(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines and all(json.loads(line)["jsonrpc"] == "2.0" for line in lines)
