"""Record a run against an upstream Responses server (the scripted model served with `model
serve`, standing in for a real provider), then replay it offline with the upstream stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.cli import REPO, run_cli
from tests.helpers.mcp_client import stdio_client

EXAMPLES = REPO / "examples"
TOKEN = "supersecret-token-77"
API_KEY = "sk-upstream-key-4242"
UPSTREAM_SCRIPT = [
    {"shell": "echo made > made.txt"},
    {"tool": {"server": "fs", "name": "read_file", "arguments": {"path": "notes.txt"}}},
    {"shell": "echo $TOKEN"},
    {"say": "done, token {last_output}"},
]


@pytest.fixture
def upstream(tmp_path: Path, cli_env: dict[str, str]) -> Iterator[str]:
    script = tmp_path / "upstream.yaml"
    script.write_text(yaml.safe_dump(UPSTREAM_SCRIPT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "model", "serve", "--script", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=cli_env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # bounded by the test timeout
    assert "listening on " in line, line
    try:
        yield line.split("listening on ", 1)[1].strip()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def mission(tmp_path: Path, base_url: str, with_fs: bool = True) -> Path:
    ws = tmp_path / "ws"
    fs = {
        "command": sys.executable,
        "args": [str(EXAMPLES / "mcp-smoke" / "fs_server.py")],
        "env": {"FS_SERVER_ROOT": str(ws)},
    }
    data: dict[str, Any] = {
        "mission_id": "recorded",
        "workspace_root": str(ws),
        "provider": {
            "base_url": base_url,
            "env_key": "UPSTREAM_API_KEY",
            "name": "upstream",
            "model": "scripted",
        },
        "defaults": {
            "sandbox": "workspace-write",
            "env": {"TOKEN": TOKEN},
            "mcp_servers": {"fs": fs} if with_fs else {},
        },
        "tasks": [
            {"id": "one", "prompt": "first task", "cwd": "one"},
            {"id": "two", "prompt": "second task", "cwd": "two"},
        ],
    }
    for task in ("one", "two"):
        (ws / task).mkdir(parents=True, exist_ok=True)
        (ws / task / "notes.txt").write_text(f"notes of {task}\n")
    path = tmp_path / ("mission.yaml" if with_fs else "mission-nofs.yaml")
    path.write_text(yaml.safe_dump(data))
    return path


def outcome(summary: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(t["task_id"], t["status"], t["final_message"]) for t in summary["tasks"]]


def test_a_recorded_run_replays_offline_with_the_same_results(
    tmp_path: Path, cli_env: dict[str, str], upstream: str
) -> None:
    env = {**cli_env, "UPSTREAM_API_KEY": API_KEY}
    cassette = tmp_path / "run.cassette.yaml"
    path = mission(tmp_path, upstream)
    recorded = run_cli(["run", str(path), "--json", "--record", str(cassette)], env)
    assert recorded.returncode == 0, recorded.stderr
    assert "recorded 8 exchange(s)" in recorded.stderr
    first = json.loads(recorded.stdout)
    text = cassette.read_text()
    assert TOKEN not in text and API_KEY not in text  # secrets: neither env values nor auth
    data = yaml.safe_load(text)
    steps = [e["step"] for e in data["tasks"]["one"]["exchanges"]]
    assert steps[0] == {"shell": "echo made > made.txt"}
    assert steps[1] == {
        "tool": {"server": "fs", "name": "read_file", "arguments": {"path": "notes.txt"}}
    }
    assert "mcp__fs.read_file" in data["tasks"]["one"]["exchanges"][1]["offered"]
    for task in ("one", "two"):
        (tmp_path / "ws" / task / "made.txt").unlink()

    # The upstream is gone; replay plays the cassette on the scripted model.
    junit = tmp_path / "smoke.xml"
    replayed = run_cli(
        ["run", str(path), "--json", "--replay", str(cassette), "--junit", str(junit)], env
    )
    assert replayed.returncode == 0, replayed.stderr
    second = json.loads(replayed.stdout)
    assert outcome(second) == outcome(first)
    assert 'failures="0"' in junit.read_text()
    for task in ("one", "two"):
        assert (tmp_path / "ws" / task / "made.txt").read_text() == "made\n"
    assert [c["tool"] for c in second["tasks"][0]["tool_calls"]] == ["read_file"]

    shown = run_cli(["cassette", "show", str(cassette)], env)
    assert shown.returncode == 0 and "1. shell: echo made > made.txt" in shown.stdout
    checked = run_cli(["cassette", "check", str(cassette)], env)
    assert checked.returncode == 0 and "8 exchange(s)" in checked.stdout

    # A divergence: the fs server is gone, so Codex no longer offers its tool.
    diverged = run_cli(
        [
            "run",
            str(mission(tmp_path, upstream, with_fs=False)),
            "--json",
            "--replay",
            str(cassette),
        ],
        env,
    )
    assert diverged.returncode == 1
    error = json.loads(diverged.stdout)["tasks"][0]["error"]
    assert "replay diverged: MCP tool 'read_file' of server 'fs' was not offered" in error


def test_a_broken_cassette_is_one_line_and_exit_2(tmp_path: Path, cli_env: dict[str, str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nmission_id: m\ntasks: {a: {exchanges: [{step: {sing: x}}]}}\n")
    done = run_cli(["cassette", "check", str(bad)], cli_env, timeout=60)
    assert done.returncode == 2
    assert "unknown step 'sing'" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.anyio
async def test_serve_records_each_mcp_mission_as_a_cassette_that_run_replays(
    tmp_path: Path, cli_env: dict[str, str], upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {**cli_env, "UPSTREAM_API_KEY": API_KEY}.items():
        monkeypatch.setenv(key, value)
    path = mission(tmp_path, upstream)
    cassettes = tmp_path / "cassettes"
    # The mission names its provider, sends it a key and starts an fs MCP server: the owner
    # trusts this client with all three.
    trust = ("--allow-client-providers", "--expose-var", "UPSTREAM_API_KEY")
    trust += ("--allow-mission-commands",)
    async with stdio_client(tmp_path / "served", "--record", str(cassettes), *trust) as client:
        result = await client.call_tool("batch", {"mission": str(path)})
    assert not result.is_error and (result.structured_content or {})["status"] == "ok"
    (cassette,) = cassettes.glob("recorded-*.yaml")
    replayed = run_cli(["run", str(path), "--json", "--replay", str(cassette)], cli_env)
    assert replayed.returncode == 0, replayed.stderr
    assert [t["status"] for t in json.loads(replayed.stdout)["tasks"]] == ["ok", "ok"]


def test_a_task_missing_from_the_cassette_stops_a_strict_replay_before_it_starts(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    cassette = tmp_path / "one-task.yaml"
    cassette.write_text("version: 1\nmission_id: recorded\ntasks: {one: {exchanges: []}}\n")
    path = mission(tmp_path, "http://127.0.0.1:9/v1")
    done = run_cli(["run", str(path), "--replay", str(cassette)], cli_env, timeout=60)
    assert done.returncode == 2
    assert "task two is not in the cassette (it has one)" in done.stderr
