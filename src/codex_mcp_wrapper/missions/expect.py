"""The ``expect`` block of a task: evidence-based checks, decided after the task ends."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from codex_mcp_wrapper.missions.paths import check_relative
from codex_mcp_wrapper.missions.review import ReviewCheck

Count = Annotated[int, Field(ge=0)]


def _ends_unescaped(value: str, suffix: str) -> bool:
    """``value`` ends with ``suffix`` and no backslash escapes the suffix's first character."""
    head = value.removesuffix(suffix)
    return head != value and (len(head) - len(head.rstrip("\\"))) % 2 == 0


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"'{value}' is not a valid regular expression ({exc})") from exc
    # `/^make$/` is "a slash, then the start of the text": it can never match, and nor can a
    # `$` followed by a slash. Slashes around a regex (as some languages write it) are not part
    # of the pattern here; with a top-level `|` the rest might match, so that is left alone.
    if "|" not in value and (value.startswith("/^") or _ends_unescaped(value, "$/")):
        bare = value.removeprefix("/")
        bare = bare[:-1] if _ends_unescaped(bare, "/") else bare
        raise ValueError(
            f"'{value}' can never match: write the regular expression without slashes "
            f"around it, as '{bare}'"
        )
    return value


def _relative_glob(value: str) -> str:
    check_relative(value, "path", "the task's directory")
    return value


Regex = Annotated[str, AfterValidator(_regex)]
RelativeGlob = Annotated[str, Field(min_length=1), AfterValidator(_relative_glob)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Counted(_Model):
    min: Count = 1
    max: Count | None = None

    @model_validator(mode="after")
    def _bounds(self) -> _Counted:
        if self.max is not None and self.max < self.min:
            if "min" in self.model_fields_set:
                raise ValueError(f"min ({self.min}) is above max ({self.max})")
            self.min = self.max  # `max: 0` alone means "never"
        return self


class ToolCallCheck(_Counted):
    """MCP tool calls Codex made: ``server``/``tool`` (either may be left out to match any),
    ``arguments`` matched as a subset, between ``min`` (default 1) and ``max`` times."""

    server: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] | None = None


class CommandCheck(_Counted):
    """Shell commands Codex ran, by regular expression, between ``min`` and ``max`` times."""

    pattern: Regex


class FileCheck(_Model):
    """A path or glob relative to the task's cwd that must exist (or not), with an optional
    regular expression its content must match."""

    path: RelativeGlob
    exists: bool = True
    contains: Regex | None = None


class MessageCheck(_Model):
    match: Regex | None = None
    not_match: Regex | None = None


class VerifyCheck(_Model):
    """A shell command run in the task's cwd after the task; it must exit 0."""

    command: str
    timeout_sec: Annotated[float, Field(gt=0, le=3600)] = 120.0


class DiffCheck(_Model):
    """What the change of a task run with ``isolation: worktree`` must be: each of ``files``
    (globs relative to the workspace, ``*`` matching across folders) matches a changed file,
    none of ``not_files`` does, and at most ``max_lines`` lines are added plus removed."""

    files: list[RelativeGlob] = Field(default_factory=list)
    not_files: list[RelativeGlob] = Field(default_factory=list)
    max_lines: Count | None = None


class Expect(_Model):
    tool_calls: list[ToolCallCheck] = Field(default_factory=list)
    forbidden_tools: list[str] = Field(
        default_factory=list, description="'server.tool', 'server.*' or 'tool' names"
    )
    commands: list[CommandCheck] = Field(default_factory=list)
    forbid_commands: list[Regex] = Field(default_factory=list, description="regular expressions")
    files: list[FileCheck] = Field(default_factory=list)
    final_message: MessageCheck | str | None = None
    output_schema: bool = False
    git_clean: bool = False
    verify: VerifyCheck | str | None = None
    review: ReviewCheck | None = None  # a review task's findings (missions/review.py)
    diff: DiffCheck | None = None  # isolation: worktree only

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if isinstance(data.get("final_message"), str):
                data["final_message"] = {"match": data["final_message"]}
            if isinstance(data.get("verify"), str):
                data["verify"] = {"command": data["verify"]}
            data["commands"] = [
                {"pattern": c} if isinstance(c, str) else c for c in data.get("commands", [])
            ]
        return data
