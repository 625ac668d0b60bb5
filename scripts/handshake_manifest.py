"""Record the stdio server's handshake answers into src/codex_mcp_wrapper/mcp/handshake.json.

The stdio front (``mcp/stdio_front.py``) answers ``initialize`` and ``tools/list`` from that
file at once, while the MCP SDK loads. This asks the full server (the front's fast answers
off) for both, on every handshake-era protocol revision it speaks, and writes what it said.
tests/test_stdio_front.py fails when the file and the server disagree; then run:

    .venv/bin/python scripts/handshake_manifest.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

MANIFEST = Path(__file__).resolve().parents[1] / "src/codex_mcp_wrapper/mcp/handshake.json"
TIMEOUT = 60


def revisions() -> list[str]:
    from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS

    return list(HANDSHAKE_PROTOCOL_VERSIONS)


def handshake(revision: str) -> list[dict[str, Any]]:
    """What a handshake-era client sends first: initialize, initialized, tools/list."""
    return [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": revision,
                "capabilities": {},
                "clientInfo": {"name": "handshake-manifest", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
    ]


def ask(revision: str, state_dir: Path) -> dict[str, Any]:
    """The full server's answers to initialize and tools/list on ``revision``."""
    env = {**os.environ, "CODEX_MCP_WRAPPER_NO_FAST_HANDSHAKE": "1"}
    argv = [sys.executable, "-m", "codex_mcp_wrapper", "--state-dir", str(state_dir), "serve"]
    requests = handshake(revision)
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        for request in requests:
            proc.stdin.write((json.dumps(request) + "\n").encode())
        proc.stdin.flush()
        answers: dict[int, Any] = {}
        while len(answers) < 2:
            line = proc.stdout.readline()
            if not line:
                raise SystemExit(f"the server closed its output on {revision}")
            message = json.loads(line)
            if message.get("id") in (1, 2):
                answers[message["id"]] = message["result"]
        proc.stdin.close()
        proc.wait(TIMEOUT)
    return {"initialize": answers[1], "tools/list": answers[2]}


def collect() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return {"revisions": {r: ask(r, Path(tmp) / "state") for r in revisions()}}


if __name__ == "__main__":
    MANIFEST.write_text(json.dumps(collect(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {MANIFEST}")
