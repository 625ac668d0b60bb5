"""Large missions on Temporal (issue 27, item 2): the workflow keeps under the server's
limits (activities pending at once, history length) by a window of tasks in flight and by
continuing as new runs, each task run once, with every result in the end.

The first test runs the real workflow on a real dev server whose limits are set low (its
dynamic config), with a stub ``run_task`` at the workflow/host seam; the second a mission on
a real host with the real Codex, through `run --temporal`."""

from __future__ import annotations

import asyncio
import collections
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


@pytest.mark.codex
def test_a_mission_continued_as_new_runs_on_a_real_host_each_task_once(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    limits = ("limit.historyCount.suggestContinueAsNew=30",)
    with temporal_rig(tmp_path / "rig", cli_env, dynamic=limits) as rig:
        rig.start_host("A", workers=3)
        tasks = [appending(f"a{i}", 0) for i in range(8)]
        tasks[5]["depends_on"] = ["a4"]
        path = mission(tmp_path / "grow.yaml", tasks)
        proc = run_cli(["run", str(path), "--json", *rig.flags()], cli_env)
        assert proc.returncode == 0, proc.stderr
        summary = summary_of(proc)

        async def count_runs() -> int:
            client = await connect(TemporalSettings(rig.server.address))
            # The first run of the workflow: the oldest execution with the run's id.
            found = [w async for w in client.list_workflows(f"WorkflowId = '{summary['run_id']}'")]
            first = min(found, key=lambda w: w.start_time)
            handle = client.get_workflow_handle(summary["run_id"], run_id=first.run_id)
            return len(await runs_of(client, handle))

        runs = asyncio.run(count_runs())
    assert [t["status"] for t in summary["tasks"]] == ["ok"] * 8
    lines = (tmp_path / "ws" / "lines.txt").read_text().split()
    assert sorted(lines) == sorted(f"a{i}" for i in range(8))  # each task ran once
    assert runs >= 2, "the workflow did not continue as new"
    by_id = {t["task_id"]: t for t in summary["tasks"]}
    assert by_id["a5"]["started_at"] >= by_id["a4"]["finished_at"]
    run_dir = Path(summary["run_dir"])
    for i in range(8):
        assert "turn/completed" in (run_dir / "tasks" / f"a{i}" / "events.jsonl").read_text()
