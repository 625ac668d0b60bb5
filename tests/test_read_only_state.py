"""Reading recorded runs never writes the state dir: it works where the state dir is read-only
(a mount the kernel refuses every write to, for root too) and leaves a writable one as it was.

The read-only state dir is a read-only bind mount in a user and mount namespace of the command
alone (``unshare --user --map-root-user --mount``): permission bits would not stop root, and
the namespace needs no privilege where user namespaces exist (Codex's sandbox needs them too).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codex_mcp_wrapper.engine.events import RunStarted
from codex_mcp_wrapper.engine.recorder import RunRecorder
from codex_mcp_wrapper.engine.redaction import Redactor
from codex_mcp_wrapper.engine.store import RunStore

REPO = Path(__file__).resolve().parents[1]
CLI_TIMEOUT = 120
CLI = [sys.executable, "-m", "codex_mcp_wrapper"]
# $0 is the state dir: bind it onto itself, make that mount read-only, run the command in it.
READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=CLI_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def read_only(
    state_dir: Path, argv: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with ``state_dir`` mounted read-only for it alone."""
    if shutil.which("unshare") is None:
        pytest.fail("util-linux unshare is needed to mount the state dir read-only")
    namespace = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", READ_ONLY]
    return run([*namespace, str(state_dir), *argv], env)


def listing(root: Path) -> list[tuple[str, int, int]]:
    """Every name under ``root`` (and itself) with its mtime and size: any write shows."""
    return sorted(
        (str(path.relative_to(root)), path.lstat().st_mtime_ns, path.lstat().st_size)
        for path in [root, *root.rglob("*")]
    )


@pytest.fixture
def reader_env(state_dir: Path) -> dict[str, str]:
    """The environment of commands that only read: no Codex binary needed."""
    env = {k: v for k, v in os.environ.items() if k != "CODEX_MCP_WRAPPER_DEBUG"}
    env["CODEX_MCP_WRAPPER_HOME"] = str(state_dir)
    return env


@pytest.fixture
def recorded_run(tmp_path: Path, state_dir: Path, cli_env: dict[str, str]) -> str:
    """A run of the real Codex and the scripted model, recorded in ``state_dir``; its id."""
    mission = tmp_path / "m.yaml"
    mission.write_text(
        f"mission_id: recorded\nworkspace_root: {tmp_path / 'ws'}\nprovider: scripted\n"
        "tasks:\n  - {id: greet, prompt: hello}\n"
    )
    proc = run([*CLI, "run", str(mission), "--json"], cli_env)
    assert proc.returncode == 0, proc.stderr
    run_id: str = json.loads(proc.stdout)["run_id"]
    return run_id


def test_runs_list_show_and_report_work_on_a_read_only_state_dir_and_change_nothing(
    recorded_run: str, state_dir: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    refused = read_only(state_dir, ["touch", str(state_dir / "probe")], cli_env)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    before = listing(state_dir)

    listed = read_only(state_dir, [*CLI, "runs", "list"], cli_env)
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"{recorded_run} +recorded +ok ", listed.stdout), listed.stdout
    as_json = read_only(state_dir, [*CLI, "runs", "list", "--json"], cli_env)
    assert as_json.returncode == 0, as_json.stderr
    assert [row["run_id"] for row in json.loads(as_json.stdout)] == [recorded_run]
    shown = read_only(state_dir, [*CLI, "runs", "show", recorded_run, "--json"], cli_env)
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert summary["run_id"] == recorded_run and summary["status"] == "ok"
    assert summary["tasks"][0]["final_message"] == "echo: hello"

    copy = tmp_path / "elsewhere" / "report.html"
    rendered = read_only(state_dir, [*CLI, "report", recorded_run, "--html", str(copy)], cli_env)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout.strip() == f"wrote {copy}"
    assert recorded_run in copy.read_text()
    in_place = read_only(state_dir, [*CLI, "report", recorded_run], cli_env)
    assert in_place.returncode == 3
    assert in_place.stderr.startswith("error: cannot write the reports into ")
    assert "--html FILE" in in_place.stderr and in_place.stderr.count("\n") == 1

    mission = tmp_path / "m.yaml"
    for argv in (["validate", str(mission)], ["schema"]):
        proc = read_only(state_dir, [*CLI, *argv], cli_env)
        assert proc.returncode == 0, (argv, proc.stderr)
    assert listing(state_dir) == before


