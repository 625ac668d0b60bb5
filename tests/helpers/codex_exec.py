"""Run the real ``codex exec --json`` for tests and parse its JSON Lines."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXEC_TIMEOUT = 60


@dataclass
class ExecResult:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def items(self, kind: str) -> list[dict[str, Any]]:
        return [
            e["item"]
            for e in self.events
            if e.get("type") == "item.completed" and e["item"].get("type") == kind
        ]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]


async def codex_exec(
    codex_bin: str,
    home: Path,
    workspace: Path,
    prompt: str,
    *,
    sandbox: str = "read-only",
    model: str | None = None,
    prefix: list[str] | None = None,
) -> ExecResult:
    argv = [
        *(prefix or []),
        codex_bin,
        "exec",
        "--json",
        "--skip-git-repo-check",
        "-C",
        str(workspace),
        "-s",
        sandbox,
    ]
    if model:
        argv += ["-m", model]
    argv.append(prompt)
    env = {"PATH": os.environ["PATH"], "HOME": str(home.parent), "CODEX_HOME": str(home)}
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(EXEC_TIMEOUT):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, 9)
            await proc.wait()
    lines = out.decode().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    return ExecResult(proc.returncode or 0, events, err.decode())
