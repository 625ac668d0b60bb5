"""The orchestrator's tools Codex may call: the mission's (commands) and Python callables
(``PythonTool``), answered through the ``ToolHandler`` seam."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from codex_mcp_wrapper.engine.commands import run_command
from codex_mcp_wrapper.engine.seams import ToolAnswer, ToolCall, ToolHandler
from codex_mcp_wrapper.missions.model import Mission


@dataclass(frozen=True)
class PythonTool:
    """A tool Codex may call, answered by a Python callable: it gets the call's arguments and
    returns the answer (a string, or anything JSON-serialisable); may be async; raising
    answers the error."""

    name: str
    description: str
    function: Callable[[Any], Any]
    input_schema: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    def spec(self) -> dict[str, Any]:
        return tool_spec(self.name, self.description, self.input_schema)


def tool_spec(name: str, description: str, input_schema: dict[str, Any]) -> dict[str, Any]:
    """A tool as Codex's ``thread/start`` takes it (``dynamicTools``)."""
    return {
        "type": "function",
        "name": name,
        "description": description,
        "inputSchema": input_schema,
    }


def tool_handler(
    mission: Mission,
    python: Mapping[str, PythonTool],
    redact: Callable[[str], str] = lambda text: text,
) -> ToolHandler | None:
    """Answers calls of the mission's tools (commands) and the run's Python tools."""
    if not python and not any(t.tools for t in [mission.defaults, *mission.tasks]):
        return None

    async def handle(call: ToolCall) -> ToolAnswer:
        task = next((t for t in mission.tasks if t.id == call.task_id), None)
        tools = (task.tools if task is not None else None) or mission.defaults.tools or []
        command = next((t for t in tools if t.name == call.tool), None)
        if command is not None:
            result = await run_command(
                command.run, call.arguments, command.cwd, command.timeout_sec
            )
            text = result.output if result.ok else f"{result.output}\n{result.error}".strip()
            return ToolAnswer(redact(text), result.ok)
        function = python.get(call.tool)
        if function is None:
            return ToolAnswer(f"no tool named {call.tool} in this run", ok=False)
        try:
            value = function.function(call.arguments)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:  # noqa: BLE001 - the model is told the tool failed
            return ToolAnswer(redact(f"{type(exc).__name__}: {exc}"), ok=False)
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return ToolAnswer(redact(text))

    return handle
