"""Budgets (``budget: {tokens, turns}`` on a task, in ``defaults``, and for the mission) with
the real Codex on the scripted model: a task over its token budget is interrupted and fails
with the budget and by how much while its neighbour ends ok; a task that needs more turns than
its budget stops before the extra turn; a spent mission budget skips the tasks not yet started;
usage is in the summary, ``runs show`` and the reports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from codex_mcp_wrapper.engine.planning import plan_tasks
from codex_mcp_wrapper.engine.spending import mission_spent, over_tokens, turn_refused
from codex_mcp_wrapper.missions.loading import parse_mission
from tests.helpers.cli import REPO, run_cli

DOC = REPO / "docs" / "missions.md"


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "mission.yaml"
    data.setdefault("workspace_root", "./ws")
    data.setdefault("provider", "scripted")
    (tmp_path / "ws").mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def run(path: Path, env: dict[str, str]) -> dict[str, Any]:
    done = run_cli(["run", str(path), "--json"], env)
    assert done.stdout, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def events(summary: dict[str, Any], task: str, method: str) -> list[dict[str, Any]]:
    path = Path(summary["run_dir"]) / "tasks" / task / "events.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [e["params"] for e in lines if e.get("method") == method]


def test_the_budget_sentences_name_the_budget_and_by_how_much() -> None:
    assert over_tokens(100, 100) is None
    assert over_tokens(None, 10**9) is None
    assert over_tokens(100, 130) == (
        "the task passed its token budget (budget.tokens: 100) by 30 tokens (130 used); "
        "its turn was interrupted."
    )
    assert turn_refused(2, 1, 2) is None
    assert "budget.turns: 2) by 1 turn(s)" in (turn_refused(2, 2, 1) or "")
    assert mission_spent(100, 99) is None
    assert "budget.tokens: 100) is spent: its tasks used 120 tokens (20 over)" in (
        mission_spent(100, 120) or ""
    )


def test_a_task_budget_overrides_the_defaults_field_by_field(tmp_path: Path) -> None:
    mission = parse_mission(
        {
            "defaults": {"budget": {"tokens": 500, "turns": 3}},
            "tasks": [
                {"id": "own", "prompt": "p", "budget": {"tokens": 20}},
                {"id": "inherits", "prompt": "p"},
            ],
        },
        "m.yaml",
    )
    own, inherits = plan_tasks(mission, tmp_path, tmp_path / "run")
    assert (own.spec.budget_tokens, own.spec.budget_turns) == (20, 3)
    assert (inherits.spec.budget_tokens, inherits.spec.budget_turns) == (500, 3)


def docs_example(name: str) -> dict[str, Any]:
    """The YAML mission of docs/missions.md whose ``mission_id`` is ``name``."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    found = [yaml.safe_load(b) for b in blocks if f"mission_id: {name}\n" in b]
    assert len(found) == 1, f"docs/missions.md has no single mission '{name}'"
    example: dict[str, Any] = found[0]
    return example


def test_a_task_over_its_token_budget_is_interrupted_while_its_neighbour_ends_ok(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    summary = run(write(tmp_path, docs_example("budgets")), cli_env)
    explore, neighbour = summary["tasks"]
    assert neighbour["status"] == "ok", neighbour
    assert explore["status"] == "failed", explore
    assert explore["attempts"] == 1  # a budget failure is not retried
    match = re.fullmatch(
        r"the task passed its token budget \(budget\.tokens: 50\) by (\d+) tokens "
        r"\((\d+) used\); its turn was interrupted\.",
        explore["error"],
    )
    assert match, explore["error"]
    assert int(match[2]) == explore["usage"]["totalTokens"] == int(match[1]) + 50
    assert explore["final_message"] != "Found it all."
    ends = [e["turn"]["status"] for e in events(summary, "explore", "turn/completed")]
    assert ends == ["interrupted"]
    usage = summary["usage"]["totalTokens"]
    assert usage == explore["usage"]["totalTokens"] + neighbour["usage"]["totalTokens"]


def test_a_task_needing_more_turns_than_its_budget_stops_before_the_extra_turn(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    path = write(
        tmp_path,
        {
            "defaults": {"budget": {"turns": 2}, "timeout_sec": 120},
            "tasks": [
                {"id": "chatty", "prompt": "one", "follow_ups": ["two", "three"]},
                {"id": "brief", "prompt": "one", "follow_ups": ["two"]},
            ],
        },
    )
    summary = run(path, cli_env)
    chatty, brief = summary["tasks"]
    assert brief["status"] == "ok", brief
    assert chatty["status"] == "failed"
    assert chatty["turns_done"] == 2
    assert chatty["error"] == (
        "the task passed its turn budget (budget.turns: 2) by 1 turn(s): it was stopped "
        "before turn 3 with 1 prompt(s) unanswered."
    )


def test_a_spent_mission_budget_skips_the_tasks_not_yet_started(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    path = write(
        tmp_path,
        {
            "budget": {"tokens": 100},
            "defaults": {"timeout_sec": 120},
            "tasks": [
                {"id": "first", "prompt": "hello", "script": [{"say": "hello"}]},
                {"id": "second", "prompt": "again", "depends_on": ["first"]},
                {"id": "third", "prompt": "more", "depends_on": ["second"]},
            ],
        },
    )
    summary = run(path, cli_env)
    first, second, third = summary["tasks"]
    assert first["status"] == "ok"
    used = first["usage"]["totalTokens"]
    assert used > 100
    assert second["status"] == "skipped"
    assert second["error"] == (
        "skipped because the mission's token budget (budget.tokens: 100) is spent: its tasks "
        f"used {used} tokens ({used - 100} over)."
    )
    assert third["status"] == "skipped"
    assert summary["usage"]["totalTokens"] == used
    shown = run_cli(["runs", "show", summary["run_id"]], cli_env)
    assert f"used {used} tokens" in shown.stdout, shown.stdout
    assert "first ok on" in shown.stdout and f"{used} tokens" in shown.stdout
    report = (Path(summary["run_dir"]) / "report.html").read_text()
    assert f'<span id="tokens">{used} tokens</span>' in report
    junit = (Path(summary["run_dir"]) / "junit.xml").read_text()
    assert f'<property name="tokens" value="{used}"' in junit
