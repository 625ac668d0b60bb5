"""Comparing runs from the command line: ``runs diff BASE RUN``, ``runs history MISSION_ID``,
and ``run``'s ``--baseline`` (compare the run with an earlier one) and ``--repeat N`` (run it N
times and say how steady each task is). Plain text, no terminal library: a diff is read in CI
logs as often as on a terminal."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import click

from codex_mcp_wrapper.app import open_runs
from codex_mcp_wrapper.cli.formats import duration
from codex_mcp_wrapper.cli.options import run_async, settings_from
from codex_mcp_wrapper.cli.watching import progress_view, resume_args, watched
from codex_mcp_wrapper.engine.compare import RunComparison, Spread, Steadiness, steadiness
from codex_mcp_wrapper.engine.events import Event, RunStarted
from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.engine.results import RunSummary
from codex_mcp_wrapper.errors import EXIT_TASKS_FAILED, InputError, Interrupted
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.settings import Settings, wrapper_program

F = TypeVar("F", bound=Callable[..., Any])
MAX_REPEAT = 100


@dataclass(frozen=True)
class Comparing:
    """``run``'s comparison options."""

    baseline: str | None = None  # a run id, or "last-ok"
    repeat: int = 1
    concurrent: bool = False  # the repeats at once, on one fleet of --workers workers


def comparing_options(command: F) -> F:
    """``--baseline`` and ``--repeat``, given to the command as one ``comparing`` value."""

    @click.option(
        "--baseline",
        metavar="RUN_ID|last-ok",
        help="After the run, compare it with this run (last-ok: the newest run of the mission "
        "that ended ok) as `runs diff` does; exit 1 when a task regressed.",
    )
    @click.option(
        "--repeat",
        type=click.IntRange(1, MAX_REPEAT),
        default=1,
        show_default=True,
        help="Run the mission N times, one after the other, and report each task's pass rate "
        "and the spread of its time and tokens (how flaky it is).",
    )
    @click.option(
        "--concurrent-repeats",
        is_flag=True,
        help="With --repeat: start the N runs at once, sharing one fleet of --workers workers "
        "(each run takes as many as it has tasks, the others wait for room); one line per "
        "run as it ends instead of the live table.",
    )
    @functools.wraps(command)
    def wrapper(
        *args: Any, baseline: str | None, repeat: int, concurrent_repeats: bool, **kwargs: Any
    ) -> Any:
        if concurrent_repeats and repeat < 2:
            raise InputError("--concurrent-repeats goes with --repeat N (N of 2 or more).")
        comparing = Comparing(baseline, repeat, concurrent_repeats)
        return command(*args, comparing=comparing, **kwargs)

    return wrapper  # type: ignore[return-value]


def signed(value: float, unit: str = "") -> str:
    return f"{'+' if value >= 0 else '-'}{abs(value):g}{unit}"


def comparison_text(comparison: RunComparison) -> str:
    """A comparison as a person reads it: a verdict line, then each task that changed."""
    changed = [t for t in comparison.tasks if t.changed]
    regressed = len(comparison.regressions)
    fixed = sum(1 for t in comparison.tasks if t.fixed)
    lines = [
        f"run {comparison.run} against {comparison.base_run} (mission {comparison.mission_id}): "
        f"{regressed} regressed, {fixed} fixed, {len(comparison.tasks) - len(changed)} unchanged"
    ]
    for task in changed:
        verdict = " REGRESSED" if task.regressed else (" fixed" if task.fixed else "")
        lines.append(
            f"  {task.task_id}: {task.base_status or '-'} -> {task.status or '-'}{verdict}"
        )
        for check in task.checks:
            was = {True: "passed", False: "failed", None: "absent"}[check.was_ok]
            now = {True: "passed", False: "failed", None: "absent"}[check.ok]
            seen = f" (observed: {check.observed})" if check.ok is False else ""
            lines.append(f"    check {check.name}: {was} -> {now}{seen}")
        if task.answer_diff:
            lines.append("    answer:")
            lines += [f"      {line}" for line in task.answer_diff[2:]]
        lines.append(
            f"    time {signed(task.duration_delta_ms / 1000, 's')}, "
            f"tokens {signed(task.tokens_delta)}"
        )
    return "\n".join(lines)


def _spread(spread: Spread | None, ms: bool = False) -> str:
    if spread is None:
        return "-"
    show: Callable[[float], str] = duration if ms else (lambda v: f"{v:g}")
    return f"{show(spread.low)} / {show(spread.median)} / {show(spread.high)}"


def steadiness_text(title: str, tasks: list[Steadiness]) -> str:
    """Per task: pass rate, each run's status (oldest first), time and tokens spread."""
    lines = [title]
    width = max([len(t.task_id) for t in tasks] + [4])
    for task in tasks:
        marks = "".join("✓" if s == "ok" else "✗" for s in task.statuses)
        flaky = "  flaky" if task.flaky else ""
        lines.append(
            f"  {task.task_id.ljust(width)}  {task.pass_rate:>4.0%} ok  {marks}  "
            f"time {_spread(task.duration_ms, ms=True)}  tokens {_spread(task.tokens)}{flaky}"
        )
    return "\n".join(lines)


def steadiness_json(tasks: list[Steadiness]) -> list[dict[str, Any]]:
    return [
        {**t.model_dump(mode="json"), "pass_rate": t.pass_rate, "flaky": t.flaky} for t in tasks
    ]


