"""Worker recycling and the process budget with the real Codex binary and the scripted model."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from pathlib import Path

import pytest

from codex_mcp_wrapper.app import open_runs
from codex_mcp_wrapper.missions.loading import parse_mission
from codex_mcp_wrapper.missions.single import CodexRequest
from codex_mcp_wrapper.settings import Recycling, Settings

pytestmark = pytest.mark.anyio


async def test_a_recycled_worker_loses_no_task_and_its_threads_continue_on_the_fresh_one(
    workspace: Path, state_dir: Path, codex_bin: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        state_dir=state_dir, codex_bin=codex_bin, workers=1, recycling=Recycling(max_threads=2)
    )
    mission = parse_mission(
        {
            "mission_id": "recycle",
            "workspace_root": str(workspace),
            "provider": "scripted",
            "tasks": [
                {"id": f"t{n}", "prompt": f"P{n}", "script": [{"say": f"answer {n}"}]}
                for n in range(5)
            ],
        }
    )
    runs = open_runs(settings)
    with caplog.at_level(logging.INFO, logger="codex_mcp_wrapper.pool"):
        summary = await runs.run(mission)
    assert [t.status for t in summary.tasks] == ["ok"] * 5
    assert [t.final_message for t in summary.tasks] == [f"answer {n}" for n in range(5)]
    assert {t.worker for t in summary.tasks} == {"w1"}
    retired = [r.getMessage() for r in caplog.records if "retiring worker" in r.getMessage()]
    assert retired == ["retiring worker w1: it ran 2 threads (limit 2)"] * 2
    # t0's thread was run by the first process, long retired: a reply resumes it from the
    # rollout in w1's CODEX_HOME, on whichever process runs there now.
    first = summary.tasks[0]
    reply = await runs.reply(str(first.thread_id), "and again")
    assert reply.status == "ok", reply.error
    assert reply.thread_id == first.thread_id
    assert reply.final_message == "echo: and again"  # its script is played: the model echoes


async def test_concurrent_codex_calls_share_the_workers_budget(
    workspace: Path, state_dir: Path, codex_bin: str
) -> None:
    settings = Settings(state_dir=state_dir, codex_bin=codex_bin, workers=1, scripted=True)
    async with open_runs(settings, default_cwd=workspace) as runs:
        results = await asyncio.gather(
            *(runs.codex(CodexRequest(prompt=f"call {n}")) for n in range(3))
        )
    assert [r.status for r in results] == ["ok"] * 3
    assert sorted(r.final_message or "" for r in results) == [f"echo: call {n}" for n in range(3)]
    # One process at a time: every call ran on the one label the budget allows. Unbounded,
    # the three calls would have claimed w1, w2 and w3 and started three app-servers.
    assert {r.worker for r in results} == {"w1"}


def test_the_recycling_options_reach_the_run_and_a_bad_value_is_refused(
    workspace: Path, cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    mission = tmp_path / "m.yaml"
    mission.write_text(
        f"workspace_root: {workspace}\ntasks:\n  - {{id: a, prompt: A}}\n  - {{id: b, prompt: B}}\n"
    )
    args = [*cli, "run", str(mission), "--scripted", "--workers", "1", "--json"]
    done = subprocess.run(
        [*args, "--recycle-after-threads", "1", "--recycle-above-mb", "0"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [t["status"] for t in json.loads(done.stdout)["tasks"]] == ["ok", "ok"]
    bad = subprocess.run(
        [*args, "--recycle-after-threads", "-1"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1, bad.stderr
