"""The MCP facade: Codex and missions for any MCP client, over the same engine as the CLI.

Tools: ``codex`` and ``codex-reply`` (the input and output schemas of the tools removed from
Codex 0.154.0, so a client switches by changing only the command it launches), ``batch``,
``mission_start``/``mission_status``/``mission_wait``/``mission_cancel``, ``reply`` and
``runs_list``. Runs, transcripts and artifacts are resources. Progress goes out as standard
progress notifications, task states as standard log messages; approvals become standard
elicitations when the client supports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import typing
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from codex_mcp_wrapper import __version__
from codex_mcp_wrapper.approvals import APPROVAL_TIMEOUT, asking, fixed
from codex_mcp_wrapper.engine import make_redactor
from codex_mcp_wrapper.errors import InputError, WrapperError
from codex_mcp_wrapper.events import Event, TaskFinished, TaskUpdate
from codex_mcp_wrapper.execution import ApprovalHandler
from codex_mcp_wrapper.mission import load_mission, parse_mission
from codex_mcp_wrapper.redact import Redactor
from codex_mcp_wrapper.results import TaskResult
from codex_mcp_wrapper.service import CodexRequest, MissionService, batch_result

WAIT_DEFAULT = 30.0
WAIT_MAX = 55.0  # stays under the common 60 s client tool timeout
Sandbox = Literal["read-only", "workspace-write", "danger-full-access"]
Approval = Literal["untrusted", "on-failure", "on-request", "never"]

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
RUNS_CODEX = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)


class CodexOutput(BaseModel):
    threadId: str
    content: str


class ApprovalAnswer(BaseModel):
    approve: bool = Field(description="Allow Codex to do this?")


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


class CallContext:
    """Per-call plumbing: progress and log notifications, approvals by elicitation."""

    def __init__(self, ctx: Context, service: MissionService, redactor: Redactor) -> None:
        self.ctx = ctx
        self.service = service
        self.redactor = redactor
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.total = 0
        self.finished = 0

    def observer(self, event: Event) -> None:
        if isinstance(event, TaskUpdate | TaskFinished):
            self.queue.put_nowait(event)

    async def pump(self) -> None:
        """Send progress and log notifications for queued events until ``None``."""
        while (event := await self.queue.get()) is not None:
            if isinstance(event, TaskFinished):
                self.finished += 1
                result = event.result
                message = f"{result.task_id}: {result.status}"
                if result.error:
                    message += f" ({self.redactor.text(result.error)})"
            else:
                assert isinstance(event, TaskUpdate)
                where = f" on {event.worker}" if event.worker else ""
                message = f"{event.task_id}: {event.status}{where}"
            await self.ctx.report_progress(self.finished, self.total or None, message)
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore"
                )  # logging is deprecated in 2026-07-28, still standard
                await self.ctx.info(message, logger_name="codex-mcp-wrapper")

    def approvals(self) -> ApprovalHandler:
        capabilities = self.ctx.client_capabilities
        if capabilities is None or capabilities.elicitation is None:
            return fixed(self.service.settings.approvals)

        async def ask(message: str) -> bool | None:
            answer = await self.ctx.elicit(message, ApprovalAnswer)
            if answer.action != "accept":
                return False
            return bool(getattr(answer, "data", None) and answer.data.approve)

        return asking(ask, "decline", APPROVAL_TIMEOUT)

    async def run(self, total: int, work: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``work`` while relaying its events; the relay ends with it (never outlives it)."""
        self.total = total
        pump = asyncio.create_task(self.pump())
        try:
            return await work()
        except BaseException:
            pump.cancel()
            raise
        finally:
            self.queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await pump


def _codex_result(result: TaskResult, redactor: Redactor) -> CallToolResult:
    content = redactor.text(result.final_message or "")
    if result.status != "ok":
        text = redactor.text(result.error or f"the Codex turn ended {result.status}")
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content={"threadId": result.thread_id or "", "content": content or text},
            is_error=True,
        )
    return CallToolResult(
        content=[TextContent(type="text", text=content)],
        structured_content={"threadId": result.thread_id or "", "content": content},
    )


def _error(exc: Exception) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True)


