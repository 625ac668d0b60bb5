"""Identities over HTTP: each bearer token is a client that sees and touches only its own runs,
threads, tasks and resources; another's is, to it, a run that does not exist; an admin token
sees them all; a session cannot be taken over with another token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from tests.security.conftest import serving, text

pytestmark = pytest.mark.anyio
TOKENS = "alice tok-alice-0123456789\nbob tok-bob-0123456789\nroot tok-root-0123456789 admin\n"


async def test_two_clients_cannot_see_or_touch_each_others_runs(
    state_dir: Path, served_dir: Path, tmp_path: Path, codex_bin: str
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# name token [admin]\n" + TOKENS)
    mission = {"mission_id": "alices", "tasks": [{"id": "t", "prompt": "alice's secret plan"}]}
    flags = ("--scripted", "--tokens-file", str(tokens))
    with serving("http", state_dir, served_dir, codex_bin, *flags) as server:
        async with server.client("tok-alice-0123456789") as alice:
            done = (await alice.call_tool("batch", {"mission": mission})).structured_content
            assert done and done["status"] == "ok"
            run_id, thread = done["run_id"], done["results"][0]["threadId"]
            mine = await alice.call_tool("runs_list", {})
            assert run_id in text(mine)

        async with server.client("tok-bob-0123456789") as bob:
            seen = await attempts(bob, run_id, thread)
            unknown = await attempts(bob, "20200101-000000-abcdef", "no-such-thread")
        async with server.client("tok-root-0123456789") as admin:
            everything = await admin.call_tool("runs_list", {})
            status = await admin.call_tool("mission_status", {"run_id": run_id})

    for name, said in seen.items():
        assert "alice's secret plan" not in said, f"{name} showed alice's run to bob: {said}"
        # Not found, not forbidden: bob cannot tell alice's run from none.
        assert said == unknown[name].replace("20200101-000000-abcdef", run_id).replace(
            "no-such-thread", thread
        ), f"{name}: {said!r} vs {unknown[name]!r}"
    assert run_id in text(everything)
    assert not status.is_error and "alices" in text(status)


async def attempts(client: Any, run_id: str, thread: str) -> dict[str, str]:
    """What a client gets for every way of reaching a run and its thread."""
    calls = {
        "runs_list": ("runs_list", {}),
        "mission_status": ("mission_status", {"run_id": run_id}),
        "mission_wait": ("mission_wait", {"run_id": run_id, "timeout": 0}),
        "mission_cancel": ("mission_cancel", {"run_id": run_id}),
        "mission_resume": ("mission_resume", {"run_id": run_id}),
        "reply": ("reply", {"run_id": run_id, "task_id": "t", "prompt": "leak it"}),
        "codex-reply": ("codex-reply", {"threadId": thread, "prompt": "leak it"}),
    }
    said = {}
    for name, (tool, arguments) in calls.items():
        result = await client.call_tool(tool, arguments)
        said[name] = text(result)
        if name != "runs_list":
            assert result.is_error, f"{name} worked for another client: {said[name]}"
    for part in ("summary", "tasks/t/transcript", "tasks/t/final"):
        try:
            read = await client.read_resource(f"codex-wrapper://runs/{run_id}/{part}")
            said[part] = str(read.contents[0])
        except MCPError as exc:
            said[part] = str(exc)
    return said


async def test_a_session_cannot_be_used_with_another_token(
    state_dir: Path, served_dir: Path, tmp_path: Path, codex_bin: str
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKENS)
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "alice", "version": "0"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    with serving("http", state_dir, served_dir, codex_bin, "--tokens-file", str(tokens)) as server:
        assert server.url
        async with httpx.AsyncClient(timeout=30) as http:
            opened = await http.post(
                server.url,
                json=initialize,
                headers={**accept, "Authorization": "Bearer tok-alice-0123456789"},
            )
            session = opened.headers["mcp-session-id"]
            listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
            hijack = await http.post(
                server.url,
                json=listing,
                headers={
                    **accept,
                    "Authorization": "Bearer tok-bob-0123456789",
                    "Mcp-Session-Id": session,
                    "Mcp-Protocol-Version": "2025-06-18",
                },
            )
            nobody = await http.post(server.url, json=listing, headers=accept)
    assert opened.status_code == 200
    assert hijack.status_code == 404
    assert nobody.status_code == 401
