"""Faults, each with a clear result and message, driving the real Codex binary."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from codex_mcp_wrapper.app import run_mission
from codex_mcp_wrapper.engine.events import CodexEvent, Event, ModelRequest, TaskFinished
from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.settings import Settings
from tests.helpers.cli import run_cli as _cli
from tests.helpers.missions import scripted_mission
from tests.helpers.procs import codex_pids_with_home

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]


def settings(state_dir: Path, codex_bin: str, workers: int = 1) -> Settings:
    return Settings(state_dir=state_dir, codex_bin=codex_bin, workers=workers)


async def test_a_worker_that_stops_answering_is_killed_replaced_and_its_task_times_out(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    frozen: list[int] = []
    home = state_dir / "workers" / "w1" / "codex-home"

    def freeze_on_first_request(event: Event) -> None:
        if isinstance(event, ModelRequest) and event.task_id == "frozen" and not frozen:
            for pid in codex_pids_with_home(home):
                os.kill(pid, signal.SIGSTOP)  # alive, but answers nothing
                frozen.append(pid)

    m = scripted_mission(
        workspace,
        [
            {
                "id": "frozen",
                "prompt": "p",
                "idle_timeout_sec": 1.5,
                "retries": 0,
                "script": [{"delay": 4}, {"say": "late"}],
            },
            {"id": "after", "prompt": "q", "depends_on": []},
        ],
    )
    summary = await run_mission(
        m, settings(state_dir, codex_bin), RunOptions(observers=[freeze_on_first_request])
    )
    results = {t.task_id: t for t in summary.tasks}
    assert frozen
    assert results["frozen"].status == "timeout"
    assert "did not stop the turn" in (results["frozen"].error or "")
    assert results["after"].status == "ok" and results["after"].worker == "w1"  # replaced


async def test_a_bad_request_is_not_retried_but_a_server_error_is(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    requests: dict[str, int] = {}

    def count(event: Event) -> None:
        if isinstance(event, ModelRequest) and event.task_id:
            requests[event.task_id] = requests.get(event.task_id, 0) + 1

    m = scripted_mission(
        workspace,
        [
            {"id": "bad", "prompt": "p", "retries": 2, "script": [{"fail": 400}]},
            {
                "id": "busy",
                "prompt": "p",
                "retries": 2,
                "script": [{"fail": 500}, {"fail": 429}, {"say": "third time lucky"}],
            },
            {"id": "broken", "prompt": "p", "retries": 0, "script": [{"fail": "stream"}]},
        ],
    )
    summary = await run_mission(m, settings(state_dir, codex_bin, 2), RunOptions(observers=[count]))
    results = {t.task_id: t for t in summary.tasks}
    assert (results["bad"].status, results["bad"].attempts, requests["bad"]) == ("failed", 1, 1)
    assert "scripted HTTP 400" in (results["bad"].error or "")
    assert (results["busy"].status, results["busy"].attempts) == ("ok", 3)
    assert results["busy"].final_message == "third time lucky"
    assert results["broken"].status == "failed"
    assert "stream disconnected" in (results["broken"].error or "")


async def test_a_workspace_that_disappears_fails_the_next_task_clearly(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    def remove_sub(event: Event) -> None:
        if isinstance(event, TaskFinished) and event.result.task_id == "first":
            shutil.rmtree(workspace / "sub")

    m = scripted_mission(
        workspace,
        [
            {"id": "first", "prompt": "p", "cwd": "sub"},
            {"id": "second", "prompt": "q", "cwd": "sub", "depends_on": ["first"]},
        ],
    )
    summary = await run_mission(
        m, settings(state_dir, codex_bin), RunOptions(observers=[remove_sub])
    )
    second = summary.tasks[1]
    assert second.status == "failed"
    assert "no longer exists" in (second.error or "") and "sub" in (second.error or "")


async def test_a_missing_sandbox_is_reported_as_such_not_as_a_model_error(
    workspace: Path, state_dir: Path, codex_bin: str, tmp_path: Path
) -> None:
    if shutil.which("unshare") is None:
        pytest.fail("util-linux unshare is needed to take user namespaces away")
    no_userns = tmp_path / "codex-without-userns"
    no_userns.write_text(
        "#!/bin/sh\n"
        "exec unshare -U -r sh -c "
        '\'echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" "$@"\' '
        f'{codex_bin} "$@"\n'
    )
    no_userns.chmod(0o755)
    m = scripted_mission(
        workspace,
        [
            {
                "id": "boxed",
                "prompt": "p",
                "sandbox": "workspace-write",
                "script": [{"shell": "touch made.txt"}, {"say": "done"}],
            }
        ],
    )
    summary = await run_mission(m, settings(state_dir, str(no_userns)))
    (task,) = summary.tasks
    assert task.status == "failed"
    assert "sandbox cannot start on this machine" in (task.error or "")
    assert "namespace" in (task.error or "")
    assert not (workspace / "made.txt").exists()


def test_an_unusable_state_dir_exits_3_with_a_reason(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = tmp_path / "m.yaml"
    path.write_text("provider: scripted\ntasks: [{prompt: x}]\n")
    proc = _cli(["--state-dir", str(blocker / "state"), "run", str(path)], cli_env)
    assert proc.returncode == 3
    assert "is not usable" in proc.stderr and proc.stderr.count("\n") == 1


def test_a_cwd_symlinked_out_of_the_workspace_is_refused(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "escape").symlink_to("/etc")
    path = tmp_path / "m.yaml"
    path.write_text(
        f"provider: scripted\nworkspace_root: {workspace}\ntasks: [{{prompt: x, cwd: escape}}]\n"
    )
    proc = _cli(["run", str(path)], cli_env)
    assert proc.returncode == 2
    assert "resolves outside workspace_root" in proc.stderr


async def test_artifacts_never_follow_a_symlink_out_of_the_workspace(
    workspace: Path, state_dir: Path, codex_bin: str, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("do not copy")
    (workspace / "link").symlink_to(outside)
    (workspace / "ok.txt").write_text("fine")
    m = scripted_mission(workspace, [{"id": "a", "prompt": "p", "artifacts": ["*.txt", "link/*"]}])
    summary = await run_mission(m, settings(state_dir, codex_bin))
    assert summary.tasks[0].artifacts == ["ok.txt"]
    copied = Path(summary.run_dir or "") / "tasks" / "a" / "artifacts"
    assert sorted(p.name for p in copied.rglob("*") if p.is_file()) == ["ok.txt"]


@pytest.mark.parametrize("threads_per_worker", [1, 2])
async def test_two_hundred_tasks_four_at_a_time_none_lost_or_duplicated(
    workspace: Path, state_dir: Path, codex_bin: str, threads_per_worker: int
) -> None:
    """Four tasks at once, on four processes or on two processes of two threads each."""
    threads: dict[str, set[str]] = {}

    def record(event: Event) -> None:
        if isinstance(event, CodexEvent) and event.method == "thread/started":
            threads.setdefault(event.task_id, set()).add(event.params["thread"]["id"])

    m = scripted_mission(workspace, [{"id": f"t{n:03d}", "prompt": f"n={n}"} for n in range(200)])
    config = dataclasses.replace(
        settings(state_dir, codex_bin, 4), threads_per_worker=threads_per_worker
    )
    summary = await run_mission(m, config, RunOptions(observers=[record]))
    assert summary.status == "ok" and summary.counts == {"ok": 200}
    assert [t.task_id for t in summary.tasks] == [f"t{n:03d}" for n in range(200)]
    assert [t.final_message for t in summary.tasks] == [f"echo: n={n}" for n in range(200)]
    assert all(len(ids) == 1 for ids in threads.values()) and len(threads) == 200
    assert len({t.thread_id for t in summary.tasks}) == 200
    processes = 4 // threads_per_worker
    assert {t.worker for t in summary.tasks} == {f"w{n}" for n in range(1, processes + 1)}
    requests = (Path(summary.run_dir or "") / "model-requests.jsonl").read_text().splitlines()
    assert len(requests) == 200
    assert len({json.loads(r)["headers"]["thread-id"] for r in requests}) == 200
