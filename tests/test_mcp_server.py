"""The MCP facade's behaviour, the same on every transport and protocol revision: each test
runs in every cell of stdio/HTTP x 2025-06-18/2026-07-28 (the ``connect`` fixture,
tests/helpers/mcp_matrix.py), driven by the official ``mcp`` client against one shared
``serve --scripted`` per cell. What differs by transport or revision is in
tests/test_mcp_transports.py, tests/test_mcp_tasks.py and tests/test_mcp_compat.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from mcp import types as mt

from tests.helpers.mcp_matrix import MatrixServer, codex_of
from tests.helpers.missions import mission_data
from tests.helpers.procs import wait_until

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
SEEN_WITHIN = 30.0  # seconds for a run's files to show what a test waits for


def requests_of(state_dir: Path, run_id: str) -> list[dict[str, Any]]:
    path = state_dir / "runs" / run_id / "model-requests.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


async def seen(predicate: Any, timeout: float = SEEN_WITHIN) -> bool:
    """``wait_until`` off the event loop, which goes on serving the client meanwhile."""
    return await asyncio.to_thread(wait_until, predicate, timeout)


async def newest_run(client: Any) -> str:
    runs = (await client.call_tool("runs_list", {"limit": 1})).structured_content["runs"]
    return str(runs[0]["run_id"])


async def test_the_codex_tools_keep_the_schemas_of_the_removed_codex_mcp_server(
    connect: MatrixServer,
) -> None:
    async with connect() as client:
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


async def test_codex_then_codex_reply_continue_one_thread(connect: MatrixServer) -> None:
    async with connect() as client:
        first = await client.call_tool("codex", {"prompt": "remember 42"})
        assert not first.is_error, first.content
        thread = first.structured_content["threadId"]  # type: ignore[index]
        assert first.structured_content["content"] == "echo: remember 42"  # type: ignore[index]
        assert first.content[0].text == "echo: remember 42"  # type: ignore[union-attr]
        second = await client.call_tool("codex-reply", {"prompt": "and now?", "threadId": thread})
        assert second.structured_content == {"threadId": thread, "content": "echo: and now?"}
        run_id = await newest_run(client)
    last = requests_of(connect.state_dir, run_id)[-1]
    texts = json.dumps(last["body"]["input"])
    assert "remember 42" in texts and "and now?" in texts
    assert last["headers"]["thread-id"] == thread


async def test_codex_reply_continues_a_thread_after_the_server_restarts(
    connect: MatrixServer, tmp_path: Path
) -> None:
    async with connect.fresh(tmp_path) as server, server() as client:
        first = await client.call_tool("codex", {"prompt": "remember 42"})
        assert not first.is_error, first.content
        thread = first.structured_content["threadId"]  # type: ignore[index]
    # A new server process on the same state dir: the thread is resumed from disk.
    async with connect.fresh(tmp_path) as server, server() as client:
        again = await client.call_tool(
            "codex-reply", {"prompt": "still there?", "conversationId": thread}
        )
        assert not again.is_error, again.content
        assert again.structured_content["threadId"] == thread  # type: ignore[index]
        run_id = await newest_run(client)
    last = requests_of(server.state_dir, run_id)[-1]
    texts = json.dumps(last["body"]["input"])
    assert "remember 42" in texts and "still there?" in texts
    assert last["headers"]["thread-id"] == thread


async def test_codex_reply_to_an_unknown_thread_is_a_clear_error(connect: MatrixServer) -> None:
    async with connect() as client:
        result = await client.call_tool("codex-reply", {"prompt": "x", "threadId": "nope"})
    assert result.is_error
    assert "no Codex thread 'nope' is known" in result.content[0].text  # type: ignore[union-attr]


async def test_the_codex_tool_refuses_unknown_and_invalid_arguments_in_one_sentence(
    connect: MatrixServer,
) -> None:
    async with connect() as client:
        runs_before = await client.call_tool("runs_list", {"limit": 500})

        async def refused(arguments: dict[str, Any]) -> str:
            result = await client.call_tool("codex", arguments)
            assert result.is_error, result
            text = result.content[0].text  # type: ignore[union-attr]
            assert "\n" not in text and "validation error" not in text, text
            return text

        misspelled = await refused({"prompt": "x", "approval_policy": "never"})
        assert misspelled.startswith(
            "codex does not take the argument `approval_policy` "
            "(did you mean `approval-policy`?); it takes `prompt`"
        )
        assert await refused({"prompt": "x", "sandbox": "bogus"}) == (
            "codex: argument `sandbox`: 'bogus' is not one of "
            "['read-only', 'workspace-write', 'danger-full-access']."
        )
        assert await refused({"sandbox": "read-only"}) == "codex: 'prompt' is a required property."
        # nothing ran: a refused call starts no run
        runs_after = await client.call_tool("runs_list", {"limit": 500})
    assert runs_after.structured_content == runs_before.structured_content


async def test_batch_returns_the_original_contract(connect: MatrixServer, workspace: Path) -> None:
    mission = mission_data(
        workspace,
        [
            {
                "id": "good",
                "prompt": "fine",
                "artifacts": ["*.md"],
                "script": [{"shell": "echo doc > notes.md"}, {"say": "wrote"}],
                "sandbox": "workspace-write",
            },
            {"id": "bad", "prompt": "boom", "retries": 0, "script": [{"fail": 400}]},
        ],
        mission_id="contract",
    )
    async with connect() as client:
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
    connect: MatrixServer, tmp_path: Path
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("workspace_root: ws\ntasks:\n  - prompt: one\n  - prompt: two\n")
    async with connect() as client:
        result = await client.call_tool("batch", {"mission": str(path)})
    data = result.structured_content
    assert data and data["status"] == "ok" and data["errors"] == []
    assert [r["stdout"] for r in data["results"]] == ["echo: one", "echo: two"]


async def test_an_invalid_mission_is_an_error_result_with_the_reason(
    connect: MatrixServer,
) -> None:
    async with connect() as client:
        result = await client.call_tool(
            "batch", {"mission": {"tasks": [{"prompt": "x", "oops": 1}]}}
        )
    assert result.is_error
    assert "unknown field 'oops'" in result.content[0].text  # type: ignore[union-attr]


async def test_progress_and_log_notifications_are_standard(
    connect: MatrixServer, workspace: Path
) -> None:
    progress: list[tuple[float, float | None, str | None]] = []
    logs: list[str] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, total, message))

    async def on_log(params: mt.LoggingMessageNotificationParams) -> None:
        logs.append(str(params.data))

    mission = mission_data(workspace, [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y"}])
    async with connect(logging_callback=on_log) as client:
        await client.call_tool("batch", {"mission": mission}, progress_callback=on_progress)
    assert progress[-1][:2] == (2, 2)
    messages = [m for _, _, m in progress]
    assert "a: ok" in messages and "b: ok" in messages
    assert any(m and m.startswith("a: running on w") for m in messages)
    assert "a: ok" in logs


async def test_a_long_mission_is_started_waited_on_in_slices_and_cancelled(
    connect: MatrixServer, workspace: Path
) -> None:
    mission = mission_data(
        workspace,
        [
            {"id": "quick", "prompt": "q"},
            {"id": "stuck", "prompt": "s", "script": [{"hang": 300}], "idle_timeout_sec": 600},
        ],
    )
    async with connect() as client:
        started = await client.call_tool("mission_start", {"mission": mission})
        run_id = started.structured_content["run_id"]  # type: ignore[index]
        waited = await client.call_tool("mission_wait", {"run_id": run_id, "timeout": 1.5})
        state = waited.structured_content
        assert state is not None and state["done"] is False and state["status"] == "running"
        stuck = connect.state_dir / "runs" / run_id / "tasks" / "stuck" / "events.jsonl"
        assert await seen(lambda: stuck.exists() and "turn/started" in stuck.read_text())
        workers = codex_of(connect.state_dir)
        cancelled = await client.call_tool("mission_cancel", {"run_id": run_id})
        data = cancelled.structured_content
        assert data is not None and data["cancelled"] is True and data["status"] == "cancelled"
        statuses = {t["task_id"]: t["status"] for t in data["tasks"]}
        assert statuses == {"quick": "ok", "stuck": "cancelled"}
        # its turn was stopped; the process stays warm
        assert workers and codex_of(connect.state_dir) == workers
        status = await client.call_tool("mission_status", {"run_id": run_id})
        assert status.structured_content["status"] == "cancelled"  # type: ignore[index]
        summary = await client.read_resource(f"codex-wrapper://runs/{run_id}/summary")
        assert json.loads(summary.contents[0].text)["run_id"] == run_id  # type: ignore[union-attr]
        transcript = await client.read_resource(
            f"codex-wrapper://runs/{run_id}/tasks/quick/transcript"
        )
        assert '"method": "turn/completed"' in transcript.contents[0].text  # type: ignore[union-attr]


async def test_mission_cancel_with_a_task_id_cancels_that_running_task_and_the_rest_goes_on(
    connect: MatrixServer, workspace: Path
) -> None:
    mission = mission_data(
        workspace,
        [
            {"id": "stuck", "prompt": "s", "script": [{"hang": 300}], "idle_timeout_sec": 600},
            {"id": "after", "prompt": "a", "depends_on": ["stuck"]},
            {"id": "free", "prompt": "f"},
        ],
    )
    async with connect() as client:
        started = await client.call_tool("mission_start", {"mission": mission})
        run_id = started.structured_content["run_id"]  # type: ignore[index]
        stuck = connect.state_dir / "runs" / run_id / "tasks" / "stuck" / "events.jsonl"
        assert await seen(lambda: stuck.exists() and "turn/started" in stuck.read_text())
        workers = codex_of(connect.state_dir)

        async def refused(task_id: str) -> str:
            arguments = {"run_id": run_id, "task_id": task_id}
            answer = await client.call_tool("mission_cancel", arguments)
            assert answer.is_error, answer
            return str(answer.content[0].text)  # type: ignore[union-attr]

        tasks = "tasks: stuck, after, free"
        assert await refused("nope") == f"run {run_id} has no task 'nope' ({tasks})."
        assert await refused("after") == (
            f"task 'after' of run {run_id} is not running (it is queued, waiting on its "
            "dependencies, or done), so there is nothing to cancel."
        )
        cancelled = await client.call_tool("mission_cancel", {"run_id": run_id, "task_id": "stuck"})
        data = cancelled.structured_content
        assert data is not None and data["cancelled"] is True, cancelled.content
        assert {t["task_id"]: t["status"] for t in data["tasks"]}["stuck"] == "cancelled"
        waited = await client.call_tool("mission_wait", {"run_id": run_id, "timeout": 55})
        state = waited.structured_content
        assert state is not None and state["done"] is True and state["status"] == "failed"
        statuses = {t["task_id"]: t["status"] for t in state["tasks"]}
        assert statuses == {"stuck": "cancelled", "after": "skipped", "free": "ok"}
        assert workers and codex_of(connect.state_dir) == workers  # the worker stays warm


async def test_a_cancelled_call_stops_its_turn_and_its_warm_worker_serves_the_next(
    connect: MatrixServer, workspace: Path
) -> None:
    mission = mission_data(
        workspace, [{"prompt": "s", "script": [{"hang": 300}], "idle_timeout_sec": 600}]
    )
    runs = connect.state_dir / "runs"
    earlier = set(runs.iterdir()) if runs.exists() else set()

    def this_run() -> Path | None:
        new = set(runs.iterdir()) - earlier if runs.exists() else set()
        return next(iter(new), None)

    def turn_in_flight() -> bool:  # the model has the request: Codex is mid-turn
        run = this_run()
        return run is not None and (run / "model-requests.jsonl").exists()

    async with connect() as client:
        call = asyncio.create_task(client.call_tool("batch", {"mission": mission}))
        assert await seen(turn_in_flight)
        workers = codex_of(connect.state_dir)
        assert workers
        call.cancel()  # the client cancels the request (notifications/cancelled)
        with pytest.raises(asyncio.CancelledError):
            await call
        run_dir = this_run()
        assert run_dir is not None

        def recorded_cancelled() -> bool:
            path = run_dir / "summary.json"
            return path.exists() and json.loads(path.read_text())["status"] == "cancelled"

        assert await seen(recorded_cancelled)
        # The turn was interrupted, not the process: the next call runs on it at once.
        after = await client.call_tool("codex", {"prompt": "next", "cwd": str(workspace)})
        assert not after.is_error, after.content
        assert codex_of(connect.state_dir) == workers


async def test_without_elicitation_an_approval_is_declined_by_policy(
    connect: MatrixServer, workspace: Path
) -> None:
    task = {
        "prompt": "p",
        "approval_policy": "on-request",
        "script": [{"escalate": "touch escaped.txt"}, {"say": "after"}],
    }
    async with connect() as client:
        result = await client.call_tool("batch", {"mission": mission_data(workspace, [task])})
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
    events = connect.state_dir / "runs" / run_id / "tasks" / "task-1" / "events.jsonl"
    records = [json.loads(line) for line in events.read_text().splitlines()]
    (approval,) = [r["params"] for r in records if r["method"] == "wrapper/approval"]
    assert approval["decision"] == "decline"
    assert approval["request"] == "item/commandExecution/requestApproval"
    declined = [
        r
        for r in records
        if r["method"] == "item/completed" and r["params"]["item"].get("status") == "declined"
    ]
    assert declined


async def test_a_cancelled_mission_is_resumed_over_mcp_in_the_same_run(
    connect: MatrixServer, workspace: Path
) -> None:
    mission = mission_data(
        workspace,
        [
            {"id": "done", "prompt": "d"},
            {
                "id": "slow",
                "prompt": "s",
                "script": [{"shell": "sleep 30"}, {"say": "resumed and finished"}],
            },
        ],
        defaults={"sandbox": "workspace-write"},
    )
    async with connect() as client:
        started = await client.call_tool("mission_start", {"mission": mission})
        run_id = started.structured_content["run_id"]  # type: ignore[index]
        slow = connect.state_dir / "runs" / run_id / "tasks" / "slow" / "events.jsonl"
        assert await seen(
            lambda: slow.exists() and '"type": "commandExecution"' in slow.read_text()
        )
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
    connect: MatrixServer, workspace: Path
) -> None:
    secret = "tok-DO-NOT-LEAK-4242"
    task = {
        "prompt": "p",
        "env": {"SERVICE_TOKEN": secret},
        "script": [{"shell": "echo $SERVICE_TOKEN"}, {"say": "token: {last_output}"}],
    }
    async with connect() as client:
        result = await client.call_tool("batch", {"mission": mission_data(workspace, [task])})
        run_id = result.structured_content["run_id"]  # type: ignore[index]
        status = await client.call_tool("mission_status", {"run_id": run_id})
    text = json.dumps(result.structured_content) + json.dumps(status.structured_content)
    assert secret not in text
    assert "[REDACTED]" in result.structured_content["results"][0]["stdout"]  # type: ignore[index]
