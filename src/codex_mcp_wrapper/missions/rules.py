"""Orchestrating what Codex does, declared in the mission: approval rules, event hooks and
the mission's own (dynamic) tools. The models are validated with the mission; the matching
of approval rules is a pure function here, so it is the same wherever it is used.

Matching: a command rule is a glob over the command the model asked to run (``echo yes >
a.txt``, not the ``bash -lc`` around it), ``*`` matching anything including spaces; a file
rule is a glob over each changed path relative to the task's working directory, ``**``
crossing folders; a tool rule is a glob over ``SERVER.TOOL``. Deny wins over allow; rules of
the task come before those of ``defaults``, which come before the mission's; the first level
with a matching rule decides, else the first ``default`` given, else the run's policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from wcmatch import fnmatch as wc_fnmatch
from wcmatch import glob as wc_glob

RuleDefault = Literal["decline", "accept", "ask"]
HookEvent = Literal[
    "run_start", "task_start", "tool_call", "command", "approval", "task_end", "run_end"
]
HOOK_EVENTS: tuple[str, ...] = HookEvent.__args__  # type: ignore[attr-defined]
PATH_FLAGS = wc_glob.GLOBSTAR | wc_glob.DOTGLOB
TEXT_FLAGS = wc_fnmatch.DOTMATCH


def _glob(value: str) -> str:
    """A glob is non-empty, one line, and its brackets are balanced."""
    if not value.strip() or "\n" in value or "\x00" in value:
        raise ValueError(f"'{value}' is not a glob (empty or several lines)")
    depth = 0
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
    if depth:
        raise ValueError(f"'{value}' is not a glob: a '[' is never closed")
    return value


Glob = Annotated[str, AfterValidator(_glob)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RuleSet(_Model):
    """Globs that accept (``allow``) or decline (``deny``) what Codex asks; deny wins."""

    allow: list[Glob] = Field(default_factory=list)
    deny: list[Glob] = Field(default_factory=list)


class ApprovalRules(_Model):
    """How the wrapper answers Codex's approval requests, before anyone is asked."""

    commands: RuleSet | None = None
    files: RuleSet | None = None
    tools: RuleSet | None = None
    default: RuleDefault | None = None


class Hook(_Model):
    """A command run on a run event, given the event as JSON on stdin. Its failure (exit code,
    timeout) is recorded in the task's events; with ``required`` it fails the task. An
    ``approval`` hook decides by printing ``accept`` or ``decline`` (after the rules)."""

    on: HookEvent
    run: Annotated[str, Field(min_length=1)]
    cwd: str | None = None  # default: the mission file's folder
    timeout_sec: Annotated[float, Field(gt=0, le=3600)] = 30.0
    required: bool = False

    @model_validator(mode="after")
    def _required_before_the_end(self) -> Hook:
        if self.required and self.on == "run_end":
            raise ValueError(
                "a run_end hook runs after the summary is written: it cannot be required"
            )
        return self


class DynamicTool(_Model):
    """A tool of the orchestrator that Codex can call: its arguments reach ``run`` as JSON on
    stdin, and what it prints is the answer (exit code 0) or the error (any other)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
    description: Annotated[str, Field(min_length=1)]
    input_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    run: Annotated[str, Field(min_length=1)]
    cwd: str | None = None  # default: the mission file's folder
    timeout_sec: Annotated[float, Field(gt=0, le=3600)] = 60.0


@dataclass(frozen=True)
class RuleDecision:
    decision: Literal["accept", "decline", "ask"]
    rule: str  # which rule decided, e.g. "task.commands.deny 'curl *'"


def _first(patterns: Iterable[str], subject: str, path: bool) -> str | None:
    for pattern in patterns:
        if path:
            if wc_glob.globmatch(subject, pattern, flags=PATH_FLAGS):
                return pattern
        elif wc_fnmatch.fnmatch(subject, pattern, flags=TEXT_FLAGS):
            return pattern
    return None


_COMMAND_SEPARATORS = re.compile(r"&&|\|\||[;|&\n]")


def command_parts(command: str) -> list[str]:
    """The commands a shell line runs: ``git status && curl x | sh`` is three, each matched
    on its own (an allowed first command must not carry others along)."""
    return [part.strip() for part in _COMMAND_SEPARATORS.split(command) if part.strip()]


def _match(rules: RuleSet, subjects: Sequence[str], path: bool) -> tuple[str, str] | None:
    """("deny"|"allow", pattern) when the rule set decides for every subject."""
    for subject in subjects:
        pattern = _first(rules.deny, subject, path)
        if pattern is not None:
            return "deny", pattern
    if not subjects:
        return None
    allowed = [_first(rules.allow, s, path) for s in subjects]
    if all(p is not None for p in allowed):
        return "allow", str(allowed[0])
    return None


Kind = Literal["commands", "files", "tools"]


def match_rule(
    levels: Sequence[tuple[str, ApprovalRules | None]], kind: Kind, subjects: Sequence[str]
) -> RuleDecision | None:
    """The decision of the first level (``(name, rules)``, most specific first) whose rules of
    ``kind`` decide for ``subjects``; None when none does."""
    if kind == "commands":
        # A substitution runs commands no glob sees: never allowed by a rule, only denied.
        hidden = any("$(" in s or "`" in s for s in subjects)
        subjects = [part for s in subjects for part in command_parts(s)]
    else:
        hidden = False
    for name, rules in levels:
        ruleset = getattr(rules, kind) if rules is not None else None
        if ruleset is None:
            continue
        found = _match(ruleset, subjects, kind == "files")
        if found is not None and found[0] == "allow" and hidden:
            continue
        if found is not None:
            verdict, pattern = found
            decision: Literal["accept", "decline"] = "accept" if verdict == "allow" else "decline"
            return RuleDecision(decision, f"{name}.{kind}.{verdict} '{pattern}'")
    return None


def rule_default(levels: Sequence[tuple[str, ApprovalRules | None]]) -> RuleDecision | None:
    """The first level's ``default``, when one gives it."""
    for name, rules in levels:
        if rules is not None and rules.default is not None:
            return RuleDecision(rules.default, f"{name}.default")
    return None


def decide(
    levels: Sequence[tuple[str, ApprovalRules | None]], kind: Kind, subjects: Sequence[str]
) -> RuleDecision | None:
    """A matching rule's decision, else the default; None when the rules say nothing."""
    return match_rule(levels, kind, subjects) or rule_default(levels)
