"""A warm fleet with the real binary and the scripted model: ``Runs`` used as a context
manager (what ``serve`` does) keeps its Codex processes from one run to the next, shares them
between concurrent runs of one profile, and gives each thread its own run's approvals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from codex_mcp_wrapper.app import open_runs
from codex_mcp_wrapper.engine.events import Event, ModelRequest
from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.engine.seams import ApprovalDecision, ApprovalRequest
from codex_mcp_wrapper.settings import Settings
from tests.helpers.mcp_client import stdio_client
from tests.helpers.missions import scripted_mission
from tests.helpers.procs import codex_pids_with_home, wait_gone

pytestmark = pytest.mark.anyio


def _escalating(name: str) -> dict[str, Any]:
    return {
        "id": name,
        "prompt": name,
        "approval_policy": "on-request",
        "script": [{"delay": 0.5}, {"escalate": f"touch {name}.txt"}, {"say": "{last_output}"}],
    }


def _only(decision: ApprovalDecision, asked: list[str]) -> Any:
    async def decide(request: ApprovalRequest) -> ApprovalDecision:
        asked.append(request.task_id)
        return decision

    return decide


async def test_concurrent_runs_share_a_warm_process_and_keep_their_own_approvals(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    settings = Settings(state_dir=state_dir, codex_bin=codex_bin, workers=4, threads_per_worker=4)
    home = state_dir / "workers" / "w1" / "codex-home"
    accepted: list[str] = []
    declined: list[str] = []
    async with open_runs(settings) as runs:
        yes, no = await asyncio.gather(
            runs.run(
                scripted_mission(workspace, [_escalating("yes")]),
                RunOptions(approvals=_only("accept", accepted)),
            ),
            runs.run(
                scripted_mission(workspace, [_escalating("no")]),
                RunOptions(approvals=_only("decline", declined)),
            ),
        )
        assert (yes.tasks[0].worker, no.tasks[0].worker) == ("w1", "w1")  # one process
        (pid,) = codex_pids_with_home(home)
        assert (accepted, declined) == (["yes"], ["no"])  # each run answered its own thread
        assert (workspace / "yes.txt").exists() and not (workspace / "no.txt").exists()
        later = await runs.run(scripted_mission(workspace, [{"id": "later", "prompt": "hi"}]))
        assert later.tasks[0].status == "ok" and codex_pids_with_home(home) == [pid]  # warm
        # every run keeps its own record of the model requests its tasks made
        for summary in (yes, no, later):
            log = Path(summary.run_dir or "") / "model-requests.jsonl"
            models = {json.loads(line)["body"]["model"] for line in log.read_text().splitlines()}
            assert models == {f"scripted@{summary.run_id}/{summary.tasks[0].task_id}"}
    assert await asyncio.to_thread(wait_gone, [pid], 15)  # the block's end stops the fleet


async def test_cancelling_one_run_stops_its_turn_and_spares_its_neighbours_thread(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    settings = Settings(state_dir=state_dir, codex_bin=codex_bin, workers=2, threads_per_worker=2)
    home = state_dir / "workers" / "w1" / "codex-home"
    hanging = asyncio.Event()

    def on(event: Event) -> None:
        if isinstance(event, ModelRequest) and event.task_id == "hang":
            hanging.set()

    async with open_runs(settings) as runs:
        doomed = asyncio.create_task(
            runs.run(
                scripted_mission(
                    workspace, [{"id": "hang", "prompt": "h", "script": [{"hang": 300}]}]
                ),
                RunOptions(observers=[on]),
            )
        )
        neighbour = asyncio.create_task(
            runs.run(
                scripted_mission(
                    workspace,
                    [{"id": "slow", "prompt": "s", "script": [{"delay": 3}, {"say": "done"}]}],
                )
            )
        )
        async with asyncio.timeout(30):
            await hanging.wait()
        (pid,) = codex_pids_with_home(home)
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        summary = await asyncio.wait_for(neighbour, 30)
        assert summary.tasks[0].status == "ok", summary.tasks[0].error
        assert summary.tasks[0].final_message == "done"
        assert codex_pids_with_home(home) == [pid]  # the process was spared, not restarted
        after = await runs.run(scripted_mission(workspace, [{"id": "next", "prompt": "n"}]))
        assert after.tasks[0].status == "ok" and codex_pids_with_home(home) == [pid]


async def test_serve_answers_20_sequential_codex_calls_on_one_warm_process(
    state_dir: Path, workspace: Path, codex_bin: str
) -> None:
    args = ("--codex-bin", codex_bin, "--scripted", "--workspace", str(workspace))
    home = state_dir / "workers" / "w1" / "codex-home"
    pids: set[int] = set()
    async with stdio_client(state_dir, *args) as client:
        for n in range(20):
            result = await client.call_tool("codex", {"prompt": f"call {n}"})
            assert not result.is_error, result.content
            assert result.structured_content["content"] == f"echo: call {n}"  # type: ignore[index]
            pids.update(codex_pids_with_home(home))
        runs = (await client.call_tool("runs_list", {"limit": 50})).structured_content["runs"]  # type: ignore[index]
        # the thread stays reachable: codex-reply continues it on the same process
        thread = result.structured_content["threadId"]  # type: ignore[index]
        reply = await client.call_tool("codex-reply", {"prompt": "more", "threadId": thread})
        assert reply.structured_content == {"threadId": thread, "content": "echo: more"}
        pids.update(codex_pids_with_home(home))
    assert len(pids) == 1  # one process answered every call
    assert not (state_dir / "workers" / "w2").exists()
    assert len(runs) == 20 and {r["status"] for r in runs} == {"ok"}
    run_dir = state_dir / "runs" / runs[0]["run_id"]
    # each call is recorded (transcript, final message, model requests) but renders no reports
    assert (run_dir / "tasks").is_dir() and (run_dir / "model-requests.jsonl").is_file()
    assert not (run_dir / "report.html").exists() and not (run_dir / "junit.xml").exists()
    assert await asyncio.to_thread(wait_gone, pids, 15)


async def test_runs_in_different_workspaces_share_a_process_each_trusted_on_its_thread(
    tmp_path: Path, state_dir: Path, codex_bin: str
) -> None:
    settings = Settings(state_dir=state_dir, codex_bin=codex_bin, workers=2, threads_per_worker=2)
    summaries = []
    async with open_runs(settings) as runs:
        for name in ("alpha", "beta"):
            workspace = tmp_path / name
            (workspace / ".codex").mkdir(parents=True)
            # Codex reads a project's own config only when the project is trusted
            (workspace / ".codex" / "config.toml").write_text(
                f'developer_instructions = "rules of {name}"\n'
            )
            summaries.append(
                await runs.run(scripted_mission(workspace, [{"id": name, "prompt": "go"}]))
            )
    assert [s.tasks[0].worker for s in summaries] == ["w1", "w1"]
    for summary, name, other in zip(summaries, ("alpha", "beta"), ("beta", "alpha"), strict=True):
        requests = (Path(summary.run_dir or "") / "model-requests.jsonl").read_text()
        assert f"rules of {name}" in requests and f"rules of {other}" not in requests
