"""What clients may still do on default flags: a ``codex`` call in the workspace, a mission
with the allowed options, the owner's MCP servers by name, and the hub smoke test of
docs/security.md run exactly as the doc writes it."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers.mcp_matrix import Cell
from tests.security.conftest import serving, text

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "security.md"


def doc_block(language: str, first_line: str) -> str:
    """The fenced ``language`` block of docs/security.md whose first line starts so."""
    for block in re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S):
        if block.startswith(first_line):
            return str(block)
    raise AssertionError(f"docs/security.md has no {language} block starting {first_line!r}")


async def test_the_hub_smoke_test_of_the_security_doc_runs_as_written(
    transport: Cell, state_dir: Path, served_dir: Path, codex_bin: str
) -> None:
    """stdio (or HTTP) ``serve --config serve.toml`` started in the hub's directory, ``batch``
    of the mission file there, whose workspace is that directory, using the owner's fs
    server by name."""
    (served_dir / "serve.toml").write_text(doc_block("toml", "# hub/serve.toml"))
    (served_dir / "smoke.yaml").write_text(doc_block("yaml", "# hub/smoke.yaml"))
    shutil.copy(REPO / "examples" / "mcp-smoke" / "fs_server.py", served_dir)
    (served_dir / "app.py").write_text("# TODO: ship it\n")
    # `python3` of the config is this interpreter, which has the mcp SDK the fs server needs.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    flags = ("--config", "serve.toml")
    with serving(transport, state_dir, served_dir, codex_bin, *flags, env={"PATH": path}) as srv:
        async with srv.client() as client:
            result = await client.call_tool("batch", {"mission": "smoke.yaml"})
    data = result.structured_content
    assert data and data["status"] == "ok", text(result)
    assert "app.py:1:# TODO: ship it" in data["results"][0]["output"]


async def test_a_codex_call_and_a_mission_with_allowed_options_still_work(
    transport: Cell, state_dir: Path, served_dir: Path, codex_bin: str
) -> None:
    mission = {
        "workspace_root": "checkout",  # below the served directory: created, as `run` does
        "defaults": {
            "sandbox": "workspace-write",
            "approval_policy": "on-request",
            "config": {"model_reasoning_effort": "low"},
        },
        "tasks": [
            {
                "prompt": "${GREETING} from ${SHARED}",
                "script": [{"shell": "echo made > made.txt"}, {"say": "{prompt}"}],
                "expect": {"files": [{"path": "made.txt", "contains": "made"}]},
            }
        ],
    }
    flags = ("--scripted", "--expose-var", "SHARED")
    with serving(
        transport, state_dir, served_dir, codex_bin, *flags, env={"SHARED": "the owner"}
    ) as server:
        async with server.client() as client:
            call = await client.call_tool("codex", {"prompt": "hello", "sandbox": "read-only"})
            batch = await client.call_tool(
                "batch", {"mission": mission, "vars": {"GREETING": "hi"}}
            )
    assert not call.is_error and "hello" in text(call)
    data = batch.structured_content
    assert data and data["status"] == "ok", text(batch)
    assert "hi from the owner" in data["results"][0]["output"]
    assert (served_dir / "checkout" / "made.txt").read_text() == "made\n"
