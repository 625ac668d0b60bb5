"""The mission tools: ``batch``, ``mission_start``/``mission_status``/``mission_wait``/
``mission_cancel``/``mission_resume``, ``reply``, ``runs_list`` and ``runs_apply``. Each is
registered by a function of its own: argument mapping and result shaping around one call into
``Runs``, with the caller's identity, wrapped by ``guarded``."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.mcp.calls import CallContext
from codex_mcp_wrapper.mcp.identity import client_of
from codex_mcp_wrapper.mcp.log_levels import LogLevels
from codex_mcp_wrapper.mcp.shaping import batch_result, json_result
from codex_mcp_wrapper.mcp.tool_boundary import READ_ONLY, RUNS_CODEX, guarded

# Writes into the run's workspace (a patch, all or nothing), talks to nothing outside.
APPLIES = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
)
WAIT_DEFAULT = 30.0
WAIT_MAX = 55.0  # stays under the common 60 s client tool timeout

# Argument types with their descriptions (every tool argument says what it is).
MissionArg = Annotated[
    dict[str, Any] | str,
    Field(
        description="The mission: an object as in a mission file, or the path of a .yaml, "
        ".yml or .json mission file under the server's workspace (relative paths from it)."
    ),
]
VarsArg = Annotated[
    dict[str, str] | None, Field(description="Values for the mission's ${VAR} placeholders.")
]
RunIdArg = Annotated[str, Field(description="The run id (from mission_start or runs_list).")]


def register_mission_tools(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``batch``, ``mission_*``, ``reply``, ``runs_list`` and ``runs_apply``."""
    for register in (
        register_batch,
        register_mission_start,
        register_mission_resume,
        register_mission_status,
        register_mission_wait,
        register_mission_cancel,
        register_reply,
        register_runs_list,
        register_runs_apply,
    ):
        register(server, runs, levels)


