"""``Worktrees``: a ``TaskExecutor`` running each ``isolation: worktree`` task in a git worktree
of its own, and returning its change as a patch (the result's ``diff``).

A run's worktrees all start from one snapshot of the workspace (HEAD plus uncommitted
changes, ``git.snapshot``), taken when its first worktree task starts and recorded in the
run folder's ``worktrees.json`` with the repository, so a resume (or a later run pruning a
dead one) finds them. A task's worktree holds, on top of the snapshot, its worktree
dependencies' patches (one commit), then whatever an earlier attempt of the same task had
written (uncommitted): its diff is always its own change since that commit. Worktrees and
their branches are removed when the run ends unless ``WorktreeSpec.keep``;
``prune_dead_runs`` removes those of runs whose wrapper died (their changes saved first).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_mcp_wrapper import process
from codex_mcp_wrapper.engine import git
from codex_mcp_wrapper.engine.planning import WORKTREES_FILE
from codex_mcp_wrapper.engine.results import TaskDiff
from codex_mcp_wrapper.engine.seams import (
    EventSink,
    TaskExecutor,
    TaskOutcome,
    TaskRequest,
    WorktreeSpec,
)
from codex_mcp_wrapper.missions.checks import check_diff, failure_message


@dataclass(frozen=True)
class Prepared:
    """A task's worktree, ready: the work tree's top there and where the workspace is in it."""

    top: Path  # the repository's work tree (the user's)
    path: Path  # the worktree
    workspace: Path  # the workspace inside the worktree
    start: str = "HEAD"  # the commit the task started from: its change is since then

    def mapped(self, inside_user_tree: str) -> str:
        """A path of the user's work tree, in the worktree."""
        return str(self.path / Path(inside_user_tree).resolve().relative_to(self.top))


def read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


class Worktrees:
    """Wraps the run's executor: a request whose spec has a ``worktree`` runs in it."""

    def __init__(self, inner: TaskExecutor, state_dir: Path | None = None) -> None:
        self.inner = inner
        self.state_dir = state_dir  # left out of snapshots when inside the work tree
        self._lock = asyncio.Lock()  # one git change to the repository at a time
        self._ready: dict[str, Prepared] = {}  # by worktree path
        self._made: dict[str, WorktreeSpec] = {}

    def __repr__(self) -> str:
        return f"<Worktrees {len(self._ready)} ready over {self.inner!r}>"

    async def execute(self, request: TaskRequest, sink: EventSink) -> TaskOutcome:
        wt = request.spec.worktree
        if wt is None:
            return await self.inner.execute(request, sink)
        try:
            ready = await self._prepare(wt)
        except git.GitError as exc:
            return TaskOutcome(
                status="failed",
                error=str(exc),
                thread_id=request.thread_id,
                turns_done=request.turns_done,
            )
        cwd = ready.mapped(request.spec.cwd)
        Path(cwd).mkdir(parents=True, exist_ok=True)  # git keeps no empty folder
        spec = dataclasses.replace(request.spec, cwd=cwd, workspace_root=str(ready.workspace))
        try:
            outcome = await self.inner.execute(dataclasses.replace(request, spec=spec), sink)
        except asyncio.CancelledError:  # what it wrote so far is kept for a resume
            with contextlib.suppress(git.GitError):
                await process.finish(record_change(wt, ready.workspace, ready.start))
            raise
        try:
            outcome.diff = await record_change(wt, ready.workspace, ready.start)
        except git.GitError as exc:
            outcome.status, outcome.retryable = "failed", False
            outcome.error = f"the task's change could not be recorded: {exc}"
            return outcome
        _check_change(request, outcome, outcome.diff)
        return outcome

    async def _prepare(self, wt: WorktreeSpec) -> Prepared:
        async with self._lock:
            ready = self._ready.get(wt.path)
            if ready is None:
                ready = await self._make(wt)
                self._ready[wt.path] = ready
                self._made[wt.path] = wt
            return ready

    async def _base(self, wt: WorktreeSpec) -> tuple[Path, str]:
        """The run's snapshot (taken once; a resume reuses the recorded one if git has it)."""
        state_path = Path(wt.state)
        state = read_state(state_path)
        top, base = state.get("repository"), state.get("base")
        if top and base:
            found = await git.git(
                "cat-file", "-e", f"{base}^{{commit}}", cwd=Path(top), check=False
            )
            if found.ok:
                return Path(top), str(base)
        exclude = [self.state_dir] if self.state_dir else []
        top_path, commit = await git.snapshot(Path(wt.workspace), state_path.parent, exclude)
        state.update(repository=str(top_path), base=commit, workspace=wt.workspace)
        _write_state(state_path, state)
        return top_path, commit

    async def _make(self, wt: WorktreeSpec) -> Prepared:
        """The task's worktree: reused when an earlier attempt (or a killed run) left it, else
        made from the snapshot, its dependencies' patches, and its own earlier change."""
        top, base = await self._base(wt)
        path = Path(wt.path).resolve()
        workspace = path / Path(wt.workspace).resolve().relative_to(top)
        left = (read_state(Path(wt.state)).get("worktrees") or {}).get(wt.path) or {}
        listed = await git.git("worktree", "list", "--porcelain", cwd=top)
        if path.is_dir() and f"worktree {path}\n" in listed.out + "\n":
            return Prepared(top, path, workspace, str(left.get("start") or "HEAD"))
        _remember(wt, top)
        await git.add_worktree(top, path, wt.branch, base)
        try:
            await _fill(wt, path, workspace)
        except git.GitError:  # nothing of a task that cannot start is left behind
            await git.remove_worktree(top, path, wt.branch)
            _forget(wt)
            with contextlib.suppress(OSError):
                path.parent.rmdir()
            raise
        start = (await git.git("rev-parse", "HEAD", cwd=path)).out.strip()
        _remember(wt, top, start)
        return Prepared(top, path, workspace, start)

    async def aclose(self) -> None:
        """Remove the run's worktrees and branches (shielded), unless they are to be kept."""
        await process.finish(self._remove_all())

    async def _remove_all(self) -> None:
        for path, wt in list(self._made.items()):
            if wt.keep:
                continue
            ready = self._ready.pop(path)
            del self._made[path]
            with contextlib.suppress(git.GitError, OSError):
                await git.remove_worktree(ready.top, ready.path, wt.branch)
                _forget(wt)
            with contextlib.suppress(OSError):
                ready.path.parent.rmdir()  # the run's folder of worktrees, once empty


