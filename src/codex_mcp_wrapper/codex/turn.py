"""One Codex turn on an app-server connection: ``turn/start``, then notifications until
``turn/completed``, under an idle and a wall-clock deadline; on a deadline the turn is
interrupted, and a worker that does not stop it is a stall. Codex retrying a model it cannot
reach ("Reconnecting...") is reported but is not progress: it does not hold off the idle deadline,
and retrying with no answer for ``Timeouts.model_unreachable`` fails the turn, naming the URL.

How a turn ends is told by the exceptions below; ``AppServerWorker.run`` turns each into a
``TaskOutcome`` value.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from codex_mcp_wrapper.codex.jsonrpc import (
    CLOSED,
    Inbox,
    JsonRpcConnection,
    Notification,
    RpcError,
    thread_of,
)
from codex_mcp_wrapper.codex.turn_errors import (
    retry_notice,
    retryable_error,
    sandbox_failure,
    unreachable_sentence,
)
from codex_mcp_wrapper.codex.worker_log import log_tail
from codex_mcp_wrapper.errors import ProtocolError, WorkerDied, WorkerStalled
from codex_mcp_wrapper.settings import Timeouts

EventCallback = Callable[[str, dict[str, Any]], None]
STEER_EVENT = "wrapper/steer"  # the transcript event of input added to a running turn
USAGE_KEYS = ("inputTokens", "outputTokens", "totalTokens", "cachedInputTokens")


class TurnFailed(Exception):
    """Codex ended the turn with status failed (model error, broken stream)."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class TurnTimedOut(Exception):
    """A deadline expired and the turn was interrupted."""


