"""The runner's and the pool's rules, fast: the real MissionRunner, LocalExecutor and WorkerPool
over fake workers (tests/fakes.py), so no Codex binary and no process; milliseconds a test."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from codex_mcp_wrapper.codex.pool import Waiter, WorkerPool, assign
from codex_mcp_wrapper.engine.planning import plan_tasks
from codex_mcp_wrapper.engine.results import TaskResult
from codex_mcp_wrapper.engine.seams import PlannedTask
from codex_mcp_wrapper.errors import WorkerStartError
from codex_mcp_wrapper.missions.loading import parse_mission
from tests.fakes import (
    WAIT,
    Act,
    FakeFleet,
    blocks,
    dies,
    failed,
    queue,
    run,
    started,
    timed_out,
    uses_budget,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_codex_left_behind() -> None:
    """Overrides the suite's check (tests/conftest.py): nothing here starts Codex, and while
    another test run is on the machine that check waits up to 10 s a test on (or blames these
    tests for) that run's Codex processes."""


Kept = dict[str, TaskResult] | None


def plan(root: Path, tasks: list[Any], previous: Kept = None, **defaults: Any) -> list[PlannedTask]:
    """The mission's tasks planned as a run would (``defaults`` are the mission's defaults)."""
    data = {"mission_id": "fast", "workspace_root": str(root), "defaults": defaults}
    mission = parse_mission({**data, "tasks": tasks}, variables={})
    return plan_tasks(mission, workspace_root=root, run_dir=root / "run", previous=previous)


def statuses(results: dict[str, TaskResult]) -> dict[str, str]:
    return {task_id: result.status for task_id, result in results.items()}


def task(task_id: str, *depends_on: str, **settings: Any) -> dict[str, Any]:
    return {"id": task_id, "prompt": "p", "depends_on": list(depends_on), **settings}


# --- the runner: dependencies, retries, budget, cancellation, resume --------------------------


async def test_a_task_starts_only_after_its_dependency_finished_ok(tmp_path: Path) -> None:
    gate = asyncio.Event()
    fleet = FakeFleet({"a": [blocks(gate)]})
    async with started(plan(tmp_path, [task("a"), task("b", "a")]), fleet, ["w1", "w2"]) as live:
        await fleet.wait_until(lambda: "a" in fleet.running.values())
        assert fleet.calls_of("b") == []  # a worker is idle, yet b waits for a
        assert live.log.states("b") == []
        gate.set()
        async with asyncio.timeout(WAIT):
            results = await live.task
    assert [c.task_id for c in fleet.calls] == ["a", "b"]
    assert [r.status for r in results] == ["ok", "ok"]
    assert live.log.states("b")[:1] == ["queued"]


async def test_dependents_of_a_failed_task_are_skipped_with_the_reason(tmp_path: Path) -> None:
    fleet = FakeFleet({"a": [failed(retryable=False)]})
    tasks = [task("a"), task("b", "a"), task("c", "b"), task("d")]
    results, log = await run(plan(tmp_path, tasks), fleet)
    assert statuses(results) == dict(a="failed", b="skipped", c="skipped", d="ok")
    assert results["b"].error == "skipped because a did not finish ok."
    assert results["c"].error == "skipped because b did not finish ok."
    assert sorted(c.task_id for c in fleet.calls) == ["a", "d"]
    assert log.states("b") == []  # never queued: it was decided without a worker


async def test_a_retryable_failure_is_retried_up_to_retries_and_no_more(tmp_path: Path) -> None:
    fleet = FakeFleet({"a": [failed(retryable=True)] * 5})
    results, log = await run(plan(tmp_path, [task("a")], retries=2), fleet)
    assert [c.attempt for c in fleet.calls_of("a")] == [1, 2, 3]
    a = results["a"]
    assert (a.status, a.attempts, a.error) == ("failed", 3, "scripted retryable failure")
    assert log.count("retrying") == 2
    assert results["a"].usage == {"output_tokens": 3}  # summed over the attempts


async def test_a_retry_continues_the_thread_of_the_failed_attempt(tmp_path: Path) -> None:
    fleet = FakeFleet({"a": [failed(retryable=True)]})
    results, _ = await run(plan(tmp_path, [task("a")], retries=1), fleet)
    first, second = fleet.calls_of("a")
    assert (first.thread_id, second.thread_id) == (None, "thread-a")
    assert second.thread_worker == "w1"
    assert (results["a"].status, results["a"].attempts) == ("ok", 2)


