"""Large missions on Temporal (issue 27, item 2): the workflow keeps under the server's
limits (activities pending at once, history length) by a window of tasks in flight and by
continuing as new runs, each task run once, with every result in the end.

The first test runs the real workflow on a real dev server whose limits are set low (its
dynamic config), with a stub ``run_task`` at the workflow/host seam; the second a mission on
a real host with the real Codex, through `run --temporal`."""

from __future__ import annotations

import asyncio
import collections
import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Replayer, Worker

from codex_mcp_wrapper.engine.planning import plan_tasks
from codex_mcp_wrapper.engine.seams import TaskOutcome, TaskRequest
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.settings import TemporalSettings
from codex_mcp_wrapper.temporal.connect import DATA_CONVERTER, connect, sandbox_runner
from codex_mcp_wrapper.temporal.devserver import DevServer
from codex_mcp_wrapper.temporal.workflow import RUN_TASK, MissionInput, MissionWorkflow
from tests.helpers.cli import run_cli
from tests.helpers.temporal import temporal_rig
from tests.test_temporal import mission, summary_of
from tests.test_temporal_weather import appending

PENDING_LIMIT = 40  # the server refuses more activities pending at once in one workflow
SUGGEST_AFTER = 150  # events; the server suggests continuing as new past this
LIMITS = (
    f"limit.numPendingActivities.error={PENDING_LIMIT}",
    f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER}",
)


async def runs_of(client: Client, handle: WorkflowHandle[Any, Any]) -> list[Any]:
    """Each run's history, first to last (a run continued as new names the next)."""
    histories = []
    run: str | None = handle.first_execution_run_id or handle.run_id
    while run:
        history = await client.get_workflow_handle(handle.id, run_id=run).fetch_history()
        histories.append(history)
        attrs = history.events[-1].workflow_execution_continued_as_new_event_attributes
        run = attrs.new_execution_run_id or None
    return histories


def planned(count: int) -> list[Any]:
    """``count`` tasks; every tenth depends on the one before (dependencies cross runs)."""
    tasks: list[dict[str, Any]] = [
        {
            "id": f"t{i}",
            "prompt": f"task {i}",
            **({"depends_on": [f"t{i - 1}"]} if i % 10 == 9 else {}),
        }
        for i in range(count)
    ]
    doc = {"mission_id": "big", "workspace_root": "/tmp/ws", "provider": "scripted", "tasks": tasks}
    plan = plan_tasks(Mission.model_validate(doc), Path("/tmp/ws"), Path("/tmp/run"))
    return [replace(t, spec=replace(t.spec, config={})) for t in plan]


async def run_large(address: str, count: int, window: int) -> tuple[Any, list[Any], dict[str, int]]:
    calls: collections.Counter[str] = collections.Counter()

    @activity.defn(name=RUN_TASK)
    async def stub(request: TaskRequest) -> TaskOutcome:
        calls[request.task_id] += 1
        return TaskOutcome(status="ok", final_message=f"{request.task_id} done", worker="h/w1")

    client = await connect(TemporalSettings(address))
    spec = MissionInput(
        run_id=f"big-{uuid.uuid4().hex[:6]}",
        tasks=planned(count),
        task_queue=f"q-{uuid.uuid4().hex[:6]}",
        max_in_flight=window,
    )
    async with Worker(
        client,
        task_queue=spec.task_queue,
        workflows=[MissionWorkflow],
        activities=[stub],
        workflow_runner=sandbox_runner(),
    ):
        handle = await client.start_workflow(
            MissionWorkflow.run, spec, id=spec.run_id, task_queue=spec.task_queue
        )
        async with asyncio.timeout(120):
            output = await handle.result()
    return output, await runs_of(client, handle), dict(calls)


