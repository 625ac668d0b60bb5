"""``MissionRunner``: schedules a mission's tasks by dependency onto a ``TaskExecutor``.

It owns the per-task policy (wall-clock budget across attempts, retries, follow-ups in the same
thread, skipping dependents of failed tasks) and publishes events; it does no I/O of its own.
A task's failure is a ``TaskResult`` value, never an exception escaping the task group.
It reads time only through its ``Clock``, so it runs unchanged inside a Temporal workflow
(``temporal/workflow.py``), where the clock is the workflow's deterministic one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from codex_mcp_wrapper.engine.cancels import CANCELLED_ON_REQUEST, TaskCancels
from codex_mcp_wrapper.engine.events import (
    CodexEvent,
    Event,
    TaskFinished,
    TaskUpdate,
    ThreadProgress,
)
from codex_mcp_wrapper.engine.results import CUT_SHORT_BY_CRASH, TaskResult, TaskState
from codex_mcp_wrapper.engine.seams import (
    ForkSource,
    PlannedTask,
    TaskExecutor,
    TaskOutcome,
    TaskRequest,
)
from codex_mcp_wrapper.engine.spending import mission_spent, tokens_of
from codex_mcp_wrapper.settings import Timeouts

# Seconds between attempts (Timeouts.retry_backoff): a model error or a lost worker often
# clears in a moment; the backoff never runs past the task's own wall-clock budget.
RETRY_BACKOFF = Timeouts.retry_backoff
Publish = Callable[[Event], None]


class Admission(Protocol):
    """Who lets a task start: a place for it now (``enter`` waits for one and is True), or
    False to hold it back for a later runner (a Temporal workflow about to continue as a new
    run); ``leave`` gives the place back when the task ends."""

    async def enter(self) -> bool: ...

    def leave(self) -> None: ...


@dataclass(frozen=True)
class Clock:
    """Where the runner reads time: wall-clock seconds (for results) and a monotonic clock
    (for budgets)."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic


@dataclass
class _Sink:
    run_id: str
    publish: Publish
    clock: Clock
    attempt: dict[str, int] = field(default_factory=dict)
    running_since: dict[str, float] = field(default_factory=dict)
    threads: dict[str, ThreadProgress] = field(default_factory=dict)  # each task's latest

    def codex_event(self, task_id: str, method: str, params: dict[str, Any]) -> None:
        self.publish(CodexEvent(self.run_id, task_id, method, params))

    def task_state(self, task_id: str, state: TaskState, worker: str | None, message: str) -> None:
        if state == "running":
            self.running_since.setdefault(task_id, self.clock.wall())
        self.publish(
            TaskUpdate(self.run_id, task_id, state, worker, self.attempt.get(task_id, 0), message)
        )

    def thread_progress(self, task_id: str, thread_id: str, worker: str, turns_done: int) -> None:
        event = ThreadProgress(self.run_id, task_id, thread_id, worker, turns_done)
        self.threads[task_id] = event
        self.publish(event)


@dataclass
class _Progress:
    """What a task's attempts have done so far (with an earlier run's, on resume): its thread
    and worker, its turns, what it spent."""

    thread_id: str | None
    worker: str | None
    turns_done: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    turns_started: int = 0  # in this run, against the task's turn budget
    turn_ids: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, task: PlannedTask, fork: ForkSource | None) -> _Progress:
        prev = task.previous
        done = (
            cls(prev.thread_id, prev.worker, prev.turns_done, dict(prev.usage), 0, prev.turn_ids)
            if prev is not None
            else cls(task.thread_id, task.thread_worker)
        )
        if done.thread_id is None and fork is not None:  # the copy is made where the thread is
            done.worker = fork.worker
        done.turn_ids = list(done.turn_ids)
        return done

    def add(self, outcome: TaskOutcome) -> None:
        for key, value in outcome.usage.items():
            self.usage[key] = self.usage.get(key, 0) + value
        self.turns_started += outcome.turns_started
        self.turn_ids += outcome.turn_ids
        self.thread_id = outcome.thread_id or self.thread_id
        self.worker = outcome.worker or self.worker
        self.turns_done = max(self.turns_done, outcome.turns_done)


