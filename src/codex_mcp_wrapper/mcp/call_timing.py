"""``CallTiming``: server middleware timing each ``tools/call`` by tool, for metrics
(``serve --metrics-port``). It measures and passes the call on; it changes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

CallRecord = Callable[[str, float, bool], None]  # tool, seconds, ok


class CallTiming:
    """Calls ``record(tool, seconds, ok)`` once each ``tools/call`` is answered; ``ok`` is
    False for an error result (``isError``) or a call that raised."""

    def __init__(self, record: CallRecord) -> None:
        self.record = record

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        params = ctx.params
        if ctx.method != "tools/call" or not isinstance(params, dict):
            return await call_next(ctx)
        tool = str(params.get("name"))
        started = time.monotonic()
        ok = False
        try:
            result = await call_next(ctx)
            ok = not _is_error(result)
            return result
        finally:
            self.record(tool, time.monotonic() - started, ok)


def _is_error(result: Any) -> bool:
    if isinstance(result, dict):
        return bool(result.get("isError"))
    return bool(getattr(result, "is_error", False))
