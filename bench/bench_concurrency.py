"""Benchmark: N concurrent tasks that each wait L seconds on the model, the wrapper vs one bare
app-server running the N turns as threads (the physical limit here), side by side.

Every measurement runs in its own Python process. The wrapper runs a mission of N tasks with
``workers=N`` (all at once) and ``threads_per_worker=K`` for each K given (K=1 is one
app-server per task, as before multiplexing); the bare baseline starts one `codex app-server`
and N threads on it through a minimal JSON-RPC client. A sampler thread sums the resident
memory of every process below the measuring one (app-servers, their supervisors, what they run)
four times a second; the scripted model runs inside the measuring process in both cases and is
not counted. Prints wall time and peak whole-tree memory, and the wrapper/bare ratios.

With ``--profile-burn S``, both run again with a HOME whose shell profile burns S seconds of
CPU each time a shell sources it (pyenv, nvm and conda profiles cost 0.1-0.2 s), and the
ratios to the clean HOME are printed: the wrapper's threads source no profile by default
(``login_shell: false``), a bare app-server snapshots a login shell per thread.

    python bench/bench_concurrency.py [--tasks 32] [--latency 2] [--threads-per-worker 1 8 32]
                                      [--profile-burn 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_pool import start_app_server, stop_app_server  # type: ignore[import-not-found]
from bench_recycle import TreeSampler  # type: ignore[import-not-found]

from codex_mcp_wrapper.app import run_mission
from codex_mcp_wrapper.missions.loading import parse_mission
from codex_mcp_wrapper.scripted import ScriptedModel
from codex_mcp_wrapper.scripted.script import parse_script
from codex_mcp_wrapper.settings import Settings, find_codex_bin


async def bare(tasks: int, latency: float, codex: str, root: Path) -> float:
    model = ScriptedModel()
    name = model.add_script("slow", parse_script([{"delay": latency}, {"say": "done"}]))
    async with model.serve() as url:
        workspace = root / "ws"
        workspace.mkdir()
        client = await start_app_server(codex, root / "home", url, workspace)
        started = time.perf_counter()

        async def one(n: int) -> None:
            thread = await client.call(
                "thread/start", {"cwd": str(workspace), "sandbox": "read-only", "model": name}
            )
            text = [{"type": "text", "text": f"task {n}"}]
            await client.call("turn/start", {"threadId": thread["thread"]["id"], "input": text})

        await asyncio.gather(*(one(n) for n in range(tasks)))
        for _ in range(tasks):
            status = await asyncio.wait_for(client.completed.get(), 120)
            assert status == "completed", status
        elapsed = time.perf_counter() - started
        await stop_app_server(client)
        return elapsed


async def wrapper(tasks: int, latency: float, codex: str, root: Path, per_worker: int) -> float:
    script = [{"delay": latency}, {"say": "done"}]
    mission = parse_mission(
        {
            "mission_id": "bench-concurrency",
            "workspace_root": str(root / "ws"),
            "provider": "scripted",
            "tasks": [{"prompt": f"task {n}", "script": script} for n in range(tasks)],
        }
    )
    settings = Settings(
        state_dir=root / "state", codex_bin=codex, workers=tasks, threads_per_worker=per_worker
    )
    started = time.perf_counter()
    summary = await run_mission(mission, settings)
    elapsed = time.perf_counter() - started
    assert summary.status == "ok", summary.counts
    return elapsed


def measure_one(kind: str, tasks: int, latency: float, per_worker: int) -> dict[str, Any]:
    codex, _ = find_codex_bin(os.environ.get("CODEX_BIN"))
    with tempfile.TemporaryDirectory(prefix="cmw-bench-") as tmp, TreeSampler() as sampler:
        if kind == "bare":
            seconds = asyncio.run(bare(tasks, latency, codex, Path(tmp)))
        else:
            seconds = asyncio.run(wrapper(tasks, latency, codex, Path(tmp), per_worker))
    return {
        "kind": kind,
        "threads_per_worker": per_worker,
        "seconds": round(seconds, 2),
        "peak_tree_mb": round(max(sampler.samples or [0.0]), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--latency", type=float, default=2.0, help="Seconds per model answer.")
    parser.add_argument("--threads-per-worker", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--profile-burn", type=float, help="Seconds of CPU a profile burns.")
    parser.add_argument("--one", choices=["bare", "wrapper"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        row = measure_one(args.one, args.tasks, args.latency, args.threads_per_worker[0])
        print(json.dumps(row))
        return

    def measure(kind: str, per_worker: int, home: Path | None = None) -> dict[str, Any]:
        out = subprocess.run(
            [
                *(sys.executable, __file__, "--one", kind, "--tasks", str(args.tasks)),
                *("--latency", str(args.latency), "--threads-per-worker", str(per_worker)),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "HOME": str(home)} if home else None,
        )
        row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return row

    base = measure("bare", 0)
    print(
        f"bare app-server, {args.tasks} threads: {base['seconds']:6.2f} s, "
        f"peak {base['peak_tree_mb']} MB",
        flush=True,
    )
    for per_worker in args.threads_per_worker:
        row = measure("wrapper", per_worker)
        print(
            f"wrapper, threads_per_worker={per_worker:>3}: {row['seconds']:6.2f} s "
            f"(x{row['seconds'] / base['seconds']:.2f}), peak {row['peak_tree_mb']} MB "
            f"(x{row['peak_tree_mb'] / max(base['peak_tree_mb'], 1):.2f})",
            flush=True,
        )
    if args.profile_burn:
        with tempfile.TemporaryDirectory(prefix="cmw-home-") as home:
            burning_home(Path(home), args.profile_burn)
            per_worker = args.threads_per_worker[-1]
            clean = measure("wrapper", per_worker)
            burnt = measure("wrapper", per_worker, Path(home))
            bare_burnt = measure("bare", 0, Path(home))
        print(
            f"profile burning {args.profile_burn} s: wrapper {burnt['seconds']:6.2f} s "
            f"(x{burnt['seconds'] / clean['seconds']:.2f} the clean HOME), bare app-server "
            f"{bare_burnt['seconds']:6.2f} s (x{bare_burnt['seconds'] / base['seconds']:.2f})",
            flush=True,
        )


BURN_LOOPS_PER_SECOND = 500_000  # bash loop iterations per CPU second, measured here


def burning_home(home: Path, seconds: float) -> None:
    """A HOME whose login and interactive profiles each burn about ``seconds`` of CPU (not
    wall time: under load a sleep or a timeout would cost nothing)."""
    loops = int(seconds * BURN_LOOPS_PER_SECOND)
    burn = f"i=0; while [ $i -lt {loops} ]; do i=$((i+1)); done\n"
    for name in (".bash_profile", ".bashrc", ".profile"):
        (home / name).write_text(burn)


if __name__ == "__main__":
    main()
