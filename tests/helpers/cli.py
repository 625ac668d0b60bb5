"""Run the wrapper's CLI as a subprocess, as a user would: ``python -m codex_mcp_wrapper``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 300  # a bound on the whole command; a hang fails the test instead of stalling it


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """The finished command, its stdout and stderr as text; stdin is never a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "codex_mcp_wrapper", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or REPO,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
