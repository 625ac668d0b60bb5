"""Review tasks with the real Codex on the scripted model: ``review: {target: uncommitted}``
runs Codex's review mode (``review/start``), the result carries the findings as structured
data, and ``expect.review`` fails the task on a finding it forbids; ``codex-review`` does the
same for an MCP client."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from codex_mcp_wrapper.missions.review import Review, parse_review
from tests.helpers.cli import REPO, run_cli
from tests.helpers.mcp_client import stdio_client


def review_answer(workspace: Path, priority: int) -> dict[str, Any]:
    """A review as Codex's review prompt asks the model to write it."""
    finding = {
        "title": "Off-by-one in the loop",
        "body": "range(n + 1) reads past the end.",
        "confidence_score": 0.9,
        "priority": priority,
        "code_location": {
            "absolute_file_path": str(workspace / "app.py"),
            "line_range": {"start": 2, "end": 3},
        },
    }
    return {
        "findings": [finding],
        "overall_correctness": "patch is incorrect",
        "overall_explanation": "It reads past the end of the list.",
        "overall_confidence_score": 0.8,
    }


def git_checkout_with_a_change(path: Path) -> Path:
    path.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "HOME": str(path)}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    (path / "app.py").write_text("def total(xs):\n    return sum(xs)\n")
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "start"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, timeout=30)
    (path / "app.py").write_text(
        "def total(xs):\n    n = len(xs)\n    return sum(xs[i] for i in range(n + 1))\n"
    )
    return path


def test_review_targets_become_codex_targets_and_the_review_json_structured_findings() -> None:
    assert Review(target="uncommitted").codex_target() == {"type": "uncommittedChanges"}
    assert Review(base="main").codex_target() == {"type": "baseBranch", "branch": "main"}
    assert Review(commit="abc", title="x").codex_target() == {
        "type": "commit",
        "sha": "abc",
        "title": "x",
    }
    with pytest.raises(ValueError, match="exactly one of"):
        Review(target="uncommitted", base="main")
    review = parse_review(json.dumps(review_answer(Path("/w"), 1)))
    (finding,) = review.findings
    assert (finding.file, finding.lines, finding.priority) == ("/w/app.py", (2, 3), 1)
    assert parse_review("Looks fine to me.").findings == []


def test_a_review_task_returns_structured_findings_and_expect_review_fails_on_a_forbidden_one(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    workspace = git_checkout_with_a_change(tmp_path / "ws")
    bound = {"review": {"forbid_priorities": [0, 1], "max_findings": 3}}
    mission: dict[str, Any] = {
        "workspace_root": "./ws",
        "provider": "scripted",
        "defaults": {"timeout_sec": 120},
        "tasks": [
            {
                "id": "urgent",
                "review": {"target": "uncommitted"},
                "expect": bound,
                "script": [{"review": review_answer(workspace, 1)}],
            },
            {
                "id": "minor",
                "review": {"target": "uncommitted"},
                "expect": bound,
                "script": [{"review": review_answer(workspace, 3)}],
            },
        ],
    }
    path = tmp_path / "mission.yaml"
    path.write_text(yaml.safe_dump(mission))
    done = run_cli(["run", str(path), "--json"], cli_env)
    summary = json.loads(done.stdout)
    urgent, minor = summary["tasks"]
    assert minor["status"] == "ok", minor
    assert urgent["status"] == "failed", urgent
    assert (
        "review.forbid_priorities: expected no finding at priority 0, 1, observed [P1] Off-by-one"
        in urgent["error"]
    )
    (finding,) = urgent["review"]["findings"]
    assert finding == {
        "title": "Off-by-one in the loop",
        "body": "range(n + 1) reads past the end.",
        "file": str(workspace / "app.py"),
        "lines": [2, 3],
        "priority": 1,
        "confidence": 0.9,
    }
    assert urgent["review"]["overall_correctness"] == "patch is incorrect"
    shown = run_cli(["runs", "show", summary["run_id"]], cli_env).stdout
    assert "review: 1 finding(s): [P1] Off-by-one in the loop" in shown, shown
    report = (Path(summary["run_dir"]) / "report.html").read_text()
    assert "<h4>Review findings</h4>" in report and "<td>P1</td>" in report
    requests = [
        json.loads(line)
        for line in (Path(summary["run_dir"]) / "model-requests.jsonl").read_text().splitlines()
    ]
    asked = json.dumps(requests[0]["body"]["input"])
    assert "Review the current code changes" in asked  # Codex's own review prompt


@pytest.mark.anyio
async def test_codex_review_returns_the_findings_to_an_mcp_client(
    tmp_path: Path, state_dir: Path, codex_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_BIN", codex_bin)
    workspace = git_checkout_with_a_change(tmp_path / "ws")
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump([{"review": review_answer(workspace, 0)}]))
    async with stdio_client(state_dir, "--scripted", "--script", str(script)) as client:
        result = await client.call_tool(
            "codex-review", {"cwd": str(workspace), "target": "uncommitted"}
        )
        refused = await client.call_tool(
            "codex-review", {"cwd": str(workspace), "target": "uncommitted", "base": "main"}
        )
    assert not result.is_error, result.content
    data = result.structured_content
    assert data is not None and data["threadId"]
    assert [f["priority"] for f in data["findings"]] == [0]
    assert data["overall_correctness"] == "patch is incorrect"
    assert refused.is_error


def test_a_review_codex_rendered_as_text_still_gives_its_findings() -> None:
    rendered = (
        "It reads past the end of the list.\n\nReview comment:\n\n"
        "- [P1] Off-by-one in the loop \u2014 /w/app.py:2-3\n  range(n + 1) reads past the end."
    )
    review = parse_review(rendered)
    (finding,) = review.findings
    assert (finding.title, finding.file, finding.lines) == (
        "[P1] Off-by-one in the loop",
        "/w/app.py",
        (2, 3),
    )
    assert (finding.priority, finding.body) == (1, "range(n + 1) reads past the end.")
    assert review.overall_explanation == "It reads past the end of the list."


def test_the_review_example_of_the_missions_doc_runs_as_it_is(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "missions.md").read_text(), re.S)
    (example,) = [yaml.safe_load(b) for b in blocks if "mission_id: review\n" in b]
    git_checkout_with_a_change(tmp_path / "ws")
    path = tmp_path / "mission.yaml"
    path.write_text(yaml.safe_dump({**example, "workspace_root": "./ws"}))
    done = run_cli(["run", str(path), "--json"], cli_env)
    assert done.returncode == 0, done.stderr
    (task,) = json.loads(done.stdout)["tasks"]
    assert [(f["priority"], f["lines"]) for f in task["review"]["findings"]] == [(2, [3, 3])]
