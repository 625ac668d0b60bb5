"""Item 27.4: ``serve --metrics-port`` and ``host --metrics-port``, scraped by a real
Prometheus: it sees tasks move, workers and their memory, queue waits and MCP calls by tool."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.helpers.cli import run_cli
from tests.helpers.missions import write_mission
from tests.helpers.prometheus import prometheus
from tests.helpers.temporal import temporal_rig
from tests.test_serve_hardening import START_TIMEOUT, URL_LINE, served

METRICS_LINE = re.compile(rb"metrics on http://(127\.0\.0\.1:\d+)/metrics")


@pytest.mark.anyio
async def test_prometheus_scraping_serve_sees_a_codex_call_run_a_task_on_a_worker(
    state_dir: Path, workspace: Path, tmp_path: Path
) -> None:
    args = ("--transport", "http", "--port", "0", "--scripted", "--metrics-port", "0")
    with served(state_dir, *args) as (_proc, out):
        target = out.wait_for(METRICS_LINE, START_TIMEOUT).group(1).decode()
        url = out.wait_for(URL_LINE, START_TIMEOUT).group(1).decode()
        with prometheus(tmp_path, [target]) as prom:
            prom.wait_for('up{job="wrapper"}', lambda up: up == 1)
            async with Client(url) as client:
                result = await client.call_tool("codex", {"prompt": "hi", "cwd": str(workspace)})
                assert not result.is_error
                refused = await client.call_tool("codex", {"prompt": "hi", "bogus": 1})
                assert refused.is_error
            prom.wait_for('codex_wrapper_tasks_total{status="ok"}', lambda n: n == 1)
            prom.wait_for("codex_wrapper_queue_wait_seconds_count", lambda n: n == 1)
            calls = 'codex_wrapper_mcp_call_seconds_count{tool="codex",outcome="ok"}'
            prom.wait_for(calls, lambda n: n == 1)
            refusals = 'codex_wrapper_mcp_call_seconds_count{tool="codex",outcome="error"}'
            prom.wait_for(refusals, lambda n: n == 1)
            prom.wait_for("codex_wrapper_tasks_running", lambda n: n == 0)
            # serve keeps its worker warm between calls: one process, its memory, a free slot
            prom.wait_for("codex_wrapper_codex_processes", lambda n: n >= 1)
            prom.wait_for("codex_wrapper_codex_resident_bytes", lambda b: b > 1024 * 1024)
            prom.wait_for('codex_wrapper_worker_slots{state="free"}', lambda n: n >= 1)
            prom.wait_for('codex_wrapper_worker_slots{state="busy"}', lambda n: n == 0)


def test_prometheus_scraping_a_host_sees_the_tasks_a_temporal_mission_ran_there(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    with temporal_rig(tmp_path / "rig", cli_env) as rig:
        rig.start_host("A", 2, "--metrics-port", "0")
        target = rig.ready["A"]["metrics"]
        assert target.startswith("127.0.0.1:")
        tasks = [{"id": f"t{n}", "prompt": f"task {n}"} for n in range(3)]
        path = write_mission(tmp_path / "three.yaml", tmp_path / "ws", tasks, provider="scripted")
        with prometheus(tmp_path, [target]) as prom:
            prom.wait_for('up{job="wrapper"}', lambda up: up == 1)
            submitted = run_cli(["run", str(path), "--json", *rig.flags()], cli_env)
            assert submitted.returncode == 0, submitted.stderr
            summary: dict[str, Any] = json.loads(submitted.stdout)
            assert [t["status"] for t in summary["tasks"]] == ["ok"] * 3
            prom.wait_for('codex_wrapper_tasks_total{status="ok"}', lambda n: n == 3)
            prom.wait_for("codex_wrapper_queue_wait_seconds_count", lambda n: n == 3)
            prom.wait_for("codex_wrapper_tasks_running", lambda n: n == 0)
            prom.wait_for("codex_wrapper_codex_processes", lambda n: n >= 1)
            prom.wait_for('codex_wrapper_worker_slots{state="busy"}', lambda n: n == 0)


def test_a_metrics_port_already_taken_is_a_one_line_error_with_exit_code_3(
    state_dir: Path, cli_env: dict[str, str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["serve", "--transport", "http", "--scripted", "--metrics-port", str(port)]
        done = run_cli(args, cli_env, timeout=60)
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--metrics-port" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
