"""kill -9 of the wrapper while a task works in its worktree: the next run on the state dir
prunes the dead run's worktree (its change saved), and `resume` finishes the task on top of
what it had written; nothing is left in the user's repository."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.procs import wait_until
from tests.test_worktrees import branches, make_repo, user_state

REPO = Path(__file__).resolve().parents[2]
SLOW = "echo partial > part.txt; sleep 60"


@pytest.mark.parametrize("another_run_first", [True, False], ids=["pruned", "reused"])
def test_kill_9_then_another_run_prunes_the_worktree_and_resume_keeps_what_was_written(
    tmp_path: Path, cli_env: dict[str, str], state_dir: Path, another_run_first: bool
) -> None:
    """Another run on the state dir prunes the dead run's worktree (its change saved) and
    resume makes it again; without one, resume reuses the worktree the kill left."""
    repo = make_repo(tmp_path / "repo")
    before = user_state(repo)
    mission = {
        "workspace_root": str(repo),
        "provider": "scripted",
        "defaults": {"sandbox": "workspace-write", "isolation": "worktree"},
        "tasks": [
            {
                "id": "slow",
                "prompt": "go",
                # resumed, the model goes on after the call the kill cut short
                "script": [{"shell": SLOW}, {"shell": "cat part.txt"}, {"say": "{last_output}"}],
            }
        ],
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(mission))
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(path)],
        env=cli_env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worktrees = state_dir / "worktrees"
    try:
        assert wait_until(lambda: bool(list(worktrees.glob("*/slow/part.txt"))), timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    (left,) = worktrees.glob("*/slow")
    run_id = left.parent.name
    assert f"codex-mcp-wrapper/{run_id}/slow" in branches(repo)

    if another_run_first:
        other = tmp_path / "other.json"
        other.write_text(json.dumps({"provider": "scripted", "workspace_root": str(tmp_path / "o"),
                                     "tasks": [{"prompt": "hi"}]}))  # fmt: skip
        assert run_cli(["run", str(other)], cli_env).returncode == 0
        assert not left.exists()  # pruned by the next run, its change kept in the run folder
        assert user_state(repo) == before
        saved = state_dir / "runs" / run_id / "tasks" / "slow" / "diff.patch"
        assert "+partial" in saved.read_text()

    resumed = run_cli(["resume", run_id, "--json"], cli_env)
    assert resumed.returncode == 0, resumed.stderr
    (task,) = json.loads(resumed.stdout)["tasks"]
    assert task["final_message"].endswith("partial\n")  # what it had written was there
    assert task["diff"]["files"] == ["part.txt"]
    assert user_state(repo) == before  # no worktree, no branch, the files as they were
    assert not list(worktrees.glob("*/*"))


def test_a_cancelled_run_removes_its_worktree_keeping_the_change_for_resume(
    tmp_path: Path, cli_env: dict[str, str], state_dir: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    before = user_state(repo)
    mission = {
        "workspace_root": str(repo),
        "provider": "scripted",
        "defaults": {"sandbox": "workspace-write", "isolation": "worktree"},
        "tasks": [
            {
                "id": "slow",
                "prompt": "go",
                "script": [{"shell": SLOW}, {"shell": "cat part.txt"}, {"say": "{last_output}"}],
            }
        ],
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(mission))
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(path)],
        env=cli_env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    worktrees = state_dir / "worktrees"
    try:
        assert wait_until(lambda: bool(list(worktrees.glob("*/slow/part.txt"))), timeout=60)
        (left,) = worktrees.glob("*/slow")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not left.exists() and user_state(repo) == before  # removed on the way out
    run_id = left.parent.name
    saved = state_dir / "runs" / run_id / "tasks" / "slow" / "diff.patch"
    assert "+partial" in saved.read_text()
    resumed = run_cli(["resume", run_id, "--json"], cli_env)
    assert resumed.returncode == 0, resumed.stderr
    (task,) = json.loads(resumed.stdout)["tasks"]
    assert task["diff"]["files"] == ["part.txt"]
    assert user_state(repo) == before
