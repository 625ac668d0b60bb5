"""A thread costs the same whatever the user's shell profile does: by default Codex neither
snapshots a login shell per thread nor runs commands in login shells; `login_shell: true` (or
`run --login-shell`) brings Codex's own behaviour back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli


@pytest.mark.parametrize(
    ("mission_says", "flags", "sourced"),
    [(None, [], False), (None, ["--login-shell"], True), (True, [], True), (False, [], False)],
)
def test_the_shell_profile_is_sourced_only_when_asked(
    mission_says: bool | None,
    flags: list[str],
    sourced: bool,
    tmp_path: Path,
    cli_env: dict[str, str],
) -> None:
    home, marker, workspace = tmp_path / "home", tmp_path / "sourced", tmp_path / "ws"
    home.mkdir()
    for profile in (".bash_profile", ".bashrc"):
        (home / profile).write_text(f'echo "$$" >> {marker}\n')
    defaults: dict[str, object] = {"sandbox": "danger-full-access"}
    if mission_says is not None:
        defaults["login_shell"] = mission_says
    mission = {
        "workspace_root": str(workspace),
        "defaults": defaults,
        "tasks": [
            {"id": "a", "prompt": "a", "script": [{"say": "no command"}]},
            {
                "id": "b",
                "prompt": "b",
                "script": [{"shell": "echo $PATH"}, {"say": "{last_output}"}],
            },
        ],
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(mission))
    env = {**cli_env, "HOME": str(home)}
    done = run_cli(["run", str(path), "--scripted", "--json", *flags], env)
    assert done.returncode == 0, done.stderr
    tasks = {t["task_id"]: t for t in json.loads(done.stdout)["tasks"]}
    assert marker.exists() == sourced, marker.read_text() if marker.exists() else "not sourced"
    # Without a login shell, commands get the worker's environment as it is; a login shell
    # builds PATH again (Debian's /etc/profile resets it).
    first = os.environ["PATH"].split(":")[0]
    assert (first in tasks["b"]["final_message"]) == (not sourced) or first.startswith("/usr")
