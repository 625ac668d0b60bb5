"""Loading a mission: YAML/JSON files, ``${VAR}`` expansion, one-line validation errors.

This is the edge where outside input becomes a typed ``Mission``; ``MissionError`` carries the
sentence the user sees.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from codex_mcp_wrapper.errors import MissionError, ScriptError
from codex_mcp_wrapper.inputs import check_depth, parse_document, read_text_file
from codex_mcp_wrapper.missions.expect import (
    CommandCheck,
    Expect,
    FileCheck,
    MessageCheck,
    ToolCallCheck,
    VerifyCheck,
)
from codex_mcp_wrapper.missions.model import (
    CustomProvider,
    McpServer,
    Mission,
    Task,
    TaskSettings,
    server_names,
)
from codex_mcp_wrapper.missions.paths import git_work_tree
from codex_mcp_wrapper.missions.rules import DynamicTool, Hook
from codex_mcp_wrapper.scripted.script import Script, load_script, parse_script

MAX_MISSION_BYTES = 5_000_000

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


UNSET_HINT = "export it or pass --var {name}=VALUE"


def expand_vars(
    data: Any, variables: Mapping[str, str], source: str, hint: str = UNSET_HINT
) -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string; ``$${`` is a literal ``${``;
    an unset variable is an error ending with ``hint``."""
    if isinstance(data, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in variables:
                return variables[name]
            if default is not None:
                return default
            raise MissionError(
                f"{source}: uses ${{{name}}} but {name} is not set; " + hint.format(name=name) + "."
            )

        parts = data.split("$${")
        return "${".join(_VAR.sub(sub, part) for part in parts)
    if isinstance(data, list):
        return [expand_vars(v, variables, source, hint) for v in data]
    if isinstance(data, dict):
        return {k: expand_vars(v, variables, source, hint) for k, v in data.items()}
    return data


# Location parts pydantic adds for the branches of a union: not where the user wrote anything.
_BRANCH_TAGS = {"str", "int", "float", "bool", "dict", "list", "none"}
_BRANCH_MODELS = {"CustomProvider", "MessageCheck", "VerifyCheck"}
MAX_PROBLEMS_SHOWN = 5
_UNION_NOISE = ("string_type", "dict_type", "model_type", "literal_error", "model_attributes_type")


def _is_branch_tag(part: object) -> bool:
    text = str(part)
    return text in _BRANCH_TAGS or text in _BRANCH_MODELS or "[" in text


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_branch_tag(part):
            out += f".{part}" if out else str(part)
    return out or "mission"


def _known_fields() -> set[str]:
    names: set[str] = set()
    for model in (Mission, Task, TaskSettings, McpServer, CustomProvider, Expect):
        names |= set(model.model_fields)
    for check in (ToolCallCheck, CommandCheck, FileCheck, MessageCheck, VerifyCheck):
        names |= set(check.model_fields)
    return names


def _did_you_mean(name: str) -> str:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower().replace("-", "_")
    known = _known_fields()
    close = [snake] if snake in known else difflib.get_close_matches(snake, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _problem(error: Any) -> tuple[str, str]:
    """(where, what) of one pydantic error, in the user's terms."""
    loc = tuple(error["loc"])
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return _location(loc[:-1]), f"unknown field {str(loc[-1])!r}{_did_you_mean(str(loc[-1]))}"
    if error["type"] == "missing":
        return _location(loc[:-1]), f"missing required field {str(loc[-1])!r}"
    return _location(loc), msg


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Every problem of the mission in one line: where, what, and a hint for near misses.

    A union (``final_message: str | {match: ...}``) fails once per branch; only the most
    specific failure at each place is kept."""
    problems: dict[str, list[tuple[str, str]]] = {}
    for error in exc.errors():
        where, what = _problem(error)
        problems.setdefault(where, []).append((error["type"], what))
    lines: list[str] = []
    for where, found in problems.items():
        specific = [what for kind, what in found if kind not in _UNION_NOISE]
        deeper = any(other.startswith(where + ".") for other in problems)
        if not specific and deeper:
            continue  # another branch of the union failed further in: that is the problem
        for what in dict.fromkeys(specific or [found[0][1]]):
            lines.append(f"{where}: {what}")
    shown = "; ".join(lines[:MAX_PROBLEMS_SHOWN])
    more = (
        f"; and {len(lines) - MAX_PROBLEMS_SHOWN} more" if len(lines) > MAX_PROBLEMS_SHOWN else ""
    )
    return f"{source}: {shown}{more}; see `codex-mcp-wrapper schema`."


def parse_mission(
    data: Any,
    source: str = "<mission>",
    variables: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    expand: bool = True,
    unset_hint: str = UNSET_HINT,
) -> Mission:
    """A validated ``Mission`` from parsed data. ``${VAR}`` is expanded from ``variables``
    over ``environ`` (default: this process's environment; an MCP client's mission gets only
    the variables the server's owner exposes), not at all when ``expand`` is off (a recorded
    mission, already expanded; a ``codex`` call's prompt, which is the client's text)."""
    if not isinstance(data, dict):
        raise MissionError(
            f"{source}: a mission must be a mapping with a 'tasks' list, got {type(data).__name__}."
        )
    check_depth(data, source, MissionError)
    if expand:
        env = dict(os.environ if environ is None else environ)
        env.update(variables or {})
        data = expand_vars(data, env, source, unset_hint)
    try:
        return Mission.model_validate(data)
    except ValidationError as exc:
        raise MissionError(format_validation_error(exc, source)) from exc


def read_mission_file(path: Path) -> Any:
    """The parsed content of a mission file: a regular file (not a FIFO or a device, which
    could block or never end), at most ``MAX_MISSION_BYTES``, its YAML aliases and nesting
    bounded (``inputs.parse_document``), so a hostile file is refused fast."""
    text = read_text_file(path, "mission", MAX_MISSION_BYTES, MissionError)
    json_syntax = path.suffix.lower() == ".json"
    return parse_document(text, str(path), "mission", MissionError, json_syntax=json_syntax)


def builtin_variables(path: Path) -> dict[str, str]:
    """Variables every mission file may use: ``MISSION_DIR`` (the file's directory) and
    ``WRAPPER_PYTHON`` (the interpreter running the wrapper, which has the ``mcp`` SDK)."""
    return {"MISSION_DIR": str(path.resolve().parent), "WRAPPER_PYTHON": sys.executable}


def load_mission(
    path: str | Path,
    variables: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    unset_hint: str = UNSET_HINT,
    server_names: bool = False,
) -> Mission:
    """A mission file, validated, its relative paths made absolute from its folder; ``${VAR}``
    from ``variables``, the built-ins and ``environ`` (default: this process's environment).
    ``mcp_servers`` given as names are an error unless ``server_names`` (``serve`` fills
    them in from its owner's servers)."""
    path = Path(path)
    merged = {**builtin_variables(path), **(variables or {})}
    mission = parse_mission(
        read_mission_file(path), str(path), merged, environ=environ, unset_hint=unset_hint
    )
    base = path.resolve().parent
    if not Path(mission.workspace_root).is_absolute():
        mission.workspace_root = str((base / mission.workspace_root).resolve())
    for task in mission.tasks:
        if isinstance(task.script, str) and not Path(task.script).is_absolute():
            task.script = str(base / task.script)
    for command in commands_of(mission):
        command.cwd = str((base / (command.cwd or ".")).resolve())
    load_task_scripts(mission)
    check_commands(mission, str(path))
    check_worktree_workspace(mission, str(path))
    if not server_names:
        check_servers_defined(mission, str(path))
    return mission


def worktree_tasks(mission: Mission) -> list[str]:
    """The ids of the tasks that run in worktrees of their own (``isolation: worktree``)."""
    default = mission.defaults.isolation or "none"
    return [t.id or "" for t in mission.tasks if (t.isolation or default) == "worktree"]


def check_worktree_workspace(mission: Mission, source: str) -> None:
    """``isolation: worktree`` needs the workspace to be inside a git repository."""
    tasks = worktree_tasks(mission)
    if tasks and git_work_tree(Path(mission.workspace_root)) is None:
        raise MissionError(
            f"{source}: task '{tasks[0]}' asks for isolation: worktree but workspace_root "
            f"{mission.workspace_root} is not in a git repository; run `git init` there or use "
            "isolation: none."
        )


def check_servers_defined(mission: Mission, source: str) -> None:
    """A mission run as it is (not through ``serve``) must define each MCP server it uses:
    names alone refer to servers only ``serve --config`` defines."""
    names = server_names(mission)
    if names:
        raise MissionError(
            f"{source}: mcp_servers names {', '.join(names)}, servers only an MCP server's "
            "owner defines (serve --config, [mcp_servers]); here give each one as "
            "NAME: {command: ...} or NAME: {url: ...}."
        )


SHELL_BUILTINS = frozenset(
    [
        ":",
        ".",
        "[",
        "break",
        "cd",
        "command",
        "continue",
        "echo",
        "eval",
        "exec",
        "exit",
        "export",
        "false",
        "printf",
        "read",
        "readonly",
        "return",
        "set",
        "shift",
        "test",
        "times",
        "trap",
        "true",
        "type",
        "umask",
        "unset",
        "wait",
    ]
)


def commands_of(mission: Mission) -> list[Hook | DynamicTool]:
    """The mission's hooks and tools: what it runs on this machine besides Codex."""
    tools = [t for task in [mission.defaults, *mission.tasks] for t in task.tools or []]
    return [*mission.hooks, *tools]


def check_commands(mission: Mission, source: str) -> None:
    """Every hook's and tool's program exists (a missing one is a MissionError now, not a
    failure in the middle of a run)."""
    for command in commands_of(mission):
        what = f"hook on {command.on}" if isinstance(command, Hook) else f"tool {command.name}"
        try:
            words = shlex.split(command.run)
        except ValueError as exc:
            raise MissionError(f"{source}: {what}: cannot read `{command.run}` ({exc}).") from exc
        words = [w for w in words if "=" not in w.split("/")[0]] or [""]  # FOO=1 cmd
        program = words[0]
        if program in SHELL_BUILTINS or not program or any(c in program for c in "(){};|&$`"):
            continue  # run by the shell itself, or shell syntax: nothing to look up
        cwd = Path(command.cwd or ".")
        found = (
            (cwd / program).is_file() and os.access(cwd / program, os.X_OK)
            if "/" in program
            else shutil.which(program) is not None
        )
        if not found:
            raise MissionError(
                f"{source}: {what}: the program `{program}` of `{command.run}` is not found "
                f"{'in ' + str(cwd) if '/' in program else 'on PATH'} (or not executable)."
            )


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