@pytest.mark.parametrize(
    ("act", "status"),
    [(failed(retryable=False), "failed"), (timed_out(), "timeout")],
    ids=["failed", "timeout"],
)
async def test_a_non_retryable_failure_or_a_timeout_is_not_retried(
    tmp_path: Path, act: Act, status: str
) -> None:
    fleet = FakeFleet({"a": [act]})
    results, log = await run(plan(tmp_path, [task("a")], retries=3), fleet)
    assert len(fleet.calls_of("a")) == 1
    assert (results["a"].status, results["a"].attempts) == (status, 1)
    assert log.count("retrying") == 0


async def test_each_attempt_is_given_only_what_is_left_of_the_budget(tmp_path: Path) -> None:
    fleet = FakeFleet({"a": [failed(retryable=True)] * 2})
    await run(plan(tmp_path, [task("a")], retries=2, timeout_sec=30), fleet)
    budgets = [c.timeout_sec for c in fleet.calls_of("a")]
    assert len(budgets) == 3
    assert 0 < budgets[2] <= budgets[1] <= budgets[0] <= 30


async def test_a_task_with_no_budget_left_ends_timeout_without_another_attempt(
    tmp_path: Path,
) -> None:
    fleet = FakeFleet({"a": [uses_budget()]})
    results, log = await run(plan(tmp_path, [task("a")], retries=3, timeout_sec=0.05), fleet)
    assert len(fleet.calls_of("a")) == 1
    assert results["a"].status == "timeout"
    assert results["a"].error is not None
    assert "used its 0.05 s (timeout_sec) before attempt 2" in results["a"].error
    assert results["a"].error.endswith("last error: scripted slow failure")
    assert results["a"].thread_id == "thread-a"  # kept, so a resume can continue it
    assert log.count("retrying") == 1


async def test_attempts_counts_only_attempts_that_ran_when_the_budget_ends_the_task(
    tmp_path: Path,
) -> None:
    fleet = FakeFleet({"a": [uses_budget()]})
    results, _ = await run(plan(tmp_path, [task("a")], retries=3, timeout_sec=0.05), fleet)
    assert results["a"].attempts == len(fleet.calls_of("a")) == 1


async def test_cancelling_the_run_records_unfinished_tasks_cancelled(tmp_path: Path) -> None:
    gate = asyncio.Event()  # never set: a is still running when the run is cancelled
    fleet = FakeFleet({"a": [blocks(gate)]})
    tasks = [task("a"), task("b", "a"), task("c")]
    async with started(plan(tmp_path, tasks), fleet, ["w1", "w2"]) as live:
        log = live.log
        await log.wait_until(lambda: log.finished("c") and "a" in fleet.running.values())
        live.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(WAIT):
                await live.task
        a_worker = fleet.worker(next(c.worker for c in fleet.calls_of("a")))
        # the worker stopped a's turn itself (its process may serve other threads) ...
        assert f"interrupt a on {a_worker.name}" in fleet.history
        assert "2 idle" in repr(live.pool)  # ... and its slot came back
    results = live.runner.results
    assert statuses(results) == dict(a="cancelled", b="cancelled", c="ok")
    assert results["a"].error == "the run was cancelled while this task was running."
    # a keeps the thread it ran in, so that a resume continues it there
    assert (results["a"].thread_id, results["a"].worker) == ("thread-a", a_worker.label)
    assert results["b"].error == "the run was cancelled before this task finished."
    assert fleet.calls_of("b") == []
    assert all(log.finished(t) for t in "abc")


async def test_a_resumed_run_does_not_rerun_tasks_kept_ok(tmp_path: Path) -> None:
    kept = TaskResult(task_id="a", index=0, status="ok", worker="w1", attempts=1, turns_done=1)
    earlier = TaskResult(
        task_id="b", index=1, status="failed", worker="w2", thread_id="thread-b", turns_done=1
    )
    fleet = FakeFleet()
    tasks = [task("a"), task("b", follow_ups=["more"]), task("c", "a")]
    planned = plan(tmp_path, tasks, previous={"a": kept, "b": earlier})
    results, _ = await run(planned, fleet, ("w1", "w2"))
    assert fleet.calls_of("a") == []
    assert results["a"] == kept
    (b,) = fleet.calls_of("b")  # the failed one continues its thread where it stopped
    assert (b.thread_id, b.thread_worker, b.turns_done) == ("thread-b", "w2", 1)
    assert b.worker == "w2#1"
    assert (results["b"].status, results["b"].turns_done) == ("ok", 2)
    assert results["c"].status == "ok"


