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
