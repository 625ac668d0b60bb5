"""docs/scale-out.md's "Try it on one machine" runs as written (ports and paths moved into
the test's own folder), and its command table names every scale-out command and option."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from codex_mcp_wrapper.temporal.devserver import free_port, temporal_cli
from tests.helpers.cli import REPO, run_cli, subcommands
from tests.helpers.procs import wait_until

DOC = (REPO / "docs" / "scale-out.md").read_text()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def try_it_commands() -> list[list[str]]:
    section = DOC.split("## Try it on one machine", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def test_try_it_on_one_machine_runs_as_written(tmp_path: Path, cli_env: dict[str, str]) -> None:
    server, host_a, host_b, run = try_it_commands()
    assert server[0] == "temporal" and [host_a[1], host_b[1], run[1]] == ["host"] * 2 + ["run"]
    port = str(free_port())
    shutil.copytree(REPO / "examples", tmp_path / "examples")

    def local(argv: list[str]) -> list[str]:
        return [
            port if a.endswith(":7233") is False and a == "7233" else a.replace("7233", port)
            for a in argv
        ]

    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(
            subprocess.Popen(
                [str(temporal_cli()), *local(server)[1:]],
                cwd=tmp_path,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        # As a person does, start the hosts once the server is up (its port listening).
        assert wait_until(lambda: listening(int(port)), 60), "the dev server did not listen"
        for argv in (host_a, host_b):
            proc = subprocess.Popen(
                [sys.executable, "-m", "codex_mcp_wrapper", *local(argv)[1:]],
                cwd=tmp_path,
                env=cli_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            procs.append(proc)
            assert proc.stdout is not None
            ready = json.loads(proc.stdout.readline())  # bounded by the test timeout
            assert ready["host"] in ("a", "b")
        done = run_cli(local(run)[1:], cli_env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert re.search(r"running on [ab]/w\d", done.stderr)
        assert (tmp_path / "examples" / "workspace" / "hello.txt").is_file()
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        assert wait_until(lambda: all(p.poll() is not None for p in procs), 60)
    assert [p.returncode for p in procs[1:]] == [0, 0]  # hosts stop cleanly on SIGTERM


def test_the_command_table_names_every_scale_out_option() -> None:
    from codex_mcp_wrapper.cli.main import cli

    table = DOC.split("## Commands", 1)[1].split("\n## ", 1)[0]
    worker = subcommands(cli)["host"]
    options = [o for p in worker.params for o in p.opts if o.startswith("--")]
    skipped = {"--help", "--state-dir", "--codex-bin", "--instance", "--affinity-wait"}
    shared = {
        "--threads-per-worker",
        "--recycle-after-threads",
        "--recycle-above-mb",
        "--codex-home",
        "--sync-codex-config",
        "--mirror-auth",
        "--pass-env",
    }
    missing = [o for o in options if o not in skipped | shared and o not in table]
    assert not missing, f"docs/scale-out.md's command table lacks {missing}"
    for name in ("host", "run", "resume", "reply", "serve"):
        assert f"`{name} " in table
