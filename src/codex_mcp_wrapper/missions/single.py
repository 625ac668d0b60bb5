"""A one-task mission from a single Codex request (the ``codex`` MCP tool's arguments), so a
lone Codex session gets the same isolation, records and thread persistence as a mission."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.missions.loading import parse_mission
from codex_mcp_wrapper.missions.model import Mission


@dataclass(frozen=True)
class CodexRequest:
    """One Codex session request, as the removed ``codex`` MCP tool took it."""

    prompt: str
    cwd: str | None = None
    sandbox: str | None = None
    approval_policy: str | None = None
    model: str | None = None
    profile: str | None = None
    config: dict[str, Any] | None = None
    base_instructions: str | None = None
    developer_instructions: str | None = None
    compact_prompt: str | None = None
    script: str | None = None  # under the scripted model: the script file it plays
    review: dict[str, Any] | None = None  # Codex's review mode instead of the prompt
    isolation: str | None = None  # "worktree": the session works in a git worktree of its own


def codex_mission(request: CodexRequest, default_cwd: Path) -> Mission:
    cwd = Path(request.cwd).expanduser() if request.cwd else default_cwd
    if not cwd.is_absolute():
        cwd = default_cwd / cwd
    config = dict(request.config or {})
    if request.compact_prompt:
        config["compact_prompt"] = request.compact_prompt
    task: dict[str, Any] = {"id": "codex", "prompt": request.prompt, "config": config}
    if request.script:
        task["script"] = request.script
    if request.review is not None:
        task["review"] = request.review
    for key in (
        "sandbox",
        "approval_policy",
        "model",
        "profile",
        "base_instructions",
        "developer_instructions",
        "isolation",
    ):
        value = getattr(request, key)
        if value is not None:
            task[key] = value
    return parse_mission(
        {"mission_id": "codex", "workspace_root": str(cwd.resolve()), "tasks": [task]},
        "codex tool arguments",
        expand=False,  # the client's text as it is: ${X} in a prompt is not a variable
    )
