"""Loading a mission: YAML/JSON files, ``${VAR}`` expansion, one-line validation errors.

This is the edge where outside input becomes a typed ``Mission``; ``MissionError`` carries the
sentence the user sees.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from codex_mcp_wrapper.errors import MissionError, ScriptError
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.scripted.script import Script, load_script, parse_script

MAX_MISSION_BYTES = 5_000_000

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
