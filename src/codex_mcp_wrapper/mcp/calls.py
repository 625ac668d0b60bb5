"""Per-call plumbing of a tool call: progress and log notifications relayed from the run's
events, the removed server's ``codex/event`` notifications for the drop-in tools, and
approvals asked of the client by elicitation when it can answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, Notification, TextContent
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

from codex_mcp_wrapper.engine.approval_policies import asking, fixed
from codex_mcp_wrapper.engine.events import (
    CodexEvent,
    Event,
    TaskFinished,
    TaskUpdate,
    ThreadProgress,
)
from codex_mcp_wrapper.engine.seams import (
    ApprovalDecision,
    ApprovalHandler,
    ApprovalRequest,
)
from codex_mcp_wrapper.mcp.legacy_events import LegacyEvents
from codex_mcp_wrapper.mcp.log_levels import LogLevels
from codex_mcp_wrapper.settings import Settings

T = TypeVar("T")
log = logging.getLogger("codex_mcp_wrapper.mcp")
APPROVED = ("approved", "approved_for_session")  # the removed server's `decision` answers
APPROVAL_SCHEMA = {
    "type": "object",
    "properties": {
        "approve": {"type": "boolean", "title": "Allow Codex to do this?", "default": True}
    },
}


class CodexEventNotification(Notification[dict[str, Any], Literal["codex/event"]]):
    """The removed ``codex mcp-server``'s non-standard notification."""

    method: Literal["codex/event"] = "codex/event"


def approved(answer: dict[str, Any]) -> bool:
    """An elicitation answer, in either shape: the old server's ``{"decision": ...}`` or a
    standard ElicitResult (accepted, and ``approve`` not false)."""
    if "decision" in answer:
        return answer["decision"] in APPROVED
    content = answer.get("content") or {}
    return answer.get("action") == "accept" and content.get("approve", True) is not False


