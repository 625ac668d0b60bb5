"""Approvals on 2026-07-28 connections, where a server may not ask the client anything during a
call: the input-required round trip (SEP-2322).

A ``codex`` call runs its session in the background with an approval handler that *parks*
each request. When one is parked, the call answers ``InputRequiredResult`` (an elicitation
form, and a ``requestState`` naming the parked request); the client retries the call with its
answer in ``inputResponses``, which releases the parked request, and the retry waits again for
the end of the session or the next approval. An answer that never comes is declined when the
approval deadline passes (``Timeouts.approval``), so the session never waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.types import ElicitRequest, ElicitRequestFormParams, InputRequiredResult

from codex_mcp_wrapper.engine.approval_policies import asking
from codex_mcp_wrapper.engine.seams import ApprovalHandler, ApprovalRequest
from codex_mcp_wrapper.errors import InputError

APPROVAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approve": {"type": "boolean", "title": "Allow Codex to do this?", "default": True}
    },
}


@dataclass
class _Question:
    token: str
    message: str
    answer: asyncio.Future[bool | None]


@dataclass
class Session:
    """A background session whose approvals wait for the client's next retry."""

    key: str
    run_id: str = ""
    asked: asyncio.Queue[_Question] = field(default_factory=asyncio.Queue)
    open: dict[str, _Question] = field(default_factory=dict)


class Parking:
    """The sessions of this server waiting on the input-required round trip."""

    def __init__(self, approval_timeout: float) -> None:
        self.approval_timeout = approval_timeout
        self.sessions: dict[str, Session] = {}

    def begin(self) -> tuple[Session, ApprovalHandler]:
        """A new session and the approval handler its run must use."""
        session = Session(secrets.token_hex(8))
        self.sessions[session.key] = session

        async def park(request: ApprovalRequest, message: str) -> bool | None:
            question = _Question(
                secrets.token_hex(8), message, asyncio.get_running_loop().create_future()
            )
            session.open[question.token] = question
            session.asked.put_nowait(question)
            try:
                return await question.answer
            finally:
                session.open.pop(question.token, None)

        return session, asking(park, "decline", self.approval_timeout)

    def resume(self, state: str, responses: dict[str, Any] | None) -> Session:
        """The session a retry continues, with the client's answer delivered."""
        try:
            data = json.loads(state)
            session = self.sessions[data["session"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                "this call's requestState names no session waiting for an answer here (the "
                "server restarted, or the answer came too late); call the tool again."
            ) from exc
        question = session.open.get(str(data.get("question")))
        answer = (responses or {}).get("approval")
        if question is not None and not question.answer.done():
            question.answer.set_result(_approved(answer))
        return session

    def question(self, session: Session) -> tuple[str, ElicitRequest] | None:
        """The session's oldest unanswered question, as an elicitation keyed by its token
        (the tasks extension puts it in ``inputRequests``)."""
        for token, asked in session.open.items():
            if not asked.answer.done():
                return token, _elicitation(asked.message)
        return None

    def answer(self, session: Session, responses: dict[str, Any]) -> None:
        """Deliver answers keyed by question token (``tasks/update``'s ``inputResponses``)."""
        for token, response in responses.items():
            asked = session.open.get(token)
            if asked is not None and not asked.answer.done():
                asked.answer.set_result(_approved(response))

    @staticmethod
    async def _open_question(session: Session) -> _Question:
        """The next queued question still waiting for an answer (one whose deadline passed
        was declined already: it is not asked again)."""
        while True:
            asked = await session.asked.get()
            if not asked.answer.done() and asked.token in session.open:
                return asked

    def end(self, session: Session) -> None:
        self.sessions.pop(session.key, None)

    async def next_step(
        self, session: Session, finished: Callable[[], Awaitable[Any]]
    ) -> Any | InputRequiredResult:
        """Wait for the session's end (``finished()``'s value) or its next approval (an
        ``InputRequiredResult`` asking it)."""
        ending = asyncio.ensure_future(finished())
        question = asyncio.ensure_future(self._open_question(session))
        try:
            done, _ = await asyncio.wait({ending, question}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (ending, question):
                if not waiter.done():
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter
        if question in done and ending not in done:
            asked = question.result()
            return InputRequiredResult(
                input_requests={"approval": _elicitation(asked.message)},
                request_state=json.dumps({"session": session.key, "question": asked.token}),
            )
        if question in done:  # both at once: the question is moot, the session ended
            session.asked.put_nowait(question.result())
        self.sessions.pop(session.key, None)
        return ending.result()


def _elicitation(message: str) -> ElicitRequest:
    return ElicitRequest(
        params=ElicitRequestFormParams(message=message, requested_schema=APPROVAL_SCHEMA)
    )


def _approved(answer: Any) -> bool | None:
    """A standard ElicitResult (model or dict): accepted with ``approve`` not false."""
    if answer is None:
        return None
    if hasattr(answer, "model_dump"):
        answer = answer.model_dump(by_alias=True)
    if not isinstance(answer, dict):
        return None
    content = answer.get("content") or {}
    return answer.get("action") == "accept" and content.get("approve", True) is not False
