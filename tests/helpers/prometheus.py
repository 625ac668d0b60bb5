"""A real Prometheus (Debian's ``prometheus``) scraping targets on 127.0.0.1 every second,
with its storage in a temporary directory, and its HTTP API queried with bounded polling."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

READY_TIMEOUT = 60  # Prometheus opens its TSDB and answers /-/ready in about a second
SEEN_TIMEOUT = 60  # a few 1 s scrapes after the value moved (generous: loaded CI)
POLL = 0.2  # between queries of the API
STOP_TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """The server's API at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def value(self, expr: str) -> float | None:
        """The instant value of ``expr`` (the sum of its series), None when it has none."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        answer.raise_for_status()
        result = answer.json()["data"]["result"]
        if not result:
            return None
        return sum(float(series["value"][1]) for series in result)

    def wait_for(
        self, expr: str, holds: Callable[[float], bool], timeout: float = SEEN_TIMEOUT
    ) -> float:
        """Poll ``expr`` until its value ``holds``; fail with the last value after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.value(expr)
            if value is not None and holds(value):
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"Prometheus never saw {expr} hold (last: {value})")
            time.sleep(POLL)


@contextlib.contextmanager
def prometheus(tmp_path: Path, targets: Sequence[str]) -> Iterator[Prometheus]:
    """Prometheus scraping ``targets`` (HOST:PORT) every second, until the block ends."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "Debian's prometheus package is required: apt-get install prometheus "
            "(scripts/test.sh does)"
        )
    folder = tmp_path / "prometheus"
    folder.mkdir()
    config = folder / "prometheus.yml"
    listed = ", ".join(f'"{target}"' for target in targets)
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: wrapper\n    static_configs:\n"
        f"      - targets: [{listed}]\n"
    )
    port = free_port()
    log = (folder / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        _wait_ready(server, proc, folder)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_ready(server: Prometheus, proc: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.url}/-/ready", timeout=5).status_code == 200:
                return
        if proc.poll() is not None or time.monotonic() >= deadline:
            log = (folder / "prometheus.log").read_text(errors="replace")
            raise AssertionError(f"Prometheus did not get ready: {log[-2000:]}")
        time.sleep(POLL)
