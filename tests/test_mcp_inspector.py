"""The MCP Inspector's CLI (npm ``@modelcontextprotocol/inspector``, installed by
scripts/test.sh) lists the tools and calls ``codex``, over stdio and over streamable HTTP: a
client the wrapper's authors did not write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import REPO
from tests.helpers.mcp_client import http_server

INSPECTOR_TIMEOUT = 120


@pytest.fixture
def inspector() -> str:
    path = os.environ.get("MCP_INSPECTOR_BIN") or str(
        REPO / ".mcp-inspector" / "node_modules" / ".bin" / "mcp-inspector"
    )
    if not Path(path).is_file():
        pytest.fail(f"the MCP Inspector is not installed at {path}; run scripts/test.sh")
    return path


def inspect(inspector: str, home: Path, target: list[str], *method: str) -> dict[str, Any]:
    done = subprocess.run(
        [inspector, "--cli", *target, *method],
        capture_output=True,
        text=True,
        timeout=INSPECTOR_TIMEOUT,
        env={**os.environ, "HOME": str(home)},  # its catalog goes to ~/.mcp-inspector
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def check(inspector: str, home: Path, target: list[str]) -> None:
    tools = inspect(inspector, home, target, "--method", "tools/list")["tools"]
    assert {"codex", "codex-reply", "batch"} <= {t["name"] for t in tools}
    called = inspect(
        inspector,
        home,
        target,
        "--method",
        "tools/call",
        "--tool-name",
        "codex",
        "--tool-arg",
        "prompt=hello inspector",
    )
    assert called["isError"] is False
    assert called["structuredContent"]["content"] == "echo: hello inspector"


def test_the_inspector_cli_lists_and_calls_codex_over_stdio(
    inspector: str, tmp_path: Path, state_dir: Path, workspace: Path, codex_bin: str
) -> None:
    target = [sys.executable, "-m", "codex_mcp_wrapper", "--state-dir", str(state_dir)]
    target += ["--codex-bin", codex_bin, "serve", "--scripted", "--workspace", str(workspace)]
    check(inspector, tmp_path, target)


def test_the_inspector_cli_lists_and_calls_codex_over_http(
    inspector: str, tmp_path: Path, state_dir: Path, workspace: Path, codex_bin: str
) -> None:
    extra = ("--codex-bin", codex_bin, "--scripted", "--workspace", str(workspace))
    with http_server(state_dir, *extra) as (_proc, url):
        check(inspector, tmp_path, [url])
