"""Benchmark: how large a mission the workflow carries, against Temporal's limits.

A mission of N one-turn tasks runs as ``MissionWorkflow`` on a real Temporal dev server; its
``run_task`` activity is a stub at the workflow/host seam that answers at once with an
outcome the size a real one-turn task has (a final message, a command with its output, a
check, usage), so the workflow's own costs show without Codex: its input, its history in
bytes and events per task, how many runs (continue-as-new generations) it took, and the
largest single payload, against the limits a Temporal server enforces by default (a payload
over 2 MB, a history over 50 MB or 51,200 events, over 2,000 activities pending at once).

    python bench/bench_temporal_scale.py [--tasks 10000] [--deps chain|none]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Worker

from codex_mcp_wrapper.engine.planning import plan_tasks
from codex_mcp_wrapper.engine.seams import TaskOutcome, TaskRequest
from codex_mcp_wrapper.missions.checks import CheckResult, CommandRecord
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.settings import TemporalSettings
from codex_mcp_wrapper.temporal.connect import connect, sandbox_runner
from codex_mcp_wrapper.temporal.devserver import DevServer
from codex_mcp_wrapper.temporal.workflow import RUN_TASK, MissionInput, MissionWorkflow


@activity.defn(name=RUN_TASK)
async def stub_task(request: TaskRequest) -> TaskOutcome:
    """A one-turn task's outcome, at once."""
    return TaskOutcome(
        status="ok",
        final_message=f"Task {request.task_id} is done: the tests pass and the file is written.",
        thread_id=str(uuid.uuid4()),
        worker="host-1/w1",
        turns_done=1,
        turns_started=1,
        turn_ids=[str(uuid.uuid4())],
        usage={"input_tokens": 1200, "cached_input_tokens": 0, "output_tokens": 80},
        commands=[CommandRecord(command="pytest -q", exit_code=0, status="completed")],
        checks=[CheckResult(name="file_exists", ok=True, expected="notes.txt", observed="exists")],
    )


def mission(count: int, deps: str) -> Mission:
    tasks: list[dict[str, Any]] = []
    for i in range(count):
        task: dict[str, Any] = {"id": f"t{i}", "prompt": f"task {i}: write notes.txt"}
        if deps == "chain" and i % 100:
            task["depends_on"] = [f"t{i - 1}"]
        tasks.append(task)
    return Mission.model_validate(
        {"mission_id": "big", "workspace_root": "/tmp/ws", "provider": "scripted", "tasks": tasks}
    )


async def history(client: Client, run_id: str, first: str | None) -> list[tuple[int, int]]:
    """(bytes as JSON, events) of each run of the workflow, first to last."""
    sizes = []
    run = first
    while run:
        fetched = await client.get_workflow_handle(run_id, run_id=run).fetch_history()
        sizes.append((len(fetched.to_json()), len(fetched.events)))
        last = fetched.events[-1]
        attrs = last.workflow_execution_continued_as_new_event_attributes
        run = attrs.new_execution_run_id or None
    return sizes


async def measure(address: str, count: int, deps: str, within: float) -> None:
    client = await connect(TemporalSettings(address))
    planned = plan_tasks(mission(count, deps), Path("/tmp/ws"), Path("/tmp/run"))
    spec = MissionInput(
        run_id=f"big-{uuid.uuid4().hex[:6]}",
        tasks=[replace(t, spec=replace(t.spec, config={})) for t in planned],
        task_queue=f"q-{uuid.uuid4().hex[:6]}",
    )
    async with Worker(
        client,
        task_queue=spec.task_queue,
        workflows=[MissionWorkflow],
        activities=[stub_task],
        workflow_runner=sandbox_runner(),
        max_concurrent_activities=200,
    ):
        started = time.perf_counter()
        handle = await client.start_workflow(
            MissionWorkflow.run, spec, id=spec.run_id, task_queue=spec.task_queue
        )
        try:
            async with asyncio.timeout(within):
                output = await handle.result()
            outcome = f"{sum(r.status == 'ok' for r in output.results)} of {count} ok"
        except WorkflowFailureError as exc:
            outcome = f"failed: {exc.cause or exc}"
        except TimeoutError:
            outcome = f"not done after {within:g} s (a limit hit: see the server's log)"
        wall = time.perf_counter() - started
    desc = await handle.describe()
    runs = await history(client, spec.run_id, handle.first_execution_run_id)
    total = sum(b for b, _ in runs)
    events = sum(e for _, e in runs)
    print(f"{count} tasks ({deps} deps): {outcome} in {wall:.1f} s; status {desc.status.name}")
    print(
        f"  {len(runs)} run(s); history {total / 1e6:.2f} MB, {events:,} events in all "
        f"({total / count / 1000:.2f} kB, {events / count:.2f} events per task); "
        f"largest run {max(b for b, _ in runs) / 1e6:.2f} MB, {max(e for _, e in runs):,} events"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--deps", choices=["none", "chain"], default="none")
    parser.add_argument("--within", type=float, default=900, help="seconds to wait for the end")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp,
        DevServer(Path(tmp) / "temporal.db", log=Path(tmp) / "temporal.log") as server,
    ):
        asyncio.run(measure(server.address, args.tasks, args.deps, args.within))


if __name__ == "__main__":
    main()
