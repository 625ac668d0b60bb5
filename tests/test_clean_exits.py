"""Clean exits: SIGTERM or Ctrl-C stops every long-running command without a traceback, with
a call still in flight answered (a cancellation result), never dropped. Each test runs the
installed command as a real subprocess, waits on its output or on the model's request log
(never a sleep) for the moment something is in flight, then signals it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.mcp_client import initialize_line
from tests.helpers.procs import wait_gone, wait_until
from tests.test_serve_hardening import (
    JSON_AND_SSE,
    START_TIMEOUT,
    STOP_TIMEOUT,
    URL_LINE,
    Output,
    assert_clean,
    served,
    stop,
)

REPO = Path(__file__).resolve().parents[1]
DELAYED_TASK = {"id": "slow", "prompt": "wait", "script": [{"delay": 300}, {"say": "late"}]}
REQUEST_TIMEOUT = 30


def model_asked(state_dir: Path) -> bool:
    """A run's model has received its first request (the turn is in flight)."""
    return any(p.stat().st_size for p in state_dir.glob("runs/*/model-requests.jsonl"))


def assert_no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr
    assert "ERROR:" not in stderr, stderr  # uvicorn's reports of cancelled requests


@pytest.mark.codex
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_run_signalled_during_a_model_delay_exits_130_with_one_error_line(
    tmp_path: Path, cli_env: dict[str, str], state_dir: Path, sig: signal.Signals
) -> None:
    mission = tmp_path / "m.json"
    workspace = str(tmp_path / "ws")
    mission.write_text(
        json.dumps({"provider": "scripted", "workspace_root": workspace, "tasks": [DELAYED_TASK]})
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(mission)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=cli_env,
        cwd=REPO,
    )
    try:
        assert wait_until(lambda: model_asked(state_dir), START_TIMEOUT), "no model request"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=STOP_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = err.decode()
    assert proc.returncode == 130, stderr
    assert_no_traceback(stderr)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: interrupted; "), stderr
    assert stderr.endswith(errors[0] + "\n") and " resume " in errors[0]  # how to finish it


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_model_serve_stops_on_a_signal_with_a_request_in_flight_and_no_traceback(
    tmp_path: Path, sig: signal.Signals
) -> None:
    script, record = tmp_path / "slow.yaml", tmp_path / "requests.jsonl"
    script.write_text("- delay: 300\n- say: late\n")
    argv = ["model", "serve", "--script", str(script), "--record", str(record)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+/v1)", line)
        assert url, line
        body = {"model": "scripted", "stream": True, "input": []}
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(
                httpx.post, f"{url.group(1)}/responses", json=body, timeout=REQUEST_TIMEOUT
            )
            assert wait_until(lambda: record.is_file() and record.stat().st_size > 0, 30)
            proc.send_signal(sig)  # the request is in flight: its delay has begun
            status = answer.result(timeout=REQUEST_TIMEOUT).status_code
        _, err = proc.communicate(timeout=STOP_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = err.decode()
    assert status == 503  # the delayed request was answered: the model is stopping
    assert proc.returncode == 130, stderr
    assert_no_traceback(stderr)
    assert stderr == "error: interrupted.\n"


def _call(request_id: int, mission: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "batch", "arguments": {"mission": mission}},
    }


def _answer(messages: list[dict[str, Any]], request_id: int) -> dict[str, Any]:
    answers = [m for m in messages if m.get("id") == request_id and "method" not in m]
    assert len(answers) == 1, messages
    return answers[0]


def assert_cancellation_result(answer: dict[str, Any]) -> None:
    """``batch``'s own result (not an error: the call worked), for a run cancelled mid-task."""
    result = answer.get("result")
    assert result is not None, answer
    shown = json.loads(result["content"][0]["text"])
    assert shown["status"] == "cancelled", shown
    assert [r["status"] for r in shown["results"]] == ["cancelled"]


