"""``isolation: worktree``: each task in a git worktree of its own, its change as a patch.

Real git repositories in temp dirs, the real Codex binary against the scripted model, the CLI
run as a user runs it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers.cli import REPO, run_cli


def sh(*args: str, cwd: Path) -> str:
    return subprocess.run(
        args, cwd=cwd, check=True, capture_output=True, text=True, timeout=60
    ).stdout


def make_repo(path: Path) -> Path:
    """A repository with one commit (shared.txt, notes.txt) and, uncommitted: notes.txt
    changed and draft.txt new, as a user mid-work leaves it."""
    path.mkdir(parents=True)
    sh("git", "init", "-q", "-b", "main", cwd=path)
    (path / "shared.txt").write_text("one\ntwo\nthree\n")
    (path / "notes.txt").write_text("committed\n")
    sh("git", "add", "-A", cwd=path)
    sh(
        "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init",
        cwd=path,
    )  # fmt: skip
    (path / "notes.txt").write_text("committed\nand edited, not committed\n")
    (path / "draft.txt").write_text("untracked draft\n")
    return path


def user_state(repo: Path) -> tuple[str, str, str, str]:
    """What the user sees of their repository: files, index, branches, worktrees."""
    return (
        sh("git", "status", "--porcelain", "--untracked-files=all", cwd=repo),
        sh("git", "diff", "--cached", cwd=repo) + sh("git", "diff", cwd=repo),
        sh("git", "branch", "--list", "--all", cwd=repo),
        sh("git", "worktree", "list", cwd=repo),
    )


PARALLEL = """\
mission_id: parallel-writers
workspace_root: {ws}
provider: scripted
defaults: {{sandbox: workspace-write, isolation: worktree}}
tasks:
  - id: left
    prompt: change the first line
    script:
      - shell: "cat notes.txt draft.txt > seen.txt && sed -i 's/one/LEFT/' shared.txt"
      - say: done
  - id: right
    prompt: change the last line
    script:
      - shell: "ls > listing.txt && sed -i 's/three/RIGHT/' shared.txt"
      - say: done
"""


def test_two_parallel_tasks_writing_one_file_each_get_only_their_own_change(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    repo = make_repo(tmp_path / "repo")
    before = user_state(repo)
    mission = tmp_path / "m.yaml"
    mission.write_text(PARALLEL.format(ws=repo))
    proc = run_cli(["run", str(mission), "--json", "--workers", "2"], cli_env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    tasks = {t["task_id"]: t for t in summary["tasks"]}
    left, right = tasks["left"]["diff"], tasks["right"]["diff"]
    assert left["files"] == ["seen.txt", "shared.txt"]
    assert right["files"] == ["listing.txt", "shared.txt"]
    assert (left["insertions"], left["deletions"]) == (4, 1)
    run_id = summary["run_id"]
    assert left["branch"] == f"codex-mcp-wrapper/{run_id}/left"
    # each started from what the user sees: HEAD plus uncommitted and untracked changes
    left_patch = Path(left["patch"]).read_text()
    assert "+and edited, not committed" in left_patch and "+untracked draft" in left_patch
    assert "RIGHT" not in left_patch and "-one" in left_patch and "+LEFT" in left_patch
    right_patch = Path(right["patch"]).read_text()
    assert "LEFT" not in right_patch and "+RIGHT" in right_patch
    assert "seen.txt" not in right_patch  # the other task's new file is not here
    # the workspace, its index, branches and worktrees are as they were: nothing left behind
    assert user_state(repo) == before
    assert (repo / "shared.txt").read_text() == "one\ntwo\nthree\n"
    assert not list((Path(cli_env["CODEX_MCP_WRAPPER_HOME"]) / "worktrees").glob("*/*"))
    # the progress lines say what each task changed
    assert f"    left changed: 2 files, +4 -1 (patch: {left['patch']})" in proc.stderr
    # each patch applies to the workspace as it is
    sh("git", "apply", "--check", left["patch"], cwd=repo)
    sh("git", "apply", "--check", right["patch"], cwd=repo)
    # the reports show the change: the HTML the patch itself, JUnit its size and files
    run_dir = Path(summary["run_dir"])
    page = (run_dir / "report.html").read_text()
    assert '<p class="diff-size">2 files, +4 -1 on branch' in page
    assert '<span class="add">+LEFT</span>' in page and '<span class="del">-three</span>' in page
    junit = (run_dir / "junit.xml").read_text()
    assert "diff: 2 files, +4 -1\n  seen.txt\n  shared.txt" in junit


DEPENDENT = """\
mission_id: chain
workspace_root: {ws}
provider: scripted
defaults: {{sandbox: workspace-write, isolation: worktree}}
tasks:
  - id: first
    prompt: write a
    script: [{{shell: "echo from-first > a.txt"}}, {{say: done}}]
  - id: second
    prompt: write b
    script: [{{shell: "echo from-second > b.txt"}}, {{say: done}}]
  - id: third
    depends_on: [first, second]
    prompt: read both
    script:
      - shell: "cat a.txt b.txt"
      - say: "saw {{last_output}}"
      - shell: "echo appended >> a.txt && cat a.txt b.txt"
      - say: "now {{last_output}}"
    follow_ups: [append to a]
  - id: rival
    prompt: write a too
    script: [{{shell: "echo from-rival > a.txt"}}, {{say: done}}]
  - id: after-both
    depends_on: [first, rival]
    prompt: never starts
    script: [{{say: never}}]
