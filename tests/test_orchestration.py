"""Approval rules, hooks and tools with the real Codex asking (scripted model): commands,
file changes and MCP tool calls decided by rules, hooks getting events and deciding, a mission
tool and a Python tool answering the model, and MCP clients kept from sending commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from codex_mcp_wrapper import Settings, parse_mission, run_mission_sync
from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.engine.tools import PythonTool
from tests.helpers.cli import run_cli
from tests.helpers.mcp_client import stdio_client

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "mission.yaml"
    data.setdefault("workspace_root", "./ws")
    data.setdefault("provider", "scripted")
    path.write_text(yaml.safe_dump(data))
    return path


def events(summary: dict[str, Any], task: str, method: str) -> list[dict[str, Any]]:
    path = Path(summary["run_dir"]) / "tasks" / task / "events.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [e["params"] for e in lines if e.get("method") == method]


def run(path: Path, env: dict[str, str], *extra: str) -> dict[str, Any]:
    done = run_cli(["run", str(path), "--json", *extra], env)
    assert done.stdout, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def test_command_rules_let_an_allowed_command_run_and_keep_a_denied_one_out(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    path = write(
        tmp_path,
        {
            "defaults": {"approval_policy": "on-request", "sandbox": "read-only"},
            "approvals": {"commands": {"allow": ["echo allowed*"], "deny": ["echo denied*"]}},
            "tasks": [
                {
                    "id": "both",
                    "prompt": "try both",
                    "script": [
                        {"escalate": "echo allowed > allowed.txt"},
                        {"escalate": "echo denied > denied.txt"},
                        {"say": "done"},
                    ],
                }
            ],
        },
    )
    summary = run(path, cli_env)  # the command line's policy would decline both
    assert summary["tasks"][0]["status"] == "ok"
    ws = tmp_path / "ws"
    assert (ws / "allowed.txt").read_text() == "allowed\n"
    assert not (ws / "denied.txt").exists()
    decided = {
        e["command"]: (e["decision"], e["by"])
        for e in events(summary, "both", "wrapper/approval-rule")
    }
    assert decided["echo allowed > allowed.txt"] == (
        "accept",
        "mission.commands.allow 'echo allowed*'",
    )
    assert decided["echo denied > denied.txt"] == (
        "decline",
        "mission.commands.deny 'echo denied*'",
    )


def test_an_mcp_tool_denied_by_rule_never_reaches_its_server(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    calls = tmp_path / "fs-calls.jsonl"
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "notes.txt").write_text("TODO one\n")
    fs = {
        "command": sys.executable,
        "args": [str(EXAMPLES / "mcp-smoke" / "fs_server.py")],
        "env": {"FS_SERVER_ROOT": str(tmp_path / "ws"), "FS_SERVER_LOG": str(calls)},
        "default_tools_approval_mode": "prompt",
    }
    path = write(
        tmp_path,
        {
            "defaults": {"approval_policy": "on-request", "mcp_servers": {"fs": fs}},
            "tasks": [
                {
                    "id": "tools",
                    "prompt": "use the tools",
                    "approvals": {"tools": {"allow": ["fs.read_*"], "deny": ["fs.grep"]}},
                    "script": [
                        {
                            "tool": {
                                "server": "fs",
                                "name": "grep",
                                "arguments": {"pattern": "TODO"},
                            }
                        },
                        {
                            "tool": {
                                "server": "fs",
                                "name": "read_file",
                                "arguments": {"path": "notes.txt"},
                            }
                        },
                        {"say": "read: {last_output}"},
                    ],
                }
            ],
        },
    )
    summary = run(path, cli_env, "--auto-approve")  # the rule wins over the policy
    assert summary["tasks"][0]["status"] == "ok"
    assert summary["tasks"][0]["final_message"] == "read: TODO one\n"
    reached = [json.loads(line)["tool"] for line in calls.read_text().splitlines()]
    assert reached == ["read_file"]  # grep was declined before the server saw it
    decided = [(e["decision"], e["by"]) for e in events(summary, "tools", "wrapper/approval-rule")]
    assert decided == [
        ("decline", "task.tools.deny 'fs.grep'"),
        ("accept", "task.tools.allow 'fs.read_*'"),
    ]


def patch(path: str, text: str) -> str:
    return (
        f"apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: {path}\n+{text}\n*** End Patch\nEOF\n"
    )


def test_a_file_change_is_decided_by_a_path_rule(tmp_path: Path, cli_env: dict[str, str]) -> None:
    path = write(
        tmp_path,
        {
            "defaults": {"approval_policy": "on-request", "sandbox": "read-only"},
            "tasks": [
                {
                    "id": "edit",
                    "prompt": "edit",
                    "approvals": {"files": {"allow": ["src/**"], "deny": ["**/*.pem"]}},
                    "script": [
                        {"shell": patch("src/pkg/app.py", "print('hi')")},
                        {"shell": patch("server.pem", "secret")},
                        {"say": "done"},
                    ],
                }
            ],
        },
    )
    ws = tmp_path / "ws"
    (ws / "src" / "pkg").mkdir(parents=True)  # a read-only sandbox creates no folders
    summary = run(path, cli_env, "--auto-approve")
    assert (ws / "src" / "pkg" / "app.py").read_text() == "print('hi')\n"
    assert not (ws / "server.pem").exists()
    decided = [(e["decision"], e["by"]) for e in events(summary, "edit", "wrapper/approval-rule")]
    assert decided == [
        ("accept", "task.files.allow 'src/**'"),
        ("decline", "task.files.deny '**/*.pem'"),
    ]


def test_hooks_get_each_task_as_json_and_an_approval_hook_decides(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    decide = tmp_path / "decide.sh"
    decide.write_text("#!/bin/sh\nif grep -q hookok; then echo accept; else echo decline; fi\n")
    decide.chmod(0o755)
    record = f"{sys.executable} -c \"import sys; open('ends.jsonl', 'a').write(sys.stdin.read())\""
    path = write(
        tmp_path,
        {
            "defaults": {"approval_policy": "on-request", "sandbox": "read-only"},
            "hooks": [
                {"on": "task_end", "run": record},
                {"on": "approval", "run": "./decide.sh"},
                {"on": "run_end", "run": "exit 3"},  # a failing hook never fails the run
            ],
            "tasks": [
                {
                    "id": "one",
                    "prompt": "one",
                    "script": [{"escalate": "echo hookok > h.txt"}, {"say": "1"}],
                },
                {
                    "id": "two",
                    "prompt": "two",
                    "script": [{"escalate": "echo nope > n.txt"}, {"say": "2"}],
                },
            ],
        },
    )
    summary = run(path, cli_env)
    assert summary["status"] == "ok" and summary["hook_failures"] == []
    ends = [json.loads(line) for line in (tmp_path / "ends.jsonl").read_text().splitlines()]
    assert sorted((e["event"], e["task_id"], e["status"], e["final_message"]) for e in ends) == [
        ("task_end", "one", "ok", "1"),
        ("task_end", "two", "ok", "2"),
    ]
    assert (tmp_path / "ws" / "h.txt").exists() and not (tmp_path / "ws" / "n.txt").exists()
    by = [e["by"] for e in events(summary, "one", "wrapper/approval-rule")]
    assert by == ["hook `./decide.sh`"]


def test_a_required_hook_that_fails_fails_the_run(tmp_path: Path, cli_env: dict[str, str]) -> None:
    path = write(
        tmp_path,
        {
            "hooks": [{"on": "task_end", "run": "exit 4", "required": True}],
            "tasks": [{"id": "a", "prompt": "a"}],
        },
    )
    done = run_cli(["run", str(path), "--json"], cli_env)
    summary = json.loads(done.stdout)
    assert done.returncode == 1 and summary["status"] == "failed"
    assert summary["tasks"][0]["status"] == "ok"
    assert summary["hook_failures"] == ["hook on task_end `exit 4` failed: exited with 4"]
    (hook,) = events(summary, "a", "wrapper/hook")
    assert hook["exit_code"] == 4


def test_a_mission_tool_answers_the_model_in_the_next_turn(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    code = "import json,sys; print('answer to ' + json.load(sys.stdin)['question'])"
    answer = f'{sys.executable} -c "{code}"'
    path = write(
        tmp_path,
        {
            "tasks": [
                {
                    "id": "ask",
                    "prompt": "ask the orchestrator",
                    "tools": [
                        {
                            "name": "ask_orchestrator",
                            "description": "Ask the orchestrator a question.",
                            "input_schema": {
                                "type": "object",
                                "properties": {"question": {"type": "string"}},
                                "required": ["question"],
                            },
                            "run": answer,
                        }
                    ],
                    "script": [
                        {"tool": {"name": "ask_orchestrator", "arguments": {"question": "go?"}}},
                        {"say": "got: {last_output}"},
                    ],
                }
            ],
        },
    )
    summary = run(path, cli_env)
    assert summary["tasks"][0]["final_message"] == "got: answer to go?\n"
    (call,) = [
        e["item"]
        for e in events(summary, "ask", "item/completed")
        if e["item"]["type"] == "dynamicToolCall"
    ]
    assert (call["tool"], call["success"]) == ("ask_orchestrator", True)


def test_python_hooks_approvals_and_tools(tmp_path: Path, codex_bin: str) -> None:
    seen: list[dict[str, Any]] = []

    async def ask(arguments: dict[str, Any]) -> dict[str, Any]:
        return {"go": arguments["question"] == "ship?"}

    mission = parse_mission(
        {
            "workspace_root": str(tmp_path / "ws"),
            "provider": "scripted",
            "defaults": {"approval_policy": "on-request", "sandbox": "read-only"},
            "tasks": [
                {
                    "id": "py",
                    "prompt": "go",
                    "script": [
                        {"tool": {"name": "ask_human", "arguments": {"question": "ship?"}}},
                        {"escalate": "echo py > py.txt"},
                        {"say": "answer was {last_output}"},
                    ],
                }
            ],
        }
    )
    options = RunOptions(
        hooks={"task_end": [seen.append], "approval": [lambda e: "accept"]},
        tools=[PythonTool("ask_human", "Ask a person.", ask)],
    )
    summary = run_mission_sync(
        mission, Settings(state_dir=tmp_path / "s", codex_bin=codex_bin), options
    )
    assert summary.ok, summary.tasks[0].error
    assert summary.tasks["py"].status == "ok"
    assert (tmp_path / "ws" / "py.txt").read_text() == "py\n"
    assert [(e["event"], e["task_id"]) for e in seen] == [("task_end", "py")]
    requests = (Path(summary.run_dir or "") / "model-requests.jsonl").read_text()
    assert '{\\"go\\": true}' in requests or '{"go": true}' in requests


def test_the_python_example_of_orchestration_md_runs_as_written(
    tmp_path: Path, codex_bin: str
) -> None:
    doc = (EXAMPLES.parent / "docs" / "orchestration.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", doc, re.DOTALL)
    env = {**os.environ, "CODEX_BIN": codex_bin, "CODEX_MCP_WRAPPER_HOME": str(tmp_path / "h")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["hook: task_end ship ok", "True ok shipping"]


@pytest.mark.anyio
async def test_mcp_clients_send_hooks_and_tools_only_when_the_server_allows_them(
    tmp_path: Path, cli_env: dict[str, str], workspace: Path
) -> None:
    marker = tmp_path / "hook-ran.txt"
    mission = {
        "workspace_root": str(workspace),
        "hooks": [{"on": "task_end", "run": f"touch {marker}"}],
        "tasks": [{"id": "a", "prompt": "hi"}],
    }
    async with stdio_client(tmp_path / "s1", "--scripted") as client:
        refused = await client.call_tool("batch", {"mission": mission})
    assert refused.is_error
    assert "--allow-mission-commands" in json.dumps(refused.model_dump(mode="json"))
    assert not marker.exists()
    async with stdio_client(tmp_path / "s2", "--scripted", "--allow-mission-commands") as client:
        allowed = await client.call_tool("batch", {"mission": mission})
    assert not allowed.is_error and (allowed.structured_content or {})["status"] == "ok"
    assert marker.exists()
