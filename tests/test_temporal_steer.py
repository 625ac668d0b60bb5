"""Steering a task that runs on a Temporal host: `runs steer RUN_ID TASK TEXT` reaches the
submitter's control endpoint (`run --temporal` watching the run), which leaves the steer in the
task's mailbox in the shared store; the host running the task's attempt takes it, steers its
Codex turn (`turn/steer`) and answers with the turn's id. A real dev server, a real host
process, the real Codex on the scripted model; the model gets the text within the same turn.
The MCP `codex-steer` tool reaches a `codex` call that `serve --temporal` runs on a host the
same way, and so does the UI's Steer form. The mailbox itself is also exercised on a real
directory store, without a host."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from codex_mcp_wrapper.errors import NotSteerable
from codex_mcp_wrapper.temporal.shared import DirectoryStore
from codex_mcp_wrapper.temporal.steering import mailbox, steer_through_store
from tests.helpers.cli import run_cli
from tests.helpers.mcp_client import stdio_client
from tests.helpers.temporal import Rig
from tests.test_cancel_elsewhere import ended, run_id_of, statuses
from tests.test_steer import (
    GATE_TIMEOUT,
    STEER,
    gate_opened,
    model_requests,
    steer_a_gated_codex_call,
    user_texts,
)
from tests.test_temporal import mission, rig, start_run  # noqa: F401 - rig
from tests.test_ui import LIVE, browser, ui_url  # noqa: F401 - the fixtures


def test_runs_steer_reaches_the_model_of_a_task_running_on_a_temporal_host(
    rig: Rig,  # noqa: F811 - the fixture
    tmp_path: Path,
    state_dir: Path,
    cli_env: dict[str, str],
) -> None:
    rig.start_host("A")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    os.mkfifo(workspace / "gate.fifo")
    tasks: list[dict[str, Any]] = [
        {
            "id": "steered",
            "prompt": "Wait for the gate, then answer.",
            "script": [{"shell": "cat gate.fifo"}, {"say": "Done: {last_output}"}],
        },
        {"id": "after", "prompt": "then", "depends_on": ["steered"]},
    ]
    path = mission(tmp_path / "steer.yaml", tasks, timeout_sec=180)
    submit = start_run(rig, path, cli_env)
    try:
        with gate_opened(workspace / "gate.fifo", GATE_TIMEOUT) as gate:
            run_id = run_id_of(state_dir)  # the submitter watches the run
            steered = run_cli(["runs", "steer", run_id, "steered", STEER], cli_env)
            assert steered.returncode == 0, (steered.stderr, rig.errors("A"))
            assert steered.stdout.startswith(f"steered task steered of run {run_id} (turn ")
            waiting = run_cli(["runs", "steer", run_id, "after", STEER], cli_env)
            assert (waiting.returncode, waiting.stderr.strip()) == (
                1,
                f"error: task 'after' of run {run_id} is not running a turn (it is waiting, "
                "between turns or done), so there is nothing to steer.",
            )
            gate.write("opened\n")
        summary = ended(submit)
    finally:
        if submit.poll() is None:
            submit.kill()
            submit.communicate()
    assert submit.returncode == 0, summary
    assert statuses(summary) == {"steered": "ok", "after": "ok"}
    by_id = {t["task_id"]: t for t in summary["tasks"]}  # type: ignore[attr-defined]
    assert by_id["steered"]["turns_done"] == 1  # the steer went into the turn, not after it
    assert by_id["steered"]["worker"].startswith("A/")
    # The host's model got the text with its next request of the same turn.
    (log,) = rig.state("A").glob(f"runs/{run_id}/model-requests.jsonl")
    first, second = model_requests(log.parent)[:2]
    assert STEER not in json.dumps(first)
    assert STEER in user_texts(second)
    # The submitter's transcript of the task records the steer, relayed from the host.
    transcript = Path(str(summary["run_dir"])) / "tasks" / "steered" / "events.jsonl"
    events = [json.loads(line) for line in transcript.read_text().splitlines()]
    steers = [e["params"] for e in events if e.get("method") == "wrapper/steer"]
    assert [s["text"] for s in steers] == [STEER]
    # The mailbox is gone with the run, and the text is in no log of the host.
    assert not (rig.shared / "runs" / run_id / "steer").exists()
    assert STEER not in rig.errors("A")
    assert rig.stop_host("A") == 0


@pytest.mark.anyio
async def test_a_steer_left_in_the_mailbox_is_answered_by_the_attempt_and_cleaned_up(
    tmp_path: Path,
) -> None:
    store = DirectoryStore(tmp_path / "shared")
    got: list[str] = []

    async def steer(text: str) -> str | None:  # the executor's steer of the running turn
        got.append(text)
        return "turn-7"

    async with mailbox(store, "run-1", "t", steer):
        assert await steer_through_store(store, "run-1", "t", STEER, within=10) == "turn-7"
    assert got == [STEER]
    assert not list((tmp_path / "shared" / "runs" / "run-1" / "steer" / "t").iterdir())


@pytest.mark.anyio
async def test_a_steer_no_host_takes_is_withdrawn_with_one_sentence(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "shared")
    with pytest.raises(NotSteerable) as caught:
        await steer_through_store(store, "run-1", "t", STEER, within=0.3)
    assert str(caught.value) == (
        "no host answered the steer of task 't' of run run-1 within 0.3 s (no host has started "
        "its attempt yet, or it was ending); nothing was added to its turn."
    )
    folder = tmp_path / "shared" / "runs" / "run-1" / "steer" / "t"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert not list(folder.iterdir())  # withdrawn: a host starting later does not take it


@pytest.mark.anyio
async def test_a_steer_waiting_when_the_attempt_ends_is_answered_that_no_turn_runs(
    tmp_path: Path,
) -> None:
    store = DirectoryStore(tmp_path / "shared")

    async def never(text: str) -> str | None:
        raise AssertionError("steered after the attempt ended")

    key = store.post_steer("run-1", "t", STEER)
    later = store.post_steer("run-1", "t", "and then")
    folder = tmp_path / "shared" / "runs" / "run-1" / "steer" / "t"
    assert oct((folder / f"{key}.json").stat().st_mode & 0o777) == "0o600"  # the run's data
    async with mailbox(store, "run-1", "t", never):
        pass  # the attempt ends before its host looked into the mailbox
    assert store.take_answer("run-1", "t", key) == {"turn_id": None}
    assert store.take_answer("run-1", "t", later) == {"turn_id": None}
    assert key < later  # steers are taken in the order they were left
    store.clear_steers("run-1")
    assert not (tmp_path / "shared" / "runs" / "run-1" / "steer").exists()


@pytest.mark.anyio
async def test_codex_steer_reaches_a_codex_call_that_serve_runs_on_a_temporal_host(
    rig: Rig,  # noqa: F811 - the fixture
    tmp_path: Path,
    codex_bin: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CODEX_BIN", codex_bin)
    rig.start_host("A")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    os.mkfifo(workspace / "gate.fifo")
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump([{"shell": "cat gate.fifo"}, {"say": "Done."}]))
    served = tmp_path / "served"
    async with stdio_client(served, "--scripted", "--script", str(script), *rig.flags()) as client:
        thread, result = await steer_a_gated_codex_call(client, workspace, lambda: rig.errors("A"))
    assert not result.is_error, result.content
    assert (result.structured_content or {})["threadId"] == thread
    (log,) = rig.state("A").glob("runs/*/model-requests.jsonl")
    first, second = model_requests(log.parent)[:2]
    assert STEER not in json.dumps(first)
    assert STEER in user_texts(second)


def test_the_page_steers_a_task_of_a_run_on_a_temporal_host(
    rig: Rig,  # noqa: F811 - the fixture
    tmp_path: Path,
    state_dir: Path,
    cli_env: dict[str, str],
    ui_url: str,  # noqa: F811 - the fixture
    browser: object,  # noqa: F811 - the fixture
) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    rig.start_host("A")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    os.mkfifo(workspace / "gate.fifo")
    tasks = [
        {
            "id": "steered",
            "prompt": "Wait for the gate, then answer.",
            "script": [{"shell": "cat gate.fifo"}, {"say": "Done."}],
        }
    ]
    submit = start_run(rig, mission(tmp_path / "page.yaml", tasks, timeout_sec=180), cli_env)
    try:
        with gate_opened(workspace / "gate.fifo", GATE_TIMEOUT) as gate:
            run_id = run_id_of(state_dir)
            page = browser.new_page()
            page.goto(f"{ui_url}/runs/{run_id}")
            page.wait_for_selector('tr[data-task="steered"] .status.running', timeout=LIVE)
            page.get_by_label("Steer steered").fill(STEER)
            page.get_by_role("button", name="Send the steer to steered").click()
            said = page.wait_for_selector("p[role=status]", timeout=LIVE).inner_text()
            assert said.startswith("steered turn "), (said, rig.errors("A"))
            gate.write("opened\n")
        summary = ended(submit)
    finally:
        if submit.poll() is None:
            submit.kill()
            submit.communicate()
    assert statuses(summary) == {"steered": "ok"}
    page.wait_for_selector("#run-status.ok", timeout=LIVE)  # the page reloaded at the end
    page.get_by_role("link", name="Transcript of steered").click()
    assert STEER in page.inner_text("#transcript .entry.steer")
    (log,) = rig.state("A").glob(f"runs/{run_id}/model-requests.jsonl")
    assert STEER in user_texts(model_requests(log.parent)[1])
