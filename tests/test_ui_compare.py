"""The run page in its two forms, and comparing runs in the UI: the HTML report of a run is the
UI's run page frozen (the same task rows and timeline lanes, self-contained), and the run page
offers to compare a run with an earlier one of its mission, as `runs diff` does. The UI served
by the CLI over a real state dir, the missions run by the CLI against the scripted model,
Debian's chromium driven by Playwright; every wait is on the page."""

from __future__ import annotations

import json
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from tests import test_ui
from tests.helpers.cli import run_cli
from tests.test_compare_runs import answering
from tests.test_ui import ARTIFACTS, LIVE

ui_url = test_ui.ui_url  # the fixtures of test_ui: a `ui` over the test's state dir, chromium
browser = test_ui.browser

SHAPES = """\
mission_id: shapes
workspace_root: {ws}
provider: scripted
tasks:
  - {{id: alpha, prompt: a, script: [{{say: '{hostile}'}}]}}
  - {{id: beta, prompt: b, retries: 0, script: [{{fail: 400}}]}}
  - {{id: gamma, prompt: c, depends_on: [beta]}}
  - {{id: delta, prompt: d, expect: {{final_message: "echo: d"}}}}
"""
# An answer that would fetch and run a script if the page did not escape it.
HOSTILE = '<script src="https://example.com/x.js"></script><img src="x.png">'

# What a run page shows of its tasks and timeline: the same for the UI and the report.
SHOWN = """() => ({
  runId: document.querySelector("#run-id").textContent,
  rows: [...document.querySelectorAll("tr.task-row")].map(
    r => [r.dataset.task, r.dataset.status, r.cells[r.cells.length - 1].innerText]),
  lanes: [...document.querySelectorAll("#timeline .lane[data-worker]")].map(
    l => [l.dataset.worker, [...l.querySelectorAll(".bar")].map(
      b => [b.dataset.task, b.dataset.status])]),
})"""


class Outside(HTMLParser):
    """The tags of a page that would make a browser fetch or run something, and its links."""

    def __init__(self) -> None:
        super().__init__()
        self.fetching: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("script", "link", "iframe", "img", "form") or "src" in found:
            self.fetching.append(tag)
        if tag == "a" and found.get("href") is not None:
            self.links.append(str(found["href"]))


def test_the_report_of_a_run_shows_the_task_rows_and_lanes_of_its_ui_page_and_fetches_nothing(
    tmp_path: Path, cli_env: dict[str, str], ui_url: str, browser: Any
) -> None:
    mission = tmp_path / "shapes.yaml"
    mission.write_text(SHAPES.format(ws=tmp_path / "ws", hostile=HOSTILE))
    proc = run_cli(["run", str(mission), "--json", "--workers", "2"], cli_env)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    report = Path(summary["run_dir"]) / "report.html"

    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(report.as_uri())
    frozen = page.evaluate(SHOWN)
    assert requested == [report.as_uri()]  # the page alone: no style, script or font fetched
    assert page.get_by_label("Answer of alpha").inner_text() == HOSTILE  # shown, as text
    page.goto(f"{ui_url}/runs/{summary['run_id']}")
    live = page.evaluate(SHOWN)

    assert frozen == live
    assert frozen["runId"] == summary["run_id"]
    assert [row[:2] for row in frozen["rows"]] == [
        ["alpha", "ok"],
        ["beta", "failed"],
        ["gamma", "skipped"],
        ["delta", "ok"],
    ]
    ran = {task: status for _worker, bars in frozen["lanes"] for task, status in bars}
    assert ran == {"alpha": "ok", "beta": "failed", "delta": "ok"}  # gamma never ran

    outside = Outside()
    outside.feed(report.read_text())
    assert outside.fetching == []  # no script, stylesheet, image or form
    for href in outside.links:  # within the page, or a transcript beside it in the run folder
        parts = urllib.parse.urlsplit(href)
        assert not parts.scheme and not parts.netloc and not href.startswith("/"), href
        assert href.startswith("#") or href.endswith("/events.jsonl"), href


def test_the_diff_page_puts_the_regressed_task_first_and_names_its_check(
    tmp_path: Path, cli_env: dict[str, str], ui_url: str, browser: Any
) -> None:
    mission = str(answering(tmp_path))
    runs = []
    for answer in ("ok", "ok", "broken"):
        done = run_cli(["run", mission, "--json", "--var", f"ANSWER={answer}"], cli_env)
        runs.append(json.loads(done.stdout)["run_id"])
    older, good, bad = runs

    page = browser.new_page()
    page.goto(f"{ui_url}/runs/{bad}")
    chosen = page.get_by_label("Compare with")
    assert chosen.input_value() == good  # the newest run that ended ok before it
    assert set(chosen.locator("option").all_inner_texts()) == {
        f"{good} (ok)",
        f"{older} (ok)",
    }
    page.get_by_role("button", name=f"Compare run {bad} with the chosen run").click()
    page.wait_for_selector("#changes", timeout=LIVE)
    assert page.url.endswith(f"/runs/{bad}/diff?base={good}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-diff.png"), full_page=True)

    assert page.inner_text("#verdict").endswith("1 regressed, 0 fixed, 1 unchanged")
    first = page.locator("#changes tr.change").first
    assert first.get_attribute("data-task") == "build"
    assert first.get_attribute("data-regressed") == "true"
    assert "regressed" in first.inner_text() and "ok" in first.inner_text()
    assert page.inner_text("#unchanged") == "Unchanged: docs"
    checks = page.get_by_role("table", name="Checks of build that changed")
    assert checks.locator("tr.regressed").inner_text().split("\t") == [
        "final_message: /build ok/",
        "passed",
        "failed",
        "build broken",
    ]
    answer = page.get_by_label("Final message diff of build").inner_text()
    assert "-build ok" in answer and "+build broken" in answer

    back = page.goto(f"{ui_url}/runs/{good}/diff?base={bad}")  # a fix regresses nothing
    assert back is not None and back.status == 200
    assert page.inner_text("#verdict").endswith("0 regressed, 1 fixed, 1 unchanged")
    assert page.locator("tr.change.fixed").get_attribute("data-task") == "build"
    page.goto(f"{ui_url}/runs/{bad}/diff")  # no base: the newest run ok before it
    assert page.inner_text("#base-run") == good
    page.goto(f"{ui_url}/runs/{good}/diff")  # before it: not the later one
    assert page.inner_text("#base-run") == older
    first_run = page.goto(f"{ui_url}/runs/{older}/diff")
    assert first_run is not None and first_run.status == 404
    assert "ended ok before it" in page.get_by_role("alert").inner_text()
    missing = page.goto(f"{ui_url}/runs/{bad}/diff?base=20200101-000000-abcdef")
    assert missing is not None and missing.status == 404
    assert "20200101-000000-abcdef" in page.get_by_role("alert").inner_text()


def test_no_module_of_the_package_writes_html_itself_the_templates_do() -> None:
    package = Path(__file__).resolve().parents[1] / "src" / "codex_mcp_wrapper"
    tags = ("<tr", "<td", "<div", "<table", "<pre", "<span", "<html", "<details")
    by_hand = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if any(tag in path.read_text(encoding="utf-8") for tag in tags)
    )
    assert by_hand == []
    templates = {p.name for p in package.rglob("templates/*.html")}
    assert {"base.html", "run.html", "task.html", "diff.html"} <= templates
