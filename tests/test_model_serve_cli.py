"""`codex-mcp-wrapper model serve` works for a person: URL and config lines, then real Codex."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.codex_exec import codex_exec

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 20


def _read_until(proc: subprocess.Popen[str], pattern: str) -> str:
    """Read stdout lines until one matches (bounded by the subprocess's own start deadline)."""
    seen = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        seen += line
        if re.search(pattern, seen, re.DOTALL):
            return seen
    raise AssertionError(f"the server exited before printing {pattern!r}: {seen}")


async def test_model_serve_prints_the_url_and_config_lines_that_codex_can_use(
    tmp_path: Path, codex_bin: str, workspace: Path
) -> None:
    record = tmp_path / "requests.jsonl"
    proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived server, read line by line
        [
            sys.executable,
            "-m",
            "codex_mcp_wrapper",
            "model",
            "serve",
            "--script",
            str(REPO / "examples/scripts/hello.yaml"),
            "--record",
            str(record),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        out = _read_until(proc, r"stream_max_retries = 0\n")
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+/v1)", out)
        assert url, out
        snippet = out.split("config.toml:", 1)[1]
        home = tmp_path / "home"
        home.mkdir()
        (home / "config.toml").write_text(snippet)
        (workspace / "a.txt").write_text("x")
        result = await codex_exec(codex_bin, home, workspace, "hi")
        assert result.returncode == 0, result.stderr
        assert result.items("agent_message")[0]["text"].startswith("Hello! I am the scripted model")
        assert json.loads(record.read_text().splitlines()[0])["body"]["model"] == "scripted"
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=START_TIMEOUT)
    assert code == 130


def test_model_serve_with_a_bad_script_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- say: hi\n- sya: typo\n")
    proc = subprocess.run(
        [sys.executable, "-m", "codex_mcp_wrapper", "model", "serve", "--script", str(bad)],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        env={**os.environ},
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "bad.yaml: step 1: unknown step 'sya'" in proc.stderr


def test_model_serve_on_a_busy_port_says_so(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "codex_mcp_wrapper", "model", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )
    assert proc.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert proc.stderr.count("\n") == 1
