"""Reading a worker's log for error messages: the last lines, without terminal escapes."""

from __future__ import annotations

import re
from pathlib import Path

TAIL_LINES = 5
TAIL_BYTES = 8192
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def log_tail(path: Path, lines: int = TAIL_LINES, since: int = 0) -> str:
    """The last ``lines`` non-empty lines of ``path`` written after byte offset ``since``,
    joined with `` | ``; empty when there are none or the file cannot be read."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            end = fh.tell()
            fh.seek(max(since, end - TAIL_BYTES))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    text = _ANSI.sub("", text)
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept)


def log_size(path: Path) -> int:
    """Where the log ends now (0 when it does not exist): a start for ``log_tail(since=)``."""
    try:
        return path.stat().st_size
    except OSError:
        return 0
