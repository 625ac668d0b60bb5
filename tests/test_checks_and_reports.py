"""Smoke-test checks decide tasks on evidence; JUnit and HTML reports for CI and people."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from codex_mcp_wrapper.codex.evidence import gather
from codex_mcp_wrapper.missions.checks import CheckResult, Evidence, evaluate, failure_message
from codex_mcp_wrapper.missions.expect import Expect
from tests.helpers.cli import run_cli

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


def evidence() -> Evidence:
    ev = Evidence()
    gather(
        ev,
        "item/completed",
        {
            "item": {
                "type": "mcpToolCall",
                "server": "fs",
                "tool": "grep",
                "arguments": {"pattern": "TODO", "path": "."},
                "status": "completed",
            }
        },
    )
    gather(
        ev,
        "item/completed",
        {
            "item": {
                "type": "commandExecution",
                "command": "/bin/bash -lc 'make test'",
                "exitCode": 0,
                "status": "completed",
            }
        },
    )
    return ev


def commit_one_file(repo: Path) -> None:
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    (repo / "a.txt").write_text("a")
    subprocess.run([*git, "add", "a.txt"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "a"], cwd=repo, check=True)


async def decide(
    expect: dict, cwd: Path, final: str = "done", schema: dict | None = None
) -> list[CheckResult]:
    return await evaluate(Expect.model_validate(expect), evidence(), final, schema, cwd)


@pytest.mark.parametrize(
    ("expect", "passes", "fragment"),
    [
        (
            {"tool_calls": [{"server": "fs", "tool": "grep", "arguments": {"pattern": "TODO"}}]},
            True,
            "1 matching",
        ),
        (
            {"tool_calls": [{"server": "fs", "tool": "read_file"}]},
            False,
            "tool_calls: fs.read_file: expected at least 1 completed call(s), observed 0 matching; "
            "calls made: fs.grep",
        ),
        ({"tool_calls": [{"tool": "grep", "max": 0}]}, False, "expected exactly 0"),
        (
            {"forbidden_tools": ["fs.grep"]},
            False,
            "forbidden_tools: fs.grep: expected never called, observed called 1 time(s)",
        ),
        ({"forbidden_tools": ["fs.write_file"]}, True, "not called"),
        ({"commands": ["^make test$"]}, True, "1 matching"),
        (
            {"commands": [{"pattern": "pytest", "min": 1}]},
            False,
            "commands: /pytest/: expected at least 1 matching command(s), observed 0 matching; "
            'ran: ["make test"]',
        ),
        (
            {"forbid_commands": ["make"]},
            False,
            'forbid_commands: /make/: expected no matching command, observed ran ["make test"]',
        ),
        ({"files": [{"path": "present.txt", "contains": "hello"}]}, True, "1 of 1"),
        (
            {"files": [{"path": "absent.txt"}]},
            False,
            "files: absent.txt: expected exists, observed missing",
        ),
        ({"files": [{"path": "present.txt", "exists": False}]}, False, "expected no such path"),
        (
            {"files": [{"path": "*.txt", "contains": "nope"}]},
            False,
            "observed 0 of 1 file(s) match",
        ),
        ({"final_message": "^done$"}, True, "matches"),
        ({"final_message": {"not_match": "done"}}, False, "expected does not match, observed done"),
        ({"verify": "test -f present.txt"}, True, "exit 0"),
        (
            {"verify": {"command": "echo broken >&2; exit 3"}},
            False,
            "verify: echo broken >&2; exit 3: expected exit 0, observed exit 3: broken",
        ),
        ({"verify": {"command": "sleep 5", "timeout_sec": 0.3}}, False, "timed out"),
    ],
)
async def test_each_check_kind_passes_or_fails_with_a_precise_message(
    tmp_path: Path, expect: dict, passes: bool, fragment: str
) -> None:
    (tmp_path / "present.txt").write_text("hello\n")
    results = await decide(expect, tmp_path)
    assert len(results) == 1
    assert results[0].ok is passes
    ok = results[0]
    message = failure_message(results) if not passes else f"{ok.expected} {ok.observed}"
    assert fragment in message


async def test_output_schema_and_git_clean_checks(tmp_path: Path) -> None:
    schema = {"type": "object", "required": ["count"], "properties": {"count": {"type": "integer"}}}
    (good,) = await decide({"output_schema": True}, tmp_path, '{"count": 2}', schema)
    (bad,) = await decide({"output_schema": True}, tmp_path, '{"count": "two"}', schema)
    (junk,) = await decide({"output_schema": True}, tmp_path, "Found two", schema)
    assert good.ok and not bad.ok and "'two' is not of type 'integer'" in bad.observed
    assert not junk.ok and "not JSON" in junk.observed
    await asyncio.to_thread(commit_one_file, tmp_path)
    (clean,) = await decide({"git_clean": True}, tmp_path)
    (tmp_path / "a.txt").write_text("changed")
    (dirty,) = await decide({"git_clean": True}, tmp_path)
    assert (
        clean.ok and not dirty.ok and "1 change(s)" in dirty.observed and "a.txt" in dirty.observed
    )


TRANSCRIPT_LINK = re.compile(r'<a class="transcript" href="([^"]*)"')


def transcript_links(page: Path) -> list[str]:
    return TRANSCRIPT_LINK.findall(page.read_text())


def resolve_link(page: Path, href: str) -> Path:
    """Where a browser that opened ``page`` from disk goes for ``href``."""
    url = urllib.parse.urljoin(page.resolve().as_uri(), href)
    assert url.startswith("file://"), url
    return Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))


def without_links(page: Path) -> str:
    return TRANSCRIPT_LINK.sub('<a class="transcript" href="">', page.read_text())


CLAIMS_SUCCESS = """
mission_id: claims
workspace_root: {ws}
provider: scripted
defaults:
  mcp_servers:
    fs:
      command: ${{WRAPPER_PYTHON}}
      args: ["{server}"]
      env: {{FS_SERVER_ROOT: "{ws}"}}