"""


def test_a_dependent_task_starts_from_its_dependencies_changes_and_a_clash_fails_it(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    repo = make_repo(tmp_path / "repo")
    mission = tmp_path / "m.yaml"
    mission.write_text(DEPENDENT.format(ws=repo))
    proc = run_cli(["run", str(mission), "--json"], cli_env)
    assert proc.returncode == 1, proc.stderr
    tasks = {t["task_id"]: t for t in json.loads(proc.stdout)["tasks"]}
    third = tasks["third"]
    assert third["status"] == "ok", third
    # the follow-up ran in the same worktree, holding both dependencies' changes
    assert "from-first\nappended\nfrom-second" in third["final_message"]
    assert third["diff"]["files"] == ["a.txt"]  # its own change only
    assert "+appended" in Path(third["diff"]["patch"]).read_text()
    assert "from-second" not in Path(third["diff"]["patch"]).read_text()
    assert tasks["first"]["diff"]["files"] == ["a.txt"]
    assert tasks["rival"]["diff"]["files"] == ["a.txt"]
    after = tasks["after-both"]
    assert after["status"] == "failed"
    assert after["error"] == (
        "the changes of its dependencies conflict: rival's patch does not apply on top of "
        "first's (a.txt)."
    )
    assert user_state(repo)[3].count("\n") == 1  # the main work tree only


def test_a_workspace_outside_git_is_refused_by_validate_and_run_in_one_line(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    ws = tmp_path / "plain"
    ws.mkdir()
    mission = tmp_path / "m.yaml"
    mission.write_text(PARALLEL.format(ws=ws))
    for command in (["validate", str(mission)], ["run", str(mission)]):
        proc = run_cli(command, cli_env)
        assert proc.returncode == 2
        assert proc.stderr.strip().count("\n") == 0, proc.stderr
        assert "task 'left' asks for isolation: worktree but workspace_root" in proc.stderr
        assert "is not in a git repository" in proc.stderr


def branches(repo: Path) -> list[str]:
    return sh("git", "branch", "--format=%(refname:short)", cwd=repo).split()


def test_a_reply_continues_in_the_tasks_worktree_and_kept_worktrees_are_listed(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    repo = make_repo(tmp_path / "repo")
    mission = tmp_path / "m.yaml"
    mission.write_text(
        f"""\
workspace_root: {repo}
provider: scripted
tasks:
  - id: grow
    sandbox: workspace-write
    isolation: worktree
    prompt: grow it
    script:
      - shell: "cat grow.txt 2>/dev/null; echo more >> grow.txt"
      - say: "had {{last_output}}"
      - shell: "cat grow.txt; echo more >> grow.txt"
      - say: "had {{last_output}}"
