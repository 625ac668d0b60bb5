"""The scripted model drives the real Codex binary: codex exec --json and codex app-server."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_mcp_wrapper.codex.worker import AppServerWorker
from codex_mcp_wrapper.codex.worker_spec import WorkerSpec
from codex_mcp_wrapper.engine.seams import ApprovalRequest, TaskRequest, TaskSpec
from codex_mcp_wrapper.scripted import ScriptedModel, parse_script
from tests.helpers.codex_exec import codex_exec
from tests.helpers.sinks import RecordingSink

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "requests.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_a_say_turn_ends_with_the_scripted_message(
    model: ScriptedModel, codex_bin: str, codex_home: Path, workspace: Path
) -> None:
    name = model.add_script("hello", parse_script([{"say": "Hello from the script"}]))
    result = await codex_exec(codex_bin, codex_home, workspace, "hi", model=name)
    assert result.returncode == 0, result.stderr
    assert [m["text"] for m in result.items("agent_message")] == ["Hello from the script"]
    assert result.of_type("turn.completed")


async def test_without_a_script_the_model_echoes_the_prompt(
    model: ScriptedModel, codex_bin: str, codex_home: Path, workspace: Path, tmp_path: Path
) -> None:
    result = await codex_exec(codex_bin, codex_home, workspace, "ping 42")
    assert [m["text"] for m in result.items("agent_message")] == ["echo: ping 42"]
    records = _records(tmp_path)
    assert len(records) == 1
    assert records[0]["body"]["input"][-1]["content"][0]["text"] == "ping 42"
    assert records[0]["headers"]["thread-id"] == result.of_type("thread.started")[0]["thread_id"]


async def test_a_shell_step_creates_a_file_in_a_workspace_write_sandbox(
    model: ScriptedModel, codex_bin: str, codex_home: Path, workspace: Path
) -> None:
    script = [{"shell": "echo made-by-codex > made.txt"}, {"say": "done"}]
    name = model.add_script("write", parse_script(script))
    result = await codex_exec(
        codex_bin, codex_home, workspace, "write it", sandbox="workspace-write", model=name
    )
    assert result.returncode == 0, result.stderr
    (command,) = result.items("command_execution")
    assert command["exit_code"] == 0
    assert (workspace / "made.txt").read_text() == "made-by-codex\n"


async def test_a_shell_step_is_refused_in_a_read_only_sandbox(
    model: ScriptedModel, codex_bin: str, codex_home: Path, workspace: Path
) -> None:
    script = [{"shell": "echo nope > made.txt"}, {"say": "saw {last_output}"}]
    name = model.add_script("ro", parse_script(script))
    result = await codex_exec(
        codex_bin, codex_home, workspace, "write it", sandbox="read-only", model=name
    )
    assert result.returncode == 0, result.stderr
    assert not (workspace / "made.txt").exists()
    assert "Read-only file system" in result.items("agent_message")[-1]["text"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (500, "high demand|500|Internal"),
        (400, "scripted HTTP 400"),
        (429, "429|rate|Too Many"),
        ("stream", "stream|disconnected"),
    ],
)
async def test_a_fail_step_surfaces_as_a_turn_failure(
    model: ScriptedModel,
    codex_bin: str,
    codex_home: Path,
    workspace: Path,
    kind: object,
    expected: str,
) -> None:
    name = model.add_script(f"fail-{kind}", parse_script([{"fail": kind}]))
    result = await codex_exec(codex_bin, codex_home, workspace, "go", model=name)
    assert result.returncode == 1
    (failed,) = result.of_type("turn.failed")
    assert re.search(expected, failed["error"]["message"], re.IGNORECASE), failed


def _worker(codex_bin: str, codex_home: Path, tmp_path: Path) -> AppServerWorker:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CODEX_HOME": str(codex_home)}
    return AppServerWorker(
        WorkerSpec("t1", codex_bin, codex_home, env, tmp_path / "worker.log", tmp_path)
    )


def _request(workspace: Path, model: str, **overrides: Any) -> TaskRequest:
    fields: dict[str, Any] = {
        "cwd": str(workspace),
        "sandbox": "read-only",
        "approval_policy": "never",
        "idle_timeout_sec": 30.0,
        "model": model,
    }
    fields.update(overrides)
    return TaskRequest(
        run_id="test",
        task_id="t",
        index=0,
        attempt=1,
        prompts=("go",),
        timeout_sec=60.0,
        spec=TaskSpec(**fields),
    )


async def test_an_mcp_tool_step_reaches_a_real_mcp_server_and_its_result_the_next_request(
    model: ScriptedModel, codex_bin: str, codex_home: Path, workspace: Path, tmp_path: Path
) -> None:
    (workspace / "notes.txt").write_text("the answer is 42\n")
    calls = tmp_path / "fs-calls.jsonl"
    script = [
        {"tool": {"server": "fs", "name": "read_file", "arguments": {"path": "notes.txt"}}},
        {"say": "The file says: {last_output}"},
    ]
    name = model.add_script("mcp", parse_script(script))
    config = {
        "mcp_servers": {
            "fs": {
                "command": sys.executable,
                "args": [str(EXAMPLES / "mcp-smoke" / "fs_server.py")],
                "env": {"FS_SERVER_ROOT": str(workspace), "FS_SERVER_LOG": str(calls)},
                "default_tools_approval_mode": "approve",
            }
        }
    }
    worker = _worker(codex_bin, codex_home, tmp_path)
    sink = RecordingSink()
    await worker.start()
    try:
        outcome = await worker.run(_request(workspace, name, config=config), sink)
    finally:
        await worker.aclose()
    assert outcome.status == "ok", outcome.error
    assert outcome.final_message == "The file says: the answer is 42\n"
    (call,) = sink.items("mcpToolCall")
    assert (call["server"], call["tool"], call["status"]) == ("fs", "read_file", "completed")
    assert json.loads(calls.read_text()) == {
        "tool": "read_file",
        "arguments": {"path": "notes.txt"},
    }
    records = _records(tmp_path)
    outputs = [i for i in records[-1]["body"]["input"] if i["type"] == "function_call_output"]
    assert "the answer is 42" in json.dumps(outputs)


async def test_a_tool_that_codex_did_not_offer_ends_the_turn_with_a_clear_message(
    model: ScriptedModel, codex_bin: str, codex_home: Path, workspace: Path, tmp_path: Path
) -> None:
    script = [{"tool": {"server": "absent", "name": "read_file"}}]
    name = model.add_script("absent", parse_script(script))
    result = await codex_exec(codex_bin, codex_home, workspace, "go", model=name)
    (message,) = result.items("agent_message")
    assert "MCP tool 'read_file' of server 'absent' was not offered by Codex" in message["text"]


async def test_a_hang_step_is_a_stall_that_the_idle_deadline_catches(
    model: ScriptedModel, codex_bin: str, codex_home: Path, workspace: Path, tmp_path: Path
) -> None:
    name = model.add_script("hang", parse_script([{"hang": 60}]))
    worker = _worker(codex_bin, codex_home, tmp_path)
    await worker.start()
    try:
        outcome = await worker.run(_request(workspace, name, idle_timeout_sec=1.5), RecordingSink())
        assert worker.alive  # interrupted, not killed: the worker stays usable
    finally:
        await worker.aclose()
    assert outcome.status == "timeout"
    assert "no event from Codex for 1.5 s" in (outcome.error or "")


async def test_an_escalate_step_asks_for_approval_under_on_request(
    model: ScriptedModel, codex_bin: str, codex_home: Path, workspace: Path, tmp_path: Path
) -> None:
    asked: list[ApprovalRequest] = []

    async def decline(request: ApprovalRequest) -> Any:
        asked.append(request)
        return "decline"

    script = [{"escalate": "touch outside.txt"}, {"say": "after: {last_output}"}]
    name = model.add_script("esc", parse_script(script))
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CODEX_HOME": str(codex_home)}
    worker = AppServerWorker(
        WorkerSpec("t1", codex_bin, codex_home, env, tmp_path / "worker.log", tmp_path), decline
    )
    await worker.start()
    try:
        outcome = await worker.run(
            _request(workspace, name, approval_policy="on-request"), RecordingSink()
        )
    finally:
        await worker.aclose()
    assert outcome.status == "ok", outcome.error
    assert [a.method for a in asked] == ["item/commandExecution/requestApproval"]
    assert asked[0].kind == "command"
    assert asked[0].command == "touch outside.txt"
    assert not (workspace / "outside.txt").exists()


async def test_codex_and_the_model_connect_to_nothing_but_loopback(
    model: ScriptedModel, codex_bin: str, codex_home: Path, workspace: Path, tmp_path: Path
) -> None:
    assert shutil.which("strace"), "strace is needed: apt-get install strace (scripts/test.sh does)"
    trace = tmp_path / "connect.trace"
    script = [{"shell": "echo hi"}, {"say": "done"}]
    name = model.add_script("net", parse_script(script))
    result = await codex_exec(
        codex_bin,
        codex_home,
        workspace,
        "go",
        sandbox="danger-full-access",
        model=name,
        prefix=["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace)],
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in trace.read_text().splitlines() if "connect(" in line]
    inet = [line for line in lines if "AF_INET" in line]
    assert inet, "expected at least the connection to the scripted model"
    for line in inet:
        assert re.search(r'inet_addr\("127\.0\.0\.1"\)|inet_pton\(AF_INET6, "::1"', line), line
