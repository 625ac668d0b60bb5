"""Cancelling one task of a run on Temporal hosts: `runs cancel RUN_ID --task ID` reaches the
submitter's control endpoint, which signals the workflow (``cancel_task``); the workflow's
runner cancels that task's activity, the host stops its Codex turn, and the other tasks go on.
A real dev server, a real host process, the real Codex on the scripted model; the workflow's
history, signal included, replays."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from temporalio.worker import Replayer

from codex_mcp_wrapper.engine.cancels import CANCELLED_ON_REQUEST
from codex_mcp_wrapper.temporal.connect import DATA_CONVERTER, sandbox_runner
from codex_mcp_wrapper.temporal.workflow import MissionWorkflow
from tests.helpers.cli import run_cli
from tests.helpers.procs import wait_until
from tests.helpers.temporal import Rig
from tests.test_cancel_elsewhere import ended, run_id_of, statuses
from tests.test_temporal import history_text, mission, rig, start_run  # noqa: F401 - rig

RUNNING_WITHIN = 60.0  # seconds for the host to start the task's turn


def task_running(rig: Rig, task_id: str) -> bool:  # noqa: F811 - the fixture's name
    return any(
        '"status":"running"' in line and f'"task_id":"{task_id}"' in line for line in rig.events()
    )


def test_runs_cancel_task_stops_one_task_on_its_host_and_the_others_go_on(
    rig: Rig,  # noqa: F811 - the fixture
    tmp_path: Path,
    state_dir: Path,
    cli_env: dict[str, str],
) -> None:
    rig.start_host("A")
    tasks: list[dict[str, Any]] = [
        {"id": "held", "prompt": "take a minute", "script": [{"delay": 60.0}, {"say": "never"}]},
        {"id": "after", "prompt": "then", "depends_on": ["held"]},
        {"id": "free", "prompt": "meanwhile"},
    ]
    path = mission(tmp_path / "one.yaml", tasks, idle_timeout_sec=120)
    submit = start_run(rig, path, cli_env)
    try:
        assert wait_until(lambda: task_running(rig, "held"), RUNNING_WITHIN)
        run_id = run_id_of(state_dir)
        waiting = run_cli(["runs", "cancel", run_id, "--task", "after"], cli_env)
        assert (waiting.returncode, waiting.stderr.strip()) == (
            1,
            f"error: task 'after' of run {run_id} is not running (it is queued, waiting on "
            "its dependencies, or done), so there is nothing to cancel.",
        )
        done = run_cli(["runs", "cancel", run_id, "--task", "held"], cli_env)
        assert (done.returncode, done.stdout) == (0, f"cancelled task held of run {run_id}.\n")
        summary = ended(submit)
    finally:
        if submit.poll() is None:
            submit.kill()
            submit.communicate()
    assert submit.returncode == 1
    assert statuses(summary) == {"held": "cancelled", "after": "skipped", "free": "ok"}
    tasks_done = summary["tasks"]
    assert isinstance(tasks_done, list) and tasks_done[0]["error"] == CANCELLED_ON_REQUEST
    history, parsed = history_text(rig, run_id)
    kinds = [e["eventType"] for e in json.loads(history)["events"]]
    assert kinds.count("EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED") == 1
    # The host acknowledged the cancel of the one activity: it stopped that Codex turn.
    assert kinds.count("EVENT_TYPE_ACTIVITY_TASK_CANCELED") == 1, kinds
    assert kinds.count("EVENT_TYPE_ACTIVITY_TASK_COMPLETED") == 1  # free's
    asyncio.run(
        Replayer(
            workflows=[MissionWorkflow],
            workflow_runner=sandbox_runner(),
            data_converter=DATA_CONVERTER,
        ).replay_workflow(parsed)
    )
    assert rig.stop_host("A") == 0
