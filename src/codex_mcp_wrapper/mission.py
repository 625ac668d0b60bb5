"""The mission contract: pydantic models (``extra="forbid"``), loading and validation.

A mission is validated once, here, at the edge; everything inward gets typed objects.
Hyphenated keys of the original design (``base-instructions``) are accepted as aliases.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from codex_mcp_wrapper.errors import MissionError, ScriptError
from codex_mcp_wrapper.expect import Expect
from codex_mcp_wrapper.scripted.script import Script, load_script, parse_script

MAX_MISSION_BYTES = 5_000_000
DEFAULT_TIMEOUT_SEC = 900.0
DEFAULT_IDLE_TIMEOUT_SEC = 300.0
DEFAULT_RETRIES = 1

Sandbox = Literal["read-only", "workspace-write", "danger-full-access"]
ApprovalPolicy = Literal["never", "on-request", "on-failure", "untrusted"]
PositiveSeconds = Annotated[float, Field(gt=0, le=7 * 24 * 3600)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _accept_hyphens(cls, data: Any) -> Any:
        if isinstance(data, dict):
            fields = cls.model_fields
            out = {}
            for key, value in data.items():
                alt = key.replace("-", "_") if isinstance(key, str) else key
                out[alt if alt in fields and key not in fields else key] = value
            return out
        return data


class McpServer(_Model):
    """An MCP server a task's Codex may use: a command (stdio) or a URL (streamable HTTP)."""

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    bearer_token_env_var: str | None = None
    default_tools_approval_mode: Literal["auto", "prompt", "writes", "approve"] = "approve"
    enabled_tools: list[str] | None = None
    disabled_tools: list[str] | None = None
    startup_timeout_sec: PositiveSeconds | None = None
    tool_timeout_sec: PositiveSeconds | None = None

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of 'command' or 'url'")
        return self

    def codex_config(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude_defaults=False)


class CustomProvider(_Model):
    """A Responses-compatible model provider."""

    base_url: str
    env_key: str | None = None
    name: str = "custom"
    model: str | None = None


ProviderChoice = Literal["codex", "scripted"] | CustomProvider


class TaskSettings(_Model):
    """Settings a task may give and ``defaults`` may give for all tasks."""

    cwd: str | None = None
    sandbox: Sandbox | None = None
    approval_policy: ApprovalPolicy | None = None
    model: str | None = None
    profile: str | None = None
    base_instructions: str | None = None
    developer_instructions: str | None = None
    env: dict[str, str] | None = None
    config: dict[str, Any] | None = None
    mcp_servers: dict[str, McpServer] | None = None
    output_schema: dict[str, Any] | None = None
    artifacts: list[str] | None = None
    timeout_sec: PositiveSeconds | None = None
    idle_timeout_sec: PositiveSeconds | None = None
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    preferred_worker: str | None = None


class Task(TaskSettings):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] | None = None
    prompt: Annotated[str, Field(min_length=1)]
    depends_on: list[str] = Field(default_factory=list)
    follow_ups: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    script: list[Any] | str | None = None
    expect: Expect | None = None


class Mission(_Model):
    mission_id: Annotated[str, Field(min_length=1, max_length=128)] = "mission"
    workspace_root: str = "."
    notes: str | None = None
    provider: ProviderChoice = "codex"
    defaults: TaskSettings = Field(default_factory=TaskSettings)
    tasks: Annotated[list[Task], Field(min_length=1)]

    @model_validator(mode="after")
    def _check_graph(self) -> Mission:
        ids: list[str] = []
        for n, task in enumerate(self.tasks, start=1):
            if task.id is None:
                task.id = f"task-{n}"
            if task.id in ids:
                raise ValueError(f"task id '{task.id}' is used twice; ids must be unique")
            ids.append(task.id)
        known = set(ids)
        for task in self.tasks:
            for dep in task.depends_on:
                if dep not in known:
                    raise ValueError(
                        f"task '{task.id}' depends on '{dep}', which is not a task of this mission"
                    )
                if dep == task.id:
                    raise ValueError(f"task '{task.id}' depends on itself")
        cycle = find_cycle({t.id or "": t.depends_on for t in self.tasks})
        if cycle:
            raise ValueError("dependency cycle: " + " -> ".join(cycle))
        for task in self.tasks:
            cwd = task.cwd or self.defaults.cwd or "."
            check_relative(cwd, f"task '{task.id}' cwd")
        return self