# --- the executor and the pool: broken workers ----------------------------------------------


async def test_a_broken_worker_is_closed_and_restarted_under_its_label_when_next_lent(
    tmp_path: Path,
) -> None:
    fleet = FakeFleet({"a": [dies()]})
    results, log = await run(plan(tmp_path, [task("a")], retries=1), fleet)
    assert fleet.history == [
        "start w1#1",
        "run a/1 on w1#1",
        "close w1#1",  # by the executor, as soon as it reported worker_broken
        "close w1#1",  # by the pool before it replaces it (closing twice must be harmless)
        "start w1#2",
        "run a/2 on w1#2",
        "close w1#2",  # the pool's exit
    ]
    assert (results["a"].status, results["a"].worker) == ("ok", "w1")
    assert "worker-lost" in log.states("a")


async def test_a_broken_worker_is_not_restarted_before_it_is_needed(tmp_path: Path) -> None:
    fleet = FakeFleet({"a": [dies()]})
    results, _ = await run(plan(tmp_path, [task("a")], retries=0), fleet)
    assert results["a"].status == "failed"
    assert fleet.started == ["w1"]


# --- the pool: how many, in which order, which worker ----------------------------------------


async def test_the_pool_never_lends_more_workers_than_it_has(tmp_path: Path) -> None:
    gate = asyncio.Event()
    ids = [f"t{n}" for n in range(6)]
    fleet = FakeFleet({t: [blocks(gate)] for t in ids})
    tasks = [task(t) for t in ids]
    async with started(plan(tmp_path, tasks), fleet, ["w1", "w2"]) as live:
        log = live.log
        await log.wait_until(lambda: log.count("waiting") == 6 and len(fleet.running) == 2)
        assert "[2 busy, 0 idle | 4 waiting]" in repr(live.pool)
        gate.set()
        async with asyncio.timeout(WAIT):
            results = await live.task
    assert all(r.status == "ok" for r in results)
    assert fleet.max_running == 2
    assert len(fleet.calls) == 6
    assert {c.worker for c in fleet.calls} == {"w1#1", "w2#1"}


async def test_waiters_are_served_first_come_first_served_before_their_preferences() -> None:
    fleet = FakeFleet()
    granted: list[str] = []
    async with WorkerPool(fleet, ["w1", "w2"]) as pool:
        w1, w2 = await pool.acquire(), await pool.acquire()
        first = await queue(pool, "first", granted)
        second = await queue(pool, "second", granted, preferred="w2")
        third = await queue(pool, "third", granted, required="w1")
        await pool.release(w2)  # the second would prefer it, but the first came earlier
        await pool.release(w1)  # the third requires it, but the second is ahead of it
        assert "[2 busy, 0 idle | 1 waiting]" in repr(pool)
        async with asyncio.timeout(WAIT):
            got_first, got_second = await first, await second
        assert granted == ["first@w2", "second@w1"]
        await pool.release(got_first)  # w2 is free, but the third requires w1
        assert "[1 busy, 1 idle | 1 waiting]" in repr(pool)
        await pool.release(got_second)
        async with asyncio.timeout(WAIT):
            await third
        assert granted == ["first@w2", "second@w1", "third@w1"]


async def test_a_thread_continuation_waits_for_its_required_worker_while_others_idle() -> None:
    fleet = FakeFleet()
    granted: list[str] = []
    async with WorkerPool(fleet, ["w1", "w2"]) as pool:
        held = await pool.acquire(preferred="w2")
        waiter = await queue(pool, "thread", granted, required="w2")
        assert not waiter.done()
        assert "[1 busy, 1 idle | 1 waiting]" in repr(pool)
        await pool.release(held)
        async with asyncio.timeout(WAIT):
            assert (await waiter).label == "w2"


async def test_a_required_worker_the_pool_does_not_have_is_not_waited_for() -> None:
    async with WorkerPool(FakeFleet(fail_start=["w2"]), ["w1", "w2"]) as pool:
        async with asyncio.timeout(WAIT):
            worker = await pool.acquire(required="w2")  # w2 did not start
            assert worker.label == "w1"
            await pool.release(worker)
            assert (await pool.acquire(required="w9")).label == "w1"


