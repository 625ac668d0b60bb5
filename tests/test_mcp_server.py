"""The MCP facade, driven by the official mcp client over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp import types as mt
from mcp.client.streamable_http import streamable_http_client

from tests.helpers.mcp_client import http_server, initialize_line, server_argv, stdio_client
from tests.helpers.procs import codex_processes, environ, wait_gone, wait_until

pytestmark = pytest.mark.anyio
OLD_CODEX_PROPERTIES = {
    "prompt",
    "approval-policy",
    "sandbox",
    "cwd",
    "model",
    "config",
    "base-instructions",
    "developer-instructions",
    "compact-prompt",
}


def ours(state_dir: Path) -> list[int]:
    return [p for p in codex_processes() if str(state_dir) in environ(p).get("CODEX_HOME", "")]


def requests_of(state_dir: Path, run_id: str) -> list[dict[str, Any]]:
    path = state_dir / "runs" / run_id / "model-requests.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_the_codex_tools_keep_the_schemas_of_the_removed_codex_mcp_server(
    state_dir: Path, workspace: Path
) -> None:
    async with stdio_client(state_dir, "--scripted", "--workspace", str(workspace)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {
        "codex",
        "codex-reply",
        "batch",
        "mission_start",
        "mission_status",
        "mission_wait",
        "mission_cancel",
        "reply",
        "runs_list",
    } <= set(tools)
    codex = tools["codex"]
    # the old ones, plus one optional addition each way (isolation: worktree and its diff)
    assert set(codex.input_schema["properties"]) == OLD_CODEX_PROPERTIES | {"isolation"}
    assert codex.input_schema["required"] == ["prompt"]
    output = codex.output_schema
    assert output is not None and set(output["properties"]) == {"threadId", "content", "diff"}
    assert output["required"] == ["threadId", "content"]
    reply = tools["codex-reply"]
    assert {"prompt", "threadId", "conversationId"} <= set(reply.input_schema["properties"])
    for name in ("mission_status", "mission_wait", "runs_list"):
        assert tools[name].annotations and tools[name].annotations.read_only_hint is True
    assert tools["codex"].annotations and not tools["codex"].annotations.read_only_hint


async def test_codex_then_codex_reply_continue_one_thread_even_after_a_restart(
    state_dir: Path, workspace: Path
) -> None:
    args = ("--scripted", "--workspace", str(workspace))
    async with stdio_client(state_dir, *args) as client:
        first = await client.call_tool("codex", {"prompt": "remember 42"})
        assert not first.is_error, first.content
        thread = first.structured_content["threadId"]  # type: ignore[index]
        assert first.structured_content["content"] == "echo: remember 42"  # type: ignore[index]
        assert first.content[0].text == "echo: remember 42"  # type: ignore[union-attr]
        second = await client.call_tool("codex-reply", {"prompt": "and now?", "threadId": thread})
        assert second.structured_content == {"threadId": thread, "content": "echo: and now?"}
    # A new server process on the same state dir: the thread is resumed from disk.
    async with stdio_client(state_dir, *args) as client:
        third = await client.call_tool(
            "codex-reply", {"prompt": "still there?", "conversationId": thread}
        )
        assert not third.is_error, third.content
        assert third.structured_content["threadId"] == thread  # type: ignore[index]
        runs = (await client.call_tool("runs_list", {})).structured_content["runs"]  # type: ignore[index]
    last = requests_of(state_dir, runs[0]["run_id"])[-1]
    texts = json.dumps(last["body"]["input"])
    assert "remember 42" in texts and "and now?" in texts and "still there?" in texts
    assert last["headers"]["thread-id"] == thread


async def test_codex_reply_to_an_unknown_thread_is_a_clear_error(
    state_dir: Path, workspace: Path
) -> None:
    async with stdio_client(state_dir, "--scripted") as client:
        result = await client.call_tool("codex-reply", {"prompt": "x", "threadId": "nope"})
    assert result.is_error
    assert "no Codex thread 'nope' is known" in result.content[0].text  # type: ignore[union-attr]


async def test_batch_returns_the_original_contract(state_dir: Path, workspace: Path) -> None:
    mission = {
        "mission_id": "contract",
        "workspace_root": str(workspace),
        "tasks": [
            {
                "id": "good",
                "prompt": "fine",
                "artifacts": ["*.md"],
                "script": [{"shell": "echo doc > notes.md"}, {"say": "wrote"}],
                "sandbox": "workspace-write",
            },
            {"id": "bad", "prompt": "boom", "retries": 0, "script": [{"fail": 400}]},
        ],
    }
    async with stdio_client(state_dir, "--scripted") as client:
        result = await client.call_tool("batch", {"mission": mission})
    data = result.structured_content
    assert data is not None and not result.is_error
    assert (data["mission_id"], data["status"]) == ("contract", "failed")
    good, bad = data["results"]
    assert good["task_index"] == 0 and good["task_id"] == "good" and good["status"] == "ok"
    assert good["stdout"] == good["output"] == "wrote"
    assert good["threadId"] == good["conversationId"] and good["threadId"]
    assert good["worker"] in ("w1", "w2") and good["duration_ms"] > 0
    assert good["artifacts"] == ["notes.md"]
    assert bad["status"] == "failed"
    assert data["errors"] == [
        {
            "task_index": 1,
            "task_id": "bad",
            "status": "failed",
            "message": data["errors"][0]["message"],
        }
    ]
    assert "scripted HTTP 400" in data["errors"][0]["message"]


async def test_batch_of_an_all_ok_mission_has_no_errors_and_takes_a_path(
    state_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("workspace_root: ws\ntasks:\n  - prompt: one\n  - prompt: two\n")
    async with stdio_client(state_dir, "--scripted") as client:
        result = await client.call_tool("batch", {"mission": str(path)})
    data = result.structured_content
    assert data and data["status"] == "ok" and data["errors"] == []
    assert [r["stdout"] for r in data["results"]] == ["echo: one", "echo: two"]


async def test_an_invalid_mission_is_an_error_result_with_the_reason(state_dir: Path) -> None:
    async with stdio_client(state_dir, "--scripted") as client:
        result = await client.call_tool(
            "batch", {"mission": {"tasks": [{"prompt": "x", "oops": 1}]}}
        )
    assert result.is_error
    assert "unknown field 'oops'" in result.content[0].text  # type: ignore[union-attr]


async def test_progress_and_log_notifications_are_standard(
    state_dir: Path, workspace: Path
) -> None:
    progress: list[tuple[float, float | None, str | None]] = []
    logs: list[str] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, total, message))

    async def on_log(params: mt.LoggingMessageNotificationParams) -> None:
        logs.append(str(params.data))

    mission = {
        "workspace_root": str(workspace),
        "tasks": [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y"}],
    }
    async with stdio_client(
        state_dir, "--scripted", logging_callback=on_log, log_level="info"
    ) as client:
        await client.call_tool("batch", {"mission": mission}, progress_callback=on_progress)
    assert progress[-1][:2] == (2, 2)
    messages = [m for _, _, m in progress]
    assert "a: ok" in messages and "b: ok" in messages
    assert any(m and m.startswith("a: running on w") for m in messages)
    assert "a: ok" in logs


async def test_a_long_mission_is_started_waited_on_in_slices_and_cancelled(
    state_dir: Path, workspace: Path
) -> None:
    mission = {
        "workspace_root": str(workspace),
        "tasks": [
            {"id": "quick", "prompt": "q"},
            {"id": "stuck", "prompt": "s", "script": [{"hang": 300}], "idle_timeout_sec": 600},
        ],
    }
    async with stdio_client(state_dir, "--scripted") as client:
        started = await client.call_tool("mission_start", {"mission": mission})
        run_id = started.structured_content["run_id"]  # type: ignore[index]
        waited = await client.call_tool("mission_wait", {"run_id": run_id, "timeout": 1.5})
        state = waited.structured_content
        assert state is not None and state["done"] is False and state["status"] == "running"
        assert wait_until(lambda: len(ours(state_dir)) >= 1, timeout=30)
        workers = ours(state_dir)
        cancelled = await client.call_tool("mission_cancel", {"run_id": run_id})
        data = cancelled.structured_content
        assert data is not None and data["cancelled"] is True and data["status"] == "cancelled"
        statuses = {t["task_id"]: t["status"] for t in data["tasks"]}
        assert statuses == {"quick": "ok", "stuck": "cancelled"}
        assert ours(state_dir) == workers  # its turn was stopped; the process stays warm
        status = await client.call_tool("mission_status", {"run_id": run_id})
        assert status.structured_content["status"] == "cancelled"  # type: ignore[index]
        summary = await client.read_resource(f"codex-wrapper://runs/{run_id}/summary")
        assert json.loads(summary.contents[0].text)["run_id"] == run_id  # type: ignore[union-attr]
        transcript = await client.read_resource(
            f"codex-wrapper://runs/{run_id}/tasks/quick/transcript"
        )
        assert '"method": "turn/completed"' in transcript.contents[0].text  # type: ignore[union-attr]


async def test_a_cancelled_call_stops_its_turn_and_its_warm_worker_serves_the_next(
    state_dir: Path, workspace: Path
) -> None:
    mission = {
        "workspace_root": str(workspace),
        "tasks": [{"prompt": "s", "script": [{"hang": 300}], "idle_timeout_sec": 600}],
    }

    def turn_in_flight() -> bool:  # the model has the request: Codex is mid-turn
        return any((state_dir / "runs").glob("*/model-requests.jsonl"))

    async with stdio_client(state_dir, "--scripted") as client:
        call = asyncio.create_task(client.call_tool("batch", {"mission": mission}))
        assert await asyncio.to_thread(wait_until, turn_in_flight, 30)
        workers = ours(state_dir)
        assert len(workers) == 1
        call.cancel()  # the client sends notifications/cancelled
        with pytest.raises(asyncio.CancelledError):
            await call
        (run_dir,) = (state_dir / "runs").iterdir()

        def recorded_cancelled() -> bool:
            path = run_dir / "summary.json"
            return path.exists() and json.loads(path.read_text())["status"] == "cancelled"

        assert await asyncio.to_thread(wait_until, recorded_cancelled, 15)
        # The turn was interrupted, not the process: the next call runs on it at once.
        after = await client.call_tool("codex", {"prompt": "next", "cwd": str(workspace)})
        assert not after.is_error, after.content
        assert ours(state_dir) == workers
    assert await asyncio.to_thread(wait_gone, workers, 15)


async def test_an_approval_becomes_a_standard_elicitation_and_a_decline_is_honoured(
    state_dir: Path, workspace: Path
) -> None:
    asked: list[str] = []

    async def elicit(context: Any, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        asked.append(params.message)
        return mt.ElicitResult(action="accept", content={"approve": False})

    mission = {
        "workspace_root": str(workspace),
        "tasks": [
            {
                "prompt": "p",
                "approval_policy": "on-request",
                "script": [{"escalate": "touch escaped.txt"}, {"say": "after: {last_output}"}],
            }
        ],
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
        result = await client.call_tool("batch", {"mission": mission})
    assert result.structured_content["status"] == "ok"  # type: ignore[index]
    assert len(asked) == 1 and "touch escaped.txt" in asked[0]
    assert not (workspace / "escaped.txt").exists()


async def test_without_elicitation_an_approval_is_declined_by_policy(
    state_dir: Path, workspace: Path
) -> None:
    mission = {
        "workspace_root": str(workspace),
        "tasks": [
            {
                "prompt": "p",
                "approval_policy": "on-request",
                "script": [{"escalate": "touch escaped.txt"}, {"say": "after"}],
            }
        ],
    }
    async with stdio_client(state_dir, "--scripted", "--allow-danger-full-access") as client:
        result = await client.call_tool("batch", {"mission": mission})
    assert result.structured_content["status"] == "ok"  # type: ignore[index]
    assert not (workspace / "escaped.txt").exists()
    # the result says that the policy, not the client, decided
    note = result.content[-1].text  # type: ignore[union-attr]
    assert note == (
        "Codex asked to run `touch escaped.txt` (The scripted model asks to run this outside "
        "the sandbox.); this client could not be asked, so the server's policy declined it "
        "(serve --auto-approve accepts)."
    )
    run_id = result.structured_content["run_id"]  # type: ignore[index]
    events = (state_dir / "runs" / run_id / "tasks" / "task-1" / "events.jsonl").read_text()
    records = [json.loads(line) for line in events.splitlines()]
    (approval,) = [r["params"] for r in records if r["method"] == "wrapper/approval"]
    assert approval["decision"] == "decline"
    assert approval["request"] == "item/commandExecution/requestApproval"
    declined = [
        r
        for r in records
        if r["method"] == "item/completed" and r["params"]["item"].get("status") == "declined"
    ]
    assert declined


async def test_http_transport_serves_batch_and_checks_origin_and_token(
    state_dir: Path, workspace: Path
) -> None:
    mission = {"workspace_root": str(workspace), "tasks": [{"prompt": "over http"}]}
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
    import socket

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
    assert sys.executable


async def test_a_cancelled_mission_is_resumed_over_mcp_in_the_same_run(
    state_dir: Path, workspace: Path
) -> None:
    mission = {
        "workspace_root": str(workspace),
        "defaults": {"sandbox": "workspace-write"},
        "tasks": [
            {"id": "done", "prompt": "d"},
            {
                "id": "slow",
                "prompt": "s",
                "script": [{"shell": "sleep 30"}, {"say": "resumed and finished"}],
            },
        ],
    }

    def slow_is_running_its_command() -> bool:
        return any(
            '"type": "commandExecution"' in p.read_text()
            for p in state_dir.glob("runs/*/tasks/slow/events.jsonl")
        )

    async with stdio_client(state_dir, "--scripted") as client:
        started = await client.call_tool("mission_start", {"mission": mission})
        run_id = started.structured_content["run_id"]  # type: ignore[index]
        assert await asyncio.to_thread(wait_until, slow_is_running_its_command, 30)
        await client.call_tool("mission_cancel", {"run_id": run_id})
        resumed = await client.call_tool("mission_resume", {"run_id": run_id})
        assert resumed.structured_content == {"run_id": run_id, "status": "running"}
        state: dict[str, Any] = {}
        for _ in range(10):
            waited = await client.call_tool("mission_wait", {"run_id": run_id, "timeout": 10})
            state = waited.structured_content or {}
            if state.get("done"):
                break
    assert state["status"] == "ok"
    finals = {t["task_id"]: t["final_message"] for t in state["tasks"]}
    assert finals == {"done": "echo: d", "slow": "resumed and finished"}


async def test_mission_secrets_are_redacted_from_mcp_results(
    state_dir: Path, workspace: Path
) -> None:
    secret = "tok-DO-NOT-LEAK-4242"
    mission = {
        "workspace_root": str(workspace),
        "tasks": [
            {
                "prompt": "p",
                "env": {"SERVICE_TOKEN": secret},
                "script": [{"shell": "echo $SERVICE_TOKEN"}, {"say": "token: {last_output}"}],
            }
        ],
    }
    async with stdio_client(state_dir, "--scripted") as client:
        result = await client.call_tool("batch", {"mission": mission})
        run_id = result.structured_content["run_id"]  # type: ignore[index]
        status = await client.call_tool("mission_status", {"run_id": run_id})
    text = json.dumps(result.structured_content) + json.dumps(status.structured_content)
    assert secret not in text
    assert "[REDACTED]" in result.structured_content["results"][0]["stdout"]  # type: ignore[index]
