"""Benchmark: worker memory over a long mission, with recycling on and off, side by side.

Runs a mission of N one-turn tasks (default 2,000) on W workers (default 2) against the scripted
model twice, each in its own Python process: with the default recycling limits and with
recycling off (``Recycling(0, 0)``). A sampler thread reads the resident memory of every
process below the wrapper (the app-servers, their supervisors and what they run) four times a
second. Prints, per setting: wall time, the peak and the last sample of that total, and the
ratio of the peaks. With recycling, the total stays bounded by the limits however many tasks
run; without, it grows with the task count.

    python bench/bench_recycle.py [--tasks 2000] [--workers 2] [--max-threads 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from codex_mcp_wrapper import process
from codex_mcp_wrapper.app import run_mission
from codex_mcp_wrapper.missions.loading import parse_mission
from codex_mcp_wrapper.settings import Recycling, Settings, find_codex_bin

SAMPLE_EVERY = 0.25  # seconds between memory samples


class TreeSampler:
    """Samples the summed RSS of this process's descendants in a thread."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _total(self) -> float:
        return sum(_rss_mb(pid) for pid in process.descendants(os.getpid()))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self.samples.append(self._total())

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure_one(tasks: int, workers: int, max_threads: int) -> dict[str, Any]:
    codex, _ = find_codex_bin(os.environ.get("CODEX_BIN"))
    recycling = Recycling() if max_threads < 0 else Recycling(max_threads, 0)
    with tempfile.TemporaryDirectory(prefix="cmw-bench-") as tmp:
        root = Path(tmp)
        mission = parse_mission(
            {
                "mission_id": "bench-recycle",
                "workspace_root": str(root / "ws"),
                "provider": "scripted",
                "tasks": [{"prompt": f"task {n}"} for n in range(tasks)],
            }
        )
        settings = Settings(
            state_dir=root / "state", codex_bin=codex, workers=workers, recycling=recycling
        )
        started = time.perf_counter()
        with TreeSampler() as sampler:
            summary = asyncio.run(run_mission(mission, settings))
        seconds = time.perf_counter() - started
    assert summary.status == "ok", summary.counts
    samples = sampler.samples or [0.0]
    return {
        "max_threads": recycling.max_threads,
        "seconds": round(seconds, 1),
        "peak_workers_mb": round(max(samples), 1),
        "last_workers_mb": round(next((s for s in reversed(samples) if s > 0), 0.0), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--max-threads", type=int, default=-1, help="Recycling limit (default: the default)."
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.tasks, args.workers, args.max_threads)))
        return
    rows = {}
    for label, limit in (("recycling on", args.max_threads), ("recycling off", 0)):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                "--tasks",
                str(args.tasks),
                "--workers",
                str(args.workers),
                "--max-threads",
                str(limit),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows[label] = row
        print(
            f"{label:>13} (max_threads={row['max_threads']}): {row['seconds']:7.1f} s for "
            f"{args.tasks} tasks on {args.workers} workers; workers' memory peak "
            f"{row['peak_workers_mb']} MB, at the end {row['last_workers_mb']} MB",
            flush=True,
        )
    on, off = rows["recycling on"], rows["recycling off"]
    print(
        f"peak memory on/off = {on['peak_workers_mb'] / off['peak_workers_mb']:.2f}; "
        f"wall time on/off = {on['seconds'] / off['seconds']:.2f}"
    )


if __name__ == "__main__":
    main()
