"""What a person reads in the terminal: each task's answer as it ends (in a pipe and on a real
pseudo-terminal), `runs list` as a table, `runs show` readable, how to resume after Ctrl-C,
and commands to paste that work from a shell whose PATH lacks the venv."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.helpers.cli import REPO, run_cli

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
# The short task waits this long on its model (again when resumed: the model starts anew).
DELAY = 15
LONG = "The build passed. " + "Every module compiled and every test ran green. " * 8


def mission(tmp_path: Path, second: str = LONG, delay: float = 0) -> Path:
    steps = [{"delay": delay}] if delay else []
    path = tmp_path / "m.json"
    path.write_text(
        json.dumps(
            {
                "mission_id": "answers",
                "workspace_root": str(tmp_path / "ws"),
                "provider": "scripted",
                "tasks": [
                    {"id": "short", "prompt": "S", "script": [*steps, {"say": "Hello there."}]},
                    {"id": "long", "prompt": "L", "script": [{"say": second}]},
                ],
            }
        )
    )
    return path


def test_run_shows_each_answer_as_its_task_ends_and_quiet_shows_statuses_only(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    done = run_cli(["run", str(mission(tmp_path))], cli_env)
    assert done.returncode == 0, done.stderr
    assert "short answered: Hello there." in done.stderr
    line = next(x for x in done.stderr.splitlines() if "long answered:" in x)
    whole = Path(line.rsplit("(whole answer: ", 1)[1].rstrip(")"))
    assert "…" in line and whole.read_text().strip() == LONG.strip()
    quiet = run_cli(["run", str(mission(tmp_path)), "--quiet"], cli_env)
    assert quiet.returncode == 0 and "answered" not in quiet.stderr
    assert "short: ok" in quiet.stderr
    as_json = run_cli(["run", str(mission(tmp_path)), "--json"], cli_env)
    assert json.loads(as_json.stdout)["status"] == "ok"  # stdout is the summary, only it


def on_a_terminal(argv: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run the CLI with stdin, stdout and stderr on a new pseudo-terminal; its exit code and
    everything it showed, without the terminal's control sequences."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", *argv],
        stdin=child,
        stdout=child,
        stderr=child,
        env={**env, "COLUMNS": "120", "TERM": "xterm"},
        cwd=REPO,
        start_new_session=True,
    )
    os.close(child)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                data = os.read(main, 65536)
            except OSError:  # the terminal closed: every process on it has exited
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    return code, ANSI.sub("", b"".join(chunks).decode(errors="replace"))


def test_on_a_terminal_the_answers_appear_with_the_live_table(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    code, shown = on_a_terminal(["run", str(mission(tmp_path))], cli_env)
    assert code == 0, shown
    assert "short answered: Hello there." in shown
    assert "long answered: The build passed." in shown and "whole answer:" in shown
    assert re.search(r"run \S+ ok: 2 ok in", shown), shown


def test_runs_list_is_a_table_and_runs_show_is_readable(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    done = run_cli(["run", str(mission(tmp_path)), "--json"], cli_env)
    run_id = json.loads(done.stdout)["run_id"]
    listed = run_cli(["runs", "list"], cli_env)
    header, row = listed.stdout.splitlines()[:2]
    assert header.split() == ["run", "mission", "status", "tasks", "ok", "started", "duration"]
    assert row.split()[:4] == [run_id, "answers", "ok", "2/2"], listed.stdout
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d +\d+\.\ds", " ".join(row.split()[4:]))
    shown = run_cli(["runs", "show", run_id], cli_env)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith(f"run {run_id} of answers: ok (2 ok)")
    assert "short ok on " in text and "answer: Hello there." in text
    assert "full answer: " in text and "final.md" in text and "{" not in text  # no JSON
    machine = run_cli(["runs", "show", run_id, "--json"], cli_env)
    assert json.loads(machine.stdout)["run_id"] == run_id


def test_ctrl_c_says_how_to_finish_the_run_and_that_command_finishes_it(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(mission(tmp_path, delay=DELAY))],
        env=cli_env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # bounded by the delay step
        seen.append(line)
        if "long answered:" in line:  # one task is done, the other waits on its model
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, rest
    last = rest.strip().splitlines()[-1]
    assert "Traceback" not in rest and last.startswith("error: interrupted;"), rest
    command = re.search(r"`(.+?) resume (\S+)`", last)
    assert command is not None, last
    finish = subprocess.run(  # the command as shown, pasted into a shell
        ["bash", "-c", f"{command.group(1)} resume {command.group(2)}"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finish.returncode == 0, finish.stderr
    assert "short answered: Hello there." in finish.stderr


@pytest.fixture
def path_without_the_venv(cli_env: dict[str, str]) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    parts = [p for p in cli_env.get("PATH", "").split(os.pathsep) if p and p != venv_bin]
    return {**cli_env, "PATH": os.pathsep.join(parts or ["/usr/bin", "/bin"])}


def test_scaffolds_hint_works_pasted_into_a_shell_whose_path_lacks_the_venv(
    tmp_path: Path, path_without_the_venv: dict[str, str]
) -> None:
    script = Path(sys.executable).parent / "codex-mcp-wrapper"
    made = subprocess.run(
        [str(script), "scaffold", str(tmp_path / "new.yaml")],
        env=path_without_the_venv,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    hint = made.stdout.split("run it with: ", 1)[1].strip()
    assert hint.startswith(str(script)), hint
    pasted = subprocess.run(
        ["bash", "-c", hint],
        env=path_without_the_venv,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert pasted.returncode == 0, pasted.stderr


@pytest.fixture
def exported(tmp_path: Path, path_without_the_venv: dict[str, str]) -> tuple[dict, dict]:
    """``export --format codex`` run from a shell whose PATH lacks the venv: the server block
    it prints, and that shell's environment."""
    env = {**path_without_the_venv, "CODEX_MCP_WRAPPER_INSTANCES": str(tmp_path / "instances")}
    env.pop("CODEX_MCP_WRAPPER_HOME", None)
    script = Path(sys.executable).parent / "codex-mcp-wrapper"
    done = subprocess.run(
        [str(script), "export", "--format", "codex"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    (server,) = tomllib.loads(done.stdout)["mcp_servers"].values()
    assert server["command"] == str(script)  # absolute: the client's PATH lacks the venv
    return server, env


@pytest.mark.anyio
async def test_the_exported_codex_config_starts_the_server_for_a_client_whose_path_lacks_the_venv(
    exported: tuple[dict, dict],
) -> None:
    server, env = exported
    params = StdioServerParameters(
        command=server["command"], args=server["args"], env={**env, **server["env"]}
    )
    async with Client(params) as client:  # as Codex would start it from that config
        tools = {tool.name for tool in (await client.list_tools()).tools}
    assert {"codex", "codex-reply", "batch"} <= tools
