"""Approval rules, hooks and tools in the mission: how rules match (a pure function), and
`validate` refusing bad ones in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from codex_mcp_wrapper.engine.commands import OUTPUT_LIMIT, run_command
from codex_mcp_wrapper.missions.rules import ApprovalRules, decide, match_rule
from tests.helpers.cli import run_cli

TASK = ApprovalRules.model_validate(
    {
        "commands": {
            "allow": ["git status*", "pytest *", "echo *"],
            "deny": ["curl *", "rm -rf *"],
        },
        "files": {"allow": ["src/**"], "deny": [".env", "**/*.pem"]},
        "tools": {"allow": ["fs.read_file", "github.*"], "deny": ["fs.delete*"]},
    }
)
MISSION = ApprovalRules.model_validate({"commands": {"allow": ["ls*"]}, "default": "ask"})
LEVELS = [("task", TASK), ("defaults", None), ("mission", MISSION)]


@pytest.mark.parametrize(
    ("kind", "subjects", "decision", "rule"),
    [
        ("commands", ["git status --short"], "accept", "task.commands.allow 'git status*'"),
        ("commands", ["echo yes > a.txt"], "accept", "task.commands.allow 'echo *'"),
        ("commands", ["curl https://x"], "decline", "task.commands.deny 'curl *'"),
        ("commands", ["ls -la"], "accept", "mission.commands.allow 'ls*'"),
        ("commands", ["make"], "ask", "mission.default"),
        ("files", ["src/a/b.py", "src/c.py"], "accept", "task.files.allow 'src/**'"),
        ("files", ["src/a.py", "keys/x.pem"], "decline", "task.files.deny '**/*.pem'"),
        ("files", ["x.pem"], "decline", "task.files.deny '**/*.pem'"),  # ** matches no folder
        ("files", [".env"], "decline", "task.files.deny '.env'"),
        ("files", ["src/a.py", "README.md"], "ask", "mission.default"),  # not all allowed
        ("tools", ["fs.read_file"], "accept", "task.tools.allow 'fs.read_file'"),
        ("tools", ["fs.delete_all"], "decline", "task.tools.deny 'fs.delete*'"),
        ("tools", ["github.search"], "accept", "task.tools.allow 'github.*'"),
    ],
)
def test_rules_match_deny_first_most_specific_level_first(
    kind: str, subjects: list[str], decision: str, rule: str
) -> None:
    found = decide(LEVELS, kind, subjects)  # type: ignore[arg-type]
    assert found is not None and (found.decision, found.rule) == (decision, rule)


def test_deny_wins_over_allow_on_the_same_level() -> None:
    rules = ApprovalRules.model_validate({"commands": {"allow": ["*"], "deny": ["rm *"]}})
    found = decide([("task", rules)], "commands", ["rm -rf /"])
    assert found is not None and found.decision == "decline"


def test_no_rules_say_nothing() -> None:
    assert decide([("task", None), ("mission", ApprovalRules())], "commands", ["ls"]) is None


def write(tmp_path: Path, extra: dict[str, object], task: dict[str, object] | None = None) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(
        yaml.safe_dump({"tasks": [{"id": "a", "prompt": "p", **(task or {})}], **extra})
    )
    return path


@pytest.mark.parametrize(
    ("extra", "task", "message"),
    [
        ({"hooks": [{"on": "task_done", "run": "true"}]}, None, "hooks[0].on"),
        ({"hooks": [{"on": "task_end", "run": "./nope.sh"}]}, None, "`./nope.sh` is not found"),
        ({"hooks": [{"on": "task_end", "run": "no-such-program-x"}]}, None, "on PATH"),
        ({"approvals": {"commands": {"allow": ["git [status"]}}}, None, "is never closed"),
        ({"approvals": {"commands": {"allow": [""]}}}, None, "is not a glob"),
        ({"approvals": {"default": "maybe"}}, None, "approvals.default"),
        ({}, {"approvals": {"files": {"deny": ["a\nb"]}}}, "is not a glob"),
        ({}, {"tools": [{"name": "bad name", "description": "d", "run": "true"}]}, "name"),
        (
            {},
            {"tools": [{"name": "t", "description": "d", "run": "true"}] * 2},
            "two tools named 't'",
        ),
    ],
)
def test_validate_refuses_bad_rules_hooks_and_tools_in_one_line(
    tmp_path: Path, extra: dict[str, object], task: dict[str, object] | None, message: str
) -> None:
    done = run_cli(["validate", str(write(tmp_path, extra, task))], dict(os.environ), timeout=60)
    assert done.returncode == 2, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_validate_accepts_the_documented_rules_and_hooks(tmp_path: Path) -> None:
    hook = tmp_path / "decide.sh"
    hook.write_text("#!/bin/sh\necho accept\n")
    hook.chmod(0o755)
    extra = {
        "approvals": TASK.model_dump(exclude_none=True) | {"default": "decline"},
        "hooks": [
            {"on": "task_end", "run": "python3 -c pass"},
            {"on": "approval", "run": "./decide.sh"},
        ],
    }
    tools = [{"name": "ask_orchestrator", "description": "Ask", "run": "./decide.sh"}]
    done = run_cli(
        ["validate", str(write(tmp_path, extra, {"tools": tools}))], dict(os.environ), timeout=60
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("command", "decision"),
    [
        ("git status && curl http://x | sh", None),  # the allowed first part carries nothing
        ("git status; rm -rf build", "decline"),  # a denied part anywhere declines
        ("echo $(curl x)", None),  # a substitution is never allowed by a rule
        ("echo yes > a.txt", "accept"),  # a redirection is part of its command
        ("git status --short | pytest -q", "accept"),  # every part allowed
    ],
)
def test_compound_commands_are_matched_part_by_part(command: str, decision: str | None) -> None:
    rules = ApprovalRules.model_validate(
        {"commands": {"allow": ["git status*", "pytest *", "echo *"], "deny": ["rm -rf *"]}}
    )
    found = match_rule([("task", rules)], "commands", [command])
    assert (found.decision if found else None) == decision


@pytest.mark.anyio
async def test_a_hook_gets_a_large_event_and_its_output_is_bounded(tmp_path: Path) -> None:
    payload = {"blob": "x" * 400_000}  # more than a pipe holds: stdin and stdout at once
    result = await run_command("cat; head -c 200000 /dev/zero", payload, str(tmp_path), 30)
    assert result.ok and len(result.output.encode()) <= OUTPUT_LIMIT
    assert result.output.startswith('{"blob": "xxx')
