"""No process Codex starts outlives the wrapper or its worker: not even a command run under
danger-full-access, which Codex puts in a process group of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.procs import codex_processes, environ, wait_gone, wait_until

REPO = Path(__file__).resolve().parents[2]


def processes_with_arg(marker: str, exact: bool = False) -> list[int]:
    """Live processes with ``marker`` in an argument (the sleep and the shell running it);
    with ``exact``, only ``sleep MARKER`` itself."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if exact:
            hit = argv[:2] == [b"sleep", marker.encode()]
        else:
            hit = any(marker.encode() in arg for arg in argv)
        if hit and state != "Z":
            found.append(int(entry.name))
    return found


def start_run(tmp_path: Path, env: dict[str, str], marker: str) -> subprocess.Popen[bytes]:
    mission = {
        "mission_id": "hygiene",
        "workspace_root": str(tmp_path / "ws"),
        "provider": "scripted",
        "tasks": [
            {
                "id": "long",
                "prompt": "go",
                "sandbox": "danger-full-access",
                # `sleep` daemonized: orphaned at once, in a process group of its own, with
                # none of Codex's parent-death settings; the model then keeps the turn open
                "script": [{"shell": f"(sleep {marker} &); echo started"}, {"hang": 170}],
            }
        ],
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(mission))
    return subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(path)],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("victim", ["wrapper", "worker"])
def test_a_danger_full_access_command_dies_with_a_killed_wrapper_or_worker(
    tmp_path: Path, cli_env: dict[str, str], state_dir: Path, victim: str
) -> None:
    marker = "95.%d" % os.getpid()  # noqa: UP031 - a unique `sleep` argument to find it by
    proc = start_run(tmp_path, cli_env, marker)
    try:
        # a login shell may take long to start here (pyenv rehash): a generous bound
        assert wait_until(lambda: bool(processes_with_arg(marker, exact=True)), timeout=120)
        sleepers = processes_with_arg(marker)  # `bash -lc 'sleep ...'`, then `sleep` itself
        assert all(os.getpgid(p) != os.getpgid(proc.pid) for p in sleepers)  # no group kill
        workers = [
            p for p in codex_processes() if str(state_dir) in environ(p).get("CODEX_HOME", "")
        ]
        assert workers
        if victim == "wrapper":
            os.kill(proc.pid, signal.SIGKILL)
        else:
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
        assert wait_gone(sleepers, timeout=10), f"`sleep {marker}` outlived the {victim}"
        if victim == "wrapper":
            assert wait_gone(workers, timeout=10)
    finally:
        proc.kill()
        proc.wait(timeout=60)
        for pid in processes_with_arg(marker):  # never leave it behind, pass or fail
            os.kill(pid, signal.SIGKILL)


@pytest.mark.anyio
async def test_stopping_a_child_ends_what_it_left_in_another_session_even_if_it_ignores_sigterm(
    tmp_path: Path,
) -> None:
    """A child that started a command in a session of its own, ignoring SIGTERM (as Codex's
    danger-full-access commands may): stopping the child gives the supervisor time to sweep,
    and the command is gone when ``stop`` returns."""
    import asyncio

    from codex_mcp_wrapper import process

    pid_file = tmp_path / "stubborn.pid"
    script = f"setsid sh -c 'trap \"\" TERM; echo $$ > {pid_file}; exec sleep 60' & cat"
    proc = await process.spawn(["sh", "-c", script], env=dict(os.environ))
    assert await asyncio.to_thread(wait_until, pid_file.exists, 30)
    stubborn = int(pid_file.read_text().strip() or 0)
    assert stubborn and Path(f"/proc/{stubborn}").exists()
    await process.stop(proc)
    assert wait_gone([stubborn], timeout=0.5), "the command outlived its stopped parent"