def run_times(
    settings: Settings,
    mission: Mission,
    options: RunOptions,
    comparing: Comparing,
    shown: tuple[bool, bool],
) -> list[RunSummary]:
    """Run ``mission`` ``comparing.repeat`` times, one after the other, each watched on the
    terminal, or all at once (``comparing.concurrent``); ``shown`` is (quiet, as_json). Their
    summaries, in the order they started."""
    quiet, as_json = shown
    times = comparing.repeat
    if comparing.concurrent:
        if settings.temporal is not None:
            raise InputError(
                "--concurrent-repeats shares this machine's workers; not with --temporal."
            )
        return _at_once_watched(settings, mission, options, times)
    summaries = []
    for number in range(times):
        if times > 1:
            click.echo(f"== run {number + 1} of {times}", err=True)
        view = progress_view(settings, answers=not quiet)
        work = open_runs(settings).run(mission, replace(options, observers=[view]))
        summaries.append(watched(view, work, as_json, resume_args(settings)))
    return summaries


def _at_once_watched(
    settings: Settings, mission: Mission, options: RunOptions, times: int
) -> list[RunSummary]:
    """``_at_once``; interrupted (Ctrl-C, SIGTERM), it names the runs ``resume`` finishes."""
    started: list[str] = []

    def note(event: Event) -> None:
        if isinstance(event, RunStarted):
            started.append(event.run_id)

    try:
        return run_async(_at_once(settings, mission, replace(options, observers=[note]), times))
    except Interrupted:
        if not started:
            raise
        raise Interrupted(
            f"interrupted; the tasks that finished are kept, and `{wrapper_program()} resume "
            f"RUN_ID` runs the others of each run ({', '.join(started)})."
        ) from None


async def _at_once(
    settings: Settings, mission: Mission, options: RunOptions, times: int
) -> list[RunSummary]:
    """The ``times`` runs of ``mission`` started together on one ``Runs``: one fleet, whose
    process budget (``--workers``) decides how many tasks of them run at once."""
    async with open_runs(settings) as runs:

        async def one(number: int) -> RunSummary:
            summary = await runs.run(mission, options)
            ok = sum(1 for t in summary.tasks if t.status == "ok")
            click.echo(
                f"== run {number} of {times}: {summary.run_id} {summary.status} "
                f"({ok} of {len(summary.tasks)} tasks ok)",
                err=True,
            )
            return summary

        async with asyncio.TaskGroup() as group:
            started = [group.create_task(one(n)) for n in range(1, times + 1)]
    return [task.result() for task in started]


def after_run(
    settings: Settings, summaries: list[RunSummary], comparing: Comparing, as_json: bool
) -> int:
    """What ``run`` prints after its runs (the summary JSON, the steadiness of repeats, the
    comparison with the baseline) and its exit code."""
    last = summaries[-1]
    code = max(s.exit_code for s in summaries)
    if len(summaries) > 1:
        tasks = steadiness(summaries)
        text = steadiness_text(f"{len(summaries)} runs of mission {last.mission_id}:", tasks)
        click.echo(text, err=True)
        if as_json:
            each = [s.model_dump(mode="json") for s in summaries]
            click.echo(json.dumps({"runs": each, "tasks": steadiness_json(tasks)}, indent=2))
    elif as_json:
        click.echo(last.model_dump_json(indent=2))
    if comparing.baseline is not None:
        runs = open_runs(settings)
        base = comparing.baseline
        if base == "last-ok":
            base = runs.last_ok(last.mission_id, before=last.run_id)
        comparison = runs.compare(base, last.run_id)
        click.echo(comparison_text(comparison), err=True)
        if comparison.regressed:
            code = max(code, EXIT_TASKS_FAILED)
    return code


@click.command("diff")
@click.argument("base_run")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison JSON.")
@click.pass_context
def runs_diff(ctx: click.Context, base_run: str, run_id: str, as_json: bool) -> None:
    """Compare RUN_ID with BASE_RUN task by task: status changes (ok -> failed is a
    regression), checks that changed, the answer's changes, time and tokens. Exit 1 when a
    task regressed, so CI can gate on it."""
    comparison = open_runs(settings_from(ctx)).compare(base_run, run_id)
    if as_json:
        data = comparison.model_dump(mode="json")
        click.echo(json.dumps({**data, "regressed": comparison.regressed}, indent=2))
    else:
        click.echo(comparison_text(comparison))
    sys.exit(EXIT_TASKS_FAILED if comparison.regressed else 0)


@click.command("history")
@click.argument("mission_id")
@click.argument("task_id", required=False)
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def runs_history(
    ctx: click.Context, mission_id: str, task_id: str | None, limit: int, as_json: bool
) -> None:
    """The last finished runs of MISSION_ID (or of one TASK_ID of it): per task its pass
    rate, its status in each run (oldest first) and the spread of its time and tokens."""
    summaries = open_runs(settings_from(ctx)).history(mission_id, limit)
    tasks = steadiness(summaries, task_id)
    if not tasks:
        what = f"task '{task_id}' of mission" if task_id else "mission"
        raise InputError(f"no finished run of {what} '{mission_id}'; see `runs list`.")
    if as_json:
        click.echo(
            json.dumps(
                {"runs": [s.run_id for s in summaries], "tasks": steadiness_json(tasks)}, indent=2
            )
        )
        return
    click.echo(steadiness_text(f"the last {len(summaries)} runs of mission {mission_id}:", tasks))
