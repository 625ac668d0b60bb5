"""Every snippet in README.md and docs/ is checked: a YAML or JSON block that is a mission (or a
fragment of one: tasks, task settings, mission keys) validates inside a minimal mission, as
does a script or a cassette; a serve config validates; every `codex-mcp-wrapper` command line
(in shell blocks, and in a CI block's `run:` lines) names commands and options that exist;
every Python block is run by the test named for its document. A snippet of a kind this test
does not know fails it, so a new snippet is checked or explicitly listed here with a reason."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest

from codex_mcp_wrapper.cassettes.model import Cassette
from codex_mcp_wrapper.cli.main import cli
from codex_mcp_wrapper.cli.serve_config import read_serve_config
from codex_mcp_wrapper.errors import WrapperError
from codex_mcp_wrapper.inputs import bounded_yaml
from codex_mcp_wrapper.missions.loading import parse_mission
from codex_mcp_wrapper.missions.model import Mission, Task, TaskSettings
from codex_mcp_wrapper.scripted.script import STEP_KINDS, parse_script

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

# Python blocks, by document: the test that runs them as they are written.
PYTHON_RUN_BY = {
    "docs/python-api.md": "tests/test_python_api.py",
    "docs/pytest.md": "tests/test_pytest_plugin.py",
    "docs/orchestration.md": "tests/test_orchestration.py",
}
# Blocks that are neither missions nor commands, by their first line, and why they are kept.
NOT_A_MISSION = {
    '{"mcpServers": {"codex-wrapper"': "an MCP client's configuration",
    '{"run_id": "20261124-134438-f56bb0"': "a run summary as `--json` prints it (shortened)",
    '{"apps": [{"name": "codex-worker",': "a pm2 ecosystem entry",
    "# GitHub Actions, for example": "a CI workflow (its `run:` commands are checked)",
}
# Snippets shown as the error they make, by document and a line of theirs: they must fail.
INVALID_ON_PURPOSE = {("docs/scripted-model.md", "- fail: 503")}
TASK_KEYS = set(Task.model_fields) | set(TaskSettings.model_fields)
MISSION_KEYS = set(Mission.model_fields)
SCRIPT_STEPS = set(STEP_KINDS)


@dataclass(frozen=True)
class Snippet:
    doc: str
    line: int
    language: str
    text: str

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def snippets() -> list[Snippet]:
    found = []
    for path in DOCS:
        text = path.read_text()
        for match in _FENCE.finditer(text):
            line = text[: match.start()].count("\n") + 1
            doc = str(path.relative_to(REPO))
            found.append(Snippet(doc, line, match.group(1), match.group(2)))
    return found


class AnyVariable(dict[str, str]):
    """Every ``${VAR}`` of a snippet has a value."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return f"/{key.lower()}"


def not_a_mission(snippet: Snippet) -> str | None:
    first = snippet.text.lstrip().splitlines()[0]
    return next((why for start, why in NOT_A_MISSION.items() if first.startswith(start)), None)


def check_data(snippet: Snippet, data: Any) -> str:
    """Validate a YAML/JSON snippet's data; returns what it was taken for."""
    if isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
        if all(set(step) & SCRIPT_STEPS for step in data):
            parse_script(data, str(snippet))
            return "a script"
        if all(set(task) <= TASK_KEYS for task in data):
            mission(snippet, {"tasks": data})
            return "tasks"
    if isinstance(data, dict):
        if {"version", "tasks"} <= set(data) and isinstance(data["tasks"], dict):
            cassette = Cassette.model_validate(data)
            assert cassette.edited() == [], f"{snippet}: digests that do not match the exchanges"
            return "a cassette"
        if "tasks" in data:
            mission(snippet, data)
            return "a mission"
        if set(data) <= MISSION_KEYS:
            mission(snippet, {**data, "tasks": [{"prompt": "p"}]})
            return "mission keys"
        if set(data) <= TASK_KEYS:
            mission(snippet, {"tasks": [{"prompt": "p", **data}]})
            return "task settings"
    raise AssertionError(f"{snippet}: a snippet of no known kind; check it here or list it")


def mission(snippet: Snippet, data: dict[str, Any]) -> Mission:
    return parse_mission(data, str(snippet), AnyVariable(), environ={})


def commands_in(text: str) -> list[list[str]]:
    """The `codex-mcp-wrapper` command lines of a shell block (or `run:` lines), as argv."""
    found = []
    for raw in text.splitlines():
        line = raw.strip().removeprefix("- run:").removeprefix("run:").strip()
        line = re.split(r"\s(?:\||>|&&|;)\s?", line)[0]
        if not line.startswith(("codex-mcp-wrapper ", ".venv/bin/codex-mcp-wrapper ")):
            continue
        found.append(shlex.split(line, comments=True)[1:])
    return found


def check_command(where: str, argv: list[str]) -> None:
    """The command and its options exist (parsed up to `--help`, nothing run)."""
    try:
        cli.main(args=[*argv, "--help"], prog_name="codex-mcp-wrapper", standalone_mode=False)
    except click.UsageError as exc:
        raise AssertionError(f"{where}: `{' '.join(argv)}`: {exc.format_message()}") from exc


@pytest.mark.parametrize("snippet", snippets(), ids=str)
def test_the_snippet_is_valid(
    snippet: Snippet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if snippet.language in ("yaml", "json"):
        parse = json.loads if snippet.language == "json" else bounded_yaml
        if any(d == snippet.doc and line in snippet.text for d, line in INVALID_ON_PURPOSE):
            with pytest.raises(WrapperError):  # the one-sentence input errors
                check_data(snippet, parse(snippet.text))
        elif not_a_mission(snippet) is None:
            check_data(snippet, parse(snippet.text))
        for argv in commands_in(snippet.text):
            check_command(str(snippet), argv)
    elif snippet.language == "toml":
        if snippet.text.startswith("# hub/serve.toml"):
            path = tmp_path / "serve.toml"
            path.write_text(snippet.text)
            read_serve_config(path)  # one sentence and exit 2 when it is not a serve config
        else:
            tomllib.loads(snippet.text)
    elif snippet.language == "bash":
        for argv in commands_in(snippet.text):
            check_command(str(snippet), argv)
    elif snippet.language == "python":
        runner = PYTHON_RUN_BY.get(snippet.doc)
        assert runner, f"{snippet}: a Python block no test runs; add one to PYTHON_RUN_BY"
        name = Path(snippet.doc).name
        assert name in (REPO / runner).read_text(), f"{runner} does not read {snippet.doc}"
    else:
        assert snippet.language in ("", "text", "ini"), f"{snippet}: unknown language"
    capsys.readouterr()  # --help pages printed by the command checks


def test_a_broken_snippet_would_fail() -> None:
    """The checks bite: a misspelled field, an unknown option."""
    bad = Snippet("doc.md", 1, "yaml", "tasks:\n  - prompt: p\n    colour: red\n")
    with pytest.raises(Exception, match="unknown field 'colour'"):
        check_data(bad, bounded_yaml(bad.text))
    with pytest.raises(AssertionError, match="No such option"):
        check_command("doc.md:1", ["run", "m.yaml", "--colour"])
