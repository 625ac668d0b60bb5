"""What `validate` accepts, `run` can run: every mistake `run` would trip on is refused up front,
with exit 2 and one line that names every problem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codex_mcp_wrapper.errors import MissionError
from codex_mcp_wrapper.missions.loading import load_mission
from tests.helpers.cli import run_cli

REPO = Path(__file__).resolve().parents[1]


def validate(
    tmp_path: Path, mission: dict, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(mission))
    return subprocess.run(
        [sys.executable, "-m", "codex_mcp_wrapper", "validate", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("task", "fragment"),
    [
        ({"artifacts": ["/etc/*"]}, "artifact '/etc/*' must be relative to workspace_root"),
        ({"artifacts": ["../up/*"]}, "artifact '../up/*' escapes workspace_root"),
        ({"expect": {"final_message": "(unclosed"}}, "'(unclosed' is not a valid regular"),
        ({"expect": {"commands": ["[a-"]}}, "'[a-' is not a valid regular expression"),
        ({"expect": {"forbid_commands": ["*x"]}}, "'*x' is not a valid regular expression"),
        (
            {"expect": {"files": [{"path": "/etc/passwd"}]}},
            "path '/etc/passwd' must be relative to the task's directory",
        ),
        ({"expect": {"files": [{"path": "a", "contains": "("}]}}, "'(' is not a valid regular"),
    ],
)
def test_what_run_would_trip_on_is_refused_by_validate_with_exit_2(
    tmp_path: Path, cli_env: dict[str, str], task: dict, fragment: str
) -> None:
    proc = validate(tmp_path, {"tasks": [{"prompt": "go", **task}]}, cli_env)
    assert proc.returncode == 2, proc.stdout
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_near_miss_field_gets_a_did_you_mean_and_every_problem_is_named(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    mission = {"tasks": [{"prompt": "a", "dependsOn": []}, {"promt": "b"}]}
    proc = validate(tmp_path, mission, cli_env)
    assert proc.returncode == 2
    line = proc.stderr
    assert "tasks[0]: unknown field 'dependsOn' (did you mean 'depends_on'?)" in line
    assert "tasks[1]: missing required field 'prompt'" in line
    assert "unknown field 'promt' (did you mean 'prompt'?)" in line
    assert "more problem" not in line


def test_a_reversed_chain_of_2000_dependent_tasks_validates(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    n = 2000
    tasks = [
        {"id": f"t{i}", "prompt": "go", "depends_on": [f"t{i + 1}"] if i + 1 < n else []}
        for i in range(n)
    ]
    proc = validate(tmp_path, {"tasks": tasks}, cli_env)
    assert proc.returncode == 0, proc.stderr
    assert "with 2000 task(s)" in proc.stdout


def test_a_long_dependency_cycle_is_reported_not_a_crash(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    n = 3000
    tasks = [{"id": f"t{i}", "prompt": "go", "depends_on": [f"t{(i + 1) % n}"]} for i in range(n)]
    proc = validate(tmp_path, {"tasks": tasks}, cli_env)
    assert proc.returncode == 2
    assert "dependency cycle: t0 -> t1 -> t2" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_yaml_means_what_people_wrote_an_unquoted_on_is_a_hook_key(tmp_path: Path) -> None:
    """YAML 1.2: `on:` is the key `on` (YAML 1.1 made it `true`), `yes` is a string, `010`
    is ten; a duplicate key is an error naming its line."""
    path = tmp_path / "m.yaml"
    path.write_text(
        "hooks:\n"
        "  - on: task_end\n"
        "    run: echo done\n"
        "notes: yes\n"
        "tasks:\n"
        "  - prompt: hi\n"
        "    retries: 010\n"
    )
    mission = load_mission(path)
    assert mission.hooks[0].on == "task_end"
    assert mission.notes == "yes" and mission.tasks[0].retries == 10
    path.write_text("tasks:\n  - prompt: a\n    prompt: b\n")
    with pytest.raises(MissionError, match=r"line 3, column 5: found duplicate key \"prompt\""):
        load_mission(path)


def test_a_hook_written_with_an_unquoted_on_runs(tmp_path: Path, cli_env: dict[str, str]) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        f"workspace_root: {tmp_path / 'ws'}\n"
        "hooks:\n"
        "  - on: task_end\n"
        "    run: touch hook-ran\n"
        "tasks:\n"
        "  - prompt: hi\n"
    )
    done = run_cli(["run", str(path), "--scripted"], cli_env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "hook-ran").exists()


def _both(
    tmp_path: Path, mission: dict, env: dict[str, str], *flags: str
) -> list[subprocess.CompletedProcess[str]]:
    """``validate`` and ``run --scripted`` of the same mission file."""
    path = tmp_path / "m.json"
    path.write_text(json.dumps(mission))
    return [
        run_cli(["validate", str(path), *flags], env),
        run_cli(["run", str(path), "--scripted", "--json", *flags], env),
    ]


MISSING_SERVER = "no-such-mcp-server-3f9c"


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("file", "exists and is not a directory; point workspace_root at a directory"),
        ("empty-command", "'command' is empty: give the program that starts the server"),
        ("empty-url", "'url' is empty: give the server's URL"),
        (
            "missing-program",
            f"MCP server 'fs': the program `{MISSING_SERVER}` is not found on PATH (or not "
            "executable); install it, or give its full path as mcp_servers.fs.command.",
        ),
        ("root", "workspace_root / is the filesystem root, where Codex could change anything"),
        ("home", "is your home directory, where Codex could change anything; point"),
        ("usr", "workspace_root /usr is a system directory"),
    ],
)
def test_validate_and_run_refuse_what_cannot_or_should_not_run_in_the_same_line(
    tmp_path: Path, cli_env: dict[str, str], case: str, fragment: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**cli_env, "HOME": str(home)}
    (tmp_path / "a-file").write_text("")
    workspace = {
        "file": str(tmp_path / "a-file"),
        "root": "/",
        "home": str(home),
        "usr": "/usr",
    }.get(case, str(tmp_path / "ws"))
    task: dict = {"prompt": "hi"}
    if case in ("empty-command", "missing-program"):
        command = "" if case == "empty-command" else MISSING_SERVER
        task["mcp_servers"] = {"fs": {"command": command}}
    if case == "empty-url":
        task["mcp_servers"] = {"web": {"url": " "}}
    checked, ran = _both(tmp_path, {"workspace_root": workspace, "tasks": [task]}, env)
    for proc in (checked, ran):
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
        assert fragment in proc.stderr
    assert checked.stderr == ran.stderr
    assert not (Path(cli_env["CODEX_MCP_WRAPPER_HOME"]) / "runs").exists()  # nothing started
    if case in ("root", "home", "usr"):
        assert proc.stderr.rstrip().endswith("or pass --allow-broad-workspace if you mean it.")


def test_a_broad_workspace_runs_when_asked_for_and_an_installed_server_validates(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """What validate accepts, run runs: / as the workspace with the flag (read-only), and a
    stdio MCP server whose program is on PATH."""
    mission = {
        "workspace_root": "/",
        "defaults": {"sandbox": "read-only"},
        "tasks": [{"id": "look", "prompt": "hi", "script": [{"say": "looked"}]}],
    }
    checked, ran = _both(tmp_path, mission, cli_env, "--allow-broad-workspace")
    assert checked.returncode == 0, checked.stderr
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["tasks"][0]["final_message"] == "looked"
    server = {"workspace_root": str(tmp_path / "ws"), "tasks": [{"prompt": "hi"}]}
    server["tasks"][0]["mcp_servers"] = {"sh": {"command": "sh"}}  # type: ignore[index]
    assert validate(tmp_path, server, cli_env).returncode == 0
