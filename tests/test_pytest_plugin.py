"""The pytest plugin, run by pytest itself (``pytester``): the ``codex_wrapper`` fixture runs a
mission in a test with the real Codex and the scripted model, and a failing check fails the
test with a readable report."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["pytester"]

SMOKE = """
def test_smoke(codex_wrapper):
    result = codex_wrapper.run({
        "provider": "scripted",
        "tasks": [{"id": "hi", "prompt": "hello", "sandbox": "workspace-write",
                   "script": [{"shell": "echo made > made.txt"}, {"say": "hi there"}]}],
    })
    assert result.ok
    assert result.tasks["hi"].status == "ok"
    assert result.tasks["hi"].final_message == "hi there"
    assert result.tasks["hi"].commands[0].command == "echo made > made.txt"
    assert (codex_wrapper.root / "workspace" / "made.txt").read_text() == "made\\n"
"""

FAILING = """
def test_banana(codex_wrapper):
    codex_wrapper.run({
        "provider": "scripted",
        "tasks": [{"id": "fruit", "prompt": "name a fruit", "retries": 0,
                   "script": [{"shell": "echo apple"}, {"say": "apple"}],
                   "expect": {"final_message": {"match": "banana"}}}],
    })
"""


@pytest.fixture
def tester(
    pytester: pytest.Pytester, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """pytester, its pytest run with the real Codex (``cli_env``)."""
    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)
    return pytester


def test_the_fixture_runs_a_mission_in_a_test(tester: pytest.Pytester) -> None:
    pytester = tester
    pytester.makepyfile(SMOKE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_failing_check_fails_the_test_with_a_readable_report(tester: pytest.Pytester) -> None:
    pytester = tester
    pytester.makepyfile(FAILING)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*MissionFailed: run * (mission) ended failed*",
            "*task fruit: failed*",
            "*check final_message: /banana/ failed: expected matches, observed apple*",
            "*last events:*",
            "*item/completed commandExecution: echo apple (exit 0)*",
            "*- codex-wrapper -*",
        ]
    )


def doc_example(pytester: pytest.Pytester) -> str:
    """The smoke test of docs/pytest.md, with the example server where it says."""
    doc = (REPO / "docs" / "pytest.md").read_text()
    block = re.search(r"```python\n(.*?)```", doc, re.DOTALL)
    assert block is not None
    assert len(block.group(1).strip().splitlines()) <= 22  # "in twenty lines", or about
    server = pytester.path / "examples" / "mcp-smoke" / "fs_server.py"
    server.parent.mkdir(parents=True)
    shutil.copy(REPO / "examples" / "mcp-smoke" / "fs_server.py", server)
    return block.group(1)


def test_the_smoke_test_in_docs_pytest_md_runs_as_written(tester: pytest.Pytester) -> None:
    tester.makepyfile(test_smoke_doc=doc_example(tester))
    result = tester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_smoke_test_in_docs_pytest_md_fails_when_there_is_nothing_to_find(
    tester: pytest.Pytester,
) -> None:
    """The server reads only its own folder: the wrapper's records (whose mission says
    "TODO") are not where it looks, so without the note the test fails as it should."""
    example = doc_example(tester).replace("TODO: ship it", "all done")
    tester.makepyfile(test_smoke_doc=example)
    result = tester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*check final_message: /ship it/ failed*observed Found: no match*"]
    )