def register_batch(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``batch``."""

    @server.tool(
        name="batch",
        title="Run a mission",
        description="Run a mission (object, or a path to a YAML/JSON file) to the end and return "
        "each task's result; `errors` is empty when every task is ok. For missions longer than "
        "your client's tool timeout use mission_start and mission_wait.",
        annotations=RUNS_CODEX,
    )
    async def batch(
        mission: MissionArg,
        ctx: Context,
        vars: VarsArg = None,
    ) -> CallToolResult:
        call = CallContext(ctx, runs.settings, levels)

        async def work() -> CallToolResult:
            parsed = runs.client_mission(mission, vars)
            options = RunOptions(
                observers=[call.observer], approvals=call.approvals(), owner=client_of(ctx).name
            )
            summary = await call.run(len(parsed.tasks), lambda: runs.run(parsed, options))
            data = batch_result(summary)
            result = json_result(data)
            result.is_error = False
            return call.noted(result)

        return await guarded(work)


def register_mission_start(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``mission_start``."""

    @server.tool(
        name="mission_start",
        title="Start a mission",
        description="Start a mission in the background and return its run_id at once.",
        annotations=RUNS_CODEX,
    )
    async def mission_start(
        mission: MissionArg, ctx: Context, vars: VarsArg = None
    ) -> CallToolResult:
        async def work() -> CallToolResult:
            parsed = runs.client_mission(mission, vars)
            run_id = runs.start(parsed, RunOptions(owner=client_of(ctx).name))
            return json_result(
                {
                    "run_id": run_id,
                    "mission_id": parsed.mission_id,
                    "tasks": len(parsed.tasks),
                    "status": "running",
                }
            )

        return await guarded(work)


def register_mission_resume(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``mission_resume``."""

    @server.tool(
        name="mission_resume",
        title="Resume a mission",
        description="Finish a run that was interrupted, cancelled or failed: tasks that ended ok "
        "are kept, the others run again (continuing their Codex threads) in the same run_id. "
        "Returns at once; follow it with mission_wait.",
        annotations=RUNS_CODEX,
    )
    async def mission_resume(run_id: RunIdArg, ctx: Context) -> CallToolResult:
        async def work() -> CallToolResult:
            started = runs.start_resume(run_id, client_of(ctx))
            return json_result({"run_id": started, "status": "running"})

        return await guarded(work)


def register_mission_status(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``mission_status``."""

    @server.tool(
        name="mission_status",
        title="Mission status",
        annotations=READ_ONLY,
        description="The current state of a run: per-task status, and the summary when done.",
    )
    async def mission_status(run_id: RunIdArg, ctx: Context) -> CallToolResult:
        async def work() -> CallToolResult:
            return json_result(runs.status(run_id, client_of(ctx)).to_json())

        return await guarded(work)


def register_mission_wait(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``mission_wait``."""

    @server.tool(
        name="mission_wait",
        title="Wait for a mission",
        annotations=READ_ONLY,
        description="Wait up to `timeout` seconds (default 30, at most 55) for a run to "
        "finish; returns its state either way (`done` tells which).",
    )
    async def mission_wait(
        run_id: RunIdArg,
        ctx: Context,
        timeout: Annotated[
            float, Field(description=f"Seconds to wait at most (capped at {WAIT_MAX:g}).")
        ] = WAIT_DEFAULT,
    ) -> CallToolResult:
        async def work() -> CallToolResult:
            bounded = max(0.0, min(timeout, WAIT_MAX))
            return json_result((await runs.wait(run_id, bounded, client_of(ctx))).to_json())

        return await guarded(work)


def register_mission_cancel(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``mission_cancel``."""

    @server.tool(
        name="mission_cancel",
        title="Cancel a mission",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True),
        description="Cancel a running mission: its turns are stopped and its workers "
        "freed; finished results are kept. With task_id, cancel only that running task "
        "(recorded cancelled, the tasks that depend on it skipped); the others go on.",
    )
    async def mission_cancel(
        run_id: RunIdArg,
        ctx: Context,
        task_id: Annotated[
            str | None,
            Field(
                description="A running task of the run to cancel alone (default: the whole "
                "run). A task that is not running is an error saying its status."
            ),
        ] = None,
    ) -> CallToolResult:
        async def work() -> CallToolResult:
            state = await runs.cancel(run_id, client_of(ctx), task_id)
            return json_result(state.to_json())

        return await guarded(work)


def register_reply(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``reply``."""

    @server.tool(
        name="reply",
        title="Continue a task's thread",
        annotations=RUNS_CODEX,
        description="Send a further prompt in the Codex thread of a task of a run.",
    )
    async def reply(
        run_id: RunIdArg,
        task_id: Annotated[str, Field(description="The task whose thread to continue.")],
        prompt: Annotated[str, Field(description="The next user prompt.")],
        ctx: Context,
    ) -> CallToolResult:
        call = CallContext(ctx, runs.settings, levels)

        async def work() -> CallToolResult:
            result = await call.run(
                1,
                lambda: runs.reply_task(
                    run_id, task_id, prompt, [call.observer], call.approvals(), client_of(ctx)
                ),
            )
            return json_result(result.model_dump(mode="json"))

        return await guarded(work)


def register_runs_list(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``runs_list``."""

    @server.tool(
        name="runs_list",
        title="List runs",
        annotations=READ_ONLY,
        description="Recent runs, newest first.",
    )
    async def runs_list(
        ctx: Context,
        limit: Annotated[int, Field(description="How many runs, newest first.")] = 20,
    ) -> CallToolResult:
        async def work() -> CallToolResult:
            return json_result(
                {"runs": [r.to_json() for r in runs.list(max(1, min(limit, 500)), client_of(ctx))]}
            )

        return await guarded(work)


def register_runs_apply(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``runs_apply``: a worktree task's change brought into its run's workspace."""

    @server.tool(
        name="runs_apply",
        title="Apply a task's change",
        annotations=APPLIES,
        description="Apply the change (patch) of a task run with isolation: worktree to the "
        "run's workspace, all or nothing: a patch that does not apply cleanly changes nothing "
        "and the error names the conflicting files.",
    )
    async def runs_apply(
        run_id: RunIdArg,
        task_id: Annotated[str, Field(description="The task whose change to apply.")],
        ctx: Context,
        commit: Annotated[
            bool, Field(description="Also commit the files the patch changes (only those).")
        ] = False,
    ) -> CallToolResult:
        async def work() -> CallToolResult:
            done = await runs.apply(run_id, task_id, commit, client_of(ctx))
            return json_result({"run_id": run_id, "task_id": task_id, "applied": done})

        return await guarded(work)
