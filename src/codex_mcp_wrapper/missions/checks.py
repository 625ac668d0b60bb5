"""Deciding a task's ``expect`` checks from evidence: what Codex did in the task (tool calls and
commands, as plain records), the workspace, git, and a verify command. Each check yields one
``CheckResult``."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from codex_mcp_wrapper import process
from codex_mcp_wrapper.missions.expect import DiffCheck, Expect, MessageCheck, VerifyCheck
from codex_mcp_wrapper.missions.paths import inside
from codex_mcp_wrapper.missions.review import ReviewResult, check_review

GIT_TIMEOUT = 30.0
OUTPUT_TAIL = 400


class CheckResult(BaseModel):
    name: str
    ok: bool
    expected: str
    observed: str


class ToolCallRecord(BaseModel):
    """An MCP tool call Codex made in a task."""

    server: str | None = None
    tool: str | None = None
    arguments: Any = None
    status: str | None = None


class CommandRecord(BaseModel):
    """A shell command Codex ran in a task (the command the model asked for, unwrapped)."""

    command: str
    exit_code: int | None = None
    status: str | None = None


@dataclass
class Evidence:
    """What Codex did in a task, gathered from its events across attempts (``codex.evidence``
    fills it; the checks here only read it)."""

    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    commands: list[CommandRecord] = field(default_factory=list)
    review: ReviewResult | None = None  # what a review task's review found
    review_answer: str | None = None  # the model's own answer in review mode (JSON)


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _subset(v, actual[k]) for k, v in expected.items()
        )
    return bool(expected == actual)


def _range(low: int, high: int | None) -> str:
    if high is None:
        return f"at least {low}"
    return f"exactly {low}" if low == high else f"between {low} and {high}"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _tool_names(evidence: Evidence) -> str:
    names = [f"{c.server}.{c.tool}" for c in evidence.tool_calls]
    return ", ".join(names) or "no MCP tool calls"


def check_tools(expect: Expect, evidence: Evidence) -> list[CheckResult]:
    out = []
    for check in expect.tool_calls:
        hits = [
            c
            for c in evidence.tool_calls
            if (check.server is None or c.server == check.server)
            and (check.tool is None or c.tool == check.tool)
            and (check.arguments is None or _subset(check.arguments, c.arguments))
            and c.status == "completed"
        ]
        label = f"{check.server or '*'}.{check.tool or '*'}"
        if check.arguments:
            label += f" {_short(check.arguments)}"
        ok = len(hits) >= check.min and (check.max is None or len(hits) <= check.max)
        out.append(
            CheckResult(
                name=f"tool_calls: {label}",
                ok=ok,
                expected=f"{_range(check.min, check.max)} completed call(s)",
                observed=f"{len(hits)} matching; calls made: {_tool_names(evidence)}",
            )
        )
    for forbidden in expect.forbidden_tools:
        server, _, tool = forbidden.rpartition(".") if "." in forbidden else ("", "", forbidden)
        hits = [
            c
            for c in evidence.tool_calls
            if (not server or c.server == server) and (tool in ("*", c.tool))
        ]
        out.append(
            CheckResult(
                name=f"forbidden_tools: {forbidden}",
                ok=not hits,
                expected="never called",
                observed=f"called {len(hits)} time(s)" if hits else "not called",
            )
        )
    return out


def check_commands(expect: Expect, evidence: Evidence) -> list[CheckResult]:
    commands = [c.command for c in evidence.commands]
    out = []
    for check in expect.commands:
        regex = re.compile(check.pattern)
        hits = [c for c in commands if regex.search(c)]
        ok = len(hits) >= check.min and (check.max is None or len(hits) <= check.max)
        out.append(
            CheckResult(
                name=f"commands: /{check.pattern}/",
                ok=ok,
                expected=f"{_range(check.min, check.max)} matching command(s)",
                observed=f"{len(hits)} matching; ran: {_short(commands) if commands else 'none'}",
            )
        )
    for pattern in expect.forbid_commands:
        regex = re.compile(pattern)
        hits = [c for c in commands if regex.search(c)]
        out.append(
            CheckResult(
                name=f"forbid_commands: /{pattern}/",
                ok=not hits,
                expected="no matching command",
                observed=f"ran {_short(hits)}" if hits else "none ran",
            )
        )
    return out


def check_files(expect: Expect, cwd: Path) -> list[CheckResult]:
    out = []
    root = cwd.resolve()
    for check in expect.files:
        matches = [p for p in sorted(root.glob(check.path)) if inside(root, p)]
        if not check.exists:
            out.append(
                CheckResult(
                    name=f"files: {check.path} absent",
                    ok=not matches,
                    expected="no such path",
                    observed=", ".join(str(p.relative_to(root)) for p in matches) or "absent",
                )
            )
            continue
        if not matches:
            out.append(
                CheckResult(
                    name=f"files: {check.path}", ok=False, expected="exists", observed="missing"
                )
            )
            continue
        if check.contains is None:
            out.append(
                CheckResult(
                    name=f"files: {check.path}",
                    ok=True,
                    expected="exists",
                    observed=f"{len(matches)} match(es)",
                )
            )
            continue
        regex = re.compile(check.contains)
        hits = [p for p in matches if p.is_file() and regex.search(p.read_text(errors="replace"))]
        out.append(
            CheckResult(
                name=f"files: {check.path} contains /{check.contains}/",
                ok=bool(hits),
                expected="content matches",
                observed=f"{len(hits)} of {len(matches)} file(s) match",
            )
        )
    return out


def check_message(
    check: MessageCheck | None, final: str | None, want_schema: bool, schema: dict[str, Any] | None
) -> list[CheckResult]:
    out = []
    text = final or ""
    if check is not None and check.match is not None:
        out.append(
            CheckResult(
                name=f"final_message: /{check.match}/",
                ok=re.search(check.match, text) is not None,
                expected="matches",
                observed=_short(text) or "(no final message)",
            )
        )
    if check is not None and check.not_match is not None:
        out.append(
            CheckResult(
                name=f"final_message not /{check.not_match}/",
                ok=re.search(check.not_match, text) is None,
                expected="does not match",
                observed=_short(text) or "(no final message)",
            )
        )
    if want_schema:
        observed = "valid"
        ok = True
        if schema is None:
            ok, observed = False, "the task has no output_schema"
        else:
            import jsonschema  # only for a task with an output_schema check (25 ms)

            try:
                jsonschema.validate(json.loads(text), schema)
            except ValueError as exc:
                ok, observed = False, f"not JSON: {exc}"
            except jsonschema.ValidationError as exc:
                ok, observed = False, exc.message
        out.append(
            CheckResult(
                name="output_schema",
                ok=ok,
                expected="valid JSON per the task's output_schema",
                observed=observed,
            )
        )
    return out


async def _shell(command: list[str], cwd: Path, timeout: float) -> tuple[int | None, str]:
    proc = await process.spawn(command, env=_env(), cwd=cwd, merge_stderr=True)
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(timeout):
            out = await proc.stdout.read()
            await proc.wait()
    except TimeoutError:
        await process.stop(proc, grace=0.5)
        return None, f"still running after {timeout:g} s"
    finally:
        if proc.returncode is None:
            await process.stop(proc, grace=0.5)
    return proc.returncode, out.decode(errors="replace")


def _env() -> dict[str, str]:
    return dict(os.environ)


async def check_git(cwd: Path) -> CheckResult:
    code, out = await _shell(["git", "status", "--porcelain"], cwd, GIT_TIMEOUT)
    if code != 0:
        return CheckResult(
            name="git_clean",
            ok=False,
            expected="a clean git work tree",
            observed=f"git status failed: {out.strip()[-OUTPUT_TAIL:]}",
        )
    dirty = [line for line in out.splitlines() if line.strip()]
    return CheckResult(
        name="git_clean",
        ok=not dirty,
        expected="no uncommitted changes",
        observed=f"{len(dirty)} change(s): {_short(dirty)}" if dirty else "clean",
    )


async def check_verify(check: VerifyCheck, cwd: Path) -> CheckResult:
    code, out = await _shell(["/bin/sh", "-c", check.command], cwd, check.timeout_sec)
    tail = out.strip()[-OUTPUT_TAIL:]
    return CheckResult(
        name=f"verify: {check.command}",
        ok=code == 0,
        expected="exit 0",
        observed=("timed out" if code is None else f"exit {code}") + (f": {tail}" if tail else ""),
    )


async def evaluate(
    expect: Expect,
    evidence: Evidence,
    final_message: str | None,
    output_schema: dict[str, Any] | None,
    cwd: Path,
) -> list[CheckResult]:
    message = expect.final_message if isinstance(expect.final_message, MessageCheck) else None
    results = [
        *check_tools(expect, evidence),
        *check_commands(expect, evidence),
        *check_files(expect, cwd),
        *check_message(message, final_message, expect.output_schema, output_schema),
    ]
    if expect.git_clean:
        results.append(await check_git(cwd))
    if isinstance(expect.verify, VerifyCheck):
        results.append(await check_verify(expect.verify, cwd))
    if expect.review is not None:
        results += [
            CheckResult(name=name, ok=ok, expected=expected, observed=observed)
            for name, ok, expected, observed in check_review(expect.review, evidence.review)
        ]
    return results


def check_diff(check: DiffCheck, files: list[str], lines: int) -> list[CheckResult]:
    """A worktree task's change against its ``expect.diff``: ``files`` the changed paths
    (relative to the workspace), ``lines`` insertions plus deletions."""
    changed = ", ".join(files) or "nothing"
    out: list[CheckResult] = []
    for glob in check.files:
        hits = [f for f in files if fnmatch.fnmatchcase(f, glob)]
        out.append(
            CheckResult(
                name=f"diff: files {glob}",
                ok=bool(hits),
                expected="a changed file matching it",
                observed=", ".join(hits) if hits else f"changed: {changed}",
            )
        )
    for glob in check.not_files:
        hits = [f for f in files if fnmatch.fnmatchcase(f, glob)]
        out.append(
            CheckResult(
                name=f"diff: not_files {glob}",
                ok=not hits,
                expected="no changed file matching it",
                observed=f"changed: {', '.join(hits)}" if hits else "none changed",
            )
        )
    if check.max_lines is not None:
        out.append(
            CheckResult(
                name="diff: max_lines",
                ok=lines <= check.max_lines,
                expected=f"at most {check.max_lines} changed line(s)",
                observed=f"{lines} ({changed})",
            )
        )
    return out


def failure_message(results: list[CheckResult]) -> str:
    failed = [r for r in results if not r.ok]
    parts = [f"{r.name}: expected {r.expected}, observed {r.observed}" for r in failed]
    return f"{len(failed)} of {len(results)} check(s) failed: " + "; ".join(parts)
