"""The benchmarks the docs name stay runnable: each runs here, tiny, with the real Codex binary
(the figures themselves are measured by hand, side by side, and quoted in the docs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH_TIMEOUT = 300


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        (
            "bench_pool.py",
            ["--tasks", "4", "--warm", "2", "--workers", "1", "--repeat", "1", "--no-worktree"],
            "wrapper/direct",
        ),
        (
            "bench_pool.py",
            ["--tasks", "3", "--warm", "1", "--workers", "1", "--repeat", "1", "--repo-files", "5"],
            "worktree/wrapper per task",
        ),
        (
            "bench_concurrency.py",
            ["--tasks", "3", "--latency", "0.2", "--threads-per-worker", "1", "3"],
            "threads_per_worker=  3",
        ),
        ("bench_recycle.py", ["--tasks", "4", "--max-threads", "2"], "peak memory on/off"),
        ("bench_mcp.py", ["--calls", "2"], "wrapper/direct"),
        ("bench_record.py", ["--requests", "3", "--pause", "0.01"], "proxy overhead per request"),
        ("bench_startup.py", ["--repeat", "1"], "run one task - bare turn"),
        ("bench_ui.py", ["--tasks", "3", "--repeat", "1"], "first paint (ms)"),
        ("bench_temporal_scale.py", ["--tasks", "30", "--within", "120"], "30 of 30 ok"),
        (
            "bench_temporal.py",
            [
                "--tasks",
                "4",
                "--latency",
                "0.2",
                "--workers",
                "2",
                "--chain",
                "3",
                "--hosts",
                "1,2",
            ],
            "engine overhead per task",
        ),
    ],
)
def test_each_benchmark_runs_and_prints_its_comparison(
    script: str, args: list[str], expected: str, codex_bin: str, cli_env: dict[str, str]
) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout, done.stdout
