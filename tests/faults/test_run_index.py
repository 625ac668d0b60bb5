"""The run index (``state.db``) is rebuilt, never lost: the run folders are the truth. Real runs
(the real Codex on the scripted model, one of them killed with SIGKILL), then ``state.db``
truncated to 0 bytes, overwritten with garbage, its pages damaged or deleted: ``runs list``,
``runs show`` and ``resume`` still find every run, with one line saying the index was rebuilt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from codex_mcp_wrapper.engine.events import RunStarted, TaskFinished, ThreadProgress
from codex_mcp_wrapper.engine.recorder import RunRecorder
from codex_mcp_wrapper.engine.redaction import Redactor
from codex_mcp_wrapper.engine.results import TaskResult
from codex_mcp_wrapper.engine.store import RunStore
from tests.helpers.procs import wait_gone, wait_until
from tests.test_read_only_state import read_only

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "codex_mcp_wrapper"]
CLI_TIMEOUT = 180
NOTICE = "notice: rebuilt the run index from 2 run folder(s)"


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def damage(db: Path, how: str) -> None:
    for log in (db.with_name("state.db-wal"), db.with_name("state.db-shm")):
        log.unlink(missing_ok=True)
    if how == "truncate":
        db.write_bytes(b"")
    elif how == "garbage":
        db.write_bytes(b"this is not a database\n" * 200)
    elif how == "damaged":  # a valid header over garbage pages: "disk image is malformed"
        data = db.read_bytes()
        db.write_bytes(data[:100] + b"Z" * (len(data) - 100))
    else:
        db.unlink()


def a_finished_run(tmp_path: Path, env: dict[str, str]) -> dict[str, object]:
    mission = {
        "mission_id": "finished",
        "workspace_root": str(tmp_path / "ws"),
        "provider": "scripted",
        "tasks": [{"id": "only", "prompt": "1", "script": [{"say": "only done"}]}],
    }
    path = tmp_path / "finished.json"
    path.write_text(json.dumps(mission))
    done = cli(["run", str(path), "--json"], env)
    assert done.returncode == 0, done.stderr
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def a_killed_run(tmp_path: Path, env: dict[str, str], state_dir: Path) -> str:
    """A run whose wrapper is killed (SIGKILL) while its second task's command runs."""
    mission = {
        "mission_id": "killed",
        "workspace_root": str(tmp_path / "ws"),
        "provider": "scripted",
        "defaults": {"sandbox": "workspace-write"},
        "tasks": [
            {"id": "first", "prompt": "1", "script": [{"say": "first done"}]},
            {
                "id": "slow",
                "prompt": "2",
                "depends_on": ["first"],
                "script": [{"shell": "sleep 30"}, {"say": "finished after resume"}],
            },
        ],
    }
    path = tmp_path / "killed.json"
    path.write_text(json.dumps(mission))
    proc = subprocess.Popen(
        [*CLI, "run", str(path)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def slow_runs_its_command() -> bool:
        events = list(state_dir.glob("runs/*/tasks/slow/events.jsonl"))
        return bool(events) and '"type": "commandExecution"' in events[0].read_text()

    try:
        assert wait_until(slow_runs_its_command, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert wait_gone([proc.pid], timeout=10)
    (run_dir,) = [p for p in (state_dir / "runs").iterdir() if (p / "tasks" / "slow").is_dir()]
    return run_dir.name


@pytest.mark.parametrize("how", ["truncate", "garbage", "damaged", "delete"])
def test_a_damaged_state_db_is_rebuilt_from_the_run_folders_and_no_run_is_lost(
    how: str, tmp_path: Path, cli_env: dict[str, str], state_dir: Path
) -> None:
    finished = a_finished_run(tmp_path, cli_env)
    killed = a_killed_run(tmp_path, cli_env, state_dir)
    with RunStore.reader(state_dir) as store:
        rows_before = {r["task_id"]: r for r in store.task_rows(killed)}
        first_before = store.task_results(killed)["first"]
    assert rows_before["slow"]["thread_id"]

    damage(state_dir / "state.db", how)
    listed = cli(["runs", "list", "--json"], cli_env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.startswith(NOTICE) and listed.stderr.count("\n") == 1, listed.stderr
    runs = {r["run_id"]: r for r in json.loads(listed.stdout)}
    assert runs[finished["run_id"]]["status"] == "ok"
    assert runs[killed]["status"] == "interrupted"
    if how in ("garbage", "damaged"):  # kept aside for a post-mortem, not deleted
        assert "kept as state.db.corrupt-" in listed.stderr
        assert list(state_dir.glob("state.db.corrupt-*"))

    shown = cli(["runs", "show", str(finished["run_id"]), "--json"], cli_env)
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr
    assert json.loads(shown.stdout) == finished  # the summary, exactly as the run printed it

    resumed = cli(["resume", killed, "--json"], cli_env)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    tasks = {t["task_id"]: t for t in summary["tasks"]}
    assert summary["run_id"] == killed and summary["status"] == "ok"
    assert tasks["first"] == first_before.model_dump(mode="json")  # kept, not run again
    assert tasks["slow"]["thread_id"] == rows_before["slow"]["thread_id"]  # its thread continued
    assert tasks["slow"]["final_message"] == "finished after resume"


def record_two_runs(state_dir: Path) -> None:
    """Two runs recorded by the real recorder (no Codex needed): one task finished, one with a
    thread and no result yet."""
    with RunStore(state_dir) as store:
        recorder = RunRecorder(store, Redactor([]))
        for run_id in ("20260101-000000-aaaaaa", "20260101-000001-bbbbbb"):
            mission = {"mission_id": "m", "tasks": [{"id": "a"}, {"id": "b"}]}
            recorder(RunStarted(run_id, "m", mission, ("a", "b"), "/ws", owner="alice"))
            result = TaskResult(task_id="a", index=0, status="ok", final_message="A")
            recorder(TaskFinished(run_id, result))
            recorder(ThreadProgress(run_id, "b", f"thread-{run_id}", "w1", 1))
        recorder.close()


def test_a_read_only_state_dir_with_an_empty_index_lists_its_runs_from_the_folders(
    state_dir: Path,
) -> None:
    record_two_runs(state_dir)
    damage(state_dir / "state.db", "truncate")
    before = sorted(p.name for p in state_dir.rglob("*"))
    env = {**os.environ, "CODEX_MCP_WRAPPER_HOME": str(state_dir)}
    listed = read_only(state_dir, [*CLI, "runs", "list", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.startswith(NOTICE) and "in memory only" in listed.stderr
    # recorded by this test's process, which lives: its pid in run.json says they run
    assert {r["status"] for r in json.loads(listed.stdout)} == {"running"}
    shown = read_only(state_dir, [*CLI, "runs", "show", "20260101-000001-bbbbbb", "--json"], env)
    assert shown.returncode == 0, shown.stderr
    tasks = {t["task_id"]: t for t in json.loads(shown.stdout)["tasks"]}
    assert tasks["a"]["status"] == "ok" and tasks["a"]["result"]["final_message"] == "A"
    assert tasks["b"]["thread_id"] == "thread-20260101-000001-bbbbbb"
    assert tasks["b"]["turns_done"] == 1 and tasks["b"]["worker"] == "w1"
    assert sorted(p.name for p in state_dir.rglob("*")) == before  # nothing written


def test_a_writer_puts_back_only_the_runs_the_index_lacks_and_says_nothing_otherwise(
    state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record_two_runs(state_dir)
    with RunStore(state_dir) as store:
        store.db.execute("DELETE FROM runs WHERE run_id = '20260101-000000-aaaaaa'")
        store.db.execute("DELETE FROM tasks WHERE run_id = '20260101-000000-aaaaaa'")
    with caplog.at_level("WARNING", logger="codex_mcp_wrapper.store"):
        with RunStore(state_dir) as store:
            assert {r["run_id"] for r in store.list_runs()} == {
                "20260101-000000-aaaaaa",
                "20260101-000001-bbbbbb",
            }
            assert store.task_results("20260101-000000-aaaaaa")["a"].final_message == "A"
            # an MCP client's run stays that client's: its owner is in the folder too
            assert store.run_owner("20260101-000000-aaaaaa") == (True, "alice")
            assert store.thread_origin("thread-20260101-000000-aaaaaa") == (
                "20260101-000000-aaaaaa",
                "b",
                "w1",
            )
        with RunStore(state_dir):
            pass
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1 and "from 1 run folder(s)" in notices[0], notices
    assert "state.db was missing some runs" in notices[0]
