"""Steering a task that runs on a Temporal host: through the shared store, since an activity
cannot receive a Temporal signal.

The submitter watching the run (``TemporalBackend.steer``, reached by ``runs steer``,
``codex-steer`` and the UI through the run's control endpoint) leaves the steer in the task's
mailbox (``SharedStore.post_steer``: ``runs/<run>/steer/<task>/<key>.json``, 0600) and waits,
at most ``ANSWER_WITHIN`` seconds, for the answer. The host running the task's attempt looks
into that mailbox every ``LOOK_EVERY`` seconds while the attempt runs (``mailbox``), steers
its executor's turn of the task (Codex ``turn/steer``, as a local run does) and answers
``{"turn_id": ID}`` (``null`` when the task runs no turn there) or ``{"error": SENTENCE}``.
The text is the run's data: it is in no log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from codex_mcp_wrapper.errors import NotSteerable, WrapperError
from codex_mcp_wrapper.temporal.shared import SharedStore

log = logging.getLogger("codex_mcp_wrapper.temporal")

# A host looks for steers of a running attempt this often: a steer waits at most this long to
# be taken (one directory look per attempt each time, cheap when there is no mailbox).
LOOK_EVERY = 0.25
# The submitter waits this long for the host's answer (Codex answers turn/steer in
# milliseconds); well within the control endpoint's own bound (Timeouts.control).
ANSWER_WITHIN = 15.0
ANSWER_LOOK_EVERY = 0.1  # the submitter looks for the answer file this often

# The text -> the id of the turn it was added to, None when the task runs no turn.
SteerTurn = Callable[[str], Awaitable[str | None]]


def _unreachable(run_id: str, task_id: str, exc: OSError) -> NotSteerable:
    return NotSteerable(
        f"the steer of task '{task_id}' of run {run_id} cannot go through the shared store "
        f"({exc.strerror or exc}); nothing was added to its turn."
    )


async def _answered(store: SharedStore, run_id: str, task_id: str, key: str) -> dict[str, Any]:
    """The host's answer to the steer ``key``, once it is there (unbounded: the caller bounds
    it). A file another machine writes: no event to wait on, so it is looked for."""
    while True:
        answer = store.take_answer(run_id, task_id, key)
        if answer is not None:
            return answer
        await asyncio.sleep(ANSWER_LOOK_EVERY)


async def steer_through_store(
    store: SharedStore,
    run_id: str,
    task_id: str,
    text: str,
    within: float = ANSWER_WITHIN,
) -> str | None:
    """Leave a steer for the host running ``task_id`` and wait for its answer: the turn's id,
    or None when the task runs no turn there. ``NotSteerable`` when the host refused, or did
    not answer within ``within`` seconds (the steer is withdrawn)."""
    try:
        key = store.post_steer(run_id, task_id, text)
    except OSError as exc:
        raise _unreachable(run_id, task_id, exc) from exc
    try:
        async with asyncio.timeout(within):
            answer = await _answered(store, run_id, task_id, key)
    except TimeoutError:
        raise NotSteerable(
            f"no host answered the steer of task '{task_id}' of run {run_id} within "
            f"{within:g} s (no host has started its attempt yet, or it was ending); nothing was "
            "added to its turn."
        ) from None
    except OSError as exc:
        raise _unreachable(run_id, task_id, exc) from exc
    finally:
        with contextlib.suppress(OSError):  # the run's steer folder goes when it ends
            store.withdraw_steer(run_id, task_id, key)
    if answer.get("error"):
        raise NotSteerable(str(answer["error"]))
    turn_id = answer.get("turn_id")
    return str(turn_id) if turn_id else None


async def _answer(store: SharedStore, run_id: str, task_id: str, steer: SteerTurn) -> None:
    """Take the task's steers and answer each."""
    for key, text in store.take_steers(run_id, task_id):
        answer: dict[str, Any] = {"turn_id": None}  # unless steered: cancelled, the turn over
        try:
            turn_id = await steer(text)
            answer = {"turn_id": turn_id}
            log.info("steered task %s of run %s (turn %s)", task_id, run_id, turn_id)
        except WrapperError as exc:
            answer = {"error": str(exc)}
        finally:
            store.answer_steer(run_id, task_id, key, answer)


async def _watch(store: SharedStore, run_id: str, task_id: str, steer: SteerTurn) -> None:
    while True:
        try:
            await _answer(store, run_id, task_id, steer)
        except OSError as exc:  # the shared store hiccuped: the steer waits for the next look
            log.warning("task %s of run %s: cannot read its steers: %s", task_id, run_id, exc)
        await asyncio.sleep(LOOK_EVERY)  # files another machine writes: no event to wait on


@contextlib.asynccontextmanager
async def mailbox(
    store: SharedStore, run_id: str, task_id: str, steer: SteerTurn
) -> AsyncIterator[None]:
    """Answer the steers of ``task_id`` with ``steer`` while the block runs (an attempt of the
    task on this host); steers left when it ends are answered: no turn runs."""
    watcher = asyncio.create_task(_watch(store, run_id, task_id, steer))
    try:
        yield
    finally:
        watcher.cancel()
        await asyncio.wait({watcher})
        with contextlib.suppress(OSError):
            for key, _ in store.take_steers(run_id, task_id):
                store.answer_steer(run_id, task_id, key, {"turn_id": None})
        if not watcher.cancelled():
            watcher.result()  # a bug in the watcher: raised, not swallowed
