"""Worker labels (``w1``, ``w2``, ...) held with exclusive file locks, so two wrappers sharing
a state dir never share a worker's CODEX_HOME. A lock dies with its process (even kill -9)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from codex_mcp_wrapper.errors import WorkerStartError
from codex_mcp_wrapper.settings import Timeouts

MAX_LABELS = 64
LOCK_WAIT = Timeouts.label_lock
LOCK_POLL = 0.1  # flock has no async wait: retry this often while a needed label is busy


class LabelLocks:
    """Exclusive, process-wide locks on ``workers/<label>/lock``; released on exit or crash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._held: dict[str, IO[bytes]] = {}

    async def claim(
        self, count: int, required: Sequence[str] = (), wait: float = LOCK_WAIT
    ) -> list[str]:
        """Lock ``required`` labels (waiting up to ``wait`` s for each, since a thread lives in
        its worker's home), then free labels up to ``count`` in all (never one this object
        holds already)."""
        labels: list[str] = []
        for label in required:
            deadline = time.monotonic() + wait
            while not self.try_lock(label):
                if time.monotonic() >= deadline:
                    raise WorkerStartError(
                        f"worker {label}, which holds the thread to continue, stayed busy in "
                        f"another run for {wait:g} s; try again when that run ends."
                    )
                await asyncio.sleep(LOCK_POLL)
            labels.append(label)
        for n in range(1, MAX_LABELS + 1):
            if len(labels) >= count:
                break
            label = f"w{n}"
            if label not in labels and label not in self._held and self.try_lock(label):
                labels.append(label)
        if not labels:
            raise WorkerStartError(
                f"all {MAX_LABELS} worker labels under {self.root} are locked by other runs."
            )
        return labels

    def try_lock(self, label: str) -> bool:
        if label in self._held:
            return True
        folder = self.root / label
        folder.mkdir(parents=True, exist_ok=True)
        fh = (folder / "lock").open("ab")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.truncate(0)
        fh.write(f"{os.getpid()}\n".encode())
        fh.flush()
        self._held[label] = fh
        return True

    def release(self, label: str) -> None:
        fh = self._held.pop(label, None)
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.close()

    def release_all(self) -> None:
        for fh in self._held.values():
            with contextlib.suppress(OSError):
                fh.close()
        self._held.clear()
