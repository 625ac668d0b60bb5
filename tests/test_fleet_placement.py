"""Placing runs on the fleet's pools by isolation profile, fast: the real ``Fleet``, pools and
label locks over fake workers (tests/fakes.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from codex_mcp_wrapper.codex.fleet import Fleet, Profile, digest
from codex_mcp_wrapper.codex.home import ProviderSpec
from codex_mcp_wrapper.codex.labels import LabelLocks
from codex_mcp_wrapper.codex.pool import WorkerPool
from codex_mcp_wrapper.errors import WorkerStartError
from codex_mcp_wrapper.settings import Settings, Timeouts
from tests.fakes import WAIT, FakeFleet

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_codex_left_behind() -> None:
    """Nothing here starts Codex (see tests/test_fast_runner_and_pool.py)."""


def profile(name: str, secret: str | None = None) -> Profile:
    return Profile("codex", ProviderSpec(kind="custom", name=name), digest(secret))


def settings(tmp_path: Path, workers: int = 4, per_process: int = 2) -> Settings:
    return Settings(
        state_dir=tmp_path,
        workers=workers,
        threads_per_worker=per_process,
        timeouts=Timeouts(label_lock=2.0),
    )


async def until(predicate: Callable[[], bool], turns: int = 1000) -> None:
    """Let other tasks run until ``predicate`` holds (bounded; nothing here waits on I/O)."""
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


@contextlib.asynccontextmanager
async def held(
    fleet: Fleet, p: Profile, fakes: FakeFleet, slots: int = 1, required: tuple[str, ...] = ()
) -> AsyncIterator[WorkerPool]:
    async with asyncio.timeout(WAIT), fleet.lease(p, fakes, slots, required) as pool:
        yield pool


async def test_runs_of_one_profile_share_a_warm_pool_and_profiles_never_share(
    tmp_path: Path,
) -> None:
    fakes = FakeFleet()
    fleet = Fleet(settings(tmp_path, workers=8, per_process=2), warm=True)
    try:
        async with held(fleet, profile("a"), fakes, 2) as first:
            assert first.labels == ["w1"]  # 2 slots, 2 threads a process
            async with held(fleet, profile("a"), fakes, 2) as second:
                assert second is first and first.labels == ["w1", "w2"]  # grown for 4 slots
            async with held(fleet, profile("b"), fakes, 1) as other:
                assert other is not first and other.labels == ["w3"]
            # the same provider with other credentials is another profile
            async with held(fleet, profile("a", "key-2"), fakes, 1) as keyed:
                assert keyed is not first
        async with held(fleet, profile("a"), fakes, 1) as again:
            assert again is first  # kept warm: no process started for this run
        assert fakes.started.count("w1") == 1
    finally:
        await fleet.aclose()
    assert all(not w.alive for w in fakes.workers)


async def test_without_warm_a_pool_closes_when_its_last_run_ends(tmp_path: Path) -> None:
    fakes = FakeFleet()
    fleet = Fleet(settings(tmp_path))
    async with held(fleet, profile("a"), fakes):
        assert fakes.workers[0].alive
    assert fakes.closed == ["w1"] and fleet.processes == 0
    assert LabelLocks(tmp_path / "workers").try_lock("w1")  # its label is free again


async def test_an_idle_pool_makes_room_for_another_profile_past_the_process_cap(
    tmp_path: Path,
) -> None:
    fakes = FakeFleet()
    fleet = Fleet(settings(tmp_path, workers=2, per_process=2), warm=True)  # cap: 1 process
    try:
        async with held(fleet, profile("a"), fakes):
            pass
        assert fleet.processes == 1  # a's pool stays warm
        async with held(fleet, profile("b"), fakes) as pool:
            assert pool.labels == ["w1"]  # a's idle process was closed for b
            assert fakes.history[:3] == ["start w1#1", "close w1#1", "start w1#2"]
        # busy pools are never closed for another: both run, over the cap, while they must
        async with held(fleet, profile("a"), fakes), held(fleet, profile("b"), fakes):
            assert fleet.processes == 2
        assert fleet.processes == 2  # idle pools stay warm until a profile needs room
        async with held(fleet, profile("c"), fakes):
            assert fleet.processes == 1  # both idle pools made room for c (cap: 1)
    finally:
        await fleet.aclose()


async def test_a_thread_to_continue_takes_its_label_from_an_idle_pool_of_another_profile(
    tmp_path: Path,
) -> None:
    fakes = FakeFleet()
    fleet = Fleet(settings(tmp_path, workers=8), warm=True)
    try:
        async with held(fleet, profile("a"), fakes) as a_pool:
            assert a_pool.labels == ["w1"]
            gate = asyncio.Event()

            async def reply_in_w1() -> list[str]:
                async with held(fleet, profile("b"), fakes, required=("w1",)) as pool:
                    gate.set()
                    return pool.labels

            waiting = asyncio.create_task(reply_in_w1())
            await until(lambda: len(fleet.pools()) == 2)  # b's pool exists, waiting for w1
            assert not gate.is_set() and a_pool.labels == ["w1"]
        assert await asyncio.wait_for(waiting, WAIT) == ["w1"]
        assert "close w1#1" in fakes.history  # a's process left; w1's home now serves b
    finally:
        await fleet.aclose()


async def test_a_label_busy_in_another_profile_for_too_long_is_a_clear_error(
    tmp_path: Path,
) -> None:
    fakes = FakeFleet()
    fleet = Fleet(
        Settings(state_dir=tmp_path, workers=4, timeouts=Timeouts(label_lock=0.2)), warm=True
    )
    try:
        async with held(fleet, profile("a"), fakes):
            with pytest.raises(WorkerStartError, match="stayed busy with another kind of task"):
                async with held(fleet, profile("b"), fakes, required=("w1",)):
                    pass
        assert fleet.processes == 1  # a's pool is intact, b left nothing behind
    finally:
        await fleet.aclose()


async def test_a_pool_that_cannot_start_leaves_no_label_held(tmp_path: Path) -> None:
    fakes = FakeFleet(fail_start=["w1"])
    fleet = Fleet(settings(tmp_path), warm=True)
    with pytest.raises(WorkerStartError, match="scripted not to start"):
        async with held(fleet, profile("a"), fakes):
            pass
    assert fleet.processes == 0
    assert LabelLocks(tmp_path / "workers").try_lock("w1")
    await fleet.aclose()