def build_server(service: MissionService) -> MCPServer:
    """The MCP server; every tool is a thin call into ``service``."""
    redactor = Redactor.from_environment()
    server: MCPServer = MCPServer(
        "codex-mcp-wrapper",
        version=__version__,
        instructions=(
            "Runs OpenAI Codex headlessly. `codex` starts a Codex session and `codex-reply` "
            "continues it (threadId). `batch` runs a mission (a list of Codex tasks) to the end; "
            "for long missions use `mission_start` then `mission_wait` until done."
        ),
    )

    async def guarded(work: Callable[[], Awaitable[CallToolResult]]) -> CallToolResult:
        try:
            return await work()
        except WrapperError as exc:
            return _error(exc)
        except Exception as exc:  # noqa: BLE001 - the MCP tool boundary: an error result
            return _error(RuntimeError(f"unexpected {type(exc).__name__}: {exc}"))

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
        approval_policy: Annotated[Approval | None, Field(alias="approval-policy")] = None,
        sandbox: Sandbox | None = None,
        cwd: Annotated[str | None, Field(description="Working directory of the session.")] = None,
        model: str | None = None,
        profile: str | None = None,
        config: Annotated[
            dict[str, Any] | None, Field(description="Codex config overrides.")
        ] = None,
        base_instructions: Annotated[str | None, Field(alias="base-instructions")] = None,
        developer_instructions: Annotated[str | None, Field(alias="developer-instructions")] = None,
        compact_prompt: Annotated[str | None, Field(alias="compact-prompt")] = None,
    ) -> Annotated[CallToolResult, CodexOutput]:
        call = CallContext(ctx, service, redactor)
        request = CodexRequest(
            prompt=prompt,
            cwd=cwd,
            sandbox=sandbox,
            approval_policy=approval_policy,
            model=model,
            profile=profile,
            config=config,
            base_instructions=base_instructions,
            developer_instructions=developer_instructions,
            compact_prompt=compact_prompt,
        )

        async def work() -> CallToolResult:
            result = await call.run(
                1, lambda: service.codex(request, [call.observer], call.approvals())
            )
            return _codex_result(result, redactor)

        return await guarded(work)

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
        threadId: str | None = None,
        conversationId: str | None = None,
    ) -> Annotated[CallToolResult, CodexOutput]:
        call = CallContext(ctx, service, redactor)

        async def work() -> CallToolResult:
            thread = threadId or conversationId
            if not thread:
                raise InputError("give threadId (from the codex tool's result).")
            result = await call.run(
                1, lambda: service.reply(thread, prompt, [call.observer], call.approvals())
            )
            return _codex_result(result, redactor)

        return await guarded(work)

    def _mission(mission: dict[str, Any] | str, vars: dict[str, str] | None) -> Any:
        if isinstance(mission, str):
            return load_mission(Path(mission).expanduser(), vars)
        return parse_mission(mission, "mission", vars)

    @server.tool(
        name="batch",
        title="Run a mission",
        description="Run a mission (object, or a path to a YAML/JSON file) to the end and return "
        "each task's result; `errors` is empty when every task is ok. For missions longer than "
        "your client's tool timeout use mission_start and mission_wait.",
        annotations=RUNS_CODEX,
    )
    async def batch(
        mission: dict[str, Any] | str,
        ctx: Context,
        vars: dict[str, str] | None = None,
    ) -> CallToolResult:
        call = CallContext(ctx, service, redactor)

        async def work() -> CallToolResult:
            parsed = _mission(mission, vars)
            summary = await call.run(
                len(parsed.tasks),
                lambda: service.run(parsed, observers=[call.observer], approvals=call.approvals()),
            )
            data = make_redactor(parsed).data(redactor.data(batch_result(summary)))
            return CallToolResult(
                content=[TextContent(type="text", text=json.dumps(data, indent=2))],
                structured_content=data,
                is_error=False,
            )

        return await guarded(work)

    def _json(data: Any) -> CallToolResult:
        data = redactor.data(data)
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(data, indent=2))],
            structured_content=data if isinstance(data, dict) else {"items": data},
        )

    @server.tool(
        name="mission_start",
        title="Start a mission",
        description="Start a mission in the background and return its run_id at once.",
        annotations=RUNS_CODEX,
    )
    async def mission_start(
        mission: dict[str, Any] | str, vars: dict[str, str] | None = None
    ) -> CallToolResult:
        async def work() -> CallToolResult:
            parsed = _mission(mission, vars)
            run_id = service.start(parsed)
            return _json(
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
    async def mission_resume(run_id: str) -> CallToolResult:
        async def work() -> CallToolResult:
            return _json({"run_id": service.resume(run_id), "status": "running"})

        return await guarded(work)

    @server.tool(
        name="mission_status",
        title="Mission status",
        annotations=READ_ONLY,
        description="The current state of a run: per-task status, and the summary when done.",
    )
    async def mission_status(run_id: str) -> CallToolResult:
        async def work() -> CallToolResult:
            return _json(service.status(run_id))

        return await guarded(work)

    @server.tool(
        name="mission_wait",
        title="Wait for a mission",
        annotations=READ_ONLY,
        description="Wait up to `timeout` seconds (default 30, at most 55) for a run to "
        "finish; returns its state either way (`done` tells which).",
    )
    async def mission_wait(run_id: str, timeout: float = WAIT_DEFAULT) -> CallToolResult:
        async def work() -> CallToolResult:
            return _json(await service.wait(run_id, max(0.0, min(timeout, WAIT_MAX))))

        return await guarded(work)

    @server.tool(
        name="mission_cancel",
        title="Cancel a mission",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True),
        description="Cancel a running mission: its turns are stopped and its workers "
        "freed; finished results are kept.",
    )
    async def mission_cancel(run_id: str) -> CallToolResult:
        async def work() -> CallToolResult:
            return _json(await service.cancel(run_id))

        return await guarded(work)

    @server.tool(
        name="reply",
        title="Continue a task's thread",
        annotations=RUNS_CODEX,
        description="Send a further prompt in the Codex thread of a task of a run.",
    )
    async def reply(run_id: str, task_id: str, prompt: str, ctx: Context) -> CallToolResult:
        call = CallContext(ctx, service, redactor)

        async def work() -> CallToolResult:
            result = await call.run(
                1, lambda: service.reply_task(run_id, task_id, prompt, [call.observer])
            )
            return _json(result.model_dump(mode="json"))

        return await guarded(work)

    @server.tool(
        name="runs_list",
        title="List runs",
        annotations=READ_ONLY,
        description="Recent runs, newest first.",
    )
    async def runs_list(limit: int = 20) -> CallToolResult:
        async def work() -> CallToolResult:
            return _json({"runs": service.list_runs(max(1, min(limit, 500)))})

        return await guarded(work)

    _add_resources(server, service, redactor)
    return server


