"""codex-mcp-wrapper: drive the OpenAI Codex CLI headlessly and reliably.

The public Python API (see ``docs/python-api.md``)::

    from codex_mcp_wrapper import Settings, load_mission, run_mission_sync

    summary = run_mission_sync(load_mission("mission.yaml"), Settings(scripted=True))
    for task in summary.tasks:
        print(task.task_id, task.status, task.final_message)

Names are imported lazily, so ``import codex_mcp_wrapper`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # missions: the contract
    "Mission": "codex_mcp_wrapper.missions.model",
    "Task": "codex_mcp_wrapper.missions.model",
    "Expect": "codex_mcp_wrapper.missions.expect",
    "load_mission": "codex_mcp_wrapper.missions.loading",
    "parse_mission": "codex_mcp_wrapper.missions.loading",
    "mission_json_schema": "codex_mcp_wrapper.missions.model",
    "CodexRequest": "codex_mcp_wrapper.missions.single",
    # running
    "Settings": "codex_mcp_wrapper.settings",
    "Timeouts": "codex_mcp_wrapper.settings",
    "Runs": "codex_mcp_wrapper.engine.runs",
    "RunOptions": "codex_mcp_wrapper.engine.lifecycle",
    "PythonTool": "codex_mcp_wrapper.engine.tools",
    "open_runs": "codex_mcp_wrapper.app",
    "run_mission": "codex_mcp_wrapper.app",
    "run_mission_sync": "codex_mcp_wrapper.app",
    "resume_run": "codex_mcp_wrapper.app",
    # results and events
    "RunSummary": "codex_mcp_wrapper.engine.results",
    "TaskResult": "codex_mcp_wrapper.engine.results",
    "TaskDiff": "codex_mcp_wrapper.engine.results",
    "TaskStatus": "codex_mcp_wrapper.engine.results",
    "RunStatus": "codex_mcp_wrapper.engine.results",
    "RunState": "codex_mcp_wrapper.engine.run_state",
    "RunRow": "codex_mcp_wrapper.engine.run_state",
    "RunRecord": "codex_mcp_wrapper.engine.run_state",
    "CheckResult": "codex_mcp_wrapper.missions.checks",
    "Event": "codex_mcp_wrapper.engine.events",
    "ApprovalRequest": "codex_mcp_wrapper.engine.seams",
    # the scripted model
    "ScriptedModel": "codex_mcp_wrapper.scripted.server",
    # errors
    "WrapperError": "codex_mcp_wrapper.errors",
    "InputError": "codex_mcp_wrapper.errors",
    "MissionError": "codex_mcp_wrapper.errors",
    "ScriptError": "codex_mcp_wrapper.errors",
    "EnvironmentProblem": "codex_mcp_wrapper.errors",
    "CodexNotFound": "codex_mcp_wrapper.errors",
    "StateDirError": "codex_mcp_wrapper.errors",
    "WorkerStartError": "codex_mcp_wrapper.errors",
}

__all__ = [
    "ApprovalRequest",
    "CheckResult",
    "CodexNotFound",
    "CodexRequest",
    "EnvironmentProblem",
    "Event",
    "Expect",
    "InputError",
    "Mission",
    "MissionError",
    "PythonTool",
    "RunOptions",
    "RunRecord",
    "RunRow",
    "RunState",
    "RunStatus",
    "RunSummary",
    "Runs",
    "ScriptError",
    "ScriptedModel",
    "Settings",
    "StateDirError",
    "Task",
    "TaskDiff",
    "TaskResult",
    "TaskStatus",
    "Timeouts",
    "WorkerStartError",
    "WrapperError",
    "load_mission",
    "mission_json_schema",
    "open_runs",
    "parse_mission",
    "resume_run",
    "run_mission",
    "run_mission_sync",
]

if TYPE_CHECKING:
    from codex_mcp_wrapper.app import open_runs, resume_run, run_mission, run_mission_sync
    from codex_mcp_wrapper.engine.events import Event
    from codex_mcp_wrapper.engine.lifecycle import RunOptions
    from codex_mcp_wrapper.engine.results import (
        RunStatus,
        RunSummary,
        TaskDiff,
        TaskResult,
        TaskStatus,
    )
    from codex_mcp_wrapper.engine.run_state import RunRecord, RunRow, RunState
    from codex_mcp_wrapper.engine.runs import Runs
    from codex_mcp_wrapper.engine.seams import ApprovalRequest
    from codex_mcp_wrapper.engine.tools import PythonTool
    from codex_mcp_wrapper.errors import (
        CodexNotFound,
        EnvironmentProblem,
        InputError,
        MissionError,
        ScriptError,
        StateDirError,
        WorkerStartError,
        WrapperError,
    )
    from codex_mcp_wrapper.missions.checks import CheckResult
    from codex_mcp_wrapper.missions.expect import Expect
    from codex_mcp_wrapper.missions.loading import load_mission, parse_mission
    from codex_mcp_wrapper.missions.model import Mission, Task, mission_json_schema
    from codex_mcp_wrapper.missions.single import CodexRequest
    from codex_mcp_wrapper.scripted.server import ScriptedModel
    from codex_mcp_wrapper.settings import Settings, Timeouts


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'codex_mcp_wrapper' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
