"""What a task's thread is opened with (``thread/start`` and ``thread/resume`` params), and the
transcript event that records how Codex opened it."""

from __future__ import annotations

from typing import Any

from codex_mcp_wrapper.engine.seams import EventSink, ForkSource, TaskSpec


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


def thread_event(
    result: dict[str, Any], resumed: bool, fork: ForkSource | None = None
) -> tuple[str, dict[str, Any]]:
    """The ``wrapper/thread`` transcript event for Codex's answer to thread/start,
    thread/resume or thread/fork: Codex says how it configured a thread only there, not in a
    notification. A fork names the thread it copies (``forkedFrom``, ``forkTurnId``)."""
    thread = result.get("thread") or {}
    params = {"threadId": thread.get("id"), "resumed": resumed, "path": thread.get("path")}
    if fork is not None:
        params.update(forkedFrom=fork.thread_id, forkTurnId=fork.turn_id)
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


def fork_params(params: dict[str, Any], fork: ForkSource) -> dict[str, Any]:
    """``thread/fork`` params: the task's own thread settings (as for thread/start; Codex takes
    no dynamic tools on a fork) and the thread to copy, through ``fork.turn_id``."""
    forked = {**params, "threadId": fork.thread_id}
    if fork.turn_id:
        forked["lastTurnId"] = fork.turn_id
    return forked


INTERRUPTED_EVENT = "wrapper/interrupted"  # the transcript event naming what a crash cut short
SIGNALLED = 128  # a shell's exit status above this: killed by signal (status - 128)


def _cut_short(item: dict[str, Any]) -> bool:
    """Whether a thread item of an unfinished turn was running when the turn was cut: still
    in progress, or marked failed by Codex without an outcome of its own: a command without an
    exit code, with -1, or killed by a signal (128 + N: Codex's process was stopped with
    SIGTERM, and its commands with it), a tool call without a result."""
    status = item.get("status")
    if item.get("type") == "commandExecution":
        code = item.get("exitCode")
        killed = code is None or not isinstance(code, int) or code == -1 or code > SIGNALLED
        return status == "inProgress" or (status == "failed" and killed)
    if item.get("type") == "mcpToolCall":
        return status == "inProgress" or (status == "failed" and item.get("result") is None)
    return item.get("type") == "fileChange" and status == "inProgress"


def cut_short_items(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The commands, MCP tool calls and file changes that were running when the last turn of a
    resumed thread (Codex's answer to ``thread/resume``) was cut short; none when it ended."""
    turns = (result.get("thread") or {}).get("turns") or []
    if not turns or turns[-1].get("status") == "completed":
        return []
    return [item for item in turns[-1].get("items") or [] if _cut_short(item)]


def _describe(item: dict[str, Any]) -> str:
    from codex_mcp_wrapper.codex.evidence import unwrap_shell

    if item.get("type") == "commandExecution":
        return f"the command `{unwrap_shell(str(item.get('command', '')))}`"
    if item.get("type") == "mcpToolCall":
        return f"the MCP tool call {item.get('server')}.{item.get('tool')}"
    paths = [str(c.get("path")) for c in item.get("changes") or [] if isinstance(c, dict)]
    return f"the file change to {', '.join(paths) or 'files'}"


def crash_note(items: list[dict[str, Any]]) -> str:
    """What the model is told first when a thread cut short by a crash of the wrapper goes on:
    Codex's own record says the user interrupted it on purpose, which is not what happened."""
    if not items:
        what = "while you were working on it"
        after = "Check what was done before, then carry on."
    else:
        what = "while " + " and ".join(_describe(item) for item in items) + " was running"
        after = (
            "It did not complete: it was killed part-way, so some of its effects may have "
            "happened and others not. Check the state it left before running it again, then "
            "carry on."
        )
    return (
        "[codex-mcp-wrapper] This task was cut short by a crash of the wrapper that runs you "
        f"(not by the user) {what}. {after}\n\n"
    )


def record_crash(task_id: str, sink: EventSink, result: dict[str, Any]) -> str:
    """A thread cut short by the wrapper's death goes on: what was running then is recorded
    (the transcript's ``wrapper/interrupted`` event, evidence for the result and checks) and
    the note its next prompt starts with is returned (``crash_note``)."""
    items = cut_short_items(result)
    sink.codex_event(task_id, INTERRUPTED_EVENT, {"reason": "crash", "items": items})
    return crash_note(items)