def _add_resources(server: MCPServer, service: MissionService, redactor: Redactor) -> None:
    def task_file(run_id: str, task_id: str, name: str) -> Path:
        base = service.run_dir(run_id) / "tasks"
        path = (base / task_id / name).resolve()
        if not path.is_relative_to(base.resolve()) or not path.is_file():
            raise InputError(f"no {name} for task '{task_id}' of run '{run_id}'.")
        return path

    @server.resource(
        "codex-wrapper://runs/{run_id}/summary",
        name="run-summary",
        mime_type="application/json",
        description="A run's summary (JSON).",
    )
    def run_summary(run_id: str) -> str:
        return json.dumps(redactor.data(service.status(run_id)), indent=2)

    @server.resource(
        "codex-wrapper://runs/{run_id}/tasks/{task_id}/transcript",
        name="task-transcript",
        mime_type="application/x-ndjson",
        description="Every Codex event of a task (JSON Lines, secrets redacted).",
    )
    def task_transcript(run_id: str, task_id: str) -> str:
        return task_file(run_id, task_id, "events.jsonl").read_text(encoding="utf-8")

    @server.resource(
        "codex-wrapper://runs/{run_id}/tasks/{task_id}/final",
        name="task-final-message",
        mime_type="text/markdown",
        description="A task's final message.",
    )
    def task_final(run_id: str, task_id: str) -> str:
        return task_file(run_id, task_id, "final.md").read_text(encoding="utf-8")

    @server.resource(
        "codex-wrapper://runs/{run_id}/tasks/{task_id}/artifacts/{name}",
        name="task-artifact",
        description="A file a task's `artifacts` copied.",
    )
    def task_artifact(run_id: str, task_id: str, name: str) -> bytes:
        return task_file(run_id, task_id, f"artifacts/{name}").read_bytes()