def _check_change(request: TaskRequest, outcome: TaskOutcome, diff: TaskDiff) -> None:
    """Decide ``expect.diff`` on the change, with the task's other checks (when they were
    decided: its turns ended ok); a failed one fails the task, not retried."""
    expect = request.spec.expect
    if expect is None or expect.diff is None or (outcome.status != "ok" and not outcome.checks):
        return
    results = check_diff(expect.diff, diff.files, diff.insertions + diff.deletions)
    outcome.checks = [*outcome.checks, *results]
    if not all(r.ok for r in outcome.checks):
        outcome.status, outcome.retryable = "failed", False
        outcome.error = failure_message(outcome.checks)


async def prune_dead_runs(state_dir: Path, dead: Callable[[str], bool]) -> list[str]:
    """Remove the worktrees (and branches) of runs whose wrapper died (``dead(run_id)``),
    each task's change saved first as its patch, so a resume recreates it. Kept worktrees
    (``--keep-worktrees``) stay. Returns the runs pruned."""
    root = state_dir / "worktrees"
    pruned: list[str] = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.is_dir() or not dead(folder.name):
            continue
        state_path = state_dir / "runs" / folder.name / WORKTREES_FILE
        state = read_state(state_path)
        top = state.get("repository")
        for path, info in dict(state.get("worktrees") or {}).items():
            if info.get("kept") or not top:
                continue
            wt = WorktreeSpec(
                workspace=str(state.get("workspace") or top),
                path=path,
                branch=str(info.get("branch")),
                patch=str(info.get("patch")),
                state=str(state_path),
            )
            with contextlib.suppress(git.GitError, OSError):
                if Path(path).is_dir():
                    inside = Path(wt.workspace).resolve().relative_to(Path(top))
                    start = str(info.get("start") or "HEAD")
                    await record_change(wt, Path(path) / inside, start)
                await git.remove_worktree(Path(top), Path(path), wt.branch)
                _forget(wt)
        with contextlib.suppress(OSError):
            folder.rmdir()
        pruned.append(folder.name)
    return pruned


async def _fill(wt: WorktreeSpec, path: Path, workspace: Path) -> None:
    """Apply the dependencies' patches (committed, in order), then the task's own earlier
    change (uncommitted: part of its diff)."""
    applied: list[str] = []
    for dep, patch in wt.after:
        if not Path(patch).is_file():
            continue  # it changed nothing
        conflicts = await git.apply_patch(workspace, Path(patch))
        if conflicts:
            onto = f"on top of {', '.join(applied)}'s" if applied else "to the workspace"
            raise git.GitError(
                f"the changes of its dependencies conflict: {dep}'s patch does not apply "
                f"{onto} ({', '.join(conflicts)})."
            )
        applied.append(dep)
    if applied:
        await git.commit_all(path, "codex-mcp-wrapper: changes of " + ", ".join(applied))
    own = Path(wt.earlier or wt.patch)
    if own.is_file():  # the change so far of a task resumed or continued (a reply)
        conflicts = await git.apply_patch(workspace, own)
        if conflicts:
            raise git.GitError(f"its earlier change no longer applies ({', '.join(conflicts)}).")


def _remember(wt: WorktreeSpec, top: Path, start: str | None = None) -> None:
    """Record the worktree in the run's state, for a resume or a prune after a crash:
    recorded before it is made (a crash meanwhile leaves nothing unknown), then its start."""
    state_path = Path(wt.state)
    state = read_state(state_path)
    worktrees = dict(state.get("worktrees") or {})
    worktrees[wt.path] = {"branch": wt.branch, "patch": wt.patch, "kept": wt.keep}
    if start:
        worktrees[wt.path]["start"] = start
    state.update(worktrees=worktrees, repository=str(top))
    _write_state(state_path, state)


def _forget(wt: WorktreeSpec) -> None:
    state_path = Path(wt.state)
    state = read_state(state_path)
    worktrees = dict(state.get("worktrees") or {})
    worktrees.pop(wt.path, None)
    state["worktrees"] = worktrees
    _write_state(state_path, state)


async def record_change(wt: WorktreeSpec, workspace: Path, start: str) -> TaskDiff:
    """Write the task's change since ``start`` as its patch file and describe it."""
    change = await git.change(workspace, start)
    patch = Path(wt.patch)
    if change.files:
        patch.parent.mkdir(parents=True, exist_ok=True)
        patch.write_text(change.patch, errors=git.BYTES)
    else:
        patch.unlink(missing_ok=True)
    return TaskDiff(
        files=change.files,
        insertions=change.insertions,
        deletions=change.deletions,
        patch=str(patch) if change.files else None,
        branch=wt.branch,
        worktree=wt.path if wt.keep else None,
    )
