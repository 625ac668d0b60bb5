"""Shared fixtures: the real Codex binary, the scripted model, fresh homes and workspaces.

Tests that need Codex never skip: without a binary they fail and say how to install it.
After every test no Codex process started by this test session may remain.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from codex_mcp_wrapper.codex.home import CodexHomeSpec, scripted_provider, write_codex_home
from codex_mcp_wrapper.errors import CodexNotFound
from codex_mcp_wrapper.scripted import ScriptedModel
from codex_mcp_wrapper.settings import find_codex_bin
from tests.helpers.procs import codex_processes, wait_gone

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def codex_bin() -> str:
    try:
        path, _ = find_codex_bin(os.environ.get("CODEX_BIN"))
    except CodexNotFound as exc:
        pytest.fail(f"the real Codex binary is required: {exc}")
    return path


@pytest.fixture(autouse=True)
def no_codex_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    before = set(codex_processes())
    yield
    new = set(codex_processes()) - before
    assert wait_gone(new, timeout=10), f"Codex processes left behind: {sorted(new)}"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
async def model(tmp_path: Path) -> AsyncIterator[ScriptedModel]:
    """A running scripted model (echo by default) recording to tmp_path/requests.jsonl."""
    server = ScriptedModel(record=tmp_path / "requests.jsonl")
    async with server.serve():
        yield server


@pytest.fixture
def codex_home(tmp_path: Path, model: ScriptedModel, workspace: Path) -> Path:
    """A fresh hermetic CODEX_HOME pointing at the scripted model."""
    home = tmp_path / "codex-home"
    write_codex_home(
        home,
        CodexHomeSpec(provider=scripted_provider(model.base_url), trusted_projects=[workspace]),
    )
    return home


@pytest.fixture
def cli_env(state_dir: Path, codex_bin: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CODEX_MCP_WRAPPER_HOME"] = str(state_dir)
    env["CODEX_BIN"] = codex_bin
    env.pop("CODEX_MCP_WRAPPER_DEBUG", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def cli(cli_env: dict[str, str]) -> list[str]:
    """argv prefix that runs the installed CLI with this interpreter."""
    return [sys.executable, "-m", "codex_mcp_wrapper"]