async def test_the_preferred_worker_is_used_when_idle(tmp_path: Path) -> None:
    fleet = FakeFleet()
    tasks = [task("a", preferred_worker="w3")]
    results, _ = await run(plan(tmp_path, tasks), fleet, ("w1", "w2", "w3"))
    assert [c.worker for c in fleet.calls] == ["w3#1"]
    assert results["a"].worker == "w3"


async def test_a_cancelled_acquire_leaves_the_line_without_taking_a_worker() -> None:
    granted: list[str] = []
    async with WorkerPool(FakeFleet(), ["w1"]) as pool:
        held = await pool.acquire()
        gone = await queue(pool, "gone", granted)
        kept = await queue(pool, "kept", granted)
        gone.cancel()
        await pool.release(held)
        async with asyncio.timeout(WAIT):
            assert (await kept).label == "w1"
        assert gone.cancelled()
        assert granted == ["kept@w1"]
        assert "| 0 waiting]" in repr(pool)


async def test_a_pool_starts_with_the_workers_that_came_up_and_fails_when_none_did() -> None:
    fleet = FakeFleet(fail_start=["w2"])
    async with WorkerPool(fleet, ["w1", "w2", "w3"]) as pool:
        assert "[0 busy, 2 idle" in repr(pool)
    assert sorted(fleet.closed) == ["w1", "w3"]
    dead = FakeFleet(fail_start=["w1", "w2"])
    with pytest.raises(WorkerStartError, match=r"w1|w2"):
        async with WorkerPool(dead, ["w1", "w2"]):
            pass


# --- assign(): the pure choice --------------------------------------------------------------


def waiter(required: str | None = None, preferred: str | None = None) -> Waiter:
    return Waiter(required, preferred, asyncio.get_running_loop().create_future())


def slots(*labels: str, free: int = 1) -> dict[str, int]:
    return dict.fromkeys(labels, free)


def pairs(grants: list[tuple[Waiter, str]], waiters: list[Waiter]) -> list[tuple[int, str]]:
    return [(waiters.index(w), label) for w, label in grants]


async def test_assign_hands_idle_workers_to_waiters_in_arrival_order() -> None:
    waiters = [waiter(), waiter(), waiter()]
    assert pairs(assign(slots("w2", "w1"), waiters), waiters) == [(0, "w2"), (1, "w1")]


async def test_assign_with_no_idle_worker_grants_nothing_and_changes_nothing() -> None:
    free, waiters = slots("w1"), [waiter()]
    assert assign(slots(), waiters) == []
    assert assign(slots("w1", free=0), waiters) == []
    assert len(assign(free, waiters)) == 1
    assert (free, len(waiters)) == ({"w1": 1}, 1)  # pure: the pool applies the grants


async def test_assign_skips_a_waiter_whose_required_worker_is_busy() -> None:
    waiters = [waiter(required="w3"), waiter()]
    assert pairs(assign(slots("w1"), waiters), waiters) == [(1, "w1")]


async def test_assign_gives_a_required_worker_to_the_waiter_requiring_it() -> None:
    waiters = [waiter(preferred="w2"), waiter(required="w1")]
    assert pairs(assign(slots("w1", "w2"), waiters), waiters) == [(0, "w2"), (1, "w1")]


async def test_assign_honours_a_preference_only_when_that_worker_is_idle() -> None:
    waiters = [waiter(preferred="w2"), waiter(preferred="w9")]
    assert pairs(assign(slots("w1", "w2", "w3"), waiters), waiters) == [(0, "w2"), (1, "w1")]


async def test_assign_spreads_threads_over_the_workers_with_the_most_free_slots() -> None:
    waiters = [waiter(), waiter(), waiter(), waiter()]
    free = {"w1": 1, "w2": 3, "w3": 2}
    assert pairs(assign(free, waiters), waiters) == [(0, "w2"), (1, "w2"), (2, "w3"), (3, "w1")]


async def test_assign_hands_out_no_more_than_the_pool_wide_limit() -> None:
    waiters = [waiter(), waiter(), waiter()]
    assert pairs(assign(slots("w1", "w2", free=4), waiters, limit=2), waiters) == [
        (0, "w1"),
        (1, "w2"),
    ]
    assert assign(slots("w1", free=4), waiters, limit=0) == []


async def test_assign_skips_waiters_that_are_already_done() -> None:
    waiters = [waiter(), waiter()]
    waiters[0].future.cancel()
    assert pairs(assign(slots("w1"), waiters), waiters) == [(1, "w1")]