def test_a_mission_larger_than_the_servers_limits_runs_every_task_once(tmp_path: Path) -> None:
    count = 400  # ten times the pending-activity limit; ~1,200 events in one run
    with DevServer(tmp_path / "t.db", log=tmp_path / "t.log", dynamic=LIMITS) as server:
        output, histories, calls = asyncio.run(run_large(server.address, count, window=20))
    assert [r.task_id for r in output.results] == [f"t{i}" for i in range(count)]
    assert {r.status for r in output.results} == {"ok"}
    assert {r.final_message for r in output.results} == {None}  # carried slim
    assert calls == {f"t{i}": 1 for i in range(count)}  # each task ran once
    assert len(histories) >= 4, "the workflow did not continue as new"
    # Each run stays near the suggestion (plus the tasks in flight when it came).
    assert max(len(h.events) for h in histories) < SUGGEST_AFTER + 20 * 4 + 20
    by_id = {r.task_id: r for r in output.results}
    for i in range(9, count, 10):  # the dependency held, across runs too
        assert by_id[f"t{i}"].started_at >= by_id[f"t{i - 1}"].finished_at
    for history in histories:  # every run replays deterministically
        asyncio.run(
            Replayer(
                workflows=[MissionWorkflow],
                workflow_runner=sandbox_runner(),
                data_converter=DATA_CONVERTER,
            ).replay_workflow(history)
        )


def test_the_window_alone_keeps_pending_activities_under_the_limit(tmp_path: Path) -> None:
    """Without the window the server refuses the workflow's tasks (PendingActivitiesLimit)
    and the run never ends; the default window is under the default limit of 2,000."""
    assert MissionInput("r", [], "q").max_in_flight < 2000
    with DevServer(tmp_path / "t.db", log=tmp_path / "t.log", dynamic=LIMITS[:1]) as server:
        output, _, calls = asyncio.run(run_large(server.address, 120, window=PENDING_LIMIT // 2))
    assert len(output.results) == 120 and sum(calls.values()) == 120


async def workflow_runs(address: str, run_id: str, wait: bool = False) -> int:
    """How many runs the workflow of ``run_id`` took (after its end, with ``wait``)."""
    client = await connect(TemporalSettings(address))
    if wait:
        async with asyncio.timeout(120):
            await client.get_workflow_handle(run_id).result()
    runs, run = 0, (await client.get_workflow_handle(run_id).describe()).run_id
    while run:  # from the latest run back: each names the run it continued
        history = await client.get_workflow_handle(run_id, run_id=run).fetch_history()
        attrs = history.events[0].workflow_execution_started_event_attributes
        runs, run = runs + 1, attrs.continued_execution_run_id or None
    return runs


def check_each_task_once(summary: dict[str, Any], lines: Path, count: int) -> None:
    assert [t["status"] for t in summary["tasks"]] == ["ok"] * count
    assert sorted(lines.read_text().split()) == sorted(f"a{i}" for i in range(count))
    by_id = {t["task_id"]: t for t in summary["tasks"]}
    assert by_id["a5"]["started_at"] >= by_id["a4"]["finished_at"]  # the dependency held
    for i in range(count):  # the whole result, not the slim one the workflow carried
        assert by_id[f"a{i}"]["final_message"] == f"a{i} appended"
        assert any("lines.txt" in c["command"] for c in by_id[f"a{i}"]["commands"])


@pytest.mark.codex
def test_a_mission_continued_as_new_runs_on_a_real_host_each_task_once(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """Followed live, and followed only after its end (the results come back whole)."""
    limits = ("limit.historyCount.suggestContinueAsNew=30",)
    with temporal_rig(tmp_path / "rig", cli_env, dynamic=limits) as rig:
        rig.start_host("A", workers=3)
        tasks = [appending(f"a{i}", 0) for i in range(8)]
        for i in range(3, 8):  # a chain: each step lengthens the history (about 6 events)
            tasks[i]["depends_on"] = [f"a{i - 1}"]
        (tmp_path / "live").mkdir()
        (tmp_path / "later").mkdir()
        path = mission(tmp_path / "live" / "grow.yaml", tasks)
        proc = run_cli(["run", str(path), "--json", *rig.flags()], cli_env)
        assert proc.returncode == 0, proc.stderr
        summary = summary_of(proc)
        assert asyncio.run(workflow_runs(rig.server.address, summary["run_id"])) >= 2
        check_each_task_once(summary, tmp_path / "live" / "ws" / "lines.txt", 8)

        path = mission(tmp_path / "later" / "grow.yaml", tasks)
        started = run_cli(["run", str(path), "--detach", "--json", *rig.flags()], cli_env)
        assert started.returncode == 0, started.stderr
        run_id = json.loads(started.stdout)["run_id"]
        assert asyncio.run(workflow_runs(rig.server.address, run_id, wait=True)) >= 2
        followed = run_cli(["resume", run_id, "--json", *rig.flags()], cli_env)
        assert followed.returncode == 0, followed.stderr
        check_each_task_once(summary_of(followed), tmp_path / "later" / "ws" / "lines.txt", 8)
