"""``expect.commands`` patterns are plain regular expressions searched in the command the model
asked for: Codex's ``/bin/bash -lc`` wrapper is gone, even around a single word, and a pattern
written between slashes (which could never match) is refused when the mission is read."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from codex_mcp_wrapper.missions.expect import Expect
from tests.helpers.cli import run_cli
from tests.helpers.missions import write_mission


def make_mission(tmp_path: Path, expect: dict[str, object]) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "Makefile").write_text("all:\n\techo built > built.txt\n")
    task = {
        "id": "build",
        "prompt": "build it",
        "sandbox": "workspace-write",
        "login_shell": True,  # Codex's own `/bin/bash -lc` around the command
        "script": [{"shell": "make"}, {"say": "done"}],
        "expect": expect,
    }
    return write_mission(
        tmp_path / "m.yaml", workspace, [task], mission_id="make", provider="scripted"
    )


def test_an_anchored_pattern_matches_a_single_word_command_codex_ran_through_bash(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    mission = make_mission(
        tmp_path,
        {
            "commands": ["^make$"],
            "forbid_commands": ["bash", "-lc"],
            "files": [{"path": "built.txt"}],
        },
    )
    proc = run_cli(["run", str(mission), "--json"], cli_env)
    assert proc.returncode == 0, proc.stderr
    (task,) = json.loads(proc.stdout)["tasks"]
    assert task["status"] == "ok", task["error"]
    assert task["commands"] == [{"command": "make", "exit_code": 0, "status": "completed"}]
    assert [(c["name"], c["ok"]) for c in task["checks"]] == [
        ("commands: /^make$/", True),
        ("forbid_commands: /bash/", True),
        ("forbid_commands: /-lc/", True),
        ("files: built.txt", True),
    ]
    transcript = Path(json.loads(proc.stdout)["run_dir"]) / "tasks" / "build" / "events.jsonl"
    assert '"command": "/bin/bash -lc make"' in transcript.read_text()  # what Codex reported


def test_a_pattern_between_slashes_is_refused_with_the_pattern_to_write_instead(
    tmp_path: Path,
) -> None:
    mission = make_mission(tmp_path, {"commands": ["/^make$/"]})
    proc = run_cli(["validate", str(mission)], dict(os.environ))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "tasks[0].expect.commands[0].pattern: '/^make$/' can never match" in proc.stderr
    assert "as '^make$'" in proc.stderr


@pytest.mark.parametrize(
    ("field", "pattern", "bare"),
    [
        ("forbid_commands", "/^rm/", "^rm"),
        ("forbid_commands", "curl$/", "curl$"),
        ("final_message", "/^Done$/", "^Done$"),
    ],
)
def test_every_pattern_that_can_never_match_for_its_slashes_is_refused(
    field: str, pattern: str, bare: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(f"as '{bare}'")):
        Expect.model_validate({field: [pattern] if field.endswith("s") else pattern})


@pytest.mark.parametrize("pattern", ["/usr/bin/", r"costs \$/", "/^a|b/", "^make$"])
def test_patterns_with_slashes_that_can_match_are_kept(pattern: str) -> None:
    assert Expect.model_validate({"commands": [pattern]}).commands[0].pattern == pattern
