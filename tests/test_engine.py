"""The core engine with the real Codex binary and the scripted model: pool, runner, store."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from codex_mcp_wrapper.app import run_mission
from codex_mcp_wrapper.engine.events import Event, ModelRequest
from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.settings import Settings
from tests.helpers.missions import scripted_mission
from tests.helpers.procs import codex_pids_with_home

pytestmark = pytest.mark.anyio


def _settings(state_dir: Path, codex_bin: str, workers: int = 2) -> Settings:
    """One Codex process per task: these tests are about separate workers and homes (tasks
    sharing a process are tests/test_multiplexing.py's)."""
    return Settings(state_dir=state_dir, codex_bin=codex_bin, workers=workers, threads_per_worker=1)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_three_tasks_with_a_dependency_run_on_two_workers_with_separate_homes(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    mission = scripted_mission(
        workspace,
        [
            {"id": "a", "prompt": "A", "script": [{"delay": 0.3}, {"say": "from a"}]},
            {"id": "b", "prompt": "B", "script": [{"delay": 0.3}, {"say": "from b"}]},
            {"id": "c", "prompt": "C", "depends_on": ["a", "b"], "script": [{"say": "from c"}]},
        ],
    )
    summary = await run_mission(mission, _settings(state_dir, codex_bin))
    assert summary.status == "ok" and summary.exit_code == 0
    results = {t.task_id: t for t in summary.tasks}
    assert [results[k].final_message for k in "abc"] == ["from a", "from b", "from c"]
    assert {results["a"].worker, results["b"].worker} == {"w1", "w2"}
    assert results["c"].started_at >= max(results["a"].finished_at, results["b"].finished_at)
    homes = {label: state_dir / "workers" / label / "codex-home" for label in ("w1", "w2")}
    for task in results.values():
        own, other = homes[task.worker], homes["w2" if task.worker == "w1" else "w1"]
        assert any(task.thread_id in str(p) for p in _files(own))
        for path in _files(other):
            assert task.thread_id not in str(path)
            assert task.thread_id not in path.read_text(errors="replace"), path


async def test_a_write_in_workspace_write_lands_and_one_in_read_only_is_refused(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    mission = scripted_mission(
        workspace,
        [
            {
                "id": "writer",
                "prompt": "w",
                "sandbox": "workspace-write",
                "script": [{"shell": "echo written > out.txt"}, {"say": "ok"}],
                "artifacts": ["*.txt"],
            },
            {
                "id": "reader",
                "prompt": "r",
                "sandbox": "read-only",
                "depends_on": ["writer"],
                "script": [{"shell": "echo nope > refused.txt"}, {"say": "{last_output}"}],
            },
        ],
    )
    summary = await run_mission(mission, _settings(state_dir, codex_bin))
    results = {t.task_id: t for t in summary.tasks}
    assert (workspace / "out.txt").read_text() == "written\n"
    assert not (workspace / "refused.txt").exists()
    assert "Read-only file system" in (results["reader"].final_message or "")
    assert results["writer"].artifacts == ["out.txt"]
    copied = Path(summary.run_dir or "") / "tasks" / "writer" / "artifacts" / "out.txt"
    assert copied.read_text() == "written\n"


async def test_follow_ups_continue_the_same_thread(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    mission = scripted_mission(
        workspace,
        [
            {
                "id": "chat",
                "prompt": "first",
                "follow_ups": ["second", "third"],
                "script": [{"say": "one"}, {"say": "two: {prompt}"}],
            }
        ],
    )
    summary = await run_mission(mission, _settings(state_dir, codex_bin, workers=1))
    (task,) = summary.tasks
    assert task.status == "ok" and task.turns_done == 3
    assert task.final_message == "echo: third"
    records = [
        json.loads(x)
        for x in (Path(summary.run_dir or "") / "model-requests.jsonl").read_text().splitlines()
    ]
    assert {r["headers"]["thread-id"] for r in records} == {task.thread_id}
    prompts = [
        i["content"][0]["text"]
        for i in records[-1]["body"]["input"]
        if i.get("role") == "user" and i["content"][0]["text"] in ("first", "second", "third")
    ]
    assert prompts == ["first", "second", "third"]
    events = (Path(summary.run_dir or "") / "tasks" / "chat" / "events.jsonl").read_text()
    assert events.count('"method": "turn/completed"') == 3


async def test_a_hanging_task_times_out_by_the_idle_deadline_while_the_others_finish(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    mission = scripted_mission(
        workspace,
        [
            {
                "id": "stuck",
                "prompt": "s",
                "idle_timeout_sec": 1.5,
                "retries": 0,
                "script": [{"hang": 120}],
            },
            {"id": "fine-1", "prompt": "x"},
            {"id": "fine-2", "prompt": "y"},
        ],
    )
    summary = await run_mission(mission, _settings(state_dir, codex_bin))
    results = {t.task_id: t for t in summary.tasks}
    assert results["stuck"].status == "timeout"
    assert "idle_timeout_sec" in (results["stuck"].error or "")
    assert results["fine-1"].status == results["fine-2"].status == "ok"
    assert summary.status == "failed" and summary.exit_code == 1
    assert summary.counts == {"timeout": 1, "ok": 2}


async def test_a_worker_killed_mid_turn_is_replaced_and_the_task_retried(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    killed: list[int] = []
    home = state_dir / "workers" / "w1" / "codex-home"

    def kill_on_first_turn(event: Event) -> None:
        if isinstance(event, ModelRequest) and event.task_id == "victim" and not killed:
            for pid in codex_pids_with_home(home):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    mission = scripted_mission(
        workspace,
        [
            {
                "id": "victim",
                "prompt": "survive",
                "retries": 1,
                "script": [{"hang": 60}, {"say": "too late"}],
            }
        ],
    )
    summary = await run_mission(
        mission,
        _settings(state_dir, codex_bin, workers=1),
        RunOptions(observers=[kill_on_first_turn]),
    )
    (task,) = summary.tasks
    assert killed, "the test did not find the worker to kill"
    assert task.status == "ok", task.error
    assert task.attempts == 2
    assert task.final_message == "too late"
    log = (state_dir / "runs" / summary.run_id / "tasks" / "victim" / "events.jsonl").read_text()
    assert log.count('"method": "turn/started"') == 2


async def test_a_failing_dependency_skips_its_dependents(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    mission = scripted_mission(
        workspace,
        [
            {"id": "broken", "prompt": "b", "retries": 0, "script": [{"fail": 400}]},
            {"id": "after", "prompt": "a", "depends_on": ["broken"]},
        ],
    )
    summary = await run_mission(mission, _settings(state_dir, codex_bin))
    results = {t.task_id: t for t in summary.tasks}
    assert results["broken"].status == "failed"
    assert "scripted HTTP 400" in (results["broken"].error or "")
    assert results["after"].status == "skipped"
    assert "broken did not finish ok" in (results["after"].error or "")


async def test_a_model_error_is_retried_in_the_same_thread(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    mission = scripted_mission(
        workspace,
        [
            {
                "id": "flaky",
                "prompt": "p",
                "retries": 2,
                "script": [{"fail": 500}, {"say": "recovered"}],
            }
        ],
    )
    summary = await run_mission(mission, _settings(state_dir, codex_bin, workers=1))
    (task,) = summary.tasks
    assert (task.status, task.attempts, task.final_message) == ("ok", 2, "recovered")


async def test_secrets_from_the_mission_env_never_reach_the_records(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    secret = "sk-test-SECRET-VALUE-123"
    mission = scripted_mission(
        workspace,
        [
            {
                "id": "leaky",
                "prompt": "p",
                "env": {"MY_TOKEN": secret},
                "script": [{"shell": "echo $MY_TOKEN"}, {"say": "token is {last_output}"}],
            }
        ],
    )
    summary = await run_mission(mission, _settings(state_dir, codex_bin, workers=1))
    (task,) = summary.tasks
    assert task.status == "ok"
    run_dir = Path(summary.run_dir or "")
    for path in _files(run_dir):
        if path.name != "model-requests.jsonl":  # what Codex itself sent to the model
            assert secret not in path.read_text(errors="replace"), path
    assert "[REDACTED]" in (run_dir / "tasks" / "leaky" / "final.md").read_text()
