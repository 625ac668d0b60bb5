"""Benchmark: the wrapper's per-task overhead and its scaling over workers.

Runs a mission of N one-turn tasks on 1, 2 and 4 workers against the scripted model, and the
same turns through a minimal direct app-server client (no wrapper code) on as many processes
with the same environment; prints wall time (the wrapper's includes starting its pool and
model, the direct one's does not), the marginal cost per task (time for N tasks minus time for
--warm tasks, divided by the difference: start-up cancels out), the wrapper/direct ratio of
that cost, the speed-up of 4 workers over 1, the Python process's own CPU time per task
(the wrapper's or the direct client's, the scripted model's included in both: the noise-free
overhead figure), and peak memory. Each measurement runs in its own
Python process so its peak RSS figures are its own.

The `worktree` case runs the same mission with `isolation: worktree` (each task in a git
worktree of its own, its change recorded, the worktree removed), side by side with the plain
wrapper on the same workspace: a git repository of --repo-files committed files (2 KB each)
and one uncommitted change; it prints the worktree/wrapper ratio and the time a worktree adds.

    python bench/bench_pool.py [--tasks 100] [--warm 10] [--workers 1 2 4] [--repeat 3]
                               [--repo-files 200] [--no-worktree]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.app import run_mission
from codex_mcp_wrapper.codex.home import CodexHomeSpec, scripted_provider, write_codex_home
from codex_mcp_wrapper.missions.loading import parse_mission
from codex_mcp_wrapper.scripted import ScriptedModel
from codex_mcp_wrapper.settings import Settings, find_codex_bin

TURN_TIMEOUT = 60.0
KINDS = ("direct", "wrapper", "worktree")


class DirectClient:
    """The least code that runs a turn on `codex app-server`: the baseline."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.completed: asyncio.Queue[str] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            msg = json.loads(line)
            if "id" in msg and "method" not in msg:
                self.pending.pop(msg["id"]).set_result(msg.get("result"))
            elif msg.get("method") == "turn/completed":
                self.completed.put_nowait(msg["params"]["turn"]["status"])

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        self.next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        assert self.proc.stdin is not None
        line = json.dumps({"id": self.next_id, "method": method, "params": params})
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()
        return await asyncio.wait_for(future, TURN_TIMEOUT)

    async def turn(self, cwd: str, prompt: str) -> str:
        thread = await self.call("thread/start", {"cwd": cwd, "sandbox": "read-only"})
        thread_id = thread["thread"]["id"]
        await self.call(
            "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": prompt}]}
        )
        status = await asyncio.wait_for(self.completed.get(), TURN_TIMEOUT)
        # As any client running many threads must: an app-server keeping every finished
        # thread loaded slows down as they accumulate (x1.2 per task after 100 here).
        await self.call("thread/unsubscribe", {"threadId": thread_id})
        return status


async def start_app_server(codex: str, home: Path, model_url: str, workspace: Path) -> DirectClient:
    """A bare `codex app-server` on a hermetic home for the scripted model, initialized, with
    the environment the wrapper gives its workers."""
    write_codex_home(
        home, CodexHomeSpec(scripted_provider(model_url), trusted_projects=[workspace])
    )
    env = {**Settings().worker_base_env(), "CODEX_HOME": str(home)}
    proc = await asyncio.create_subprocess_exec(
        codex, "app-server", stdin=-1, stdout=-1, stderr=subprocess.DEVNULL, env=env
    )
    client = DirectClient(proc)
    await client.call("initialize", {"clientInfo": {"name": "bench", "version": "0"}})
    assert proc.stdin is not None
    proc.stdin.write(b'{"method":"initialized"}\n')
    return client


async def stop_app_server(client: DirectClient) -> None:
    client.proc.kill()
    await client.proc.wait()


def git_workspace(root: Path, files: int) -> Path:
    """A repository of ``files`` committed files and one uncommitted change, as a user has."""
    workspace = root / "ws"
    workspace.mkdir()
    for n in range(files):
        folder = workspace / f"pkg{n % 10}"
        folder.mkdir(exist_ok=True)
        (folder / f"mod{n}.py").write_text(f"# module {n}\n" + "x = 1\n" * 340)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "files"]):
        subprocess.run(
            ["git", "-c", "user.name=b", "-c", "user.email=b@b", *args],
            capture_output=True,
            check=True,
            cwd=workspace,
        )
    (workspace / "pkg0" / "mod0.py").write_text("# edited, not committed\n")
    return workspace


async def direct(tasks: int, workers: int, codex: str, root: Path, files: int = 0) -> float:
    model = ScriptedModel()
    async with model.serve() as url:
        workspace = git_workspace(root, files)
        clients = [
            await start_app_server(codex, root / f"home-{n}", url, workspace)
            for n in range(workers)
        ]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(tasks):
            queue.put_nowait(n)

        async def drain(client: DirectClient) -> None:
            while not queue.empty():
                n = queue.get_nowait()
                status = await client.turn(str(workspace), f"task {n}")
                assert status == "completed", status

        started = time.perf_counter()
        await asyncio.gather(*(drain(c) for c in clients))
        elapsed = time.perf_counter() - started
        for client in clients:
            await stop_app_server(client)
        return elapsed


