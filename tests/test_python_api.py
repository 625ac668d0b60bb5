"""The public Python API: every exported name imports, and every example in
docs/python-api.md runs as it is, so the document cannot rot."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import codex_mcp_wrapper

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "python-api.md").read_text()
EXAMPLE_TIMEOUT = 300


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC, re.DOTALL)


def run_example(code: str, tmp_path: Path, codex_bin: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["CODEX_BIN"] = codex_bin
    env["CODEX_MCP_WRAPPER_HOME"] = str(tmp_path / "home")
    env.pop("CODEX_MCP_WRAPPER_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def test_all_lists_exactly_the_names_the_package_exports_lazily() -> None:
    assert sorted(codex_mcp_wrapper.__all__) == sorted(codex_mcp_wrapper._EXPORTS)
    assert len(set(codex_mcp_wrapper.__all__)) == len(codex_mcp_wrapper.__all__)


@pytest.mark.parametrize("name", codex_mcp_wrapper.__all__)
def test_every_public_name_is_importable_from_the_package(name: str) -> None:
    value = getattr(codex_mcp_wrapper, name)
    module = importlib.import_module(codex_mcp_wrapper._EXPORTS[name])
    assert value is getattr(module, name)
    namespace: dict[str, object] = {}
    exec(f"from codex_mcp_wrapper import {name}", namespace)
    assert namespace[name] is value


def test_importing_the_package_loads_none_of_its_subpackages() -> None:
    code = (
        "import sys, codex_mcp_wrapper\n"
        "print(sorted(m for m in sys.modules if m.startswith('codex_mcp_wrapper.')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == "[]"


def test_the_python_api_doc_names_every_public_name() -> None:
    missing = [name for name in codex_mcp_wrapper.__all__ if not re.search(rf"`{name}[`(]", DOC)]
    assert not missing, f"docs/python-api.md does not mention {missing}"


def test_the_python_api_doc_has_exactly_the_two_examples_tested_here() -> None:
    first, second = python_blocks()
    assert "run_mission_sync(mission, settings)" in first
    assert "open_runs(" in second


def test_the_synchronous_example_runs_a_scripted_mission_and_prints_each_task_ok(
    tmp_path: Path, codex_bin: str
) -> None:
    proc = run_example(python_blocks()[0], tmp_path, codex_bin)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert re.fullmatch(r"run \S+: ok \(exit code 0\)", lines[0]), proc.stdout
    assert "write-hello: ok: Created hello.txt." in lines
    assert "read-hello: ok: hello.txt says: " in proc.stdout
    assert "hello from codex" in proc.stdout
    assert not (tmp_path / "home").exists(), "the example must use its own state dir"


def test_the_background_example_starts_waits_and_replies_in_the_same_thread(
    tmp_path: Path, codex_bin: str
) -> None:
    proc = run_example(python_blocks()[1], tmp_path, codex_bin)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert re.fullmatch(r"run \S+: ok", lines[0]), proc.stdout
    assert "greet: ok: Hello from the script." in lines
    assert "reply: ok: echo: And once more?" in lines
    events = next(line for line in lines if line.startswith("events: "))
    for kind in ("RunStarted", "TaskUpdate", "CodexEvent", "TaskFinished", "RunFinished"):
        assert kind in events
    assert "recorded runs: 2" in lines
