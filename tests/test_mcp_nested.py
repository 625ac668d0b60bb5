"""Codex itself as the MCP client: a task whose Codex has the wrapper's ``serve`` as an MCP
server calls its ``codex`` tool (a nested session on the scripted model) and reports the
answer, as an agent delegating to Codex through the wrapper does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from codex_mcp_wrapper.app import open_runs
from codex_mcp_wrapper.missions.loading import parse_mission
from codex_mcp_wrapper.settings import Settings

pytestmark = pytest.mark.anyio


async def test_codex_calls_the_wrappers_codex_tool_as_an_mcp_client(
    workspace: Path, state_dir: Path, tmp_path: Path, codex_bin: str
) -> None:
    inner = [
        "-m",
        "codex_mcp_wrapper",
        "--state-dir",
        str(tmp_path / "inner-state"),
        "--codex-bin",
        codex_bin,
        "serve",
        "--scripted",
        "--workspace",
        str(workspace),
    ]
    call = {"server": "wrapper", "name": "codex", "arguments": {"prompt": "inner hello"}}
    mission = parse_mission(
        {
            "workspace_root": str(workspace),
            "provider": "scripted",
            "tasks": [
                {
                    "id": "outer",
                    "prompt": "delegate",
                    "mcp_servers": {
                        "wrapper": {
                            "command": sys.executable,
                            "args": inner,
                            "default_tools_approval_mode": "approve",
                        }
                    },
                    "script": [{"tool": call}, {"say": "inner said: {last_output}"}],
                    "expect": {"tool_calls": [{"server": "wrapper", "tool": "codex"}]},
                }
            ],
        }
    )
    summary = await open_runs(Settings(state_dir=state_dir, codex_bin=codex_bin)).run(mission)
    (result,) = summary.tasks
    assert result.status == "ok", result.error
    assert "echo: inner hello" in (result.final_message or "")
    # the inner session is a run of the inner server's own, with its thread
    (inner_run,) = (tmp_path / "inner-state" / "runs").iterdir()
    assert (inner_run / "tasks" / "codex" / "final.md").read_text() == "echo: inner hello"
