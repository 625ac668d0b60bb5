"""Missions for tests: the one builder behind every small mission a test writes.

``mission_data`` is the mission as a client sends it (a dict, as an MCP ``batch`` takes it or a
YAML file holds it); ``scripted_mission`` parses it for the engine with every turn on the
scripted model; ``write_mission`` writes it to a YAML file for the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from codex_mcp_wrapper.missions.loading import parse_mission
from codex_mcp_wrapper.missions.model import Mission


def mission_data(workspace: Path | str, tasks: Sequence[dict[str, Any]], **fields: Any) -> Any:
    """A mission whose tasks work under ``workspace``; ``fields`` are its other top-level keys
    (``mission_id``, ``provider``, ``defaults``, ...), left out when not given."""
    return {"workspace_root": str(workspace), **fields, "tasks": list(tasks)}


def scripted_mission(workspace: Path, tasks: Sequence[dict[str, Any]], **fields: Any) -> Mission:
    """The mission parsed, every turn on the scripted model."""
    return parse_mission(mission_data(workspace, tasks, provider="scripted", **fields))


def write_mission(
    path: Path, workspace: Path | str, tasks: Sequence[dict[str, Any]], **fields: Any
) -> Path:
    """The mission written to ``path`` as YAML (the CLI reads it from there)."""
    path.write_text(yaml.safe_dump(mission_data(workspace, tasks, **fields), sort_keys=False))
    return path