def test_reading_a_writable_state_dir_leaves_every_file_as_it_was(
    recorded_run: str, state_dir: Path, cli_env: dict[str, str]
) -> None:
    before = listing(state_dir)
    for argv in (["runs", "list"], ["runs", "list", "--json"], ["runs", "show", recorded_run]):
        proc = run([*CLI, *argv], cli_env)
        assert proc.returncode == 0, (argv, proc.stderr)
    assert listing(state_dir) == before  # no state.db-wal or -shm left behind by a reader


def test_a_run_still_being_written_is_read_from_its_write_ahead_log_on_a_read_only_dir(
    state_dir: Path, reader_env: dict[str, str]
) -> None:
    with RunStore(state_dir) as store:
        recorder = RunRecorder(store, Redactor())
        recorder(RunStarted("20260101-000000-abcdef", "live", {}, ("only",), str(state_dir)))
        assert (state_dir / "state.db-wal").stat().st_size > 0  # the commit is in the log
        listed = read_only(state_dir, [*CLI, "runs", "list", "--json"], reader_env)
        shown = read_only(
            state_dir, [*CLI, "runs", "show", "20260101-000000-abcdef", "--json"], reader_env
        )
        recorder.close()
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["run_id"], row["status"]) == ("20260101-000000-abcdef", "running")
    assert shown.returncode == 0, shown.stderr
    assert [task["task_id"] for task in json.loads(shown.stdout)["tasks"]] == ["only"]


def test_an_absent_state_dir_lists_no_runs_and_is_not_created(
    state_dir: Path, reader_env: dict[str, str]
) -> None:
    listed = run([*CLI, "runs", "list"], reader_env)
    assert (listed.returncode, listed.stdout) == (0, "no runs yet\n"), listed.stderr
    as_json = run([*CLI, "runs", "list", "--json"], reader_env)
    assert (as_json.returncode, json.loads(as_json.stdout)) == (0, [])
    shown = run([*CLI, "runs", "show", "20260101-000000-abcdef"], reader_env)
    assert shown.returncode == 2 and "no run '20260101-000000-abcdef'" in shown.stderr
    assert not state_dir.exists()


def test_a_state_dir_from_0_1_0_is_read_without_writing_to_it(tmp_path: Path) -> None:
    """A state.db from before resume existed has no tasks.turns_done (nor runs.pid_start):
    the read-only reader, which cannot add them, reads them as absent."""
    import sqlite3

    from codex_mcp_wrapper.engine.store import SCHEMA, RunStore

    state = tmp_path / "old-state"
    state.mkdir()
    db = sqlite3.connect(state / "state.db")
    db.executescript(SCHEMA)
    db.execute("ALTER TABLE tasks DROP COLUMN turns_done")
    db.execute("ALTER TABLE runs DROP COLUMN pid_start")
    db.execute(
        "INSERT INTO runs (run_id, mission_id, status, created_at, run_dir) "
        "VALUES ('r1', 'old', 'failed', 1.0, '/nowhere')"
    )
    db.execute(
        "INSERT INTO tasks (run_id, task_id, idx, status, thread_id, updated_at) "
        "VALUES ('r1', 'a', 0, 'failed', 't1', 1.0)"
    )
    db.commit()
    db.close()
    before = sorted((p.name, p.stat().st_mtime_ns) for p in state.iterdir())
    with RunStore.reader(state) as store:
        run = store.get_run("r1")
    assert run is not None
    assert [(t["task_id"], t["thread_id"], t["turns_done"]) for t in run["tasks"]] == [
        ("a", "t1", 0)
    ]
    assert sorted((p.name, p.stat().st_mtime_ns) for p in state.iterdir()) == before
