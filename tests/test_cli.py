"""The CLI as users and CI call it: exit codes, one-line errors, --json, runs, schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli, subcommands
from tests.helpers.procs import codex_processes, environ, wait_gone

REPO = Path(__file__).resolve().parents[1]
CLI_TIMEOUT = 120


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_run_json_prints_only_the_summary_and_exits_0_when_all_ok(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    mission = write(
        tmp_path / "m.yaml",
        f"""
mission_id: ok-mission
workspace_root: {tmp_path / "ws"}
provider: scripted
tasks:
  - prompt: hello
  - id: second
    prompt: world
""",
    )
    proc = run_cli(["run", str(mission), "--json"], cli_env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "ok" and summary["exit_code"] == 0
    assert [t["task_id"] for t in summary["tasks"]] == ["task-1", "second"]
    assert [t["final_message"] for t in summary["tasks"]] == ["echo: hello", "echo: world"]
    saved = json.loads((Path(summary["run_dir"]) / "summary.json").read_text())
    assert saved == summary
    listed = run_cli(["runs", "list", "--json"], cli_env)
    assert json.loads(listed.stdout)[0]["run_id"] == summary["run_id"]
    shown = run_cli(["runs", "show", summary["run_id"], "--json"], cli_env)
    assert json.loads(shown.stdout)["run_id"] == summary["run_id"]


def test_a_failed_task_makes_the_run_exit_1(tmp_path: Path, cli_env: dict[str, str]) -> None:
    mission = write(
        tmp_path / "m.yaml",
        """
provider: scripted
workspace_root: ws
tasks:
  - prompt: p
    retries: 0
    script: [{fail: 400}]
""",
    )
    proc = run_cli(["run", str(mission), "--json"], cli_env)
    assert proc.returncode == 1
    (task,) = json.loads(proc.stdout)["tasks"]
    assert task["status"] == "failed"
    assert "scripted HTTP 400" in task["error"]


def test_the_scripted_flag_runs_a_mission_written_for_a_real_model_offline(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    original = {
        "mission_id": "legacy",
        "workspace_root": str(tmp_path / "ws"),
        "notes": "written for the original wrapper design",
        "tasks": [
            {
                "prompt": "Summarise the repo",
                "cwd": ".",
                "sandbox": "workspace-write",
                "approval_policy": "on-request",
                "timeout_sec": 900,
                "base-instructions": "Be brief.",
                "model": "gpt-5.1",
            }
        ],
    }
    mission = write(tmp_path / "legacy.json", json.dumps(original))
    assert run_cli(["validate", str(mission)], cli_env).returncode == 0
    proc = run_cli(["run", str(mission), "--scripted", "--json"], cli_env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tasks"][0]["final_message"] == "echo: Summarise the repo"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tasks: [prompt: x\n", "YAML syntax error at line"),
        ("tasks:\n  - prompt: x\n    colour: blue\n", "tasks[0]: unknown field 'colour'"),
        ("tasks:\n  - prompt: x\n    cwd: ../../etc\n", "cwd '../../etc' escapes workspace_root"),
        (
            "tasks:\n  - {id: a, prompt: x, depends_on: [b]}\n"
            "  - {id: b, prompt: y, depends_on: [a]}\n",
            "dependency cycle: a -> b -> a",
        ),
        ("tasks:\n  - {id: a, prompt: x, depends_on: [ghost]}\n", "depends on 'ghost'"),
        ("tasks:\n  - prompt: x\n    sandbox: rw\n", "tasks[0].sandbox"),
        ("tasks:\n  - prompt: x\n    script: [{sya: 1}]\n", "step 0: unknown step 'sya'"),
        ("tasks:\n  - prompt: ${NOT_SET_ANYWHERE}\n", "NOT_SET_ANYWHERE is not set"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_invalid_mission_exits_2_with_one_clear_line(
    tmp_path: Path, cli_env: dict[str, str], text: str, expected: str, command: str
) -> None:
    mission = write(tmp_path / "bad.yaml", text)
    proc = run_cli([command, str(mission)], cli_env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


def test_variables_expand_from_var_and_the_environment(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    mission = write(
        tmp_path / "m.yaml",
        "provider: scripted\nworkspace_root: ws\ntasks:\n  - prompt: ${GREETING} ${NAME:-nobody}\n",
    )
    env = {**cli_env, "GREETING": "hi"}
    proc = run_cli(["run", str(mission), "--json", "--var", "NAME=ann"], env)
    assert json.loads(proc.stdout)["tasks"][0]["final_message"] == "echo: hi ann"


def test_a_missing_codex_binary_exits_3_with_a_hint(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    mission = write(tmp_path / "m.yaml", "provider: scripted\ntasks: [{prompt: x}]\n")
    env = {**cli_env, "CODEX_BIN": str(tmp_path / "no-such-codex")}
    proc = run_cli(["run", str(mission)], env)
    assert proc.returncode == 3
    assert "does not exist or is not executable" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_a_codex_that_cannot_start_exits_3(tmp_path: Path, cli_env: dict[str, str]) -> None:
    fake = write(tmp_path / "codex", "#!/bin/sh\necho 'codex: broken build' >&2\nexit 1\n")
    fake.chmod(0o755)
    mission = write(tmp_path / "m.yaml", "provider: scripted\ntasks: [{prompt: x}]\n")
    proc = run_cli(["run", str(mission)], {**cli_env, "CODEX_BIN": str(fake)})
    assert proc.returncode == 3, proc.stderr
    assert "did not complete its start-up handshake" in proc.stderr
    assert "codex: broken build" in proc.stderr


def test_ctrl_c_stops_the_run_and_leaves_no_codex_process(
    tmp_path: Path, cli_env: dict[str, str], state_dir: Path
) -> None:
    mission = write(
        tmp_path / "m.yaml",
        """
