"""Several Codex threads on one app-server process, with the real binary and the scripted model:
tasks run at once on few processes, and each still sees only its own env values and approvals."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from codex_mcp_wrapper.app import open_runs
from codex_mcp_wrapper.engine.events import Event, ModelRequest, ThreadProgress
from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.engine.seams import ApprovalDecision, ApprovalRequest
from codex_mcp_wrapper.settings import Settings
from tests.helpers.missions import scripted_mission
from tests.helpers.procs import codex_pids_with_home

pytestmark = pytest.mark.anyio


async def test_four_tasks_run_at_once_on_one_process_and_see_only_their_own_env(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    names = ["a", "b", "c", "d"]
    echo_all = " ".join(f"{n.upper()}=[$SECRET_{n.upper()}]" for n in names)
    tasks = [
        {
            "id": n,
            "prompt": f"task {n}",
            "env": {f"SECRET_{n.upper()}": f"value-of-{n}"},
            # The delay holds every task in its turn until all four have started.
            "script": [{"delay": 1.0}, {"shell": f"echo {echo_all}"}, {"say": "{last_output}"}],
        }
        for n in names
    ]
    settings = Settings(state_dir=state_dir, codex_bin=codex_bin, workers=4, threads_per_worker=4)
    summary = await open_runs(settings).run(scripted_mission(workspace, tasks))
    results = {t.task_id: t for t in summary.tasks}
    assert [results[n].status for n in names] == ["ok"] * 4, [t.error for t in summary.tasks]
    assert {t.worker for t in summary.tasks} == {"w1"}  # one process ran all four
    assert not (state_dir / "workers" / "w2").exists()
    for n in names:
        shown = results[n].final_message or ""
        expected = " ".join(
            f"{m.upper()}=[{'[REDACTED]' if m == n else ''}]" for m in names
        )  # its own value (redacted in what the wrapper returns), nobody else's
        assert expected in shown, (n, shown)
    starts = sorted(t.started_at for t in summary.tasks)
    ends = sorted(t.finished_at for t in summary.tasks)
    assert starts[-1] < ends[0]  # all four were running at the same time


async def test_approvals_reach_the_task_whose_thread_asked_when_threads_share_a_process(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    asked: list[str] = []

    async def decide(request: ApprovalRequest) -> ApprovalDecision:
        asked.append(request.task_id)
        return "accept" if request.task_id == "allowed" else "decline"

    tasks = [
        {
            "id": name,
            "prompt": name,
            "approval_policy": "on-request",
            "script": [
                {"delay": 0.5},
                {"escalate": f"touch {name}.txt"},
                {"say": "after: {last_output}"},
            ],
        }
        for name in ("allowed", "refused")
    ]
    settings = Settings(state_dir=state_dir, codex_bin=codex_bin, workers=2, threads_per_worker=2)
    summary = await open_runs(settings).run(
        scripted_mission(workspace, tasks), RunOptions(approvals=decide)
    )
    assert {t.worker for t in summary.tasks} == {"w1"}
    assert sorted(asked) == ["allowed", "refused"]
    assert (workspace / "allowed.txt").exists(), [t.final_message for t in summary.tasks]
    assert not (workspace / "refused.txt").exists()


async def test_a_crashed_process_fails_over_only_its_own_threads(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    """Two processes of two threads each; one is killed mid-turn: its two tasks are retried on
    a fresh process, the other process's tasks finish untouched on their first attempt."""
    tasks = [
        {"id": n, "prompt": n, "retries": 1, "script": [{"delay": 3.0}, {"say": f"done {n}"}]}
        for n in ("a", "b", "c", "d")
    ]
    settings = Settings(state_dir=state_dir, codex_bin=codex_bin, workers=4, threads_per_worker=2)
    on_w1: set[str] = set()
    asking: set[str] = set()
    both_in_turns = asyncio.Event()

    def watch(event: Event) -> None:  # both of w1's tasks are waiting on the model
        if isinstance(event, ThreadProgress) and event.worker == "w1":
            on_w1.add(event.task_id)
        elif isinstance(event, ModelRequest) and event.task_id:
            asking.add(event.task_id)
        if len(on_w1) == 2 and on_w1 <= asking:
            both_in_turns.set()

    runs = open_runs(settings)
    task = asyncio.create_task(
        runs.run(scripted_mission(workspace, tasks), RunOptions(observers=[watch]))
    )
    async with asyncio.timeout(60):
        await both_in_turns.wait()
    pids = codex_pids_with_home(state_dir / "workers" / "w1" / "codex-home")
    assert pids, "w1's app-server was not found"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    summary = await asyncio.wait_for(task, 120)
    results = {t.task_id: t for t in summary.tasks}
    assert all(t.status == "ok" for t in summary.tasks), [t.error for t in summary.tasks]
    retried = sorted(n for n, t in results.items() if t.attempts == 2)
    untouched = sorted(n for n, t in results.items() if t.attempts == 1)
    assert len(retried) == 2 and len(untouched) == 2, {n: t.attempts for n, t in results.items()}
    assert sorted(on_w1) == retried
    assert {results[n].worker for n in untouched} == {"w2"}


async def test_a_task_reads_the_shell_profile_only_with_login_shell(
    workspace: Path,
    state_dir: Path,
    codex_bin: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """By default (``login_shell: false``, docs/running.md) Codex takes no login-shell snapshot
    for a task's thread, so a heavy shell profile costs it nothing; with ``login_shell: true``
    the snapshot reads the profile for every thread."""
    home = tmp_path / "home"
    home.mkdir()
    sourced = tmp_path / "sourced"
    for rc in (".bash_profile", ".bashrc"):  # the profile logs each time a shell reads it
        (home / rc).write_text(f"echo read >> {sourced}\n")
    monkeypatch.setenv("HOME", str(home))  # workers inherit HOME (settings.ENV_ALLOWLIST)
    settings = Settings(state_dir=state_dir, codex_bin=codex_bin, workers=1)

    def reads() -> int:
        return len(sourced.read_text().split()) if sourced.exists() else 0

    without = await open_runs(settings).run(
        scripted_mission(workspace, [{"id": "without", "prompt": "w"}])
    )
    assert without.tasks[0].status == "ok"
    assert reads() == 0
    with_it = await open_runs(settings).run(
        scripted_mission(workspace, [{"id": "with", "prompt": "x", "login_shell": True}])
    )
    assert with_it.tasks[0].status == "ok"
    assert reads() >= 1, "the snapshot did not read the profile"


async def test_a_task_codex_refuses_fails_alone_and_its_neighbours_keep_their_process(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    """Codex answers one task's thread/start with an error (a profile, which app-server no
    longer supports): that task fails, and the process, with its other turn, carries on."""
    tasks = [
        {"id": "neighbour", "prompt": "n", "script": [{"delay": 1.5}, {"say": "still here"}]},
        {"id": "refused", "prompt": "r", "profile": "no-such-profile", "retries": 1},
    ]
    settings = Settings(state_dir=state_dir, codex_bin=codex_bin, workers=2, threads_per_worker=2)
    summary = await open_runs(settings).run(scripted_mission(workspace, tasks))
    results = {t.task_id: t for t in summary.tasks}
    assert results["refused"].status == "failed"
    assert "profile" in (results["refused"].error or "")
    assert results["neighbour"].status == "ok", results["neighbour"].error
    assert results["neighbour"].attempts == 1  # its process was never taken down
    assert results["neighbour"].final_message == "still here"
