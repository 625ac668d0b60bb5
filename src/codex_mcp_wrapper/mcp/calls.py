"""Per-call plumbing of a tool call: progress and log notifications relayed from the run's
events, and approvals asked of the client by elicitation when it can answer."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from codex_mcp_wrapper.engine.approvals import asking, fixed
from codex_mcp_wrapper.engine.events import Event, TaskFinished, TaskUpdate
from codex_mcp_wrapper.engine.executor import ApprovalHandler
from codex_mcp_wrapper.settings import Settings

T = TypeVar("T")


class ApprovalAnswer(BaseModel):
    approve: bool = Field(description="Allow Codex to do this?")


class CallContext:
    """One tool call: relays its run's events as notifications while the work runs."""

    def __init__(self, ctx: Context, settings: Settings) -> None:
        self.ctx = ctx
        self.settings = settings
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
                    message += f" ({result.error})"
            else:
                assert isinstance(event, TaskUpdate)
                where = f" on {event.worker}" if event.worker else ""
                message = f"{event.task_id}: {event.status}{where}"
            await self.ctx.report_progress(self.finished, self.total or None, message)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # logging is deprecated in 2026-07-28
                await self.ctx.info(message, logger_name="codex-mcp-wrapper")

    def approvals(self) -> ApprovalHandler:
        capabilities = self.ctx.client_capabilities
        if capabilities is None or capabilities.elicitation is None:
            return fixed(self.settings.approvals)

        async def ask(message: str) -> bool | None:
            answer = await self.ctx.elicit(message, ApprovalAnswer)
            if answer.action != "accept":
                return False
            return bool(getattr(answer, "data", None) and answer.data.approve)

        return asking(ask, "decline", self.settings.timeouts.approval)

    async def run(self, total: int, work: Callable[[], Awaitable[T]]) -> T:
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
