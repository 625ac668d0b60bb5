"""Bringing a worktree task's change into the workspace: its patch applied all or nothing
(``runs apply``, and a mission's ``apply: on_success`` at the end of a run)."""

from __future__ import annotations

from pathlib import Path

from codex_mcp_wrapper.engine import git
from codex_mcp_wrapper.engine.results import TaskResult
from codex_mcp_wrapper.errors import InputError, PatchConflict, WrapperError
from codex_mcp_wrapper.missions.paths import git_work_tree


async def apply_change(result: TaskResult, workspace: Path, run_id: str, commit: bool) -> str:
    """Apply the task's patch to ``workspace`` (and, with ``commit``, commit the files it
    changes, nothing else); returns what was done, in one line. ``PatchConflict`` when it does
    not apply cleanly: nothing is changed then."""
    task = result.task_id
    diff = result.diff
    if diff is None:
        raise InputError(
            f"task '{task}' of run {run_id} did not run in a worktree of its own "
            "(isolation: worktree), so it has no patch to apply."
        )
    if not diff.patch:
        return f"task '{task}' of run {run_id} changed nothing; nothing to apply."
    patch = Path(diff.patch)
    if not patch.is_file():
        raise InputError(f"the patch of task '{task}' of run {run_id} ({patch}) is gone.")
    if git_work_tree(workspace) is None:
        raise InputError(f"the workspace {workspace} is no longer in a git repository.")
    try:
        conflicts = await git.apply_patch(workspace, patch, index=commit)
        if conflicts:
            raise PatchConflict(
                f"the patch of task '{task}' of run {run_id} does not apply cleanly to "
                f"{workspace} (conflicts: {', '.join(conflicts)}); nothing was changed."
            )
        done = f"applied task '{task}' of run {run_id} to {workspace}: {diff.describe()}"
        if commit:
            sha = await _commit(workspace, diff.files, f"{task}: change of run {run_id}")
            done += f", committed as {sha}"
    except git.GitError as exc:
        raise WrapperError(str(exc)) from exc
    return done + "."


async def apply_all(
    results: list[TaskResult], workspace: Path, run_id: str
) -> tuple[list[str], str | None]:
    """A mission's ``apply: on_success``: every ok task's patch, in task order, until one does
    not apply; the tasks applied, and the sentence of the one that did not (None: all did)."""
    applied: list[str] = []
    for result in sorted(results, key=lambda r: r.index):
        if result.status != "ok" or result.diff is None or not result.diff.patch:
            continue
        try:
            await apply_change(result, workspace, run_id, commit=False)
        except WrapperError as exc:
            return applied, str(exc)
        applied.append(result.task_id)
    return applied, None


async def _commit(workspace: Path, files: list[str], message: str) -> str:
    """Commit ``files`` only (whatever else is staged stays staged), by the user's identity
    when git has one, else the wrapper's."""
    known = await git.git("config", "user.email", cwd=workspace, check=False)
    env = None if known.out.strip() else git.IDENTITY
    await git.git("commit", "-q", "-m", message, "--", *files, cwd=workspace, env=env)
    head = await git.git("rev-parse", "--short", "HEAD", cwd=workspace)
    return head.out.strip()
