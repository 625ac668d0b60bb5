"""The stdio server's front answers the handshake at once, with exactly the full server's
answers, so Codex (which gives a stdio MCP server about a second) offers the wrapper's tools on
its first turn."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from codex_mcp_wrapper.codex.home import CodexHomeSpec, scripted_provider, write_codex_home
from codex_mcp_wrapper.mcp.stdio_front import load_manifest
from codex_mcp_wrapper.scripted import ScriptedModel, parse_script
from tests.helpers.cli import REPO
from tests.helpers.codex_exec import codex_exec

pytestmark = pytest.mark.anyio
ANSWER_TIMEOUT = 60  # seconds; the front answers in milliseconds, this only bounds a failure


def manifest_script() -> ModuleType:
    path = REPO / "scripts" / "handshake_manifest.py"
    spec = importlib.util.spec_from_file_location("handshake_manifest", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_recorded_handshake_is_what_the_full_server_answers_on_every_revision() -> None:
    script = manifest_script()
    recorded = json.loads(script.MANIFEST.read_text())
    assert recorded == script.collect(), (
        "mcp/handshake.json is stale: run .venv/bin/python scripts/handshake_manifest.py"
    )
    assert set(load_manifest()) == set(script.revisions())


def test_the_handshake_is_answered_even_while_the_sdk_cannot_load(tmp_path: Path) -> None:
    """With an ``mcp`` package that never finishes importing, the server still answers
    ``initialize`` and ``tools/list``: the handshake does not wait for the SDK."""
    stuck = tmp_path / "stuck" / "mcp"
    stuck.mkdir(parents=True)
    (stuck / "__init__.py").write_text("import threading\nthreading.Event().wait()\n")
    env = {**os.environ, "PYTHONPATH": str(stuck.parent)}
    argv = [sys.executable, "-m", "codex_mcp_wrapper", "--state-dir", str(tmp_path / "s")]
    with subprocess.Popen(
        [*argv, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for message in manifest_script().handshake("2025-06-18"):
                proc.stdin.write((json.dumps(message) + "\n").encode())
            proc.stdin.flush()
            answers = [json.loads(proc.stdout.readline()) for _ in range(2)]
        finally:
            proc.kill()
    assert [a["id"] for a in answers] == [1, 2]
    assert answers[0]["result"]["serverInfo"]["name"] == "codex-mcp-wrapper"
    assert "codex" in {tool["name"] for tool in answers[1]["result"]["tools"]}


async def test_codex_exec_calls_the_wrappers_codex_tool_on_its_first_turn(
    model: ScriptedModel, codex_bin: str, tmp_path: Path, workspace: Path
) -> None:
    """Codex configured with `serve` over stdio as an MCP server (as an agent delegating to
    Codex through the wrapper is) offers its tools on the first turn and gets the nested
    session's answer."""
    inner = ["-m", "codex_mcp_wrapper", "--state-dir", str(tmp_path / "inner-state")]
    inner += ["--codex-bin", codex_bin, "serve", "--scripted", "--workspace", str(workspace)]
    home = tmp_path / "codex-home"
    write_codex_home(
        home,
        CodexHomeSpec(
            provider=scripted_provider(model.base_url),
            trusted_projects=[workspace],
            extra={
                "mcp_servers": {
                    "wrapper": {
                        "command": sys.executable,
                        "args": inner,
                        "default_tools_approval_mode": "approve",
                    }
                }
            },
        ),
    )
    call = {"server": "wrapper", "name": "codex", "arguments": {"prompt": "inner hello"}}
    name = model.add_script("delegate", parse_script([{"tool": call}, {"say": "{last_output}"}]))
    async with asyncio.timeout(ANSWER_TIMEOUT * 2):
        result = await codex_exec(codex_bin, home, workspace, "delegate", model=name)
    assert result.returncode == 0, result.stderr
    (tool_call,) = result.items("mcp_tool_call")
    assert tool_call["status"] == "completed", tool_call
    assert "echo: inner hello" in result.items("agent_message")[-1]["text"]
