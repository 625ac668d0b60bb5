"""The tasks extension (``io.modelcontextprotocol/tasks``, SEP-2663) for 2026-07-28 clients.

When a client declares the extension, a ``batch``, ``mission_start`` or ``codex`` call does not
hold the request open: it starts the run in the background and answers at once with a task
(``resultType: "task"``) whose id is the run's durable id. ``tasks/get`` maps the run's state
(``working``, then ``completed`` with the tool's result inlined, ``failed`` or ``cancelled``),
``tasks/cancel`` cancels the run. When Codex asks for an approval and the client declared
elicitation, ``tasks/get`` says ``input_required`` with the question in ``inputRequests`` and
``tasks/update`` carries the answer (unanswered, it is declined at the approval deadline).
Task ids survive a restart of the server: they are run ids, and a finished run's result is
rebuilt from its record. Built on the SDK's ``Extension`` API (``fastmcp-tasks`` implements
SEP-2663 for FastMCP 4 only, not for ``MCPServer``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolRequestParams, RequestParams
from mcp.types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ConfigDict, Field

from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.engine.run_state import RunState
from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.errors import WrapperError
from codex_mcp_wrapper.mcp.identity import identity_of
from codex_mcp_wrapper.mcp.input_required import Parking, Session
from codex_mcp_wrapper.mcp.shaping import (
    CODEX_TOOL_APPROVAL,
    batch_result,
    codex_result,
    error_result,
    json_result,
)
from codex_mcp_wrapper.missions.single import CodexRequest

TASKS = "io.modelcontextprotocol/tasks"
TASK_TOOLS = frozenset({"batch", "mission_start", "codex"})
POLL_INTERVAL_MS = 500
MODERN = frozenset(MODERN_PROTOCOL_VERSIONS)


class TaskParams(RequestParams):
    model_config = ConfigDict(populate_by_name=True)
    task_id: str = Field(alias="taskId")


class UpdateParams(TaskParams):
    input_responses: dict[str, Any] = Field(default_factory=dict, alias="inputResponses")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def created_at(run_id: str) -> str:
    """A run id starts with its creation time (``YYYYMMDD-HHMMSS-...``)."""
    try:
        stamp = datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return _iso(time.time())
    return stamp.astimezone(UTC).isoformat()


def codex_request(arguments: dict[str, Any]) -> CodexRequest:
    """The ``codex`` tool's arguments (validated against its schema) as a request."""
    request = CodexRequest(**{key.replace("-", "_"): value for key, value in arguments.items()})
    return replace(request, approval_policy=request.approval_policy or CODEX_TOOL_APPROVAL)


class Tasks(Extension):
    """Runs long calls as durable tasks for clients that declare the extension."""

    identifier = TASKS

    def __init__(self, runs: Runs, parking: Parking) -> None:
        """Approvals of tasks whose client can answer wait in ``parking`` for
        ``tasks/update``. A task is its client's: another identity cannot see or touch it."""
        self.runs = runs
        self.parking = parking
        self.asking: dict[str, Session] = {}  # task id -> its approvals waiting for answers

    def methods(self) -> tuple[MethodBinding, ...]:
        return (
            MethodBinding("tasks/get", TaskParams, self.get, protocol_versions=MODERN),
            MethodBinding("tasks/update", UpdateParams, self.update, protocol_versions=MODERN),
            MethodBinding("tasks/cancel", TaskParams, self.cancel, protocol_versions=MODERN),
        )

    async def intercept_tool_call(
        self,
        params: CallToolRequestParams,
        ctx: ServerRequestContext[Any, Any],
        call_next: CallNext,
    ) -> HandlerResult:
        capabilities = ctx.session.client_capabilities
        declared = bool(
            capabilities and capabilities.extensions and TASKS in capabilities.extensions
        )
        if params.name not in TASK_TOOLS or ctx.protocol_version not in MODERN or not declared:
            return await call_next(ctx)
        arguments = dict(params.arguments or {})
        client = identity_of(ctx.request)
        session, approvals = None, None
        if capabilities is not None and capabilities.elicitation is not None:
            session, approvals = self.parking.begin()  # asked through tasks/get + tasks/update
        try:
            if params.name == "codex":
                run_id = self.runs.start_codex(codex_request(arguments), approvals, client)
            else:
                mission = self.runs.client_mission(arguments["mission"], arguments.get("vars"))
                options = RunOptions(approvals=approvals, owner=client.name)
                run_id = self.runs.start(mission, options)
        except WrapperError as exc:
            if session is not None:
                self.parking.end(session)
            return error_result(str(exc))
        if session is not None:
            self.asking[run_id] = session

            def forget() -> None:
                self.asking.pop(run_id, None)
                self.parking.end(session)

            self.runs.when_done(run_id, forget)
        return {"resultType": "task", **self._fields(run_id, "working")}

    def _fields(self, run_id: str, status: str, message: str | None = None) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "taskId": run_id,
            "status": status,
            "createdAt": created_at(run_id),
            "lastUpdatedAt": _iso(time.time()),
            "ttlMs": None,  # runs are kept until their records are deleted
            "pollIntervalMs": POLL_INTERVAL_MS,
        }
        if message:
            fields["statusMessage"] = message
        return fields

    def _state(self, task_id: str, ctx: ServerRequestContext[Any, Any]) -> RunState:
        try:
            return self.runs.status(task_id, identity_of(ctx.request))
        except WrapperError as exc:
            raise MCPError(INVALID_PARAMS, f"no task {task_id}: {exc}") from exc

    async def get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        state = self._state(params.task_id, ctx)
        status = state.status
        session = self.asking.get(params.task_id)
        if not state.done:
            question = self.parking.question(session) if session is not None else None
            if question is not None:
                token, elicitation = question
                request = elicitation.model_dump(by_alias=True, mode="json", exclude_none=True)
                return {
                    **self._fields(params.task_id, "input_required", "Codex asks for approval"),
                    "inputRequests": {token: request},
                }
            return self._fields(params.task_id, "working")

        if status == "cancelled":
            return self._fields(params.task_id, "cancelled", "the run was cancelled")
        if status == "interrupted":
            message = (
                "the server stopped while the run was going on; finish it with mission_resume "
                f"{params.task_id}"
            )
            return {
                **self._fields(params.task_id, "failed", message),
                "error": {"code": -32603, "message": message},
            }
        summary = state.summary
        if summary is None:
            message = f"run {params.task_id} ended without a summary"
            return {
                **self._fields(params.task_id, "failed", message),
                "error": {"code": -32603, "message": message},
            }
        if summary.mission_id == "codex" and len(summary.tasks) == 1:
            result = codex_result(summary.tasks[0])
        else:
            result = json_result(batch_result(summary))
            result.is_error = False
        payload = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        return {**self._fields(params.task_id, "completed"), "result": payload}

    async def update(
        self, ctx: ServerRequestContext[Any, Any], params: UpdateParams
    ) -> dict[str, Any]:
        self._state(params.task_id, ctx)
        session = self.asking.get(params.task_id)
        if session is not None:
            self.parking.answer(session, params.input_responses)
        return {}

    async def cancel(
        self, ctx: ServerRequestContext[Any, Any], params: TaskParams
    ) -> dict[str, Any]:
        client = identity_of(ctx.request)
        self._state(params.task_id, ctx)
        await self.runs.cancel(params.task_id, client)
        return {}