def find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def check_relative(path: str, what: str) -> None:
    """Reject absolute paths and ``..`` escapes (symlinks are checked again at run time)."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or Path(path).is_absolute():
        raise ValueError(f"{what} '{path}' must be relative to workspace_root")
    depth = 0
    for part in pure.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise ValueError(f"{what} '{path}' escapes workspace_root")


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_vars(data: Any, variables: Mapping[str, str], source: str) -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string; ``$${`` is a literal ``${``."""
    if isinstance(data, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in variables:
                return variables[name]
            if default is not None:
                return default
            raise MissionError(
                f"{source}: uses ${{{name}}} but {name} is not set; export it or pass "
                f"--var {name}=VALUE."
            )

        parts = data.split("$${")
        return "${".join(_VAR.sub(sub, part) for part in parts)
    if isinstance(data, list):
        return [expand_vars(v, variables, source) for v in data]
    if isinstance(data, dict):
        return {k: expand_vars(v, variables, source) for k, v in data.items()}
    return data


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("CustomProvider", "literal['codex','scripted']") or "[" in str(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "mission"


def format_validation_error(exc: ValidationError, source: str) -> str:
    errors = exc.errors()
    first = errors[0]
    where = _location(tuple(first["loc"]))
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = f"unknown field '{first['loc'][-1]}'"
        where = _location(tuple(first["loc"][:-1]))
    elif first["type"] == "missing":
        msg = f"missing required field '{first['loc'][-1]}'"
        where = _location(tuple(first["loc"][:-1]))
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{source}: {where}: {msg}{more}; see `codex-mcp-wrapper schema`."


def parse_mission(
    data: Any, source: str = "<mission>", variables: Mapping[str, str] | None = None
) -> Mission:
    if not isinstance(data, dict):
        raise MissionError(
            f"{source}: a mission must be a mapping with a 'tasks' list, got {type(data).__name__}."
        )
    env = dict(os.environ)
    env.update(variables or {})
    data = expand_vars(data, env, source)
    try:
        return Mission.model_validate(data)
    except ValidationError as exc:
        raise MissionError(format_validation_error(exc, source)) from exc


def read_mission_file(path: Path) -> Any:
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise MissionError(f"{path}: no such mission file; check the path.") from exc
    except OSError as exc:
        raise MissionError(f"{path}: cannot read the mission ({exc.strerror}).") from exc
    if size > MAX_MISSION_BYTES:
        raise MissionError(
            f"{path}: the mission is {size} bytes, over the limit of {MAX_MISSION_BYTES}."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MissionError(f"{path}: cannot read the mission ({exc}).") from exc
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise MissionError(
            f"{path}: JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise MissionError(f"{path}: YAML syntax error{where}: {problem}.") from exc


def builtin_variables(path: Path) -> dict[str, str]:
    """Variables every mission file may use: ``MISSION_DIR`` (the file's directory) and
    ``WRAPPER_PYTHON`` (the interpreter running the wrapper, which has the ``mcp`` SDK)."""
    return {"MISSION_DIR": str(path.resolve().parent), "WRAPPER_PYTHON": sys.executable}


def load_mission(path: str | Path, variables: Mapping[str, str] | None = None) -> Mission:
    path = Path(path)
    merged = {**builtin_variables(path), **(variables or {})}
    mission = parse_mission(read_mission_file(path), str(path), merged)
    base = path.resolve().parent
    if not Path(mission.workspace_root).is_absolute():
        mission.workspace_root = str((base / mission.workspace_root).resolve())
    for task in mission.tasks:
        if isinstance(task.script, str) and not Path(task.script).is_absolute():
            task.script = str(base / task.script)
    load_task_scripts(mission)
    return mission


def load_task_scripts(mission: Mission) -> dict[str, Script]:
    """Validate every task's script (inline steps or a file path); raise MissionError."""
    scripts: dict[str, Script] = {}
    for index, task in enumerate(mission.tasks):
        if task.script is None:
            continue
        try:
            if isinstance(task.script, str):
                scripts[task.id or ""] = load_script(task.script)
            else:
                scripts[task.id or ""] = parse_script(task.script, f"tasks[{index}].script")
        except ScriptError as exc:
            raise MissionError(str(exc)) from exc
    return scripts


def mission_json_schema() -> dict[str, Any]:
    schema = Mission.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "codex-mcp-wrapper mission"
    return schema