@pytest.mark.codex
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stdio_server_answers_a_call_in_flight_with_a_cancellation_result_on_a_signal(
    state_dir: Path, workspace: Path, sig: signal.Signals
) -> None:
    with served(state_dir, "--scripted") as (proc, out):
        assert proc.stdin is not None and proc.stdout is not None
        mission = {"workspace_root": str(workspace), "tasks": [DELAYED_TASK]}
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        for line in (initialize_line(), json.dumps(initialized) + "\n"):
            proc.stdin.write(line.encode())
        proc.stdin.write((json.dumps(_call(2, mission)) + "\n").encode())
        proc.stdin.flush()
        assert wait_until(lambda: model_asked(state_dir), START_TIMEOUT), out.text()
        stderr = stop(proc, out, sig)
        stdout = Output(proc.stdout.fileno()).read_to_end(STOP_TIMEOUT)
    assert_clean(stderr)
    assert_no_traceback(stderr)
    messages = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert_cancellation_result(_answer(messages, 2))


@pytest.mark.codex
def test_a_codex_call_in_flight_gets_an_error_result_saying_it_was_cancelled_on_sigterm(
    state_dir: Path, workspace: Path, tmp_path: Path
) -> None:
    """The drop-in ``codex`` tool: its call in flight ends as the removed server's failures
    did, ``isError`` with the reason, and the thread id to continue it."""
    script = tmp_path / "slow.yaml"
    script.write_text("- delay: 300\n- say: late\n")
    with served(state_dir, "--scripted", "--script", str(script)) as (proc, out):
        assert proc.stdin is not None and proc.stdout is not None
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
        call["params"] = {"name": "codex", "arguments": {"prompt": "wait", "cwd": str(workspace)}}
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        proc.stdin.write(initialize_line().encode())
        proc.stdin.write((json.dumps(initialized) + "\n" + json.dumps(call) + "\n").encode())
        proc.stdin.flush()
        assert wait_until(lambda: model_asked(state_dir), START_TIMEOUT), out.text()
        stderr = stop(proc, out, signal.SIGTERM)
        stdout = Output(proc.stdout.fileno()).read_to_end(STOP_TIMEOUT)
    assert_clean(stderr)
    assert_no_traceback(stderr)
    messages = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    result = _answer(messages, 2)["result"]
    assert result["isError"] is True
    assert "cancelled" in result["content"][0]["text"], result
    assert result["structuredContent"]["threadId"]


def _sse_messages(body: bytes) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data:") :])
        for line in body.decode().splitlines()
        if line.startswith("data:") and line[len("data:") :].strip()
    ]


@pytest.mark.codex
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_http_server_answers_a_call_in_flight_with_a_cancellation_result_on_a_signal(
    state_dir: Path, workspace: Path, sig: signal.Signals
) -> None:
    with served(state_dir, "--transport", "http", "--port", "0", "--scripted") as (proc, out):
        url = out.wait_for(URL_LINE, START_TIMEOUT).group(1).decode()
        mission = {"workspace_root": str(workspace), "tasks": [DELAYED_TASK]}
        with httpx.Client(timeout=REQUEST_TIMEOUT) as http:
            hello = http.post(url, json=json.loads(initialize_line()), headers=JSON_AND_SSE)
            session = {
                "mcp-session-id": hello.headers["mcp-session-id"],
                "mcp-protocol-version": "2025-06-18",
            }
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            http.post(url, json=note, headers={**JSON_AND_SSE, **session})
            headers = {**JSON_AND_SSE, **session}
            with http.stream("POST", url, json=_call(2, mission), headers=headers) as post:
                assert post.status_code == 200
                assert wait_until(lambda: model_asked(state_dir), START_TIMEOUT), out.text()
                proc.send_signal(sig)
                body = post.read()  # ended properly (a cut-off stream raises here)
        assert wait_gone([proc.pid], timeout=STOP_TIMEOUT)
        assert proc.wait(timeout=STOP_TIMEOUT) == 0
        stderr = out.read_to_end(STOP_TIMEOUT)
    assert_clean(stderr)
    assert_no_traceback(stderr)
    assert_cancellation_result(_answer(_sse_messages(body), 2))
