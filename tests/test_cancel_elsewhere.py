"""Cancelling a run, or one running task of it, that another process drives (`run` in a
subprocess, the real Codex on the scripted model): through the run's control endpoint, from
the CLI (`runs cancel RUN_ID [--task ID]`) and from the UI's page in a third process. The task
ends ``cancelled``, its dependents are skipped, the others go on, the run ends, and no Codex
process of it outlives it. Every wait is on an event (the task's command opening a fifo, the
process exiting, a selector on the page)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from codex_mcp_wrapper.engine.cancels import CANCELLED_ON_REQUEST
from codex_mcp_wrapper.engine.control import LOOPBACK, Controls, ask, listening
from tests.helpers.cli import CLI_TIMEOUT, REPO, run_cli
from tests.helpers.procs import codex_processes, wait_gone
from tests.test_steer import GATE_TIMEOUT, gate_opened
from tests.test_ui import LIVE, browser, ui_url  # noqa: F401 - the fixtures

STOPPED = 30.0  # seconds for a cancelled run's Codex processes to be gone


def held_mission(tmp_path: Path) -> tuple[Path, Path]:
    """A mission whose task ``held`` runs a command waiting on a fifo (so it is running a turn
    once the fifo opens), ``after`` depending on it and ``free`` on its own; and the fifo."""
    ws = tmp_path / "ws"
    ws.mkdir()
    os.mkfifo(ws / "gate.fifo")
    mission = {
        "mission_id": "cancel-elsewhere",
        "workspace_root": str(ws),
        "provider": "scripted",
        "defaults": {"sandbox": "workspace-write", "timeout_sec": 180},
        "tasks": [
            {
                "id": "held",
                "prompt": "Wait for the gate.",
                "script": [{"shell": "cat gate.fifo"}, {"say": "too late"}],
            },
            {"id": "after", "prompt": "p", "depends_on": ["held"], "script": [{"say": "no"}]},
            {"id": "free", "prompt": "p", "script": [{"say": "fine"}]},
        ],
    }
    path = tmp_path / "mission.yaml"
    path.write_text(yaml.safe_dump(mission))
    return path, ws / "gate.fifo"


@contextmanager
def running(mission: Path, cli_env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """`run MISSION --json` in a process of its own; killed if the test leaves it going."""
    run = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(mission), "--json"],
        env=cli_env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield run
    finally:
        run.kill()
        run.communicate()


def run_id_of(state_dir: Path) -> str:
    (control,) = state_dir.glob("runs/*/control.json")  # the run is going on
    return control.parent.name


def ended(run: subprocess.Popen[str]) -> dict[str, object]:
    """The summary `run --json` printed, once it exited."""
    out, err = run.communicate(timeout=CLI_TIMEOUT)
    assert "Traceback" not in err, err
    summary = json.loads(out)
    assert isinstance(summary, dict)
    return summary


def statuses(summary: dict[str, object]) -> dict[str, str]:
    tasks = summary["tasks"]
    assert isinstance(tasks, list)
    return {t["task_id"]: t["status"] for t in tasks}


def test_runs_cancel_task_cancels_one_running_task_of_a_run_in_another_process(
    tmp_path: Path, state_dir: Path, cli_env: dict[str, str]
) -> None:
    mission, fifo = held_mission(tmp_path)
    with running(mission, cli_env) as run, gate_opened(fifo, GATE_TIMEOUT):
        run_id = run_id_of(state_dir)
        workers = codex_processes(mine=True)
        assert workers
        wrong = run_cli(["runs", "cancel", run_id, "--task", "nope"], cli_env)
        assert (wrong.returncode, wrong.stderr.strip()) == (
            2,
            f"error: run {run_id} has no task 'nope' (tasks: held, after, free).",
        )
        waiting = run_cli(["runs", "cancel", run_id, "--task", "after"], cli_env)
        assert waiting.returncode == 1
        assert waiting.stderr.strip() == (
            f"error: task 'after' of run {run_id} is not running (it is queued, waiting on "
            "its dependencies, or done), so there is nothing to cancel."
        )
        done = run_cli(["runs", "cancel", run_id, "--task", "held"], cli_env)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"cancelled task held of run {run_id}.\n"
        summary = ended(run)
    assert run.returncode == 1
    assert statuses(summary) == {"held": "cancelled", "after": "skipped", "free": "ok"}
    assert summary["status"] == "failed"
    tasks = summary["tasks"]
    assert isinstance(tasks, list) and tasks[0]["error"] == CANCELLED_ON_REQUEST
    assert wait_gone(workers, STOPPED)
    again = run_cli(["runs", "cancel", run_id], cli_env)
    assert (again.returncode, again.stderr.strip()) == (
        1,
        f"error: run {run_id} is not going on in any wrapper, so there is nothing to cancel.",
    )


def test_runs_cancel_cancels_a_whole_run_another_process_drives(
    tmp_path: Path, state_dir: Path, cli_env: dict[str, str]
) -> None:
    mission, fifo = held_mission(tmp_path)
    with running(mission, cli_env) as run, gate_opened(fifo, GATE_TIMEOUT):
        run_id = run_id_of(state_dir)
        workers = codex_processes(mine=True)
        done = run_cli(["runs", "cancel", run_id], cli_env)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"cancelled run {run_id} (cancelled).\n"
        summary = ended(run)
    assert run.returncode == 130
    assert summary["status"] == "cancelled"
    assert statuses(summary)["held"] == "cancelled"
    assert wait_gone(workers, STOPPED)


def test_the_page_of_another_process_cancels_a_running_task_of_a_run(
    tmp_path: Path,
    state_dir: Path,
    cli_env: dict[str, str],
    ui_url: str,  # noqa: F811 - the fixture
    browser: object,  # noqa: F811 - the fixture
) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    mission, fifo = held_mission(tmp_path)
    with running(mission, cli_env) as run, gate_opened(fifo, GATE_TIMEOUT):
        run_id = run_id_of(state_dir)
        workers = codex_processes(mine=True)
        page = browser.new_page()
        page.goto(f"{ui_url}/runs/{run_id}")
        page.wait_for_selector('tr[data-task="held"] .status.running', timeout=LIVE)
        page.get_by_role("button", name="Cancel task held").click()
        said = page.wait_for_selector("p[role=status]", timeout=LIVE).inner_text()
        assert said == "cancelled task held", said
        page.wait_for_selector("#run-status.failed", timeout=LIVE)  # the run ended
        summary = ended(run)
    assert run.returncode == 1
    assert statuses(summary) == {"held": "cancelled", "after": "skipped", "free": "ok"}
    assert page.inner_text('tr[data-task="held"] .status') == "cancelled"
    assert page.inner_text('tr[data-task="after"] .status') == "skipped"
    assert wait_gone(workers, STOPPED)


@pytest.mark.anyio
async def test_the_control_endpoint_cancels_only_for_its_token_and_known_requests(
    tmp_path: Path,
) -> None:
    done: list[str | None] = []

    async def steer(task_id: str, text: str) -> str:
        return "turn-1"

    async def cancel_task(task_id: str) -> None:
        done.append(task_id)

    async def cancel_run() -> bool:
        done.append(None)
        return True

    async with listening(tmp_path, Controls(steer, cancel_task, cancel_run), STOPPED):
        assert await ask(tmp_path, {"op": "cancel", "task_id": "a"}, STOPPED) == {"cancelled": True}
        assert await ask(tmp_path, {"op": "cancel"}, STOPPED) == {"cancelled": True}
        odd = await ask(tmp_path, {"op": "cancel", "task_id": 3}, STOPPED)
        assert odd is not None and odd["error"] == "unknown control request."
        port = json.loads((tmp_path / "control.json").read_text())["port"]
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        writer.write(json.dumps({"token": "guessed", "op": "cancel"}).encode() + b"\n")
        refused = json.loads(await reader.readline())
        writer.close()
        assert refused["error"] == "not a control request of this run."
    assert done == ["a", None]  # the refused requests cancelled nothing
    assert await ask(tmp_path, {"op": "cancel"}, STOPPED) is None  # the run ended: no file
