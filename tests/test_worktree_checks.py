"""``expect.diff`` decided on a worktree task's change, and a mission's ``apply: on_success``
bringing the ok tasks' changes into the workspace in order; the real Codex on the scripted
model, real git repositories."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers.cli import run_cli
from tests.test_worktrees import make_repo

MISSION = """\
workspace_root: {ws}
provider: scripted
apply: on_success
defaults: {{sandbox: workspace-write, isolation: worktree}}
tasks:
  - id: small
    prompt: add a
    script: [{{shell: "mkdir -p src && echo a > src/a.py"}}, {{say: done}}]
    expect:
      diff: {{files: ["src/*.py"], not_files: ["*.md"], max_lines: 5}}
  - id: sprawling
    prompt: add b
    script: [{{shell: "echo b > b.md && printf '1\\\\n2\\\\n' > c.txt"}}, {{say: done}}]
    expect:
      diff: {{files: ["*.py"], not_files: ["*.md"], max_lines: 1}}
  - id: rival
    prompt: add a too
    script: [{{shell: "mkdir -p src && echo other > src/a.py"}}, {{say: done}}]
"""


def test_expect_diff_passes_and_fails_on_evidence_and_apply_on_success_stops_at_a_conflict(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    repo = make_repo(tmp_path / "repo")
    mission = tmp_path / "m.yaml"
    mission.write_text(MISSION.format(ws=repo))
    proc = run_cli(["run", str(mission), "--json"], cli_env)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    tasks = {t["task_id"]: t for t in summary["tasks"]}
    small = tasks["small"]
    assert small["status"] == "ok"
    assert [(c["name"], c["ok"]) for c in small["checks"]] == [
        ("diff: files src/*.py", True),
        ("diff: not_files *.md", True),
        ("diff: max_lines", True),
    ]
    sprawling = tasks["sprawling"]
    assert sprawling["status"] == "failed" and sprawling["attempts"] == 1
    assert sprawling["error"] == (
        "3 of 3 check(s) failed: diff: files *.py: expected a changed file matching it, "
        "observed changed: b.md, c.txt; diff: not_files *.md: expected no changed file "
        "matching it, observed changed: b.md; diff: max_lines: expected at most 1 changed "
        "line(s), observed 3 (b.md, c.txt)"
    )
    # small applied first; sprawling failed (not applied); rival's patch conflicts with small's
    assert summary["applied"] == ["small"]
    run_id = summary["run_id"]
    assert summary["apply_error"] == (
        f"the patch of task 'rival' of run {run_id} does not apply cleanly to {repo} "
        "(conflicts: src/a.py); nothing was changed."
    )
    assert summary["status"] == "failed"
    assert (repo / "src" / "a.py").read_text() == "a\n"
    assert not (repo / "b.md").exists()
    shown = run_cli(["runs", "show", run_id], cli_env).stdout
    assert "applied to the workspace: small" in shown and "not applied: the patch of task" in shown


def test_expect_diff_on_a_task_without_a_worktree_is_refused_before_it_runs(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    mission = tmp_path / "m.yaml"
    mission.write_text("tasks:\n  - id: plain\n    prompt: x\n    expect: {diff: {max_lines: 3}}\n")
    proc = run_cli(["validate", str(mission)], cli_env)
    assert proc.returncode == 2
    assert "task 'plain' has expect.diff but runs without isolation: worktree" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_the_live_table_says_how_many_files_a_turn_is_changing() -> None:
    import io

    from rich.console import Console

    from codex_mcp_wrapper.cli.progress import ProgressView
    from codex_mcp_wrapper.engine.events import CodexEvent, RunStarted, TaskUpdate

    view = ProgressView(io.StringIO(), live=False)
    view(RunStarted("r1", "m", {}, ("edit",), "/ws", None))
    view(TaskUpdate("r1", "edit", "running", "w1", 1, "attempt 1"))
    patch = "diff --git a/a.py b/a.py\n+x\ndiff --git a/b.py b/b.py\n+y\n"
    view(CodexEvent("r1", "edit", "turn/diff/updated", {"threadId": "t", "diff": patch}))
    out = io.StringIO()
    Console(file=out, width=120).print(view._table())
    assert "changing 2 file(s)" in out.getvalue()


def test_a_workspace_inside_a_larger_repository_gets_paths_relative_to_itself(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "app").mkdir()
    (repo / "app" / "main.py").write_text("print('hi')\n")
    mission = tmp_path / "m.yaml"
    mission.write_text(
        f"""\
workspace_root: {repo / "app"}
provider: scripted
tasks:
  - id: edit
    cwd: lib
    sandbox: workspace-write
    isolation: worktree
    prompt: edit
    script:
      - shell: "echo x > util.py && echo y >> ../main.py && pwd"
      - say: "{{last_output}}"
"""
    )
    proc = run_cli(["run", str(mission), "--json"], cli_env)
    assert proc.returncode == 0, proc.stderr
    (task,) = json.loads(proc.stdout)["tasks"]
    # it worked in the same folder, in its worktree
    assert task["final_message"].rstrip().endswith("/edit/app/lib")
    assert task["diff"]["files"] == ["lib/util.py", "main.py"]
    applied = run_cli(["runs", "apply", json.loads(proc.stdout)["run_id"], "edit"], cli_env)
    assert applied.returncode == 0, applied.stderr
    assert (repo / "app" / "lib" / "util.py").read_text() == "x\n"
    assert (repo / "app" / "main.py").read_text() == "print('hi')\ny\n"


def test_task_ids_git_refuses_in_a_branch_name_are_made_acceptable() -> None:
    from codex_mcp_wrapper.engine.planning import branch_name

    assert branch_name("fix..docs") == "fix-docs"
    assert branch_name("db.lock") == "db.lock-"
    assert branch_name("plain-1.2") == "plain-1.2"
    for name in ("fix..docs", "db.lock", "plain-1.2"):
        ref = f"refs/heads/codex-mcp-wrapper/run/{branch_name(name)}"
        assert subprocess.run(["git", "check-ref-format", ref], check=False).returncode == 0


def test_commits_the_task_makes_in_its_worktree_are_part_of_its_change(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    repo = make_repo(tmp_path / "repo")
    mission = tmp_path / "m.yaml"
    commit = "git -c user.name=m -c user.email=m@m commit -qm mine"
    mission.write_text(
        f"""\
workspace_root: {repo}
provider: scripted
tasks:
  - id: committer
    sandbox: danger-full-access
    isolation: worktree
    prompt: commit it
    script:
      - shell: "echo c > c.txt && git add c.txt && {commit} && echo d > d.txt"
      - say: done
"""
    )
    proc = run_cli(["run", str(mission), "--json"], cli_env)
    assert proc.returncode == 0, proc.stderr
    (task,) = json.loads(proc.stdout)["tasks"]
    assert task["diff"]["files"] == ["c.txt", "d.txt"]