provider: scripted
workspace_root: ws
tasks:
  - {id: slow-1, prompt: a, script: [{hang: 300}]}
  - {id: slow-2, prompt: b, script: [{hang: 300}]}
""",
    )
    proc = subprocess.Popen(
        # One Codex process per task: the test is that every one of them stops.
        [
            *(sys.executable, "-m", "codex_mcp_wrapper", "run", str(mission), "--json"),
            *("--threads-per-worker", "1"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env,
        cwd=REPO,
    )
    assert proc.stderr is not None
    running = 0
    for line in proc.stderr:  # wait on the progress lines, bounded by the pytest timeout
        running += ": running" in line
        if running == 2:
            break
    ours = [p for p in codex_processes() if str(state_dir) in environ(p).get("CODEX_HOME", "")]
    assert len(ours) == 2
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=CLI_TIMEOUT)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert wait_gone(ours, timeout=10)
    summary = json.loads((next((state_dir / "runs").iterdir()) / "summary.json").read_text())
    assert summary["status"] == "cancelled"
    assert {t["status"] for t in summary["tasks"]} == {"cancelled"}


def test_schema_prints_the_published_json_schema(cli_env: dict[str, str]) -> None:
    proc = run_cli(["schema"], cli_env)
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    assert schema == json.loads((REPO / "schema" / "mission.schema.json").read_text()), (
        "regenerate with: codex-mcp-wrapper schema > schema/mission.schema.json"
    )
    assert "tasks" in schema["properties"]


def test_scaffold_writes_a_mission_that_runs(tmp_path: Path, cli_env: dict[str, str]) -> None:
    target = tmp_path / "starter.yaml"
    assert run_cli(["scaffold", str(target)], cli_env).returncode == 0
    proc = run_cli(["run", str(target), "--json"], cli_env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "workspace" / "hello.txt").read_text() == "hello from codex\n"
    again = run_cli(["scaffold", str(target)], cli_env)
    assert again.returncode == 2 and "exists already" in again.stderr


def test_doctor_reports_each_check(cli_env: dict[str, str]) -> None:
    proc = run_cli(["doctor"], cli_env)
    assert proc.returncode == 0, proc.stdout
    for name in ("codex binary", "codex version", "sandbox", "state dir", "auth"):
        assert f"] {name}:" in proc.stdout
    assert "[ok  ] sandbox" in proc.stdout


def _leaf_commands() -> list[list[str]]:
    import click

    from codex_mcp_wrapper.cli.main import cli

    out: list[list[str]] = []

    def walk(command: click.Command, path: list[str]) -> None:
        out.append(path)
        if isinstance(command, click.Group):
            for name, sub in subcommands(command).items():
                walk(sub, [*path, name])

    walk(cli, [])
    return out


def test_every_command_has_help_that_lists_the_global_options(cli_env: dict[str, str]) -> None:
    commands = _leaf_commands()
    assert ["runs", "show"] in commands and ["serve", "start"] in commands
    for path in commands:
        proc = run_cli([*path, "--help"], cli_env)
        assert proc.returncode == 0 and "Usage:" in proc.stdout, path
        for option in ("--state-dir", "--codex-bin", "--instance"):
            assert option in proc.stdout, (path, option)


def test_global_options_work_after_the_subcommand_too(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    mission = write(
        tmp_path / "m.yaml",
        "mission_id: where\nprovider: scripted\nworkspace_root: ws\n"
        "tasks: [{id: a, prompt: hi, script: [{say: done}]}]\n",
    )
    after, before = tmp_path / "after-state", tmp_path / "before-state"
    env = {k: v for k, v in cli_env.items() if k != "CODEX_MCP_WRAPPER_HOME"}
    env["CODEX_MCP_WRAPPER_HOME"] = str(tmp_path / "env-state")
    codex_bin = env.pop("CODEX_BIN")
    proc = run_cli(
        ["run", str(mission), "--json", "--state-dir", str(after), "--codex-bin", codex_bin], env
    )
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout)["run_id"]
    assert (after / "runs" / run_id / "summary.json").is_file()
    assert not (tmp_path / "env-state").exists()
    # the subcommand's value wins over the one before it
    listed = run_cli(["--state-dir", str(before), "runs", "list", "--state-dir", str(after)], env)
    assert listed.returncode == 0 and run_id in listed.stdout, listed.stderr
    empty = run_cli(["runs", "list", "--state-dir", str(before)], env)
    assert empty.returncode == 0 and "no runs yet" in empty.stdout


def test_an_unknown_option_is_a_usage_error_with_exit_2(cli_env: dict[str, str]) -> None:
    proc = run_cli(["run", "--frobnicate"], cli_env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "--help" in proc.stderr


def test_on_a_terminal_run_shows_a_live_table_of_tasks(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    import pty

    mission = write(
        tmp_path / "m.yaml",
        "provider: scripted\nworkspace_root: ws\ntasks:\n  - {id: first, prompt: a}\n"
        "  - {id: second, prompt: b}\n",
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(mission)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=cli_env,
        cwd=REPO,
    )
    os.close(slave)
    screen = b""
    while True:  # read until the terminal closes (the run exits), bounded by pytest's timeout
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert proc.wait(timeout=CLI_TIMEOUT) == 0
    text = screen.decode(errors="replace")
    for column in ("task", "state", "worker", "elapsed"):
        assert column in text
    assert "first" in text and "second" in text and " ok " in text.replace("\x1b", " ")
    assert "\x1b[" in text  # drawn with terminal control sequences, not plain lines


def test_main_called_from_python_raises_system_exit_even_once_temporal_has_started() -> None:
    """As the process's entry `main` may end the process at once (the Temporal SDK's threads
    can crash interpreter finalisation); called from Python (a test, a pytest-xdist worker)
    it must only raise SystemExit."""
    code = (
        "from temporalio.runtime import Runtime\n"
        "Runtime.default()\n"
        "from codex_mcp_wrapper.cli.main import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as exc:\n"
        "    print('still here', exc.code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.splitlines()[-1] == "still here 0", done.stdout + done.stderr
