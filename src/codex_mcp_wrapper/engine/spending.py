"""What a task and a run may spend (a mission's ``budget``), decided by plain functions.

A worker asks ``over_tokens`` after each token-usage update of a turn and ``turn_refused``
before it starts a turn; the runner asks ``mission_spent`` before it starts a task. Each answer
is None (go on) or the one sentence the task's result carries. Tokens are Codex's
``totalTokens`` (input and output), summed over every model response of the task's turns and
attempts; turns are the turns a task started, follow-ups and retries included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

TOKENS_KEY = "totalTokens"


def tokens_of(usage: Mapping[str, int]) -> int:
    """The tokens a usage record counts against a budget."""
    return int(usage.get(TOKENS_KEY, 0))


def total_usage(usages: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Usage records added up, key by key (a run's usage from its tasks')."""
    total: dict[str, int] = {}
    for usage in usages:
        for key, value in usage.items():
            total[key] = total.get(key, 0) + int(value)
    return total


def over_tokens(budget: int | None, used: int) -> str | None:
    """The task's error when ``used`` tokens pass its token budget, else None."""
    if budget is None or used <= budget:
        return None
    return (
        f"the task passed its token budget (budget.tokens: {budget}) by {used - budget} "
        f"tokens ({used} used); its turn was interrupted."
    )


def turn_refused(budget: int | None, started: int, left: int) -> str | None:
    """The task's error when it has started its ``budget`` of turns and ``left`` prompts
    remain unanswered, else None."""
    if budget is None or started < budget:
        return None
    return (
        f"the task passed its turn budget (budget.turns: {budget}) by {left} turn(s): it "
        f"was stopped before turn {started + 1} with {left} prompt(s) unanswered."
    )


def mission_spent(budget: int | None, used: int) -> str | None:
    """Why a task does not start when the run's tasks have used ``used`` tokens of the
    mission's budget, else None."""
    if budget is None or used < budget:
        return None
    return (
        f"skipped because the mission's token budget (budget.tokens: {budget}) is spent: its "
        f"tasks used {used} tokens ({used - budget} over)."
    )