class BudgetExceeded(Exception):
    """The task passed its budget (``engine.spending``): its turn was interrupted, or the next
    one not started. ``usage`` is what the cut turn had used."""

    def __init__(self, message: str, usage: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.usage = dict(usage or {})


@runtime_checkable
class TraceCarrier(Protocol):
    """A sink carrying its attempt's trace (``codex.turn_spans.AttemptEvents``, when traced):
    its W3C trace context goes with each ``turn/start``, so Codex's own spans of the turn
    are in the attempt's trace."""

    def trace_context(self) -> dict[str, str]: ...


@dataclass
class TurnState:
    final_message: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    sandbox_error: str | None = None
    retrying: str | None = None  # Codex's last retry notice since the model last made progress
    retries: int = 0  # how many retry notices since then
    retry_since: float | None = None  # time.monotonic() of the first of them
    over_budget: str | None = None  # the task passed its token budget: why
    turn_id: str = ""  # Codex's id of the turn


@dataclass
class Turn:
    """A turn to run in ``thread_id`` on ``conn``; ``on_event`` sees each of its events."""

    conn: JsonRpcConnection
    label: str
    log_path: Path
    thread_id: str
    on_event: EventCallback
    recent: deque[str]
    timeouts: Timeouts
    inbox: Inbox  # this thread's notifications (the connection routes them by thread)
    on_retry: Callable[[str], None] | None = None  # a one-line note each time Codex retries
    model_url: str | None = None  # the provider's base URL, named when it cannot be reached
    turn_id: str = field(default="", init=False)  # known once Codex accepted the turn
    # Given the turn's tokens so far: None, or why the task is over its token budget.
    token_check: Callable[[int], str | None] | None = None
    ended: bool = field(default=False, init=False)  # its loop is over: nothing to steer
    trace: dict[str, str] | None = None  # the attempt's W3C trace context (TraceCarrier)

    async def run(
        self,
        prompt: str,
        output_schema: dict[str, Any] | None,
        idle_timeout: float,
        deadline: float,
        review: dict[str, Any] | None = None,
    ) -> TurnState:
        """Run the turn: ``prompt``, or Codex's review of ``review`` (a ``review/start``
        target; Codex writes the review prompt itself)."""
        params: dict[str, Any] = {"threadId": self.thread_id}
        if review is not None:
            method, params["target"] = "review/start", review
        else:
            method, params["input"] = "turn/start", [{"type": "text", "text": prompt}]
        if output_schema is not None and review is None:
            params["outputSchema"] = output_schema
        try:
            result = await self.conn.request(method, params, self.timeouts.request, self.trace)
        except RpcError as exc:
            error = {"code": exc.code, "data": exc.data, "message": str(exc)}
            if retryable_error(error):
                raise
            raise TurnFailed(f"Codex refused the prompt; {exc}", retryable=False) from exc
        turn_id = self.turn_id = str(result.get("turn", {}).get("id", ""))
        try:
            return await self._follow(turn_id, idle_timeout, deadline)
        finally:
            self.ended = True

    async def _follow(self, turn_id: str, idle_timeout: float, deadline: float) -> TurnState:
        """The turn's notifications until it ends (or a deadline or budget interrupts it)."""
        state = TurnState(turn_id=turn_id)
        last_event = time.monotonic()
        while True:
            wait, expiring = self._next_deadline(state, last_event, idle_timeout, deadline)
            try:
                if wait <= 0:
                    raise TimeoutError
                async with asyncio.timeout(wait):
                    message = await self.inbox.get()
            except TimeoutError:
                await self.interrupt(turn_id)
                raise self._expired(state, idle_timeout, expiring) from None
            if message is CLOSED:
                tail = log_tail(self.log_path)
                raise WorkerDied(
                    f"Codex worker {self.label} exited during the turn"
                    + (f" (log: {tail})" if tail else "")
                    + f"; see {self.log_path}."
                )
            assert isinstance(message, Notification)
            # Progress is this thread's own news: not a retry, and not a notification about no
            # thread (rate limits, warnings), which every thread of the process receives.
            own = thread_of(message) == self.thread_id
            if own and retry_notice(message.method, message.params) is None:
                last_event = time.monotonic()
            if self._handle(message, turn_id, state):
                return state
            if state.over_budget is not None:
                await self.interrupt(turn_id)
                raise BudgetExceeded(state.over_budget, state.usage)

    def _next_deadline(
        self, state: TurnState, last_event: float, idle_timeout: float, deadline: float
    ) -> tuple[float, str]:
        """How long to wait for the next notification, and which deadline that is: "idle",
        "wall", or "unreachable" (Codex retrying the model without an answer since
        ``state.retry_since``)."""
        now = time.monotonic()
        waits = [(idle_timeout - (now - last_event), "idle"), (deadline - now, "wall")]
        if state.retry_since is not None:
            left = state.retry_since + self.timeouts.model_unreachable - now
            waits.append((left, "unreachable"))
        return min(waits)

    def _expired(self, state: TurnState, idle_timeout: float, expiring: str) -> Exception:
        """What ends a turn whose deadline ``expiring`` passed (it has been interrupted)."""
        if expiring == "unreachable":
            sentence = unreachable_sentence(
                self.model_url,
                self.timeouts.model_unreachable,
                state.retries,
                state.retrying or "",
            )
            return TurnFailed(sentence, retryable=False)
        return TurnTimedOut(self._timeout_cause(state, idle_timeout, expiring == "idle"))

    def _timeout_cause(self, state: TurnState, idle_timeout: float, idle: bool) -> str:
        if idle and state.retrying is not None:
            return (
                f"Codex could not reach the model for {idle_timeout:g} s (idle_timeout_sec); it "
                f"retried {state.retries} time(s), last: {state.retrying}; the turn was "
                "interrupted."
            )
        if idle:
            return (
                f"no event from Codex for {idle_timeout:g} s (idle_timeout_sec); the turn was "
                f"interrupted. Last events: {', '.join(self.recent) or 'none'}."
            )
        if state.retrying is not None:
            return (
                "the task ran past its wall-clock limit (timeout_sec) while Codex could not "
                f"reach the model (last retry: {state.retrying}); the turn was interrupted."
            )
        return "the task ran past its wall-clock limit (timeout_sec); the turn was interrupted."

    def _handle(self, message: Notification, turn_id: str, state: TurnState) -> bool:
        """Record one notification; True when it ends the turn well."""
        method, p = message.method, message.params
        self.recent.append(method)
        if p.get("threadId") not in (None, self.thread_id):
            return False
        self.on_event(method, p)
        retry = retry_notice(method, p)
        if retry is not None:
            state.retrying, state.retries = retry, state.retries + 1
            if state.retry_since is None:
                state.retry_since = time.monotonic()
            if self.on_retry is not None:
                self.on_retry(f"Codex cannot reach the model and retries: {retry}")
            return False
        if thread_of(message) == self.thread_id:
            state.retrying, state.retries = None, 0  # the model made progress
            state.retry_since = None
        if method == "item/completed":
            item = p.get("item") or {}
            if item.get("type") == "agentMessage":
                state.final_message = str(item.get("text", ""))
            state.sandbox_error = state.sandbox_error or sandbox_failure(item)
        elif method == "thread/tokenUsage/updated":
            last = (p.get("tokenUsage") or {}).get("last") or {}
            for key in USAGE_KEYS:
                if key in last:
                    state.usage[key] = state.usage.get(key, 0) + int(last[key])
            if self.token_check is not None:
                state.over_budget = self.token_check(state.usage.get("totalTokens", 0))
        elif method == "turn/completed":
            turn = p.get("turn") or {}
            if turn.get("id") not in (None, turn_id):
                return False  # a late end of an earlier, interrupted turn
            status = turn.get("status")
            if status == "completed":
                return True
            error = turn.get("error") or {}
            reason = error.get("message") or f"the turn ended {status}"
            raise TurnFailed(f"Codex reported the turn {status}: {reason}", retryable_error(error))
        return False

    async def steer(self, text: str) -> str | None:
        """Add ``text`` to this turn while it runs (``turn/steer``): Codex hands it to the model
        with its next request of the turn. The turn's id; None when no turn is running (not
        yet accepted, or over). Recorded in the transcript as a ``wrapper/steer`` event."""
        if not self.turn_id or self.ended:
            return None
        params = {
            "threadId": self.thread_id,
            "expectedTurnId": self.turn_id,
            "input": [{"type": "text", "text": text}],
        }
        try:
            await self.conn.request("turn/steer", params, self.timeouts.request)
        except RpcError as exc:
            if exc.unsupported:
                raise ProtocolError(f"{exc}.") from exc
            return None  # the turn ended meanwhile
        self.on_event(
            STEER_EVENT, {"threadId": self.thread_id, "turnId": self.turn_id, "text": text}
        )
        return self.turn_id

    async def interrupt(self, turn_id: str) -> None:
        """Ask Codex to stop the turn and wait for it; a worker that does not stop is a stall."""
        grace = self.timeouts.interrupt_grace
        try:
            await self.conn.request(
                "turn/interrupt", {"threadId": self.thread_id, "turnId": turn_id}, grace
            )
            async with asyncio.timeout(grace):
                while True:
                    message = await self.inbox.get()
                    if message is CLOSED:
                        raise WorkerDied(f"worker {self.label} exited while interrupting")
                    assert isinstance(message, Notification)
                    if message.params.get("threadId") in (None, self.thread_id):
                        self.on_event(message.method, message.params)
                    if message.method == "turn/completed":
                        return
        except RpcError:
            return  # Codex refused: the turn is no longer running (it ended meanwhile)
        except (TimeoutError, ProtocolError) as exc:
            raise WorkerStalled(
                f"worker {self.label} did not stop the turn within {grace:g} s"
            ) from exc
