"""``codex-mcp-wrapper ui`` in a real browser: Debian's chromium driven by Playwright, the UI
served by the CLI over a real state dir, missions run by the CLI in other processes against the
scripted model. Every wait is on the page (a selector), never a sleep."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from codex_mcp_wrapper import Mission, Settings, load_mission
from codex_mcp_wrapper.app import open_runs
from codex_mcp_wrapper.ui.pages import dashboard_app
from codex_mcp_wrapper.ui.serving import guarded
from codex_mcp_wrapper.ui.transcript import transcript
from tests.helpers.cli import REPO, run_cli
from tests.test_steer import GATE_TIMEOUT, STEER, gate_opened
from tests.test_worktrees import make_repo, sh

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
UI_START = 30.0  # seconds for `ui` to say where it listens
LIVE = 60_000  # milliseconds for the page to show a task's status change
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

MISSION = """\
mission_id: ui-live
workspace_root: {ws}
provider: scripted
defaults: {{sandbox: workspace-write}}
tasks:
  - id: slow
    prompt: take your time
    script: [{{delay: 2}}, {{say: "slow done"}}]
  - id: writer
    prompt: change the first line
    isolation: worktree
    script:
      - shell: "sed -i 's/one/WRITTEN/' shared.txt"
      - say: changed shared.txt
  - id: checked
    prompt: say it
    expect: {{final_message: "echo: say it"}}
"""


@pytest.fixture
def ui_url(cli_env: dict[str, str]) -> Iterator[str]:
    """The address of a `ui` serving the test's state dir; stopped (SIGTERM) after."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "ui", "--port", "0"],
        env=cli_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # printed once the socket listens
        assert "http://127.0.0.1:" in line, line
        yield line.split()[-1].rstrip("/")
    finally:
        proc.terminate()
        assert proc.wait(timeout=UI_START) == 0
        if proc.stderr is not None:
            assert "Traceback" not in proc.stderr.read()


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "CI installs Debian's chromium (scripts/test.sh)"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_a_run_started_after_the_page_loaded_turns_ok_live_and_its_diff_applies(
    tmp_path: Path, cli_env: dict[str, str], ui_url: str, browser: object
) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    ws = make_repo(tmp_path / "ws")
    mission = tmp_path / "m.yaml"
    mission.write_text(MISSION.format(ws=ws))
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1200, "height": 1400})
    page.goto(ui_url + "/")
    page.wait_for_selector("#no-runs")
    run = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(mission), "--json"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        page.click("#runs tr[data-run] a", timeout=LIVE)  # the new run appears, live
        page.wait_for_selector('tr[data-task="slow"] .status.running', timeout=LIVE)
        page.screenshot(path=str(ARTIFACTS / "ui-run-live.png"))
        page.wait_for_selector('tr[data-task="slow"] .status.ok', timeout=LIVE)
        page.wait_for_selector("#timeline .bar", timeout=LIVE)  # done: the page reloaded
    finally:
        _out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert page.inner_text("#run-status") == "ok"
    page.screenshot(path=str(ARTIFACTS / "ui-run-page.png"), full_page=True)
    page.locator("#timeline").screenshot(path=str(ARTIFACTS / "ui-timeline.png"))
    assert set(page.locator("#timeline .bar").all_inner_texts()) == {"slow", "writer", "checked"}
    checks = page.get_by_role("table", name="Checks of checked")
    assert "final_message" in checks.inner_text() and "echo: say it" in checks.inner_text()

    assert "WRITTEN" in page.inner_text("#task-writer pre.patch")
    page.get_by_role("button", name="Apply the diff of writer to the workspace").click()
    said = page.wait_for_selector("p[role=status]").inner_text()
    assert "writer" in said or "appl" in said, said
    assert (ws / "shared.txt").read_text().startswith("WRITTEN\n")
    assert "shared.txt" in sh("git", "status", "--porcelain", cwd=ws)

    page.get_by_role("link", name="Transcript of writer").click()
    page.wait_for_selector("#transcript .entry.command")
    assert "sed -i" in page.inner_text("#transcript")
    assert "changed shared.txt" in page.inner_text("#transcript .entry.message >> nth=-1")


def test_the_runs_list_filters_by_mission_and_status(
    tmp_path: Path, cli_env: dict[str, str], ui_url: str, browser: object
) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    for name, ok in (("first", True), ("second", False)):
        mission = tmp_path / f"{name}.yaml"
        script = '[{say: "fine"}]' if ok else "[{fail: 400}]"
        mission.write_text(
            f"mission_id: {name}\nworkspace_root: {tmp_path}\nprovider: scripted\n"
            f"tasks:\n  - {{id: t, prompt: p, retries: 0, script: {script}}}\n"
        )
        run_cli(["run", str(mission)], cli_env)
    page = browser.new_page()
    page.goto(ui_url + "/")
    assert page.locator("#runs tr[data-run]").count() == 2
    page.get_by_label("Mission").fill("second")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**mission=second**")
    assert page.locator("#runs tr[data-run]").all_inner_texts()[0].split()[1] == "second"
    page.goto(ui_url + "/?status=ok")
    rows = page.locator("#runs tr[data-run]").all_inner_texts()
    assert len(rows) == 1 and "first" in rows[0]
    answer = page.goto(ui_url + "/runs/no-such-run")
    assert answer is not None and answer.status == 404
    assert "no-such-run" in page.get_by_role("alert").inner_text()


SLOW = """\
mission_id: ui-cancel
workspace_root: {ws}
provider: scripted
tasks:
  - id: slow
    prompt: take all day
    script: [{{delay: 120}}, {{say: "too late"}}]
"""


