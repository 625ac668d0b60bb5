"""What a task's thread is opened with (``thread/start`` and ``thread/resume`` params), and the
transcript event that records how Codex opened it."""

from __future__ import annotations

from typing import Any

from codex_mcp_wrapper.engine.seams import TaskSpec


def thread_params(spec: TaskSpec, hidden_env: tuple[str, ...] = ()) -> dict[str, Any]:
    """Everything a task sets on its own thread, so threads of many tasks (and workspaces)
    can share one process. ``hidden_env`` names variables of the worker's environment the
    thread's commands must not see (Codex passes them all by default): they join the
    ``shell_environment_policy.exclude`` list (a task's own ``env`` is set after it)."""
    params: dict[str, Any] = {
        "cwd": spec.cwd,
        "sandbox": spec.sandbox,
        "approvalPolicy": spec.approval_policy,
        "config": dict(spec.config),
    }
    if hidden_env:
        policy = dict(params["config"].get("shell_environment_policy") or {})
        policy["exclude"] = [*(policy.get("exclude") or []), *hidden_env]
        params["config"]["shell_environment_policy"] = policy
    if spec.profile:
        params["config"]["profile"] = spec.profile
    if spec.workspace_root:  # trusted per thread: threads of many workspaces share a process
        projects = dict(params["config"].get("projects") or {})
        projects[spec.workspace_root] = {"trust_level": "trusted"}
        params["config"]["projects"] = projects
    for key, value in (
        ("model", spec.model),
        ("baseInstructions", spec.base_instructions),
        ("developerInstructions", spec.developer_instructions),
    ):
        if value is not None:
            params[key] = value
    return params


def thread_event(result: dict[str, Any], resumed: bool) -> tuple[str, dict[str, Any]]:
    """The ``wrapper/thread`` transcript event for Codex's answer to thread/start or
    thread/resume: Codex says how it configured a thread only there, not in a notification."""
    thread = result.get("thread") or {}
    params = {"threadId": thread.get("id"), "resumed": resumed, "path": thread.get("path")}
    for key in (
        "model",
        "modelProvider",
        "approvalPolicy",
        "approvalsReviewer",
        "reasoningEffort",
        "sandbox",
        "cwd",
    ):
        params[key] = result.get(key)
    return "wrapper/thread", params
