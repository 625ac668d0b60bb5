"""Thread control over MCP: ``codex-steer`` (add input to the running turn of a ``codex`` or
``codex-reply`` call), ``codex-fork`` (a new thread from a copy of another's history) and
``codex-review`` (Codex's review mode: structured findings).
Each is one call into ``Runs``, wrapped by ``guarded``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.mcp.calls import CallContext
from codex_mcp_wrapper.mcp.codex_tools import CwdArg
from codex_mcp_wrapper.mcp.identity import client_of
from codex_mcp_wrapper.mcp.log_levels import LogLevels
from codex_mcp_wrapper.mcp.shaping import CodexOutput, ReviewOutput, codex_result, review_result
from codex_mcp_wrapper.mcp.tool_boundary import RUNS_CODEX, guarded
from codex_mcp_wrapper.missions.single import CodexRequest

STEERS = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)


class SteerOutput(BaseModel):
    threadId: str
    turnId: str


def register_thread_tools(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``codex-steer`` and ``codex-fork``."""
    register_codex_steer(server, runs)
    register_codex_fork(server, runs, levels)
    register_codex_review(server, runs, levels)


def register_codex_steer(server: MCPServer, runs: Runs) -> None:
    """``codex-steer``: input for a turn still running (Codex's ``turn/steer``)."""

    @server.tool(
        name="codex-steer",
        title="Steer a running Codex session",
        description="Add a prompt to the turn a codex or codex-reply call is running in "
        "threadId (its progress names the thread as soon as it starts): the model gets it with "
        "its next request of the same turn, and that call's result reflects it. An error when "
        "no call in that thread is running.",
        annotations=STEERS,
    )
    async def codex_steer(
        threadId: Annotated[
            str, Field(description="The thread of the running call (progress: 'thread ID').")
        ],
        prompt: Annotated[str, Field(description="What to add to the running turn.")],
        ctx: Context,
    ) -> Annotated[CallToolResult, SteerOutput]:
        async def work() -> CallToolResult:
            _run, _task, turn_id = await runs.steer_thread(threadId, prompt, client_of(ctx))
            return CallToolResult(
                content=[TextContent(type="text", text=f"steered turn {turn_id}.")],
                structured_content={"threadId": threadId, "turnId": turn_id},
            )

        return await guarded(work)


def register_codex_fork(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``codex-fork``: a prompt in a new thread copied from another (Codex's ``thread/fork``)."""

    @server.tool(
        name="codex-fork",
        title="Fork a Codex session",
        description="Send a prompt in a new thread copied from threadId's conversation (through "
        "lastTurnId, when given), with that session's settings; threadId itself is left as it "
        "was. Returns the new threadId (continue it with codex-reply) and Codex's final "
        "message.",
        annotations=RUNS_CODEX,
    )
    async def codex_fork(
        threadId: Annotated[str, Field(description="The thread to copy (a codex result's).")],
        prompt: Annotated[str, Field(description="The first prompt of the new thread.")],
        ctx: Context,
        lastTurnId: Annotated[
            str | None,
            Field(description="Copy the conversation through this turn only (Codex's turn id)."),
        ] = None,
    ) -> Annotated[CallToolResult, CodexOutput]:
        call = CallContext(ctx, runs.settings, levels, runs.settings.codex_events)
        client = client_of(ctx)

        async def work() -> CallToolResult:
            result = await call.run(
                1,
                lambda: runs.fork(
                    threadId, prompt, lastTurnId, [call.observer], call.approvals(), client
                ),
            )
            return call.noted(codex_result(result))

        return await guarded(work)


def register_codex_review(server: MCPServer, runs: Runs, levels: LogLevels) -> None:
    """``codex-review``: Codex's review mode on a checkout (``review/start``)."""

    @server.tool(
        name="codex-review",
        title="Review changes with Codex",
        description="Run Codex's code review on a git checkout: give exactly one of target "
        "('uncommitted': staged, unstaged and untracked changes), base (a branch to compare the "
        "current one with) or commit (a sha). Returns the findings as structured data (title, "
        "body, file, lines, priority 0-3, confidence) and the threadId (codex-reply continues "
        "it, e.g. to fix them).",
        annotations=RUNS_CODEX,
    )
    async def codex_review(
        ctx: Context,
        cwd: CwdArg = None,
        target: Annotated[
            Literal["uncommitted"] | None, Field(description="'uncommitted': the working tree.")
        ] = None,
        base: Annotated[str | None, Field(description="Review against this branch.")] = None,
        commit: Annotated[str | None, Field(description="Review this commit (sha).")] = None,
        title: Annotated[str | None, Field(description="A label for the commit.")] = None,
    ) -> Annotated[CallToolResult, ReviewOutput]:
        call = CallContext(ctx, runs.settings, levels, runs.settings.codex_events)
        client = client_of(ctx)

        async def work() -> CallToolResult:
            review = {"target": target, "base": base, "commit": commit, "title": title}
            request = CodexRequest(
                prompt="",
                cwd=cwd,
                approval_policy="never",
                review={k: v for k, v in review.items() if v is not None},
            )
            result = await call.run(
                1, lambda: runs.codex(request, [call.observer], call.approvals(), client)
            )
            return call.noted(review_result(result))

        return await guarded(work)
