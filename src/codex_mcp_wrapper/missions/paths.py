"""Path containment checks (symlinks resolved)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from codex_mcp_wrapper.errors import MissionError


def inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def task_cwd(workspace_root: Path, cwd: str, task_id: str) -> Path:
    """The task's working directory, created if missing; must stay inside the workspace."""
    target = (workspace_root / cwd).resolve()
    if not inside(workspace_root, target):
        raise MissionError(
            f"task '{task_id}' cwd '{cwd}' resolves outside workspace_root {workspace_root} "
            "(through a symlink?); use a directory inside the workspace."
        )
    target.mkdir(parents=True, exist_ok=True)
    return target


def check_relative(path: str, what: str, base: str = "workspace_root") -> None:
    """Reject absolute paths and ``..`` escapes (symlinks are checked again at run time)."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or Path(path).is_absolute():
        raise ValueError(f"{what} '{path}' must be relative to {base}")
    depth = 0
    for part in pure.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise ValueError(f"{what} '{path}' escapes {base}")


def git_work_tree(path: Path) -> Path | None:
    """The top of the git work tree holding ``path`` (where a ``.git`` directory with a
    ``HEAD``, or a ``gitdir:`` file, is found walking up from the nearest existing directory),
    or None outside any repository."""
    here = path.resolve()
    while not here.exists() and here != here.parent:
        here = here.parent
    for candidate in (here, *here.parents):
        dot_git = candidate / ".git"
        if (dot_git / "HEAD").is_file() or _gitdir_file(dot_git):
            return candidate
    return None


def _gitdir_file(path: Path) -> bool:
    """A linked worktree's (or submodule's) ``.git`` file: ``gitdir: PATH``."""
    try:
        return path.is_file() and path.read_text(errors="replace").startswith("gitdir:")
    except OSError:
        return False
