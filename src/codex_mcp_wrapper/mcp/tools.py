"""The MCP tools: argument mapping and result shaping only; every tool is one call into
``Runs`` (the application API), wrapped by ``guarded`` so an error becomes an error result.

``codex`` and ``codex-reply`` keep the input and output schemas of the tools removed from
Codex 0.154.0, so a client switches by changing only the command it launches.
"""

from __future__ import annotations

import asyncio
import functools
import typing
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import Field
from pydantic.fields import FieldInfo

from codex_mcp_wrapper import process
from codex_mcp_wrapper.engine.executor import ApprovalHandler
from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.engine.session import RunOptions
from codex_mcp_wrapper.errors import InputError, WrapperError
from codex_mcp_wrapper.mcp.calls import CallContext
from codex_mcp_wrapper.mcp.identity import client_of
from codex_mcp_wrapper.mcp.input_required import Parking
from codex_mcp_wrapper.mcp.log_levels import LogLevels
from codex_mcp_wrapper.mcp.shaping import (
    CODEX_TOOL_APPROVAL,
    CodexOutput,
    batch_result,
    codex_result,
    error_result,
    json_result,
)
from codex_mcp_wrapper.missions.single import CodexRequest

WAIT_DEFAULT = 30.0
WAIT_MAX = 55.0  # stays under the common 60 s client tool timeout
Sandbox = Literal["read-only", "workspace-write", "danger-full-access"]
Approval = Literal["untrusted", "on-failure", "on-request", "never"]

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


READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
RUNS_CODEX = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)