class CallContext:
    """One tool call: relays its run's events as notifications while the work runs."""

    def __init__(
        self, ctx: Context, settings: Settings, levels: LogLevels, legacy_events: bool = False
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.levels = levels
        self.last_event = ""  # the method of the run's latest Codex event, for heartbeats
        self.news = asyncio.Event()  # set by every notification sent
        self.queue: asyncio.Queue[Event | dict[str, Any] | None] = asyncio.Queue()
        self.total = 0
        self.finished = 0
        self._ticks_of, self._ticks = 0, 0  # notifications since ``finished`` last changed
        self.request_id = ctx.request_context.request_id
        # Only clients on a handshake-era protocol can be the removed server's (it spoke
        # 2025-06-18); a 2026-07-28 client gets the standard notifications alone.
        self.legacy = LegacyEvents(self.request_id) if legacy_events and not self.modern else None
        self.notes: list[str] = []  # approvals the policy decided: said in the result
        self.threads: set[str] = set()  # the threads the call's progress has named

    @property
    def modern(self) -> bool:
        """The client speaks 2026-07-28: the server cannot ask it anything mid-call."""
        return self.ctx.protocol_version in MODERN_PROTOCOL_VERSIONS

    def observer(self, event: Event) -> None:
        if isinstance(event, CodexEvent):
            self.last_event = event.method
        if isinstance(event, TaskUpdate | TaskFinished) or (
            self.legacy is not None and isinstance(event, CodexEvent)
        ):
            self.queue.put_nowait(event)
        elif isinstance(event, ThreadProgress) and event.thread_id not in self.threads:
            self.threads.add(event.thread_id)  # said once: a client may steer it (codex-steer)
            self.queue.put_nowait(event)

    async def pump(self) -> None:
        """Send the notifications for queued events until ``None``."""
        gone = False
        while (event := await self.queue.get()) is not None:
            if gone:
                continue  # the client is gone: drain quietly, the call's result still stands
            try:
                if isinstance(event, dict):  # an old-style message, ready to send
                    await self._codex_event(event)
                elif isinstance(event, CodexEvent):
                    assert self.legacy is not None
                    for msg in self.legacy.translate(event.method, event.params):
                        await self._codex_event(msg)
                else:
                    await self._progress(event)
            except Exception as exc:  # noqa: BLE001 - the MCP edge: a send failed, stop sending
                log.info("stopped sending notifications for this call (%s)", exc)
                gone = True

    async def _codex_event(self, msg: dict[str, Any]) -> None:
        assert self.legacy is not None
        event_id = "" if msg["type"] == "session_configured" else self.legacy.turn_id
        note = CodexEventNotification(params=self.legacy.params(event_id, msg))
        await self.ctx.session.send_notification(
            note,  # not in the spec's union; the SDK sends it as it is
            related_request_id=self.request_id,
        )

    async def _progress(self, event: Event) -> None:
        if isinstance(event, TaskFinished):
            self.finished += 1
            result = event.result
            message = f"{result.task_id}: {result.status}"
            if result.error:
                message += f" ({result.error})"
        elif isinstance(event, ThreadProgress):
            message = f"{event.task_id}: thread {event.thread_id}"
        else:
            assert isinstance(event, TaskUpdate)
            where = f" on {event.worker}" if event.worker else ""
            message = f"{event.task_id}: {event.status}{where}"
            if event.message:  # e.g. Codex retrying a model it cannot reach, as it happens
                message += f" ({event.message})"
        value = self._progress_value(finishing=isinstance(event, TaskFinished))
        await self.ctx.report_progress(value, self.total or None, message)
        self.news.set()
        if self.levels.wants(self.ctx.session, "info"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # logging is deprecated in 2026-07-28
                await self.ctx.info(message, logger_name="codex-mcp-wrapper")

    def _progress_value(self, finishing: bool = False) -> float:
        """Tasks finished (exactly, when a task just finished), else plus a fraction that
        grows with every notification in between: the spec wants each value above the last,
        and never above ``total``."""
        if finishing or self.finished != self._ticks_of:
            self._ticks_of, self._ticks = self.finished, 0
            if finishing:
                return self.finished
        self._ticks += 1
        return self.finished + self._ticks / (self._ticks + 1)

    async def heartbeat(self) -> None:
        """A progress notification whenever the call has had no news for a while (a long
        turn), naming Codex's latest event, so clients that reset their timeout on progress
        keep waiting."""
        interval = self.settings.timeouts.progress
        while True:
            self.news.clear()
            try:
                async with asyncio.timeout(interval):
                    await self.news.wait()
            except TimeoutError:
                doing = f" (last event: {self.last_event})" if self.last_event else ""
                try:
                    await self.ctx.report_progress(
                        self._progress_value(), self.total or None, f"working{doing}"
                    )
                except Exception:  # noqa: BLE001 - the client is gone; the call ends anyway
                    return

    @property
    def can_elicit(self) -> bool:
        capabilities = self.ctx.client_capabilities
        return capabilities is not None and capabilities.elicitation is not None

    def approvals(self) -> ApprovalHandler:
        """Ask the client when it can answer (a legacy session declaring elicitation, or a
        client of the old server, which answered without declaring it); else the policy.
        (2026-07-28 clients are asked by the input-required round trip: input_required.py.)"""
        if (
            self.modern
            or not self.ctx.session.can_send_request  # no back-channel (stateless HTTP)
            or not (self.can_elicit or self.legacy is not None)
        ):
            return self._by_policy()
        return asking(self._ask, "decline", self.settings.timeouts.approval)

    def _by_policy(self) -> ApprovalHandler:
        """The policy answers, and the call's result says so (``notes``): the client was
        not asked."""
        policy = fixed(self.settings.approvals)

        async def decide(request: ApprovalRequest) -> ApprovalDecision:
            decision = await policy(request)
            verb = "accepted" if decision == "accept" else "declined"
            hint = "" if decision == "accept" else " (serve --auto-approve accepts)"
            self.notes.append(
                f"Codex asked to {request.describe()}; this client could not be asked, so the "
                f"server's policy {verb} it{hint}."
            )
            return decision

        return decide

    def noted(self, result: CallToolResult) -> CallToolResult:
        """``result`` with the call's notes as further text items (after the first, which
        old clients read)."""
        result.content.extend(TextContent(type="text", text=note) for note in self.notes)
        return result

    async def _ask(self, request: ApprovalRequest, message: str) -> bool | None:
        params = request.params
        cwd = params.get("cwd")
        if self.legacy is not None and request.kind == "command":
            msg = self.legacy.approval(request.command, cwd, request.reason)
            self.queue.put_nowait(msg)  # sent before the question, as the old server did
        elicitation: dict[str, Any] = {"message": message, "requestedSchema": APPROVAL_SCHEMA}
        elicitation.update(  # what the old server's clients read, besides the message
            threadId=params.get("threadId"),
            codex_elicitation="exec-approval" if request.kind == "command" else "patch-approval",
            codex_mcp_tool_call_id=str(self.request_id),
            codex_event_id=params.get("turnId") or "",
            codex_call_id=params.get("itemId") or params.get("callId"),
            codex_command=[request.command] if request.command else None,
            codex_cwd=cwd,
        )
        # The SDK's typed path validates the answer as an ElicitResult and drops the codex_*
        # fields; the request's own raw channel sends them and returns either answer shape.
        outbound = self.ctx.session._request_outbound
        answer = await outbound.send_raw_request("elicitation/create", elicitation, None)
        return approved(answer) if isinstance(answer, dict) else None

    async def run(self, total: int, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` while relaying its events; the relay ends with it (never outlives it)."""
        self.total = total
        pump = asyncio.create_task(self.pump())
        heartbeat = asyncio.create_task(self.heartbeat())
        try:
            return await work()
        except BaseException:
            pump.cancel()
            raise
        finally:
            heartbeat.cancel()
            self.queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
