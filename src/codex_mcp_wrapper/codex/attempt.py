"""How an attempt's turns and failures become its ``TaskOutcome``: a completed turn counted
(``count_turn``), and every failure that ends an attempt as a task status rather than an
exception (``TASK_FAILURES``, ``record_failure``): whether a retry may help, whether the
worker process is to be replaced."""

from __future__ import annotations

from collections.abc import Callable

from codex_mcp_wrapper.codex.jsonrpc import RpcError
from codex_mcp_wrapper.codex.turn import BudgetExceeded, TurnFailed, TurnState, TurnTimedOut
from codex_mcp_wrapper.codex.turn_errors import retryable_error
from codex_mcp_wrapper.engine.seams import TaskOutcome, TaskRequest
from codex_mcp_wrapper.engine.spending import over_tokens, tokens_of, turn_refused
from codex_mcp_wrapper.errors import WorkerError, WorkerStalled


class McpServersFailed(Exception):
    """A task's MCP server failed to start: the task cannot do what it is for."""


class SandboxUnavailable(Exception):
    """Sandboxed commands fail before they start (no user namespaces): not a model error."""


def count_turn(turn: TurnState, outcome: TaskOutcome) -> None:
    """A completed turn into the outcome: usage, final message, one more turn done; a turn
    whose sandbox could not start is a failure of the task (its commands did not run)."""
    for key, value in turn.usage.items():
        outcome.usage[key] = outcome.usage.get(key, 0) + value
    if turn.final_message is not None:
        outcome.final_message = turn.final_message
    if turn.sandbox_error:
        raise SandboxUnavailable(
            "Codex's sandbox cannot start on this machine, so its commands did not "
            f"run ({turn.sandbox_error}); enable unprivileged user namespaces, or use "
            "sandbox: danger-full-access in a disposable environment."
        )
    outcome.turns_done += 1
    outcome.turn_ids.append(turn.turn_id)


def start_turn(request: TaskRequest, outcome: TaskOutcome) -> None:
    """Count the turn about to start against the task's turn budget (``BudgetExceeded`` when
    the task has started all the turns it may)."""
    started = request.spent_turns + outcome.turns_started
    left = len(request.prompts) - outcome.turns_done
    refused = turn_refused(request.spec.budget_turns, started, left)
    if refused is not None:
        raise BudgetExceeded(refused)
    outcome.turns_started += 1


def token_guard(request: TaskRequest, outcome: TaskOutcome) -> Callable[[int], str | None] | None:
    """For the next turn: given its tokens so far, why the task is over its token budget (its
    earlier attempts and turns included), or None; no check without a token budget."""
    budget = request.spec.budget_tokens
    if budget is None:
        return None
    before = request.spent_tokens + tokens_of(outcome.usage)
    return lambda turn_tokens: over_tokens(budget, before + turn_tokens)


# What ends an attempt as a task status rather than an exception (cancellation excepted).
TASK_FAILURES = (
    BudgetExceeded,
    TurnFailed,
    TurnTimedOut,
    SandboxUnavailable,
    McpServersFailed,
    WorkerStalled,
    RpcError,
    WorkerError,
)


def record_failure(exc: Exception, outcome: TaskOutcome) -> None:
    """The outcome of an attempt that ``exc`` ended: its status, error, whether a retry may
    help and whether the worker process is to be replaced."""
    outcome.status, outcome.error = "failed", str(exc)
    if isinstance(exc, BudgetExceeded):  # not retried: another attempt would spend more
        for key, value in exc.usage.items():
            outcome.usage[key] = outcome.usage.get(key, 0) + value
    elif isinstance(exc, TurnFailed):
        outcome.retryable = exc.retryable
    elif isinstance(exc, TurnTimedOut):
        outcome.status = "timeout"
    elif isinstance(exc, WorkerStalled):
        outcome.status, outcome.worker_broken = "timeout", True
    elif isinstance(exc, RpcError):  # Codex answered, with an error: this task's, not the process's
        outcome.retryable = retryable_error({"code": exc.code, "message": str(exc)})
    elif isinstance(exc, WorkerError):
        outcome.retryable = outcome.worker_broken = True