class MissionRunner:
    def __init__(
        self,
        run_id: str,
        tasks: list[PlannedTask],
        executor: TaskExecutor,
        publish: Publish,
        retry_backoff: Sequence[float] = RETRY_BACKOFF,
        clock: Clock | None = None,
        token_budget: int | None = None,
        cancels: TaskCancels | None = None,
        admission: Admission | None = None,
        finished: Sequence[TaskResult] = (),
    ) -> None:
        """``token_budget`` is the mission's: once the run's tasks have used it, no task
        starts (``engine.spending.mission_spent``). ``cancels`` is where a running task can
        be cancelled alone (``engine.cancels``). ``finished`` are results an earlier runner
        of this run recorded (they count for dependencies, forks and the budget, and are not
        published again); tasks ``admission`` holds back end up in ``held``."""
        self.run_id = run_id
        self.token_budget = token_budget
        self.retry_backoff = tuple(retry_backoff) or (0.0,)
        self.tasks = tasks
        self.executor = executor
        self.publish = publish
        self.clock = clock or Clock()
        self.admission = admission
        self.results: dict[str, TaskResult] = {r.task_id: r for r in finished}
        self._spent = sum(tokens_of(r.usage) for r in finished)  # the run's tokens so far
        self.held: set[str] = set()  # not started: for a later runner
        self._done: dict[str, asyncio.Event] = {t.task_id: asyncio.Event() for t in tasks}
        for result in finished:
            self._done.setdefault(result.task_id, asyncio.Event()).set()
        self._sink = _Sink(run_id, publish, self.clock)
        self.cancels = cancels or TaskCancels()
        self.cancels.attached = True

    async def schedule(self) -> list[TaskResult]:
        """Run every task (but those held back: ``held``), in the order given; on
        cancellation, unfinished tasks, held ones too, are recorded ``cancelled``."""
        try:
            async with asyncio.TaskGroup() as group:
                for task in self.tasks:
                    group.create_task(self._run_task(task), name=f"task-{task.task_id}")
        except BaseException:
            self.held.clear()
            raise
        finally:
            for task in self.tasks:
                if task.task_id not in self.results and task.task_id not in self.held:
                    self._finish(
                        TaskResult(
                            task_id=task.task_id,
                            index=task.index,
                            status="cancelled",
                            error="the run was cancelled before this task finished.",
                        )
                    )
        return [self.results[t.task_id] for t in self.tasks if t.task_id not in self.held]

    def _hold(self, task: PlannedTask) -> None:
        self.held.add(task.task_id)
        self._done[task.task_id].set()  # its dependents are held too

    def _finish(self, result: TaskResult) -> None:
        self.results[result.task_id] = result
        self._spent += tokens_of(result.usage)
        self.publish(TaskFinished(self.run_id, result))
        self._done[result.task_id].set()

    async def _run_task(self, task: PlannedTask) -> None:
        if task.previous is not None and task.previous.status == "ok":
            self._finish(task.previous)
            return
        for dep in task.depends_on:
            await self._done[dep].wait()
        if self.held.intersection(task.depends_on):
            self._hold(task)
            return
        reason = self._skip_reason(task)
        fork = None if reason is not None else self._fork_of(task)
        if reason is not None or isinstance(fork, str):
            self._finish(
                TaskResult(
                    task_id=task.task_id,
                    index=task.index,
                    status="skipped" if reason is not None else "failed",
                    error=reason or str(fork),
                )
            )
            return
        if self.admission is not None and not await self.admission.enter():
            self._hold(task)
            return
        try:
            assert not isinstance(fork, str)
            await self._admitted(task, fork)
        finally:
            if self.admission is not None:
                self.admission.leave()

    async def _admitted(self, task: PlannedTask, fork: ForkSource | None) -> None:
        self.publish(TaskUpdate(self.run_id, task.task_id, "queued"))
        started = self.clock.wall()
        try:
            with self.cancels.running(task.task_id):
                result = await self._attempts(task, started, fork)
        except asyncio.CancelledError:
            # The thread it ran in is kept, so a resume continues it where it stopped.
            progress = self._sink.threads.get(task.task_id)
            prev = task.previous
            thread_id, worker, turns_done = (
                (progress.thread_id, progress.worker, progress.turns_done)
                if progress is not None
                else (prev.thread_id, prev.worker, prev.turns_done)
                if prev is not None
                else (None, None, 0)
            )
            self._finish(
                TaskResult(
                    task_id=task.task_id,
                    index=task.index,
                    status="cancelled",
                    thread_id=thread_id,
                    worker=worker,
                    turns_done=turns_done,
                    started_at=started,
                    finished_at=(ended := self.clock.wall()),
                    duration_ms=int((ended - started) * 1000),
                    error=CANCELLED_ON_REQUEST
                    if task.task_id in self.cancels.requested
                    else "the run was cancelled while this task was running.",
                )
            )
            raise
        self._finish(result)

    def _skip_reason(self, task: PlannedTask) -> str | None:
        """Why ``task`` must not start now that its dependencies are done, or None."""
        failed = [d for d in task.depends_on if self.results[d].status != "ok"]
        if failed:
            return f"skipped because {', '.join(failed)} did not finish ok."
        return mission_spent(self.token_budget, self._spent)

    def _fork_of(self, task: PlannedTask) -> ForkSource | str | None:
        """The thread ``task`` copies: the one given (codex-fork), or its ``fork_from`` task's
        (through its ``fork_turn``-th turn); a sentence when it cannot be copied."""
        if task.fork is not None or task.fork_from is None:
            return task.fork
        parent = self.results[task.fork_from]
        if not parent.thread_id:
            return f"task '{task.fork_from}' has no Codex thread to fork."
        turn_id = None
        if task.fork_turn is not None:
            if task.fork_turn > len(parent.turn_ids):
                return (
                    f"fork_turn is {task.fork_turn}, but task '{task.fork_from}' completed "
                    f"{len(parent.turn_ids)} turn(s)."
                )
            turn_id = parent.turn_ids[task.fork_turn - 1]
        return ForkSource(parent.thread_id, parent.worker, turn_id)

    async def _attempts(
        self, task: PlannedTask, started: float, fork: ForkSource | None = None
    ) -> TaskResult:
        deadline = self.clock.monotonic() + task.timeout_sec
        prev = task.previous
        done = _Progress.of(task, fork)
        outcome = TaskOutcome(status="failed", error="no attempt was made.")
        attempts = 0  # attempts that ran
        for attempt in range(1, task.retries + 2):
            left = deadline - self.clock.monotonic()
            if left <= 0:
                outcome = TaskOutcome(
                    status="timeout",
                    error=f"the task used its {task.timeout_sec:g} s (timeout_sec) "
                    f"before attempt {attempt}; last error: {outcome.error}",
                    thread_id=done.thread_id,
                    worker=done.worker,
                )
                break
            self._sink.attempt[task.task_id] = attempts = attempt
            request = TaskRequest(
                run_id=self.run_id,
                task_id=task.task_id,
                index=task.index,
                attempt=attempt,
                prompts=task.prompts,
                timeout_sec=left,
                thread_id=done.thread_id,
                thread_worker=done.worker,
                turns_done=done.turns_done,
                spec=task.spec,
                after_crash=attempt == 1 and prev is not None and prev.error == CUT_SHORT_BY_CRASH,
                spent_tokens=tokens_of(done.usage),
                spent_turns=done.turns_started,
                fork=fork if done.thread_id is None else None,
            )
            outcome = await self.executor.execute(request, self._sink)
            done.add(outcome)
            if outcome.status != "failed" or not outcome.retryable or attempt > task.retries:
                break
            self.publish(
                TaskUpdate(
                    self.run_id,
                    task.task_id,
                    "retrying",
                    outcome.worker,
                    attempt,
                    outcome.error or "",
                )
            )
            backoff = self.retry_backoff[min(attempt - 1, len(self.retry_backoff) - 1)]
            await asyncio.sleep(min(backoff, max(0.0, deadline - self.clock.monotonic())))
        finished = self.clock.wall()
        started = self._sink.running_since.get(task.task_id, started)  # not the queueing
        return TaskResult(
            task_id=task.task_id,
            index=task.index,
            status=outcome.status,
            worker=outcome.worker,
            attempts=attempts,
            thread_id=done.thread_id,
            final_message=outcome.final_message,
            started_at=started,
            finished_at=finished,
            duration_ms=int((finished - started) * 1000),
            usage=done.usage,
            artifacts=outcome.artifacts,
            checks=outcome.checks,
            tool_calls=outcome.tool_calls,
            commands=outcome.commands,
            review=outcome.review,
            diff=outcome.diff,
            error=outcome.error,
            log_path=outcome.log_path,
            turns_done=done.turns_done,
            turn_ids=done.turn_ids,
        )
