"""Path containment checks (symlinks resolved)."""

from __future__ import annotations

from pathlib import Path

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