tasks:
  - id: honest
    prompt: grep for TODO
    script:
      - tool: {{server: fs, name: grep, arguments: {{pattern: TODO}}}}
      - say: "Grep done: {{last_output}}"
    expect:
      tool_calls: [{{server: fs, tool: grep}}]
  - id: liar
    prompt: grep for TODO
    script:
      - say: "I called fs.grep and everything passed."
    expect:
      tool_calls: [{{server: fs, tool: grep}}]
      final_message: passed
  - id: after-liar
    depends_on: [liar]
    prompt: never runs
"""


def test_a_claimed_success_without_the_required_tool_call_fails_and_exits_1(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.py").write_text("# TODO: x\n")
    mission = tmp_path / "claims.yaml"
    mission.write_text(
        CLAIMS_SUCCESS.format(ws=ws, server=REPO / "examples" / "mcp-smoke" / "fs_server.py")
    )
    junit = tmp_path / "out" / "junit.xml"
    html = tmp_path / "out" / "report.html"
    proc = run_cli(
        ["run", str(mission), "--json", "--junit", str(junit), "--report", str(html)], cli_env
    )
    assert proc.returncode == 1, proc.stderr
    tasks = {t["task_id"]: t for t in json.loads(proc.stdout)["tasks"]}
    assert tasks["honest"]["status"] == "ok"
    liar = tasks["liar"]
    assert liar["status"] == "failed" and liar["attempts"] == 1
    assert liar["final_message"] == "I called fs.grep and everything passed."
    assert liar["error"] == (
        "1 of 2 check(s) failed: tool_calls: fs.grep: expected at least 1 completed "
        "call(s), observed 0 matching; calls made: no MCP tool calls"
    )
    assert tasks["after-liar"]["status"] == "skipped"

    root = ET.parse(junit).getroot()  # a standard parser
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["honest"].find("failure") is None
    failure = cases["liar"].find("failure")
    assert failure is not None and "tool_calls: fs.grep" in (failure.text or "")
    assert cases["after-liar"].find("skipped") is not None
    assert "tool fs.grep" in (cases["honest"].findtext("system-out") or "")
    run_dir = Path(json.loads(proc.stdout)["run_dir"])
    assert (run_dir / "junit.xml").read_text() == junit.read_text()
    assert without_links(run_dir / "report.html") == without_links(html)  # only links differ


def test_the_html_report_shows_every_task_and_the_timeline_in_headless_chromium(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "CI installs Debian's chromium (scripts/test.sh)"
    ws = tmp_path / "ws"
    mission = tmp_path / "m.yaml"
    mission.write_text(f"""
mission_id: report-demo
workspace_root: {ws}
provider: scripted
tasks:
  - {{id: alpha, prompt: a}}
  - {{id: beta, prompt: b, retries: 0, script: [{{fail: 400}}]}}
  - {{id: gamma, prompt: c, depends_on: [beta]}}
  - {{id: delta, prompt: d, expect: {{final_message: "echo: d"}}}}
