"""Steering a running turn with the real Codex on the scripted model: ``runs steer`` from
another process reaches the model within the same turn (its next request, the rollout, the
transcript); steering a task that runs no turn says so in one line with exit 1."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import pytest
import yaml

from tests.helpers.cli import CLI_TIMEOUT, REPO, run_cli
from tests.helpers.mcp_client import stdio_client

GATE_TIMEOUT = 120.0  # the task's command opening the gate: Codex started, thread, first turn
STEER = "Also mention the word PELICAN in your answer."


def open_writer(fifo: Path, timeout: float) -> TextIO:
    """The writing end of ``fifo``, once a reader (the task's command) has opened it; the
    reader gets end-of-file when it is closed. Bounded: on expiry the test fails, and the
    thread waiting to open is released by opening the reading end here."""
    opened: list[TextIO] = []

    def opener() -> None:
        opened.append(open(fifo, "w"))  # noqa: SIM115 - the caller closes it

    thread = threading.Thread(target=opener, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        with open(fifo):  # lets the blocked open return
            thread.join(5)
        for fh in opened:
            fh.close()
        raise AssertionError(f"the task's command did not open {fifo} within {timeout:g} s")
    return opened[0]


async def steer_a_gated_codex_call(
    client: Any, workspace: Path, why: Callable[[], object] = lambda: None
) -> tuple[str, Any]:
    """Start a ``codex`` call whose command waits on ``workspace/gate.fifo``, steer its thread
    with STEER over ``codex-steer`` while it waits (``why()`` explains a refusal), then open
    the gate: (the thread id, the call's result)."""
    threads: list[str] = []
    named = asyncio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        found = re.fullmatch(r"\S+: thread (\S+)", message or "")
        if found:
            threads.append(found[1])
            named.set()

    call = asyncio.create_task(
        client.call_tool(
            "codex",
            {"prompt": "Wait for the gate.", "cwd": str(workspace)},
            progress_callback=on_progress,
        )
    )
    try:
        gate = await asyncio.to_thread(open_writer, workspace / "gate.fifo", GATE_TIMEOUT)
        with gate:
            async with asyncio.timeout(GATE_TIMEOUT):
                await named.wait()
            steered = await client.call_tool(
                "codex-steer", {"threadId": threads[0], "prompt": STEER}
            )
            assert not steered.is_error, (steered.content, why())
            assert steered.structured_content is not None
            assert steered.structured_content["threadId"] == threads[0]
            gate.write("opened\n")
        async with asyncio.timeout(CLI_TIMEOUT):
            return threads[0], await call
    finally:
        call.cancel()


@contextmanager
def gate_opened(fifo: Path, timeout: float) -> Iterator[TextIO]:
    with open_writer(fifo, timeout) as fh:
        yield fh


def model_requests(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "model-requests.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def user_texts(request: dict[str, Any]) -> list[str]:
    """The text of every user message of a model request."""
    texts: list[str] = []
    for item in request["body"]["input"]:
        if item.get("type") == "message" and item.get("role") == "user":
            texts += [c.get("text", "") for c in item.get("content", [])]
    return texts


def test_a_steer_from_the_cli_reaches_the_model_within_the_same_turn(
    tmp_path: Path, state_dir: Path, cli_env: dict[str, str]
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    os.mkfifo(workspace / "gate.fifo")
    mission = {
        "workspace_root": "./ws",
        "provider": "scripted",
        "defaults": {"timeout_sec": 180, "sandbox": "workspace-write"},
        "tasks": [
            {
                "id": "steered",
                "prompt": "Wait for the gate, then answer.",
                "script": [{"shell": "cat gate.fifo"}, {"say": "Done: {last_output}"}],
            }
        ],
    }
    path = tmp_path / "mission.yaml"
    path.write_text(yaml.safe_dump(mission))
    run = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(path), "--json"],
        env=cli_env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with gate_opened(workspace / "gate.fifo", GATE_TIMEOUT) as gate:
            (control,) = state_dir.glob("runs/*/control.json")  # the run is going on
            run_id = control.parent.name
            steered = run_cli(["runs", "steer", run_id, "steered", STEER], cli_env)
            assert steered.returncode == 0, steered.stderr
            assert steered.stdout.startswith(f"steered task steered of run {run_id} (turn ")
            wrong = run_cli(["runs", "steer", run_id, "nope", STEER], cli_env)
            assert wrong.returncode == 2
            assert wrong.stderr.strip() == (
                f"error: run {run_id} has no task 'nope' (tasks: steered)."
            ), wrong.stderr
            gate.write("opened\n")
        out, err = run.communicate(timeout=CLI_TIMEOUT)
    finally:
        run.kill()
        run.wait()
    summary = json.loads(out)
    (task,) = summary["tasks"]
    assert task["status"] == "ok", (task, err[-2000:])
    assert task["turns_done"] == 1  # one turn: the steer went into it, not after it
    first, second = model_requests(Path(summary["run_dir"]))
    assert STEER not in json.dumps(first)
    assert STEER in user_texts(second)  # the request after the command, in the same turn
    transcript = Path(summary["run_dir"]) / "tasks" / "steered" / "events.jsonl"
    events = [json.loads(line) for line in transcript.read_text().splitlines()]
    steers = [e["params"] for e in events if e.get("method") == "wrapper/steer"]
    assert [s["text"] for s in steers] == [STEER]
    rollouts = list(state_dir.glob("workers/*/codex-home/sessions/**/rollout-*.jsonl"))
    assert any(STEER in r.read_text() for r in rollouts), rollouts
    assert not (Path(summary["run_dir"]) / "control.json").exists()

    late = run_cli(["runs", "steer", run_id, "steered", STEER], cli_env)
    assert late.returncode == 1
    assert late.stderr.strip() == (
        f"error: run {run_id} is not going on in any wrapper, so task 'steered' has no turn "
        "to steer."
    ), late.stderr


@pytest.mark.anyio
async def test_codex_steer_reaches_a_running_codex_call_from_the_official_mcp_client(
    tmp_path: Path, state_dir: Path, codex_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_BIN", codex_bin)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    os.mkfifo(workspace / "gate.fifo")
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump([{"shell": "cat gate.fifo"}, {"say": "Done."}]))
    async with stdio_client(state_dir, "--scripted", "--script", str(script)) as client:
        nobody = await client.call_tool("codex-steer", {"threadId": "nope", "prompt": STEER})
        assert nobody.is_error
        assert nobody.content[0].text.startswith("no Codex call in thread 'nope' is running")  # type: ignore[union-attr]
        thread, result = await steer_a_gated_codex_call(client, workspace)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["threadId"] == thread
    (requests,) = state_dir.glob("runs/*/model-requests.jsonl")
    first, second = model_requests(requests.parent)
    assert STEER not in json.dumps(first)
    assert STEER in user_texts(second)


@pytest.mark.anyio
async def test_runs_steer_reaches_a_mission_that_serve_runs(
    tmp_path: Path, state_dir: Path, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_BIN", cli_env["CODEX_BIN"])
    workspace = tmp_path / "ws"
    workspace.mkdir()
    os.mkfifo(workspace / "gate.fifo")
    mission = {
        "workspace_root": str(workspace),
        "provider": "scripted",
        "tasks": [
            {
                "id": "steered",
                "prompt": "Wait for the gate.",
                "script": [{"shell": "cat gate.fifo"}, {"say": "Done."}],
            }
        ],
    }
    async with stdio_client(state_dir, "--scripted") as client:
        started = await client.call_tool("mission_start", {"mission": mission})
        assert started.structured_content is not None, started.content
        run_id = started.structured_content["run_id"]
        gate = await asyncio.to_thread(open_writer, workspace / "gate.fifo", GATE_TIMEOUT)
        with gate:
            argv = ["runs", "steer", run_id, "steered", STEER]
            steered = await asyncio.to_thread(run_cli, argv, cli_env)
            assert steered.returncode == 0, steered.stderr
            gate.write("opened\n")
        async with asyncio.timeout(CLI_TIMEOUT):
            while True:
                waited = await client.call_tool("mission_wait", {"run_id": run_id})
                assert waited.structured_content is not None
                if waited.structured_content["done"]:
                    break
    assert waited.structured_content["status"] == "ok", waited.structured_content
    (log,) = state_dir.glob(f"runs/{run_id}/model-requests.jsonl")
    first, second = model_requests(log.parent)
    assert STEER in user_texts(second) and STEER not in json.dumps(first)