def accepts_aliases(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The SDK passes arguments by their alias (``approval-policy``): map them back to names."""
    hints = typing.get_type_hints(fn, include_extras=True)
    aliases = {
        meta.alias: name
        for name, hint in hints.items()
        for meta in getattr(hint, "__metadata__", ())
        if isinstance(meta, FieldInfo) and meta.alias
    }

    @functools.wraps(fn)
    async def wrapper(**kwargs: Any) -> Any:
        return await fn(**{aliases.get(k, k): v for k, v in kwargs.items()})

    return wrapper


async def guarded(work: Callable[[], Awaitable[CallToolResult]]) -> CallToolResult:
    """The MCP tool boundary: a user's error or a bug becomes an error result, never a crash."""
    try:
        return await work()
    except WrapperError as exc:
        return error_result(str(exc))
    except Exception as exc:  # noqa: BLE001 - the MCP tool boundary: an error result
        return error_result(f"unexpected {type(exc).__name__}: {exc}")


def register_codex_tools(
    server: MCPServer, runs: Runs, levels: LogLevels, parking: Parking
) -> None:
    """``codex`` and ``codex-reply``: the drop-in for the removed ``codex mcp-server``."""

    @server.tool(
        name="codex",
        title="Run a Codex session",
        description="Run a Codex session. Returns the thread id (continue it with codex-reply) "
        "and Codex's final message.",
        annotations=RUNS_CODEX,
    )
    @accepts_aliases
    async def codex(
        prompt: Annotated[str, Field(description="The initial user prompt.")],
        ctx: Context,
        approval_policy: Annotated[
            Approval | None,
            Field(
                alias="approval-policy",
                description="When Codex asks before running a command (default: on-request, "
                "as codex mcp-server did).",
            ),
        ] = None,
        sandbox: Annotated[
            Sandbox | None,
            Field(description="What Codex's commands may touch (default: read-only)."),
        ] = None,
        cwd: Annotated[
            str | None,
            Field(
                description="Working directory of the session (default: the server's --workspace)."
            ),
        ] = None,
        model: Annotated[
            str | None, Field(description="The model to use (default: Codex's configured one).")
        ] = None,
        config: Annotated[
            dict[str, Any] | None,
            Field(description="Codex config overrides, as in config.toml (nested objects)."),
        ] = None,
        base_instructions: Annotated[
            str | None,
            Field(alias="base-instructions", description="Replace Codex's base instructions."),
        ] = None,
        developer_instructions: Annotated[
            str | None,
            Field(
                alias="developer-instructions",
                description="Extra developer instructions for the session.",
            ),
        ] = None,
        compact_prompt: Annotated[
            str | None,
            Field(
                alias="compact-prompt",
                description="The prompt Codex uses when it compacts the conversation.",
            ),
        ] = None,
    ) -> Annotated[CallToolResult, CodexOutput]:
        call = CallContext(ctx, runs.settings, levels, runs.settings.codex_events)
        client = client_of(ctx)
        request = CodexRequest(
            prompt=prompt,
            cwd=cwd,
            sandbox=sandbox,
            approval_policy=approval_policy or CODEX_TOOL_APPROVAL,
            model=model,
            config=config,
            base_instructions=base_instructions,
            developer_instructions=developer_instructions,
            compact_prompt=compact_prompt,
        )

        if call.modern and call.can_elicit:  # approvals by the input-required round trip
            return await guarded(
                lambda: asked_session(ctx, lambda asker: runs.start_codex(request, asker, client))
            )

        async def work() -> CallToolResult:
            result = await call.run(
                1, lambda: runs.codex(request, [call.observer], call.approvals(), client)
            )
            return call.noted(codex_result(result))

        return await guarded(work)

    async def asked_session(ctx: Context, start: Callable[[ApprovalHandler], str]) -> Any:
        """A ``codex``/``codex-reply`` call whose approvals are asked with
        InputRequiredResult: the first round starts the session (``start(approvals)`` returns
        its run id), each retry delivers an answer; every round returns the session's result
        or its next question."""
        if ctx.request_state:
            session = parking.resume(ctx.request_state, ctx.input_responses)
        else:
            session, approvals = parking.begin()
            try:
                session.run_id = start(approvals)
            except BaseException:
                parking.end(session)
                raise
            runs.when_done(session.run_id, lambda: parking.end(session))
        try:
            step = await parking.next_step(session, lambda: runs.session_result(session.run_id))
        except asyncio.CancelledError:  # the client gave up on the call: so does the session
            await process.finish(runs.cancel(session.run_id))
            raise
        return step if isinstance(step, InputRequiredResult) else codex_result(step)

    @server.tool(
        name="codex-reply",
        title="Continue a Codex session",
        description="Continue a Codex session by its threadId (conversationId is accepted, "
        "deprecated). Works after a restart of the wrapper too.",
        annotations=RUNS_CODEX,
    )
    async def codex_reply(
        prompt: Annotated[str, Field(description="The next user prompt.")],
        ctx: Context,
        threadId: Annotated[
            str | None, Field(description="The thread to continue (the codex result's threadId).")
        ] = None,
        conversationId: Annotated[
            str | None, Field(description="Deprecated name of threadId.")
        ] = None,
    ) -> Annotated[CallToolResult, CodexOutput]:
        call = CallContext(ctx, runs.settings, levels, runs.settings.codex_events)
        client = client_of(ctx)

        thread = threadId or conversationId
        if thread and call.modern and call.can_elicit:  # the input-required round trip
            return await guarded(
                lambda: asked_session(
                    ctx, lambda asker: runs.start_reply(thread, prompt, asker, client)
                )
            )

        async def work() -> CallToolResult:
            if not thread:
                raise InputError("give threadId (from the codex tool's result).")
            result = await call.run(
                1, lambda: runs.reply(thread, prompt, [call.observer], call.approvals(), client)
            )
            return call.noted(codex_result(result))

        return await guarded(work)


def register_mission_tools(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``batch``, ``mission_*``, ``reply`` and ``runs_list``."""

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

    @server.tool(
        name="mission_status",
        title="Mission status",
        annotations=READ_ONLY,
        description="The current state of a run: per-task status, and the summary when done.",
    )
    async def mission_status(run_id: RunIdArg, ctx: Context) -> CallToolResult:
        async def work() -> CallToolResult:
            return json_result(runs.status(run_id, client_of(ctx)))

        return await guarded(work)

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
            return json_result(await runs.wait(run_id, bounded, client_of(ctx)))

        return await guarded(work)

    @server.tool(
        name="mission_cancel",
        title="Cancel a mission",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True),
        description="Cancel a running mission: its turns are stopped and its workers "
        "freed; finished results are kept.",
    )
    async def mission_cancel(run_id: RunIdArg, ctx: Context) -> CallToolResult:
        async def work() -> CallToolResult:
            return json_result(await runs.cancel(run_id, client_of(ctx)))

        return await guarded(work)

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
            return json_result({"runs": runs.list(max(1, min(limit, 500)), client_of(ctx))})

        return await guarded(work)
