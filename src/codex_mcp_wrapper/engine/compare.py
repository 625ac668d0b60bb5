"""Comparing runs: what changed from a base run to another (``runs diff``, ``run --baseline``)
and how steady each task is over several runs of one mission (``run --repeat``,
``runs history``). Pure functions over ``RunSummary``s: no I/O.

A regression is a task that ended ok in the base run and not now, or a check that passed in
the base run and fails now; CI gates on it (exit 1)."""

from __future__ import annotations

import difflib
import statistics
from collections.abc import Sequence

from pydantic import BaseModel, Field

from codex_mcp_wrapper.engine.results import RunSummary, TaskResult


class CheckChange(BaseModel):
    name: str
    was_ok: bool | None  # None: the check is new
    ok: bool | None  # None: the check is gone
    observed: str = ""


class TaskChange(BaseModel):
    """One task from the base run to the other."""

    task_id: str
    base_status: str | None  # None: a task the base run did not have
    status: str | None  # None: a task this run does not have
    regressed: bool = False
    fixed: bool = False
    checks: list[CheckChange] = Field(default_factory=list)
    answer_diff: list[str] = Field(default_factory=list)  # unified diff lines, when it changed
    duration_delta_ms: int = 0
    tokens_delta: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.base_status != self.status or self.checks or self.answer_diff or self.regressed
        )


class RunComparison(BaseModel):
    base_run: str
    run: str
    mission_id: str
    tasks: list[TaskChange]

    @property
    def regressions(self) -> list[TaskChange]:
        return [t for t in self.tasks if t.regressed]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)


def _tokens(task: TaskResult | None) -> int:
    return sum(task.usage.values()) if task is not None else 0


def _checks(base: TaskResult | None, now: TaskResult | None) -> list[CheckChange]:
    before = {c.name: c for c in (base.checks if base else [])}
    after = {c.name: c for c in (now.checks if now else [])}
    changes = []
    for name in [*before, *(n for n in after if n not in before)]:
        was, new = before.get(name), after.get(name)
        if was is not None and new is not None and was.ok == new.ok:
            continue
        changes.append(
            CheckChange(
                name=name,
                was_ok=was.ok if was else None,
                ok=new.ok if new else None,
                observed=new.observed if new else "",
            )
        )
    return changes


def _answer_diff(base: TaskResult | None, now: TaskResult | None) -> list[str]:
    before = (base.final_message if base else None) or ""
    after = (now.final_message if now else None) or ""
    if before == after:
        return []
    return list(
        difflib.unified_diff(
            before.splitlines(), after.splitlines(), "base", "this run", lineterm="", n=1
        )
    )


def compare_task(task_id: str, base: TaskResult | None, now: TaskResult | None) -> TaskChange:
    checks = _checks(base, now)
    base_ok = base is not None and base.status == "ok"
    now_ok = now is not None and now.status == "ok"
    return TaskChange(
        task_id=task_id,
        base_status=base.status if base else None,
        status=now.status if now else None,
        regressed=(base_ok and now is not None and not now_ok)
        or any(c.was_ok and c.ok is False for c in checks),
        fixed=base is not None and not base_ok and now_ok,
        checks=checks,
        answer_diff=_answer_diff(base, now),
        duration_delta_ms=(now.duration_ms if now else 0) - (base.duration_ms if base else 0),
        tokens_delta=_tokens(now) - _tokens(base),
    )


def compare_runs(base: RunSummary, run: RunSummary) -> RunComparison:
    """Each task of either run, in the order of this run (then the base run's others)."""
    before = {t.task_id: t for t in base.tasks}
    after = {t.task_id: t for t in run.tasks}
    order = [*after, *(t for t in before if t not in after)]
    return RunComparison(
        base_run=base.run_id,
        run=run.run_id,
        mission_id=run.mission_id,
        tasks=[compare_task(t, before.get(t), after.get(t)) for t in order],
    )


class Spread(BaseModel):
    low: float
    median: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        if not values:
            return None
        return cls(low=min(values), median=statistics.median(values), high=max(values))


class Steadiness(BaseModel):
    """A task over several runs of its mission: how often it ended ok, how its time and
    tokens spread, and its status in each run (oldest first)."""

    task_id: str
    runs: int
    ok: int
    statuses: list[str]
    duration_ms: Spread | None = None
    tokens: Spread | None = None

    @property
    def pass_rate(self) -> float:
        return self.ok / self.runs if self.runs else 0.0

    @property
    def flaky(self) -> bool:
        return 0 < self.ok < self.runs


def steadiness(runs: Sequence[RunSummary], task_id: str | None = None) -> list[Steadiness]:
    """Per task (or the one ``task_id``), over ``runs`` given oldest first."""
    order: dict[str, None] = {}
    for summary in runs:
        order.update({t.task_id: None for t in summary.tasks})
    found = []
    for tid in order:
        if task_id is not None and tid != task_id:
            continue
        results = [r for summary in runs for r in summary.tasks if r.task_id == tid]
        found.append(
            Steadiness(
                task_id=tid,
                runs=len(results),
                ok=sum(1 for r in results if r.status == "ok"),
                statuses=[r.status for r in results],
                duration_ms=Spread.of([r.duration_ms for r in results]),
                tokens=Spread.of([_tokens(r) for r in results]),
            )
        )
    return found