"""
    )
    first = run_cli(["run", str(mission), "--json", "--keep-worktrees"], cli_env)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    run_id, diff = summary["run_id"], summary["tasks"][0]["diff"]
    kept = Path(diff["worktree"])
    assert (kept / "grow.txt").read_text() == "more\n"
    assert sorted(branches(repo)) == sorted(["main", diff["branch"]])
    shown = run_cli(["runs", "show", run_id], cli_env)
    assert f"worktree kept: {kept}" in shown.stdout, shown.stdout
    assert "1 file, +1 -0" in shown.stdout

    reply = run_cli(["reply", run_id, "grow", "again", "--json"], cli_env)
    assert reply.returncode == 0, reply.stderr
    result = json.loads(reply.stdout)
    assert result["final_message"].endswith("\nmore\n")  # it saw the task's change
    # its patch is the thread's whole change so far, from the workspace as it was
    assert result["diff"]["files"] == ["grow.txt"] and result["diff"]["insertions"] == 2
    assert result["diff"]["worktree"] is None  # not kept: removed with its run
    assert sorted(branches(repo)) == sorted(["main", diff["branch"]])  # the kept one only
    assert (repo / "grow.txt").exists() is False


def test_runs_apply_commits_one_patch_and_refuses_a_conflicting_one_changing_nothing(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    repo = make_repo(tmp_path / "repo")
    mission = tmp_path / "m.yaml"
    mission.write_text(PARALLEL.format(ws=repo))
    proc = run_cli(["run", str(mission), "--json", "--workers", "2"], cli_env)
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout)["run_id"]

    applied = run_cli(["runs", "apply", run_id, "left", "--commit"], cli_env)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.startswith(f"applied task 'left' of run {run_id} to {repo}: ")
    assert "2 files, +4 -1, committed as " in applied.stdout
    assert (repo / "shared.txt").read_text() == "LEFT\ntwo\nthree\n"
    committed = sh("git", "show", "--name-only", "--format=%s", "HEAD", cwd=repo).split()
    assert committed == ["left:", "change", "of", "run", run_id, "seen.txt", "shared.txt"]
    # the user's own uncommitted work is still theirs, uncommitted
    status = sh("git", "status", "--porcelain", cwd=repo).split()
    assert status == ["M", "notes.txt", "??", "draft.txt"]

    before = user_state(repo)
    refused = run_cli(["runs", "apply", run_id, "right"], cli_env)
    assert refused.returncode == 1
    assert refused.stderr == (
        f"error: the patch of task 'right' of run {run_id} does not apply cleanly to {repo} "
        "(conflicts: shared.txt); nothing was changed.\n"
    )
    assert user_state(repo) == before and not (repo / "listing.txt").exists()

    nothing = run_cli(["runs", "apply", run_id, "nope"], cli_env)
    assert nothing.returncode == 2 and "has no finished task 'nope'" in nothing.stderr


def test_the_worktrees_example_runs_as_its_readme_says(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    example = REPO / "examples" / "worktrees"
    repo = tmp_path / "repo"
    repo.mkdir()
    sh("git", "init", "-q", cwd=repo)
    (repo / "greeting.txt").write_text((example / "workspace" / "greeting.txt").read_text())
    args = ["run", str(example / "mission.yaml"), "--json", "--workspace", str(repo)]
    proc = run_cli(args, cli_env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    tasks = {t["task_id"]: t for t in summary["tasks"]}
    assert {t["diff"]["files"][0] for t in tasks.values()} == {"greeting.txt"}
    assert tasks["sign"]["final_message"].endswith("hello, friend\n-- codex\n")
    run_id = summary["run_id"]
    assert run_cli(["runs", "apply", run_id, "english"], cli_env).returncode == 0
    assert run_cli(["runs", "apply", run_id, "french"], cli_env).returncode == 1
    assert (repo / "greeting.txt").read_text() == "hello, friend\n"
