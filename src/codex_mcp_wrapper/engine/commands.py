"""Running one hook or tool command: ``/bin/sh -c`` with its input as JSON on stdin, bounded
in time and output, in its own process group (it dies with the wrapper)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_mcp_wrapper import process

OUTPUT_LIMIT = 64 * 1024  # what is kept of a hook's or tool's output


@dataclass(frozen=True)
class CommandResult:
    exit_code: int | None  # None: it did not finish in time, or could not start
    output: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


async def run_command(command: str, payload: Any, cwd: str | None, timeout: float) -> CommandResult:
    """Run ``command`` with ``/bin/sh -c`` in ``cwd``, ``payload`` as JSON on stdin; its
    stdout and stderr together, at most ``OUTPUT_LIMIT`` bytes kept."""
    try:
        proc = await process.spawn(
            ["/bin/sh", "-c", command],
            env=dict(os.environ),
            cwd=Path(cwd) if cwd else None,
            merge_stderr=True,
        )
    except OSError as exc:
        return CommandResult(None, "", f"could not start: {exc}")
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    async def feed() -> None:  # beside the reading: a command that echoes must not block
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.write(json.dumps(payload).encode() + b"\n")
            await stdin.drain()
            stdin.close()

    async def read() -> bytes:  # at most OUTPUT_LIMIT kept, the rest read and dropped
        kept = bytearray()
        while chunk := await stdout.read(65536):
            kept += chunk[: max(0, OUTPUT_LIMIT - len(kept))]
        return bytes(kept)

    try:
        async with asyncio.timeout(timeout):
            _, data = await asyncio.gather(feed(), read())
            code = await proc.wait()
    except TimeoutError:
        await process.finish(process.stop(proc))
        return CommandResult(None, "", f"did not finish within {timeout:g} s")
    except BaseException:
        await process.finish(process.stop(proc))
        raise
    text = data[:OUTPUT_LIMIT].decode("utf-8", errors="replace")
    return CommandResult(code, text, None if code == 0 else f"exited with {code}")