async def wrapper(
    tasks: int, workers: int, codex: str, root: Path, files: int = 0, isolation: str = "none"
) -> float:
    mission = parse_mission(
        {
            "mission_id": "bench",
            "workspace_root": str(git_workspace(root, files)),
            "provider": "scripted",
            "defaults": {"isolation": isolation},
            "tasks": [{"prompt": f"task {n}"} for n in range(tasks)],
        }
    )
    settings = Settings(state_dir=root / "state", codex_bin=codex, workers=workers)
    started = time.perf_counter()
    summary = await run_mission(mission, settings)
    elapsed = time.perf_counter() - started
    assert summary.status == "ok", summary.counts
    return elapsed


def measure_one(kind: str, tasks: int, workers: int, files: int) -> dict[str, Any]:
    codex, _ = find_codex_bin(os.environ.get("CODEX_BIN"))
    with tempfile.TemporaryDirectory(prefix="cmw-bench-") as tmp:
        before = resource.getrusage(resource.RUSAGE_SELF)
        if kind == "direct":
            work = direct(tasks, workers, codex, Path(tmp), files)
        else:
            isolation = "worktree" if kind == "worktree" else "none"
            work = wrapper(tasks, workers, codex, Path(tmp), files, isolation)
        seconds = asyncio.run(work)
        after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "python_cpu_ms_per_task": round(cpu / tasks * 1000, 2),
        "kind": kind,
        "workers": workers,
        "tasks": tasks,
        "seconds": round(seconds, 3),
        "per_task_ms": round(seconds / tasks * 1000, 1),
        "peak_rss_mb_self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_mb_codex": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
    }


def _measure(kind: str, tasks: int, workers: int, files: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            *("--one", kind, "--tasks", str(tasks), "--workers", str(workers)),
            *("--repo-files", str(files)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def ratio(value: float, base: float) -> str:
    """``value / base`` as a ratio and a percentage; "n/a" when the base cost is not positive
    (too few tasks on a noisy machine to see a per-task cost)."""
    if base <= 0:
        return "n/a (the base cost per task did not show; run more tasks)"
    return f"{value / base:.2f} ({100 * (value / base - 1):+.0f}%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--warm", type=int, default=10, help="Small run subtracted out.")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=3, help="Median of this many runs.")
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    parser.add_argument("--repo-files", type=int, default=200, help="Files in the workspace.")
    parser.add_argument("--no-worktree", action="store_true", help="Leave out the worktree case.")
    parser.add_argument("--one", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.tasks, args.workers[0], args.repo_files)))
        return
    rows: list[dict[str, Any]] = []
    marginal: dict[tuple[str, int], float] = {}
    kinds = KINDS[:2] if args.no_worktree else KINDS
    for workers in args.workers:
        for kind in kinds:
            costs, row = [], {}
            for _ in range(args.repeat):
                row = _measure(kind, args.tasks, workers, args.repo_files)
                warm = _measure(kind, args.warm, workers, args.repo_files)
                costs.append((row["seconds"] - warm["seconds"]) / (args.tasks - args.warm))
            cost = statistics.median(costs)
            row["marginal_ms_per_task"] = round(cost * 1000, 1)
            row["marginal_ms_runs"] = [round(c * 1000, 1) for c in costs]
            marginal[(kind, workers)] = cost
            rows.append(row)
            print(
                f"{kind:>8} x{workers}: {row['seconds']:6.2f} s for {args.tasks} tasks, "
                f"{row['marginal_ms_per_task']:5.1f} ms/task marginal, "
                f"{row['python_cpu_ms_per_task']:5.2f} ms Python CPU/task; peak RSS: wrapper "
                f"{row['peak_rss_mb_self']} MB, largest codex {row['peak_rss_mb_codex']} MB",
                flush=True,
            )
    print()
    for workers in args.workers:
        print(
            f"workers={workers}: wrapper/direct per task = "
            f"{ratio(marginal[('wrapper', workers)], marginal[('direct', workers)])}"
        )
        if "worktree" in kinds:
            plain, isolated = marginal[("wrapper", workers)], marginal[("worktree", workers)]
            print(
                f"workers={workers}: worktree/wrapper per task = {ratio(isolated, plain)}, a "
                f"worktree adds {1000 * (isolated - plain):+.1f} ms per task "
                f"({args.repo_files} files in the repository)"
            )
    if 1 in args.workers and 4 in args.workers:
        wrap = marginal[("wrapper", 1)] / marginal[("wrapper", 4)]
        dire = marginal[("direct", 1)] / marginal[("direct", 4)]
        print(f"speed-up of 4 workers over 1 (per task): wrapper {wrap:.2f}x, direct {dire:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
