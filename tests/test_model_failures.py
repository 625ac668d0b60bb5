"""When the model cannot be used: no credentials for Codex's own provider, a model Codex cannot
reach, a prompt Codex refuses. Each ends at once or by its deadline, with the cause named."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from codex_mcp_wrapper.app import open_runs, run_mission
from codex_mcp_wrapper.codex.auth import find_credentials
from codex_mcp_wrapper.engine.events import Event, ModelRequest, TaskUpdate
from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.errors import NoCredentials
from codex_mcp_wrapper.mcp.server import build_server
from codex_mcp_wrapper.missions.loading import parse_mission
from codex_mcp_wrapper.scripted import ScriptedModel
from codex_mcp_wrapper.settings import API_KEY_VARS, Settings

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[1]
# Far below the 900 s a task may take by default: a run that reaches Codex would not exit by then.
PREFLIGHT_BOUND = 120
NO_CREDENTIALS = (
    "no OPENAI_API_KEY (or CODEX_API_KEY) and no auth.json for Codex's own model provider: "
    "set OPENAI_API_KEY, or use --scripted (the scripted model) or a mission provider"
)
SECRET_KEY = "sk-test-credentials-0123456789"


@pytest.fixture
def no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No API key variable and an empty home: nothing Codex's own provider could log in with.
    Returns that home."""
    home = tmp_path / "empty-home"
    home.mkdir()
    for name in (*API_KEY_VARS, "CODEX_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    return home


# -- 1. no credentials: a pre-flight, before any worker ------------------------------------


def test_a_run_on_codexs_own_provider_without_credentials_exits_3_at_once_with_the_reason(
    tmp_path: Path, cli_env: dict[str, str], state_dir: Path, no_login: Path
) -> None:
    env = {k: v for k, v in cli_env.items() if k not in (*API_KEY_VARS, "CODEX_HOME")}
    env["HOME"] = str(no_login)
    mission = tmp_path / "m.yaml"
    mission.write_text(f"workspace_root: {tmp_path / 'ws'}\ntasks:\n  - prompt: hello\n")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "codex_mcp_wrapper", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=PREFLIGHT_BOUND,
            stdin=subprocess.DEVNULL,
        )

    proc = cli("run", str(mission))
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr == f"error: {NO_CREDENTIALS}.\n"
    assert not (state_dir / "workers").exists()  # no worker was started, none even claimed

    doctor = cli("doctor")  # says the same sentence
    assert f"[warn] auth: {NO_CREDENTIALS}\n" in doctor.stdout

    scripted = cli("run", str(mission), "--scripted", "--json")  # needs no credentials
    assert scripted.returncode == 0, scripted.stderr
    assert json.loads(scripted.stdout)["tasks"][0]["final_message"] == "echo: hello"


async def test_the_mcp_tools_answer_the_same_sentence_as_an_error_result(
    state_dir: Path, workspace: Path, codex_bin: str, no_login: Path
) -> None:
    settings = Settings(state_dir=state_dir, codex_bin=codex_bin, workers=1)
    async with Client(build_server(open_runs(settings, default_cwd=workspace))) as client:
        codex = await client.call_tool("codex", {"prompt": "hello"})
        mission = {"workspace_root": str(workspace), "tasks": [{"prompt": "hello"}]}
        batch = await client.call_tool("batch", {"mission": mission})
    for result in (codex, batch):
        assert result.is_error
        assert [c.text for c in result.content] == [f"{NO_CREDENTIALS}."]  # type: ignore[union-attr]
    assert not (state_dir / "workers").exists()