@contextlib.contextmanager
def ui_driving(settings: Settings, mission: Mission) -> Iterator[tuple[str, str]]:
    """A UI over a ``Runs`` that drives a run of ``mission`` itself (as a server embedding the
    UI would, behind the same guard as ``ui``): its address and the run's id. Its loop runs on
    a thread of its own."""
    box: dict[str, str] = {}
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        async with open_runs(settings) as runs:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                sock.listen()
                app = guarded(dashboard_app(runs), "127.0.0.1", sock)
                server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
                box["url"] = f"http://127.0.0.1:{sock.getsockname()[1]}"
                box["run_id"] = runs.start(mission)
                serving = asyncio.create_task(server.serve(sockets=[sock]))
                ready.set()
                await stop.wait()
                server.should_exit = True
                await serving

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),))
    thread.start()
    try:
        assert ready.wait(UI_START)
        yield box["url"], box["run_id"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(UI_START)
        assert not thread.is_alive()
        loop.close()


def test_a_running_run_the_ui_process_drives_is_cancelled_from_the_page(
    tmp_path: Path, state_dir: Path, codex_bin: str, browser: object
) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    mission = tmp_path / "slow.yaml"
    mission.write_text(SLOW.format(ws=tmp_path / "ws"))
    settings = Settings(state_dir=state_dir, codex_bin=codex_bin)
    with ui_driving(settings, load_mission(mission)) as (url, run_id):
        page = browser.new_page()
        page.goto(f"{url}/runs/{run_id}")
        page.wait_for_selector('tr[data-task="slow"] .status.running', timeout=LIVE)
        page.get_by_role("button", name=f"Cancel run {run_id}").click()
        said = page.wait_for_selector("p[role=status]", timeout=LIVE).inner_text()
        assert said == "cancelled"
        page.wait_for_selector("#run-status.cancelled", timeout=LIVE)
        assert "cancelled" in page.inner_text('tr[data-task="slow"] .status')


GATED = """\
mission_id: ui-steer
workspace_root: {ws}
provider: scripted
defaults: {{timeout_sec: 180, sandbox: workspace-write}}
tasks:
  - id: steered
    prompt: Wait for the gate, then answer.
    script: [{{shell: "cat gate.fifo"}}, {{say: "Done: {{last_output}}"}}]
"""


def test_a_task_of_a_run_in_another_process_is_steered_from_the_page(
    tmp_path: Path, state_dir: Path, cli_env: dict[str, str], ui_url: str, browser: object
) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    ws = tmp_path / "ws"
    ws.mkdir()
    os.mkfifo(ws / "gate.fifo")
    mission = tmp_path / "m.yaml"
    mission.write_text(GATED.format(ws=ws))
    run = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(mission), "--json"],
        env=cli_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with gate_opened(ws / "gate.fifo", GATE_TIMEOUT) as gate:
            (control,) = state_dir.glob("runs/*/control.json")  # the run is going on
            run_id = control.parent.name
            page = browser.new_page()
            page.goto(f"{ui_url}/runs/{run_id}")
            page.wait_for_selector('tr[data-task="steered"] .status.running', timeout=LIVE)
            page.get_by_label("Steer steered").fill(STEER)
            page.get_by_role("button", name="Send the steer to steered").click()
            said = page.wait_for_selector("p[role=status]", timeout=LIVE).inner_text()
            assert said.startswith("steered turn "), said
            gate.write("opened\n")
        _out, err = run.communicate(timeout=120)
    finally:
        run.kill()
        run.wait()
    assert run.returncode == 0, err
    page.wait_for_selector("#run-status.ok", timeout=LIVE)  # the page reloaded at the end
    page.get_by_role("link", name="Transcript of steered").click()
    assert STEER in page.inner_text("#transcript .entry.steer")


def test_ui_refuses_a_host_other_than_loopback_in_one_line(cli_env: dict[str, str]) -> None:
    proc = run_cli(["ui", "--host", "0.0.0.0", "--port", "0"], cli_env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: the UI serves only this machine; --host 0.0.0.0 is not a loopback address "
        "(use 127.0.0.1 and an SSH tunnel to reach it from elsewhere)."
    ), proc.stderr


def test_ctrl_c_stops_the_ui_with_a_page_open_and_exit_0(
    cli_env: dict[str, str], browser: object
) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", "ui", "--port", "0"],
        env=cli_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        url = proc.stderr.readline().split()[-1]
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#no-runs")  # its event stream is open
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=UI_START) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def test_a_transcript_shows_messages_commands_tool_calls_approvals_and_steers(
    tmp_path: Path,
) -> None:
    records = [
        {"method": "item/completed", "params": {"item": {"type": "agentMessage", "text": "hi"}}},
        {
            "method": "wrapper/approval",
            "params": {
                "request": "item/commandExecution/requestApproval",
                "decision": "accept",
                "params": {"command": "rm -rf build"},
            },
        },
        {
            "method": "item/completed",
            "params": {
                "item": {
                    "type": "commandExecution",
                    "command": "rm -rf build",
                    "exitCode": 0,
                    "aggregatedOutput": "removed",
                }
            },
        },
        {
            "method": "item/completed",
            "params": {
                "item": {"type": "mcpToolCall", "server": "fs", "tool": "grep", "arguments": {}}
            },
        },
        {"method": "wrapper/steer", "params": {"text": "stop"}},
        {"method": "turn/started", "params": {}},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    assert [(e.kind, e.title, e.body) for e in transcript(path)] == [
        ("message", "Codex", "hi"),
        ("approval", "item/commandExecution/requestApproval: accept", "rm -rf build"),
        ("command", "$ rm -rf build (exit 0)", "removed"),
        ("tool call", "fs.grep", "{}"),
        ("steer", "steered", "stop"),
    ]
