"""Turn a validated mission into planned tasks: defaults applied, paths resolved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_mcp_wrapper.engine.results import TaskResult
from codex_mcp_wrapper.engine.seams import ForkSource, PlannedTask, TaskSpec, WorktreeSpec
from codex_mcp_wrapper.engine.tools import tool_spec
from codex_mcp_wrapper.missions.model import (
    DEFAULT_IDLE_TIMEOUT_SEC,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_SEC,
    Mission,
    Task,
    defined_servers,
    prerequisites,
)
from codex_mcp_wrapper.missions.paths import task_cwd


def _pick(task: Task, mission: Mission, name: str, default: Any = None) -> Any:
    value = getattr(task, name)
    if value is None:
        value = getattr(mission.defaults, name)
    return default if value is None else value


def _budget(task: Task, mission: Mission, name: str) -> int | None:
    """A field of the task's budget, else of ``defaults``' budget (field by field)."""
    for budget in (task.budget, mission.defaults.budget):
        value = getattr(budget, name) if budget is not None else None
        if value is not None:
            return int(value)
    return None


def task_config(task: Task, mission: Mission) -> dict[str, Any]:
    """Codex config overrides for the task's thread: config, MCP servers, command env."""
    config: dict[str, Any] = {**(mission.defaults.config or {}), **(task.config or {})}
    servers = {**defined_servers(mission.defaults), **defined_servers(task)}
    if servers:
        config["mcp_servers"] = {
            name: server.model_dump(exclude_none=True) for name, server in servers.items()
        }
    if not _pick(task, mission, "login_shell", False):  # no profile sourced, per thread or command
        config["allow_login_shell"] = False
        config["features"] = {**(config.get("features") or {}), "shell_snapshot": False}
    env = {**(mission.defaults.env or {}), **(task.env or {})}
    if env:
        policy = dict(config.get("shell_environment_policy") or {})
        policy["set"] = {**(policy.get("set") or {}), **env}
        config["shell_environment_policy"] = policy
    return config


BRANCH_PREFIX = "codex-mcp-wrapper"  # a worktree's branch: codex-mcp-wrapper/RUN_ID/TASK_ID
PATCH_FILE = "diff.patch"  # a worktree task's change, in its folder of the run
WORKTREES_FILE = "worktrees.json"  # the run's worktrees: repository, base commit


def branch_name(task_id: str) -> str:
    """A task id as a part of a branch name: git refuses ``..`` and a final ``.lock``."""
    name = task_id.replace("..", "-")
    return name + "-" if name.endswith(".lock") else name


def worktrees_dir(run_dir: Path) -> Path:
    """Where a run's worktrees live: ``STATE_DIR/worktrees/RUN_ID`` (beside ``runs/``)."""
    return run_dir.parent.parent / "worktrees" / run_dir.name


def worktree_spec(
    mission: Mission,
    workspace_root: Path,
    run_dir: Path,
    task: Task,
    keep: bool,
    earlier: str | None = None,
) -> WorktreeSpec | None:
    """The worktree of a task with ``isolation: worktree`` (None for the others): its
    dependencies that run in worktrees hand it their patches, in ``depends_on`` order;
    ``earlier``: the patch of the run whose thread it continues (default: its own)."""
    if _pick(task, mission, "isolation", "none") != "worktree":
        return None
    by_id = {t.id: t for t in mission.tasks}
    after = tuple(
        (dep, str(run_dir / "tasks" / dep / PATCH_FILE))
        for dep in task.depends_on
        if _pick(by_id[dep], mission, "isolation", "none") == "worktree"
    )
    task_id = task.id or ""
    patch = str(run_dir / "tasks" / task_id / PATCH_FILE)
    return WorktreeSpec(
        workspace=str(workspace_root),
        path=str(worktrees_dir(run_dir) / task_id),
        branch=f"{BRANCH_PREFIX}/{run_dir.name}/{branch_name(task_id)}",
        patch=patch,
        state=str(run_dir / WORKTREES_FILE),
        after=after,
        keep=keep,
        earlier=earlier or patch,
    )


def plan_tasks(
    mission: Mission,
    workspace_root: Path,
    run_dir: Path,
    previous: dict[str, TaskResult] | None = None,
    threads: dict[str, tuple[str, str | None]] | None = None,
    forks: dict[str, ForkSource] | None = None,
    keep_worktrees: bool = False,
    earlier: dict[str, str] | None = None,
) -> list[PlannedTask]:
    """``previous`` holds results kept from an earlier run; ``threads`` maps a task id to a
    (thread id, worker label) to continue, ``forks`` to a thread to copy (codex-fork);
    ``keep_worktrees`` leaves worktrees in place; ``earlier`` maps a task id to the patch its
    worktree starts with (a reply's)."""
    planned: list[PlannedTask] = []
    for index, task in enumerate(mission.tasks):
        task_id = task.id or f"task-{index + 1}"
        cwd = task_cwd(workspace_root, _pick(task, mission, "cwd", "."), task_id)
        spec = TaskSpec(
            cwd=str(cwd),
            sandbox=_pick(task, mission, "sandbox", "read-only"),
            approval_policy=_pick(task, mission, "approval_policy", "never"),
            idle_timeout_sec=float(
                _pick(task, mission, "idle_timeout_sec", DEFAULT_IDLE_TIMEOUT_SEC)
            ),
            model=_pick(task, mission, "model"),
            profile=_pick(task, mission, "profile"),
            base_instructions=_pick(task, mission, "base_instructions"),
            developer_instructions=_pick(task, mission, "developer_instructions"),
            config=task_config(task, mission),
            output_schema=_pick(task, mission, "output_schema"),
            preferred_worker=_pick(task, mission, "preferred_worker"),
            artifacts=tuple(_pick(task, mission, "artifacts", [])),
            workspace_root=str(workspace_root),
            artifacts_dir=str(run_dir / "tasks" / task_id / "artifacts"),
            expect=task.expect,
            tools=tuple(
                tool_spec(t.name, t.description, t.input_schema)
                for t in _pick(task, mission, "tools", [])
            ),
            budget_tokens=_budget(task, mission, "tokens"),
            budget_turns=_budget(task, mission, "turns"),
            review=task.review.codex_target() if task.review else None,
            worktree=worktree_spec(
                mission,
                workspace_root,
                run_dir,
                task,
                keep_worktrees,
                (earlier or {}).get(task_id),
            ),
        )
        thread_id, thread_worker = (threads or {}).get(task_id, (None, None))
        planned.append(
            PlannedTask(
                task_id=task_id,
                index=index,
                prompts=(task.prompt, *task.follow_ups),
                depends_on=tuple(prerequisites(task)),
                retries=int(_pick(task, mission, "retries", DEFAULT_RETRIES)),
                timeout_sec=float(_pick(task, mission, "timeout_sec", DEFAULT_TIMEOUT_SEC)),
                spec=spec,
                previous=(previous or {}).get(task_id),
                thread_id=thread_id,
                thread_worker=thread_worker,
                fork_from=task.fork_from,
                fork_turn=task.fork_turn,
                fork=(forks or {}).get(task_id),
            )
        )
    return planned
