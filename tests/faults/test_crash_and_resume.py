"""kill -9 of the wrapper mid-mission, then `resume`: nothing finished is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from codex_mcp_wrapper.engine.store import RunStore
from tests.helpers.procs import codex_processes, environ, wait_gone, wait_until

REPO = Path(__file__).resolve().parents[2]


def ours(state_dir: Path) -> list[int]:
    return [p for p in codex_processes() if str(state_dir) in environ(p).get("CODEX_HOME", "")]


def test_kill_9_mid_mission_then_resume_finishes_it_with_earlier_results_intact(
    tmp_path: Path, cli_env: dict[str, str], state_dir: Path
) -> None:
    slow = [{"shell": "sleep 20"}, {"say": "finished after resume"}]
    mission = {
        "mission_id": "five",
        "workspace_root": str(tmp_path / "ws"),
        "provider": "scripted",
        "defaults": {"sandbox": "workspace-write"},
        "tasks": [
            {"id": "one", "prompt": "1", "script": [{"say": "one done"}]},
            {"id": "two", "prompt": "2", "script": [{"say": "two done"}]},
            {
                "id": "three",
                "prompt": "3",
                "depends_on": ["one", "two"],
                "script": slow,
                "follow_ups": ["and then?"],
            },
            {"id": "four", "prompt": "4", "depends_on": ["three"]},
            {"id": "five", "prompt": "5", "depends_on": ["four"]},
        ],
    }
    path = tmp_path / "five.json"
    path.write_text(json.dumps(mission))
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(path), "--workers", "2"],
        env=cli_env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def three_is_running_its_command() -> bool:
        for events in state_dir.glob("runs/*/tasks/three/events.jsonl"):
            if '"type": "commandExecution"' in events.read_text():
                return True
        return False

    try:
        assert wait_until(three_is_running_its_command, timeout=60)
        workers = ours(state_dir)
        assert workers
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert wait_gone(workers, timeout=10), "workers outlived the wrapper"

    store = RunStore(state_dir)  # opening the store marks the dead run interrupted
    try:
        (run,) = store.list_runs()
        assert run["status"] == "interrupted"
        before = store.task_results(run["run_id"])
        rows = {r["task_id"]: r for r in store.task_rows(run["run_id"])}
    finally:
        store.close()
    assert {k: v.status for k, v in before.items()} == {"one": "ok", "two": "ok"}
    assert rows["three"]["thread_id"] and rows["three"]["status"] == "interrupted"

    resumed = subprocess.run(
        [sys.executable, "-m", "codex_mcp_wrapper", "resume", run["run_id"], "--json"],
        env=cli_env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["run_id"] == run["run_id"] and summary["status"] == "ok"
    tasks = {t["task_id"]: t for t in summary["tasks"]}
    assert list(tasks) == ["one", "two", "three", "four", "five"]
    for task_id in ("one", "two"):  # kept exactly as they were
        assert tasks[task_id] == before[task_id].model_dump(mode="json")
    three = tasks["three"]
    assert three["thread_id"] == rows["three"]["thread_id"]  # the same Codex thread, continued
    assert three["final_message"] == "echo: and then?" and three["turns_done"] == 2
    assert tasks["five"]["final_message"] == "echo: 5"
    assert os.path.exists(Path(summary["run_dir"]) / "summary.json")


def test_a_killed_wrapper_not_yet_reaped_shows_interrupted_and_can_be_resumed(
    tmp_path: Path, cli_env: dict[str, str], state_dir: Path
) -> None:
    mission = {
        "mission_id": "zombie",
        "workspace_root": str(tmp_path / "ws"),
        "provider": "scripted",
        "tasks": [{"id": "slow", "prompt": "go", "script": [{"hang": 60}]}],
    }
    path = tmp_path / "zombie.json"
    path.write_text(json.dumps(mission))
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(path)],
        env=cli_env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: bool(list(state_dir.glob("runs/*/mission.json"))), timeout=60)
        assert wait_until(lambda: bool(ours(state_dir)), timeout=60)
        workers = ours(state_dir)
        os.kill(proc.pid, signal.SIGKILL)
        assert wait_gone(workers, timeout=10), "workers outlived the wrapper"

        def zombie() -> bool:  # not reaped: the wrapper's pid still exists, as a zombie
            return Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[1].startswith("Z")

        assert wait_until(zombie, timeout=10)
        listed = subprocess.run(
            [sys.executable, "-m", "codex_mcp_wrapper", "runs", "list", "--json"],
            env=cli_env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        (run,) = json.loads(listed.stdout)
        assert run["status"] == "interrupted"
        with RunStore.reader(state_dir) as store:
            from codex_mcp_wrapper.engine.resume import resume_plan

            mission_again, _ = resume_plan(store, run["run_id"])  # not "still running"
        assert mission_again.mission_id == "zombie"
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.mark.anyio
async def test_a_run_cancelled_while_its_workers_start_is_recorded_as_cancelled(
    tmp_path: Path, state_dir: Path
) -> None:
    import asyncio

    from codex_mcp_wrapper.app import open_runs
    from codex_mcp_wrapper.missions.loading import parse_mission
    from codex_mcp_wrapper.settings import Settings

    marker = tmp_path / "spawned"
    stuck = tmp_path / "codex"  # a Codex that starts but never answers its handshake
    stuck.write_text(f"#!/bin/sh\necho up > {marker}\nexec sleep 600\n")
    stuck.chmod(0o755)
    mission = parse_mission(
        {
            "mission_id": "stuck",
            "workspace_root": str(tmp_path / "ws"),
            "provider": "scripted",
            "tasks": [{"id": "a", "prompt": "A"}],
        }
    )
    async with open_runs(Settings(state_dir=state_dir, codex_bin=str(stuck), workers=1)) as runs:
        run_id = runs.start(mission)
        assert await asyncio.to_thread(wait_until, marker.exists, 30)
        await runs.cancel(run_id)
        status = runs.status(run_id)
    assert status.status == "cancelled" and status.summary is not None, status
    assert [t.status for t in status.summary.tasks] == ["cancelled"]
    with RunStore.reader(state_dir) as store:
        assert store.require_run(run_id)["status"] == "cancelled"


def test_a_command_cut_short_by_kill_9_is_told_to_the_model_and_kept_as_evidence_on_resume(
    tmp_path: Path, cli_env: dict[str, str], state_dir: Path
) -> None:
    """Codex's own record of a thread whose process died says the user interrupted it on
    purpose ("aborted by user"); the resumed task is told the truth, and the command that was
    running is in its result (and its checks) as ``interrupted``. The command appended its
    line before the kill and is not run again: the line is there once."""
    command = "echo line >> log.txt; sleep 30"
    ws = tmp_path / "ws"
    mission = {
        "mission_id": "append",
        "workspace_root": str(ws),
        "provider": "scripted",
        "defaults": {"sandbox": "workspace-write"},
        "tasks": [
            {
                "id": "append",
                "prompt": "Append a line to log.txt.",
                "script": [{"shell": command}, {"say": "resumed with: {prompt}"}],
                "expect": {"commands": [{"pattern": "sleep 30"}]},
            }
        ],
    }
    path = tmp_path / "append.json"
    path.write_text(json.dumps(mission))
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(path)],
        env=cli_env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def the_command_runs() -> bool:
        events = list(state_dir.glob("runs/*/tasks/append/events.jsonl"))
        return bool(events) and '"type": "commandExecution"' in events[0].read_text()

    try:
        assert wait_until(the_command_runs, timeout=60)
        assert wait_until(lambda: (ws / "log.txt").exists(), timeout=30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    (run_dir,) = (state_dir / "runs").iterdir()

    resumed = subprocess.run(
        [sys.executable, "-m", "codex_mcp_wrapper", "resume", run_dir.name, "--json"],
        env=cli_env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stderr
    (task,) = json.loads(resumed.stdout)["tasks"]
    told = task["final_message"]  # the scripted model says the prompt it was given
    assert "cut short by a crash of the wrapper" in told and "(not by the user)" in told
    assert f"while the command `{command}` was running" in told and "did not complete" in told
    assert told.endswith("Append a line to log.txt.")
    assert {"command": command, "exit_code": None, "status": "interrupted"} in task["commands"]
    assert [c["ok"] for c in task["checks"]] == [True]  # the check saw it
    assert (ws / "log.txt").read_text() == "line\n"  # once: it was not run again
    events = (run_dir / "tasks" / "append" / "events.jsonl").read_text()
    assert '"method": "wrapper/interrupted"' in events
