"""A disk that refuses writes costs a clear line, never a traceback: the scripted model's
request record stops with one warning while the model keeps answering; a run whose state dir
fills up stops with one error line (exit 3), leaves no half-written file, and resumes once
there is space; a report copy that cannot be written is one error line too.

The disks are real: ``/dev/full`` (every write fails with ENOSPC) as the record file; a small
tmpfs as the state dir, which a task's ``verify`` command fills; a read-only bind mount for the
report copy. Both mounts live in a user and mount namespace of the command alone
(``unshare --user --map-root-user --mount``), which needs no privilege and stops root too.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 120
FULL = Path("/dev/full")
# $0 the state dir, $1 python, $2 the mission: on a 32 MB tmpfs over the state dir, run the
# mission, list the .tmp files left behind, free the space, and resume the run.
ON_A_SMALL_DISK = """
mount -t tmpfs -o size=32m tmpfs "$0" || exit 99
"$1" -m codex_mcp_wrapper run "$2"
echo "run exited $?"
echo leftovers:; find "$0" -name '*.tmp'
rm "$0/filler"
exec "$1" -m codex_mcp_wrapper resume "$(ls "$0/runs")" --json
"""
# $0 a folder: bind it onto itself read-only and run the command.
READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


def _listening(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+/v1)", line)
        if found:
            return found.group(1)
    raise AssertionError("model serve exited before it listened")


def test_a_record_file_on_a_full_disk_warns_once_and_the_model_keeps_answering() -> None:
    if not FULL.exists():
        pytest.fail("/dev/full is needed: it stands in for a full disk")
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "model", "serve", "--record", str(FULL)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        url = _listening(proc)
        for prompt in ("first", "second", "third"):
            body = {
                "model": "scripted",
                "input": [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": prompt}],
                    }
                ],
            }
            answer = httpx.post(f"{url}/responses", json=body, timeout=TIMEOUT)
            assert answer.status_code == 200
            assert f"echo: {prompt}" in answer.text and "response.completed" in answer.text
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=TIMEOUT)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    assert code == 130, stderr
    assert "Traceback" not in stderr and "Exception in ASGI application" not in stderr
    warning = f"stopped recording model requests to {FULL} ([Errno 28] No space left on device)"
    assert stderr.count(warning) == 1, stderr
    assert [line for line in stderr.splitlines() if line] == [warning, "error: interrupted."]


def test_a_state_dir_that_fills_up_mid_run_stops_it_with_one_line_and_it_resumes_later(
    tmp_path: Path, state_dir: Path, cli_env: dict[str, str]
) -> None:
    if shutil.which("unshare") is None:
        pytest.fail("util-linux unshare is needed to mount a small tmpfs as the state dir")
    state_dir.mkdir()
    fill_once = (
        f"test -e {tmp_path}/filled || {{ touch {tmp_path}/filled; "
        f"head -c 64000000 /dev/zero > {state_dir}/filler; }}; true"
    )
    mission = tmp_path / "m.yaml"
    mission.write_text(
        json.dumps(
            {
                "mission_id": "fills-up",
                "workspace_root": str(tmp_path / "ws"),
                "provider": "scripted",
                "tasks": [
                    {"id": "first", "prompt": "a"},
                    # after its turn, before its result is recorded, the disk fills up
                    {
                        "id": "fill",
                        "prompt": "b",
                        "depends_on": ["first"],
                        "expect": {"verify": fill_once},
                    },
                    {"id": "later", "prompt": "c", "depends_on": ["fill"]},
                ],
            }
        )
    )
    namespace = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", ON_A_SMALL_DISK]
    proc = subprocess.run(
        [*namespace, str(state_dir), sys.executable, str(mission)],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=REPO,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in proc.stderr and "Exception" not in proc.stderr
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: cannot record the run in {state_dir}")
    # SQLite or the file system, whichever writes first, meets the full disk.
    full = ("No space left on device", "database or disk is full")
    assert any(reason in error for reason in full) and "resume" in error
    head, resumed = proc.stdout.split("{", 1)  # the resumed run's summary ends the output
    assert head == "run exited 3\nleftovers:\n"  # no summary.json.tmp or the like
    assert proc.returncode == 0, proc.stderr
    summary = json.loads("{" + resumed)
    assert [(t["task_id"], t["status"]) for t in summary["tasks"]] == [
        ("first", "ok"),
        ("fill", "ok"),
        ("later", "ok"),
    ]
    assert proc.stderr.count("first: running") == 1  # kept by resume, not run again


def test_a_report_copy_that_cannot_be_written_is_one_line_and_the_run_stays_recorded(
    tmp_path: Path, state_dir: Path, cli_env: dict[str, str]
) -> None:
    if shutil.which("unshare") is None:
        pytest.fail("util-linux unshare is needed to mount the report folder read-only")
    mission = tmp_path / "m.yaml"
    mission.write_text(
        f"workspace_root: {tmp_path / 'ws'}\nprovider: scripted\ntasks: [{{prompt: hi}}]\n"
    )
    sealed = tmp_path / "sealed"
    sealed.mkdir()
    cli = [sys.executable, "-m", "codex_mcp_wrapper"]
    namespace = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", READ_ONLY]
    report = sealed / "report.html"
    proc = subprocess.run(
        [*namespace, str(sealed), *cli, "run", str(mission), "--report", str(report)],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=REPO,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "cannot write the reports of run" in error and "Read-only file system" in error
    run_id = error.split("`codex-mcp-wrapper report ", 1)[1].rstrip("`.")
    again = subprocess.run(
        [*cli, "report", run_id, "--html", str(report)],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=REPO,
        timeout=TIMEOUT,
    )
    assert again.returncode == 0, again.stderr
    assert run_id in report.read_text()
