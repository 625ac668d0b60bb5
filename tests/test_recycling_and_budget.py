"""Workers retired for wear, and the process budget that bounds concurrent runs, fast: the real
runner, executor and pool over fake workers (tests/fakes.py), and the real ``ProcessBudget``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from codex_mcp_wrapper.codex.budget import ProcessBudget, grant
from codex_mcp_wrapper.codex.pool import retire_reason
from codex_mcp_wrapper.settings import Recycling
from tests.fakes import WAIT, FakeFleet, blocks, dies, failed, run, started
from tests.test_fast_runner_and_pool import plan, task

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_codex_left_behind() -> None:
    """Nothing here starts Codex (see tests/test_fast_runner_and_pool.py)."""


# --- retiring worn workers ------------------------------------------------------------------


def test_retire_reason_names_the_limit_reached_and_zero_turns_a_limit_off() -> None:
    limits = Recycling(max_threads=3, max_rss_mb=500)
    assert retire_reason(2, 499.0, limits) is None
    assert retire_reason(3, 100.0, limits) == "it ran 3 threads (limit 3)"
    assert retire_reason(1, 612.4, limits) == "it uses 612 MB (limit 500 MB)"
    assert retire_reason(1, None, limits) is None  # memory unknown: only the thread limit
    assert retire_reason(10_000, 10_000.0, Recycling(max_threads=0, max_rss_mb=0)) is None


async def test_a_worker_is_retired_after_its_thread_limit_and_no_task_is_lost(
    tmp_path: Path,
) -> None:
    fleet = FakeFleet()
    tasks = [task(f"t{n}") for n in range(5)]
    results, _ = await run(plan(tmp_path, tasks), fleet, ["w1"], Recycling(max_threads=2))
    assert all(r.status == "ok" for r in results.values()) and len(results) == 5
    assert [c.worker for c in fleet.calls] == ["w1#1", "w1#1", "w1#2", "w1#2", "w1#3"]
    # Each retired process was closed before the next one on its label started.
    assert fleet.history.index("close w1#1") < fleet.history.index("start w1#2")
    assert fleet.history.index("close w1#2") < fleet.history.index("start w1#3")


async def test_a_worker_grown_past_its_memory_limit_is_retired_when_it_comes_back(
    tmp_path: Path,
) -> None:
    fleet = FakeFleet()
    fleet.rss_mb = 2048.0
    tasks = [task("a"), task("b", "a")]
    limits = Recycling(max_threads=0, max_rss_mb=1024)
    results, _ = await run(plan(tmp_path, tasks), fleet, ["w1"], limits)
    assert [r.status for r in results.values()] == ["ok", "ok"]
    assert [c.worker for c in fleet.calls] == ["w1#1", "w1#2"]


async def test_a_thread_continues_on_the_fresh_process_of_its_retired_worker(
    tmp_path: Path,
) -> None:
    fleet = FakeFleet({"a": [failed(retryable=True)]})
    results, _ = await run(
        plan(tmp_path, [task("a", retries=1)]), fleet, ["w1", "w2"], Recycling(max_threads=1)
    )
    first, second = fleet.calls_of("a")
    assert results["a"].status == "ok"
    assert (first.worker, first.thread_id) == ("w1#1", None)
    # The retry requires the label whose CODEX_HOME holds the thread: a new process there.
    assert (second.worker, second.thread_id, second.thread_worker) == ("w1#2", "thread-a", "w1")


# --- the process budget ---------------------------------------------------------------------


def test_grant_serves_the_line_in_order_and_never_lets_a_later_waiter_overtake() -> None:
    assert grant(4, [(1, 2), (1, 4)]) == [2, 2]
    assert grant(1, [(2, 2), (1, 1)]) == []  # the head needs 2: nobody overtakes it
    assert grant(3, [(1, 1), (1, 1), (1, 1), (1, 1)]) == [1, 1, 1]
    assert grant(0, [(1, 1)]) == []


async def test_concurrent_runs_never_hold_more_processes_than_the_budget() -> None:
    budget = ProcessBudget(2)
    held: list[int] = []
    peak = 0
    order: list[str] = []
    release, two_in = asyncio.Event(), asyncio.Event()

    async def one_run(name: str, want: int) -> None:
        nonlocal peak
        async with budget.take(want) as granted:
            order.append(name)
            if len(order) == 2:
                two_in.set()
            held.append(granted)
            peak = max(peak, sum(held))
            await release.wait()
            held.remove(granted)

    async with asyncio.timeout(WAIT), asyncio.TaskGroup() as group:
        for name, want in (("a", 1), ("b", 3), ("c", 1)):
            group.create_task(one_run(name, want))
        await two_in.wait()  # a takes 1, b takes the 1 left; c waits
        assert "[2 held, 0 free | 1 waiting]" in repr(budget)
        release.set()
    assert order == ["a", "b", "c"]
    assert peak == 2
    assert budget.free == 2


async def test_a_cancelled_wait_for_the_budget_leaves_the_line() -> None:
    budget = ProcessBudget(1)
    async with budget.take(1):
        entered = asyncio.Event()

        async def wait_in_line() -> None:
            entered.set()
            async with budget.take(1):
                pass

        waiting = asyncio.create_task(wait_in_line())
        await entered.wait()  # take() joins the line before its first await
        assert "| 1 waiting]" in repr(budget)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert budget.free == 1
    async with asyncio.timeout(WAIT), budget.take(1) as granted:
        assert granted == 1


# --- several threads on one worker ------------------------------------------------------------


async def test_threads_share_few_workers_up_to_their_slots_and_the_pool_limit(
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    fleet = FakeFleet({f"t{n}": [blocks(gate)] for n in range(7)})
    tasks = [task(f"t{n}") for n in range(7)]
    async with started(plan(tmp_path, tasks), fleet, ["w1", "w2"], None, 3) as live:
        await fleet.wait_until(lambda: len(fleet.running) == 6)
        assert sorted(w.busy for w in fleet.workers) == [3, 3]
        assert "[6 busy, 0 idle | 1 waiting]" in repr(live.pool)
        gate.set()
        async with asyncio.timeout(WAIT):
            results = await live.task
    assert all(r.status == "ok" for r in results)
    assert fleet.max_running == 6
    assert {c.worker for c in fleet.calls} == {"w1#1", "w2#1"}


async def test_a_worn_worker_is_drained_and_stopped_only_after_its_last_thread(
    tmp_path: Path,
) -> None:
    gates = {name: asyncio.Event() for name in ("a", "b")}
    fleet = FakeFleet({name: [blocks(gate)] for name, gate in gates.items()})
    tasks = [task("a"), task("b"), task("c", "a", "b")]
    limits = Recycling(max_threads=2)
    async with started(plan(tmp_path, tasks), fleet, ["w1"], limits, 4) as live:
        await fleet.wait_until(lambda: len(fleet.running) == 2)
        gates["a"].set()
        await live.log.wait_until(lambda: live.log.finished("a"))
        assert "close w1#1" not in fleet.history  # b still runs on it
        assert "[1 busy, 0 idle | 0 waiting]" in repr(live.pool)  # drained: no slot lent
        gates["b"].set()
        async with asyncio.timeout(WAIT):
            results = await live.task
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert fleet.history.index("close w1#1") < fleet.history.index("start w1#2")
    assert [c.worker for c in fleet.calls_of("c")] == ["w1#2"]


async def test_a_dead_worker_is_started_afresh_once_for_the_threads_waiting_on_it(
    tmp_path: Path,
) -> None:
    fleet = FakeFleet({"a": [dies()]})
    tasks = [task("a", retries=1), task("b", "a"), task("c", "a"), task("d", "a")]
    results, _ = await run(plan(tmp_path, tasks), fleet, ["w1"], None, 4)
    assert all(r.status == "ok" for r in results.values())
    assert [h for h in fleet.history if h.startswith("start")] == ["start w1#1", "start w1#2"]


def test_a_resume_claims_the_workers_holding_its_unfinished_threads() -> None:
    from codex_mcp_wrapper.engine.lifecycle import RunOptions, _thread_workers
    from codex_mcp_wrapper.engine.results import TaskResult

    previous = {
        "done": TaskResult(task_id="done", index=0, status="ok", thread_id="t0", worker="w1"),
        "cut": TaskResult(task_id="cut", index=1, status="cancelled", thread_id="t1", worker="w3"),
        "new": TaskResult(task_id="new", index=2, status="cancelled"),
    }
    options = RunOptions(previous=previous, threads={"x": ("t9", "w2")})
    assert _thread_workers(options) == ("w2", "w3")
