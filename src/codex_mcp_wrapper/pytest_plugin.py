"""The pytest plugin (entry point ``pytest11``, shipped with the package): missions in tests.

``codex_wrapper.run(mission)`` runs a mission (a dict as in a mission file, or a path) with a
state dir under the test's ``tmp_path`` and returns the ``RunSummary`` (``.ok``,
``.tasks["id"].status``, ``.final_message``, ``.checks``, ``.tool_calls``, ``.commands``). A run
that does not end ok fails the test (``MissionFailed``, an ``AssertionError``) with what went
wrong: each task's status and error, its failed checks and the last events of its transcript;
``check=False`` returns the summary instead. The report of a failed test has the same under
"codex-wrapper".

Choose Codex and the model per run (``codex_bin=``, ``scripted=``), per test
(``@pytest.mark.codex_wrapper(codex_bin=..., scripted=True)``) or per session
(``--codex-wrapper-bin PATH``, ``--codex-wrapper-scripted``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from codex_mcp_wrapper.app import run_mission_sync
from codex_mcp_wrapper.codex.evidence import unwrap_shell
from codex_mcp_wrapper.engine.hooks import PythonHook
from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.engine.results import RunSummary
from codex_mcp_wrapper.engine.seams import ApprovalHandler
from codex_mcp_wrapper.missions.loading import load_mission, parse_mission
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.settings import Settings

LAST_EVENTS = 8  # transcript events shown per failed task
QUIET_METHODS = ("delta", "tokenUsage", "status/changed", "readState", "rateLimits", "warning")


class MissionFailed(AssertionError):
    """A mission run in a test did not end ok; the message says why, task by task."""


def _shown(line: str) -> str | None:
    """One transcript event as a line, or None for the noise (deltas, status changes)."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    method = str(event.get("method", ""))
    if any(q in method for q in QUIET_METHODS) or method in ("item/started", "turn/started"):
        return None
    params = event.get("params") or {}
    item = params.get("item") if isinstance(params, dict) else None
    if isinstance(item, dict):
        if item.get("type") == "userMessage":
            return None
        what = item.get("command") or item.get("text") or item.get("tool") or ""
        detail = f"{item.get('type')}: {unwrap_shell(str(what))[:160]}"
        if item.get("exitCode") is not None:
            detail += f" (exit {item['exitCode']})"
        return f"{method} {detail}"
    if method == "turn/completed":
        turn = params.get("turn") or {}
        return f"{method} {turn.get('status', '')} {turn.get('error') or ''}".rstrip()
    return f"{method} {json.dumps(params)[:160]}"


def last_events(run_dir: str | None, task_id: str, count: int = LAST_EVENTS) -> list[str]:
    """The task's last meaningful transcript events, one line each."""
    if not run_dir:
        return []
    path = Path(run_dir) / "tasks" / task_id / "events.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    shown = [s for s in (_shown(line) for line in lines) if s]
    return shown[-count:]


def describe(summary: RunSummary) -> str:
    """What went wrong in a run, readable in a test report."""
    out = [f"run {summary.run_id} ({summary.mission_id}) ended {summary.status}: {summary.counts}"]
    out += [f"  required hook failed: {failure}" for failure in summary.hook_failures]
    for task in summary.tasks:
        if task.status == "ok":
            continue
        out.append(f"  task {task.task_id}: {task.status}: {task.error or ''}".rstrip(": "))
        out += [
            f"    check {c.name} failed: expected {c.expected}, observed {c.observed}"
            for c in task.checks
            if not c.ok
        ]
        events = last_events(summary.run_dir, task.task_id)
        if events:
            out.append("    last events:")
            out += [f"      {line}" for line in events]
    if summary.run_dir:
        out.append(f"  details: {summary.run_dir}")
    return "\n".join(out)


class CodexWrapper:
    """What the ``codex_wrapper`` fixture gives a test."""

    def __init__(self, root: Path, codex_bin: str | None, scripted: bool | None) -> None:
        self.root = root
        self.codex_bin = codex_bin
        self.scripted = scripted
        self.runs: list[RunSummary] = []

    def __repr__(self) -> str:
        return f"<codex_wrapper {self.root} {len(self.runs)} run(s)>"

    def mission(
        self,
        mission: Mission | Mapping[str, Any] | str | Path,
        variables: Mapping[str, str] | None = None,
    ) -> Mission:
        if isinstance(mission, Mission):
            return mission
        if isinstance(mission, str | Path):
            return load_mission(Path(mission), variables)
        data = dict(mission)
        data.setdefault("workspace_root", str(self.root / "workspace"))
        return parse_mission(data, "mission", variables)

    def run(
        self,
        mission: Mission | Mapping[str, Any] | str | Path,
        *,
        check: bool = True,
        scripted: bool | None = None,
        codex_bin: str | None = None,
        workers: int | None = None,
        auto_approve: bool = False,
        approvals: ApprovalHandler | None = None,
        hooks: Mapping[str, Sequence[PythonHook]] | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> RunSummary:
        """Run ``mission`` to the end; ``MissionFailed`` unless it ends ok (or ``check`` is
        off). ``scripted`` puts every task on the scripted model (default: as the mission
        says); ``approvals``/``hooks`` are Python callables (docs/orchestration.md)."""
        settings = Settings(
            state_dir=self.root / "state",
            codex_bin=codex_bin or self.codex_bin,
            scripted=bool(self.scripted if scripted is None else scripted),
            approvals="accept" if auto_approve else "decline",
            variables=dict(variables or {}),
        )
        if workers:
            settings = dataclasses.replace(settings, workers=workers)
        options = RunOptions(approvals=approvals, hooks=dict(hooks or {}))
        summary = run_mission_sync(self.mission(mission, variables), settings, options)
        self.runs.append(summary)
        if check and not summary.ok:
            raise MissionFailed(describe(summary))
        return summary


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("codex-wrapper", "codex-mcp-wrapper missions in tests")
    group.addoption(
        "--codex-wrapper-bin",
        default=None,
        help="The Codex binary codex_wrapper runs (default: --codex-bin's order: $CODEX_BIN, "
        "the pinned package, codex on PATH).",
    )
    group.addoption(
        "--codex-wrapper-scripted",
        action="store_true",
        help="Run every codex_wrapper mission on the scripted model (offline).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "codex_wrapper(codex_bin=None, scripted=None): the Codex binary and model of this "
        "test's codex_wrapper runs.",
    )


@pytest.fixture
def codex_wrapper(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CodexWrapper]:
    """Runs missions in this test: ``codex_wrapper.run(mission)`` (see the module doc)."""
    marker = request.node.get_closest_marker("codex_wrapper")
    given: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    codex_bin = given.get("codex_bin") or request.config.getoption("--codex-wrapper-bin")
    scripted = given.get("scripted")
    if scripted is None and request.config.getoption("--codex-wrapper-scripted"):
        scripted = True
    wrapper = CodexWrapper(tmp_path / "codex-wrapper", codex_bin, scripted)
    request.node.stash[_WRAPPER] = wrapper
    yield wrapper


_WRAPPER = pytest.StashKey[CodexWrapper]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    wrapper = item.stash.get(_WRAPPER, None)
    if report.when != "call" or not report.failed or wrapper is None:
        return
    failed = [describe(summary) for summary in wrapper.runs if not summary.ok]
    if failed:
        report.sections.append(("codex-wrapper", "\n\n".join(failed)))
