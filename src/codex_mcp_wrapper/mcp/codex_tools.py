"""The drop-in for the removed ``codex mcp-server``: its ``codex`` and ``codex-reply`` tools,
with the input and output schemas of the tools removed from Codex 0.154.0, so a client switches
by changing only the command it launches. Each is one call into ``Runs``, wrapped by
``guarded``; on 2026-07-28 a call whose client can answer asks its approvals through the
input-required round trip (``asked_session``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import Field

from codex_mcp_wrapper import process
from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.engine.seams import ApprovalHandler
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.mcp.calls import CallContext
from codex_mcp_wrapper.mcp.identity import client_of
from codex_mcp_wrapper.mcp.input_required import Parking
from codex_mcp_wrapper.mcp.log_levels import LogLevels
from codex_mcp_wrapper.mcp.shaping import CODEX_TOOL_APPROVAL, CodexOutput, codex_result
from codex_mcp_wrapper.mcp.tool_boundary import RUNS_CODEX, accepts_aliases, guarded
from codex_mcp_wrapper.missions.single import CodexRequest

Sandbox = Literal["read-only", "workspace-write", "danger-full-access"]
Approval = Literal["untrusted", "on-failure", "on-request", "never"]

# The `codex` tool's arguments, each with its description (the schema says what each is).
ApprovalArg = Annotated[
    Approval | None,
    Field(
        alias="approval-policy",
        description="When Codex asks before running a command (default: on-request, as codex "
        "mcp-server did).",
    ),
]
SandboxArg = Annotated[
    Sandbox | None, Field(description="What Codex's commands may touch (default: read-only).")
]
CwdArg = Annotated[
    str | None,
    Field(description="Working directory of the session (default: the server's --workspace)."),
]
ModelArg = Annotated[
    str | None, Field(description="The model to use (default: Codex's configured one).")
]
ConfigArg = Annotated[
    dict[str, Any] | None,
    Field(description="Codex config overrides, as in config.toml (nested objects)."),
]
BaseInstructionsArg = Annotated[
    str | None, Field(alias="base-instructions", description="Replace Codex's base instructions.")
]
DeveloperInstructionsArg = Annotated[
    str | None,
    Field(
        alias="developer-instructions", description="Extra developer instructions for the session."
    ),
]
CompactPromptArg = Annotated[
    str | None,
    Field(
        alias="compact-prompt",
        description="The prompt Codex uses when it compacts the conversation.",
    ),
]


IsolationArg = Annotated[
    Literal["none", "worktree"] | None,
    Field(
        description="worktree: the session works in a git worktree of its own, made from cwd's "
        "repository as it is (uncommitted changes included), and the result's diff holds its "
        "change as a patch; cwd must be in a git repository (default: none)."
    ),
]


def register_codex_tools(
    server: MCPServer, runs: Runs, levels: LogLevels, parking: Parking
) -> None:
    """``codex`` and ``codex-reply``: the drop-in for the removed ``codex mcp-server``."""
    register_codex(server, runs, levels, parking)
    register_codex_reply(server, runs, levels, parking)


def register_codex(server: MCPServer, runs: Runs, levels: LogLevels, parking: Parking) -> None:
    """``codex``: a new Codex session, its arguments and result as 0.153.4's."""

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
        approval_policy: ApprovalArg = None,
        sandbox: SandboxArg = None,
        cwd: CwdArg = None,
        model: ModelArg = None,
        config: ConfigArg = None,
        base_instructions: BaseInstructionsArg = None,
        developer_instructions: DeveloperInstructionsArg = None,
        compact_prompt: CompactPromptArg = None,
        isolation: IsolationArg = None,
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
            isolation=isolation,
        )

        if call.modern and call.can_elicit:  # approvals by the input-required round trip
            return await guarded(
                lambda: asked_session(
                    ctx, runs, parking, lambda asker: runs.start_codex(request, asker, client)
                )
            )

        async def work() -> CallToolResult:
            result = await call.run(
                1, lambda: runs.codex(request, [call.observer], call.approvals(), client)
            )
            return call.noted(codex_result(result))

        return await guarded(work)


def register_codex_reply(
    server: MCPServer, runs: Runs, levels: LogLevels, parking: Parking
) -> None:
    """``codex-reply``: a further prompt in a session's thread (after a restart too)."""

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
                    ctx,
                    runs,
                    parking,
                    lambda asker: runs.start_reply(thread, prompt, asker, client),
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


async def asked_session(
    ctx: Context, runs: Runs, parking: Parking, start: Callable[[ApprovalHandler], str]
) -> Any:
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