""")
    proc = run_cli(["run", str(mission), "--json", "--workers", "2"], cli_env)
    summary = json.loads(proc.stdout)
    page_path = Path(summary["run_dir"]) / "report.html"
    copy_path = tmp_path / "ci" / "copy.html"
    again = run_cli(["report", summary["run_id"], "--html", str(copy_path)], cli_env)
    assert again.returncode == 0, again.stderr
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            page.goto(page_path.as_uri())
            statuses = {
                row.get_attribute("data-task"): row.get_attribute("data-status")
                for row in page.query_selector_all("tr.task-row")
            }
            bars = {
                b.get_attribute("data-task"): b.get_attribute("data-status")
                for b in page.query_selector_all("#timeline .bar")
            }
            lanes = [
                lane.get_attribute("data-worker")
                for lane in page.query_selector_all("#timeline .lane")
            ]
            run_id = page.inner_text("#run-id")
            heading = page.inner_text("h1")
            checks = {
                row.get_attribute("data-task"): row.query_selector_all("td")[-1].inner_text()
                for row in page.query_selector_all("tr.task-row")
            }
            body = page.inner_text("body")
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            links = {}  # where the browser goes from each page: the URLs as it resolved them
            for path in (page_path, copy_path):
                page.goto(path.as_uri())
                links[path] = page.eval_on_selector_all("a.transcript", "as => as.map(a => a.href)")
        finally:
            browser.close()
    assert statuses == {"alpha": "ok", "beta": "failed", "gamma": "skipped", "delta": "ok"}
    assert bars == {"alpha": "ok", "beta": "failed", "delta": "ok"}  # gamma never ran
    assert set(lanes) <= {"w1", "w2"} and lanes
    assert run_id == summary["run_id"] and "failed" in heading
    assert checks == {"alpha": "-", "beta": "-", "gamma": "-", "delta": "1 of 1 passed"}
    assert "None" not in body  # a task that never ran shows no "worker None", "thread None"
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000

    assert without_links(copy_path) == without_links(page_path)  # only the links differ
    for path, urls in links.items():
        targets = [Path(urllib.request.url2pathname(urllib.parse.urlparse(u).path)) for u in urls]
        assert {t.parent.name for t in targets} == {"alpha", "beta", "delta"}, path  # ran
        assert all(
            u.startswith("file://") and t.is_file() for u, t in zip(urls, targets, strict=True)
        ), urls


def test_a_report_copy_outside_the_run_folder_links_to_the_transcripts(
    tmp_path: Path, cli_env: dict[str, str], workspace: Path, state_dir: Path
) -> None:
    """The run folder's report links to tasks/<id>/events.jsonl; a copy elsewhere (`run
    --report`, `report --html`) by paths relative to itself that reach the same files, also
    once the copy and the run folder are uploaded together (a CI artifact keeps their layout)."""
    mission = tmp_path / "m.yaml"
    mission.write_text(f"""
mission_id: links
workspace_root: {workspace}
provider: scripted
tasks:
  - {{id: alpha, prompt: a}}
  - {{id: beta, prompt: b, retries: 0, script: [{{fail: 400}}]}}
  - {{id: gamma, prompt: c, depends_on: [beta]}}
""")
    copy = tmp_path / "ci" / "out" / "report.html"
    proc = run_cli(["run", str(mission), "--json", "--report", str(copy)], cli_env)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    run_dir = Path(summary["run_dir"])
    again = tmp_path / "elsewhere" / "again.html"
    rendered = run_cli(["report", summary["run_id"], "--html", str(again)], cli_env)
    assert rendered.returncode == 0, rendered.stderr

    transcripts = {
        run_dir / "tasks" / t / "events.jsonl"
        for t in ("alpha", "beta", "gamma")
        if (run_dir / "tasks" / t / "events.jsonl").is_file()
    }
    assert run_dir / "tasks" / "alpha" / "events.jsonl" in transcripts
    assert run_dir / "tasks" / "beta" / "events.jsonl" in transcripts
    own = run_dir / "report.html"
    assert sorted(transcript_links(own)) == sorted(
        f"tasks/{p.parent.name}/events.jsonl" for p in transcripts
    )
    for page in (own, copy, again):
        hrefs = transcript_links(page)
        assert len(hrefs) == len(transcripts), page
        assert all(not h.startswith(("/", "file:")) for h in hrefs), hrefs
        assert {resolve_link(page, h) for h in hrefs} == transcripts, page

    # A CI artifact holding the copy and the run folder, moved to another machine's folder.
    artifact = tmp_path / "artifact"
    shutil.copytree(tmp_path / "ci", artifact / "ci")
    shutil.copytree(run_dir, artifact / run_dir.relative_to(tmp_path))
    moved = artifact / "ci" / "out" / "report.html"
    for href in transcript_links(moved):
        target = resolve_link(moved, href)
        assert target.is_relative_to(artifact) and target.is_file(), target
    assert state_dir in run_dir.parents


def test_the_mcp_smoke_example_passes_offline(tmp_path: Path, cli_env: dict[str, str]) -> None:
    example = tmp_path / "mcp-smoke"
    shutil.copytree(
        REPO / "examples" / "mcp-smoke", example, ignore=shutil.ignore_patterns("workspace")
    )
    junit = tmp_path / "smoke.xml"
    proc = run_cli(["run", str(example / "mission.yaml"), "--json", "--junit", str(junit)], cli_env)
    assert proc.returncode == 0, proc.stderr
    tasks = {t["task_id"]: t for t in json.loads(proc.stdout)["tasks"]}
    assert all(t["status"] == "ok" for t in tasks.values())
    assert all(c["ok"] for t in tasks.values() for c in t["checks"])
    assert [c["tool"] for c in tasks["find-todos"]["tool_calls"]] == ["grep", "read_file"]
    assert (example / "workspace" / "src" / "app.py").exists()
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "0"  # type: ignore[union-attr]
    assert os.environ.get("CI") is None or Path(CHROMIUM).exists()