def test_credentials_come_from_a_key_or_a_mirrored_login_never_from_a_worker_home(
    state_dir: Path, no_login: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(state_dir=state_dir)
    assert find_credentials(settings).missing == NO_CREDENTIALS

    user_auth = no_login / ".codex" / "auth.json"
    user_auth.parent.mkdir()
    user_auth.write_text("{}")
    found = find_credentials(settings)
    assert not found.ok
    assert f"({user_auth} is copied into workers only with --mirror-auth)" in found.missing
    assert find_credentials(Settings(state_dir=state_dir, mirror_auth=True)).ok

    user_auth.unlink()
    kept = state_dir / "workers" / "w1" / "codex-home" / "auth.json"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")  # left by an earlier run (killed before its workers stopped)
    assert find_credentials(settings).missing == NO_CREDENTIALS

    kept.unlink()
    monkeypatch.setenv("CODEX_API_KEY", SECRET_KEY)
    assert find_credentials(settings).source == "API key in $CODEX_API_KEY"


async def test_an_api_key_in_the_environment_logs_workers_in_to_codexs_own_provider(
    state_dir: Path,
    workspace: Path,
    codex_bin: str,
    model: ScriptedModel,
    no_login: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Codex's app-server reads no key from its environment, only auth.json: the wrapper
    writes the key there, so setting OPENAI_API_KEY (the pre-flight's advice) works."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    auth = state_dir / "workers" / "w1" / "codex-home" / "auth.json"
    authorization: list[str | None] = []
    modes: list[int] = []

    def seen(headers: dict[str, str], _body: dict[str, Any]) -> None:
        authorization.append(headers.get("authorization"))
        modes.append(stat.S_IMODE(auth.stat().st_mode))  # while the worker runs

    model.listeners.append(seen)
    mission = parse_mission(
        {
            "workspace_root": str(workspace),
            "tasks": [
                {"prompt": "hi", "retries": 0, "config": {"openai_base_url": model.base_url}}
            ],
        }
    )
    summary = await run_mission(
        mission, Settings(state_dir=state_dir, codex_bin=codex_bin, workers=1)
    )
    assert summary.tasks[0].status == "ok", summary.tasks[0].error
    assert authorization == [f"Bearer {SECRET_KEY}"]
    assert modes == [0o600]
    assert not auth.exists()  # the key went with the run's worker


async def test_a_key_given_for_one_run_is_not_used_by_a_later_run_that_has_none(
    state_dir: Path,
    workspace: Path,
    codex_bin: str,
    model: ScriptedModel,
    no_login: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Credentials are per run: a worker home holding an earlier run's key (a run killed
    before its workers stopped leaves one) neither counts as a login nor logs a later run in;
    the next worker built on that home removes it."""
    settings = Settings(state_dir=state_dir, codex_bin=codex_bin, workers=1)
    stale = state_dir / "workers" / "w1" / "codex-home" / "auth.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"OPENAI_API_KEY": SECRET_KEY}))
    own = parse_mission({"workspace_root": str(workspace), "tasks": [{"prompt": "hi"}]})
    with pytest.raises(NoCredentials, match="no OPENAI_API_KEY"):
        await run_mission(own, settings)

    authorization: list[str | None] = []
    model.listeners.append(lambda headers, _b: authorization.append(headers.get("authorization")))
    custom = parse_mission(
        {
            "workspace_root": str(workspace),
            "provider": {"name": "local", "base_url": model.base_url},
            "tasks": [{"prompt": "hi", "retries": 0}],
        }
    )
    summary = await run_mission(custom, settings)
    assert summary.tasks[0].status == "ok", summary.tasks[0].error
    assert authorization == [None]  # the earlier key was not sent
    assert not stale.exists()


# -- 2. a model Codex cannot reach: reported, and not progress -----------------------------


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A 127.0.0.1 port that refuses connections: bound (so nobody else takes it), never
    listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@asynccontextmanager
async def hanging_up_listener() -> AsyncIterator[int]:
    """A 127.0.0.1 port that accepts each connection and closes it at once: Codex retries
    quickly ("Reconnecting... n/10") rather than waiting for the network."""

    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def unreachable(workspace: Path, port: int, idle: float) -> Any:
    return parse_mission(
        {
            "workspace_root": str(workspace),
            "provider": {"base_url": f"http://127.0.0.1:{port}/v1", "model": "m"},
            "tasks": [
                {
                    "id": "t",
                    "prompt": "hello",
                    "idle_timeout_sec": idle,
                    "timeout_sec": 300,
                    "retries": 2,
                    "config": {
                        "model_providers": {
                            "custom": {"request_max_retries": 0, "stream_max_retries": 10}
                        }
                    },
                }
            ],
        }
    )


def transcript(summary: Any) -> list[dict[str, Any]]:
    path = Path(summary.run_dir) / "tasks" / "t" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_a_model_that_cannot_be_reached_ends_the_turn_by_its_idle_deadline_with_the_cause(
    state_dir: Path, workspace: Path, codex_bin: str, dead_port: int
) -> None:
    events: list[Event] = []
    summary = await run_mission(
        unreachable(workspace, dead_port, idle=3),
        Settings(state_dir=state_dir, codex_bin=codex_bin, workers=1),
        RunOptions(observers=[events.append]),
    )
    task = summary.tasks[0]
    assert task.status == "timeout" and task.attempts == 1  # a timeout is not retried
    assert task.error is not None
    assert task.error.startswith("Codex could not reach the model for 3 s (idle_timeout_sec)")
    assert "last: Reconnecting..." in task.error
    notes = [e.message for e in events if isinstance(e, TaskUpdate) and e.status == "running"]
    assert any(
        n.startswith("Codex cannot reach the model and retries: Reconnecting") for n in notes
    )
    retries = [e for e in transcript(summary) if e["method"] == "error"]
    assert retries and all(e["params"]["willRetry"] for e in retries)


async def test_reconnect_attempts_do_not_hold_off_the_idle_deadline(
    state_dir: Path, workspace: Path, codex_bin: str
) -> None:
    idle = 4.5
    async with hanging_up_listener() as port:
        summary = await run_mission(
            unreachable(workspace, port, idle),
            Settings(state_dir=state_dir, codex_bin=codex_bin, workers=1),
        )
    task = summary.tasks[0]
    assert task.status == "timeout", task.error
    assert task.error is not None and "Codex could not reach the model" in task.error
    events = transcript(summary)
    retried_at = [e["ts"] for e in events if e["method"] == "error" and e["params"]["willRetry"]]
    (ended_at,) = [e["ts"] for e in events if e["method"] == "turn/completed"]
    assert len(retried_at) >= 2
    # Had a reconnect counted as progress, the turn could not end sooner than idle_timeout_sec
    # after the last one; it ends idle_timeout_sec after the model's last progress instead.
    last_retry = max(t for t in retried_at if t <= ended_at)
    assert ended_at - last_retry < idle - 1


async def test_a_provider_on_a_closed_port_fails_the_task_in_under_a_minute_naming_the_url(
    state_dir: Path, workspace: Path, codex_bin: str, dead_port: int
) -> None:
    """Codex retries a refused connection forever ("Reconnecting... waiting for network");
    with the default deadlines (idle 300 s, task 900 s) the task fails after
    Timeouts.model_unreachable instead, once, with the URL and what to check."""
    url = f"http://127.0.0.1:{dead_port}/v1"
    mission = parse_mission(
        {
            "workspace_root": str(workspace),
            "provider": {"base_url": url, "model": "m"},
            "tasks": [{"id": "t", "prompt": "hello"}],
        }
    )
    settings = Settings(state_dir=state_dir, codex_bin=codex_bin, workers=1)
    started = time.monotonic()
    summary = await run_mission(mission, settings)
    took = time.monotonic() - started
    task = summary.tasks[0]
    assert task.status == "failed" and task.attempts == 1, task.error  # not retried
    bound = settings.timeouts.model_unreachable
    assert bound <= took < 60
    assert task.error is not None
    assert task.error.startswith(
        f"the model provider at {url} could not be reached for {bound:g} s (Codex retried "
    )
    assert "last: Reconnecting... waiting for network" in task.error
    assert task.error.endswith(
        "check that it is running and listening at that address and that this machine can "
        "reach it (network, proxy, firewall)."
    )


# -- 3. a prompt Codex refuses: failed once, never retried ----------------------------------


async def test_a_prompt_over_codexs_input_limit_fails_once_without_a_retry(
    state_dir: Path, workspace: Path, codex_bin: str
) -> None:
    events: list[Event] = []
    mission = parse_mission(
        {
            "workspace_root": str(workspace),
            "provider": "scripted",
            "tasks": [{"id": "big", "prompt": "x" * 1_100_000, "retries": 2}],
        }
    )
    summary = await run_mission(
        mission,
        Settings(state_dir=state_dir, codex_bin=codex_bin, workers=1),
        RunOptions(observers=[events.append]),
    )
    task = summary.tasks[0]
    assert task.status == "failed" and task.attempts == 1
    assert task.error is not None and "Input exceeds the maximum length" in task.error
    states = {e.status for e in events if isinstance(e, TaskUpdate)}
    assert not states & {"retrying", "worker-lost"}  # the worker is fine and kept
    assert not [e for e in events if isinstance(e, ModelRequest)]  # the model never asked
