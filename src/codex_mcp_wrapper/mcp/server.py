"""The MCP server: Codex and missions for any MCP client, over the same ``Runs`` as the CLI.

Tools: ``codex`` and ``codex-reply`` (the drop-in for the removed ``codex mcp-server``),
``codex-steer`` and ``codex-fork`` (``thread_tools.py``), ``batch``, ``mission_start``/
``mission_status``/``mission_wait``/``mission_cancel``/``mission_resume``, ``reply`` and
``runs_list``. Runs, transcripts and artifacts are resources. Progress goes out as standard
progress notifications, task states as standard log messages; approvals become standard
elicitations when the client supports them.
"""

from __future__ import annotations

import json

from mcp.server.mcpserver import Context, MCPServer

from codex_mcp_wrapper import __version__
from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.mcp.codex_tools import register_codex_tools
from codex_mcp_wrapper.mcp.identity import client_of
from codex_mcp_wrapper.mcp.input_required import Parking
from codex_mcp_wrapper.mcp.log_levels import LogLevels
from codex_mcp_wrapper.mcp.mission_tools import register_mission_tools
from codex_mcp_wrapper.mcp.strict import StrictArguments, StrictServer
from codex_mcp_wrapper.mcp.tasks import Tasks
from codex_mcp_wrapper.mcp.thread_tools import register_thread_tools

INSTRUCTIONS = (
    "Runs OpenAI Codex headlessly. `codex` starts a Codex session and `codex-reply` "
    "continues it (threadId); `codex-steer` adds input to a call still running. `batch` "
    "runs a mission (a list of Codex tasks) to the end; "
    "for long missions use `mission_start` then `mission_wait` until done."
)


def build_server(runs: Runs) -> MCPServer:
    """The MCP server; every tool and resource is a thin call into ``runs``."""
    parking = Parking(runs.settings.timeouts.approval)
    server: MCPServer = StrictServer(
        "codex-mcp-wrapper",
        version=__version__,
        instructions=INSTRUCTIONS,
        extensions=[Tasks(runs, parking)],
    )
    server.middleware.append(StrictArguments(server))
    levels = LogLevels()
    levels.install(server)
    register_codex_tools(server, runs, levels, parking)
    register_mission_tools(server, runs, levels)
    register_thread_tools(server, runs, levels)
    register_resources(server, runs)
    return server


def register_resources(server: MCPServer, runs: Runs) -> None:
    @server.resource(
        "codex-wrapper://runs/{run_id}/summary",
        name="run-summary",
        mime_type="application/json",
        description="A run's summary (JSON).",
    )
    def run_summary(run_id: str, ctx: Context) -> str:
        return json.dumps(runs.status(run_id, client_of(ctx)).to_json(), indent=2)

    @server.resource(
        "codex-wrapper://runs/{run_id}/tasks/{task_id}/transcript",
        name="task-transcript",
        mime_type="application/x-ndjson",
        description="Every Codex event of a task (JSON Lines, secrets redacted).",
    )
    def task_transcript(run_id: str, task_id: str, ctx: Context) -> str:
        path = runs.task_file(run_id, task_id, "events.jsonl", client_of(ctx))
        return path.read_text(encoding="utf-8")

    @server.resource(
        "codex-wrapper://runs/{run_id}/tasks/{task_id}/final",
        name="task-final-message",
        mime_type="text/markdown",
        description="A task's final message.",
    )
    def task_final(run_id: str, task_id: str, ctx: Context) -> str:
        return runs.task_file(run_id, task_id, "final.md", client_of(ctx)).read_text(
            encoding="utf-8"
        )

    @server.resource(
        "codex-wrapper://runs/{run_id}/tasks/{task_id}/artifacts/{name}",
        name="task-artifact",
        description="A file a task's `artifacts` copied.",
    )
    def task_artifact(run_id: str, task_id: str, name: str, ctx: Context) -> bytes:
        return runs.task_file(run_id, task_id, f"artifacts/{name}", client_of(ctx)).read_bytes()
