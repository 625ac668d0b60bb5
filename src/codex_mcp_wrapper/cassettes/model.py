"""The cassette format (YAML), how a recorded exchange becomes a scripted-model step, and how a
mission replays a cassette."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml  # writing; reading is inputs.parse_document (YAML 1.2, bounded)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.inputs import parse_document, read_text_file
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.scripted.player import SHELL_TOOLS
from codex_mcp_wrapper.scripted.script import parse_script

CASSETTE_VERSION = 1
MAX_CASSETTE_BYTES = 50_000_000  # a long recorded run; read no further than this
ReplayMode = Literal["strict", "echo"]
_NAMESPACE = re.compile(r"^mcp__(.+?)_*$")


class Exchange(BaseModel):
    """One model request and its answer: the step that replays the answer, and what the request
    carried (its last user prompt, the tools Codex offered) to tell a diverging replay."""

    model_config = ConfigDict(extra="forbid")
    step: dict[str, Any]
    prompt: str = ""
    offered: list[str] = Field(default_factory=list)


class CassetteTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exchanges: list[Exchange] = Field(default_factory=list)


class Cassette(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = CASSETTE_VERSION
    mission_id: str
    tasks: dict[str, CassetteTask] = Field(default_factory=dict)

    def script(self, task_id: str, mode: ReplayMode) -> dict[str, Any]:
        steps = [e.step for e in self.tasks[task_id].exchanges]
        return {"steps": steps, "strict": mode == "strict"}


def _function_step(item: dict[str, Any]) -> dict[str, Any] | None:
    try:
        args = json.loads(item.get("arguments") or "{}")
    except json.JSONDecodeError:
        return None
    name, namespace = str(item.get("name")), item.get("namespace")
    if namespace:
        match = _NAMESPACE.match(str(namespace))
        if match is None:
            return None
        return {"tool": {"server": match.group(1), "name": name, "arguments": args}}
    if name in SHELL_TOOLS and isinstance(args, dict):
        command = args.get("cmd") or args.get("command")
        if isinstance(command, list):
            return None
        if args.get("sandbox_permissions") == "require_escalated":
            step = {"escalate": str(command)}
            if args.get("justification"):
                step["justification"] = str(args["justification"])
            return step
        return {"shell": str(command)}
    return {"tool": {"name": name, "arguments": args}}


def to_step(items: list[dict[str, Any]], error: dict[str, Any] | None = None) -> dict[str, Any]:
    """The step that answers a request as it was answered: ``say``, ``shell``, ``escalate``,
    ``tool``, ``fail``, else the output items as they were (``raw``)."""
    if error is not None:
        status = int(error.get("status") or 500)
        return {
            "fail": "stream"
            if status == 200
            else 429
            if status == 429
            else 400
            if status < 500
            else 500
        }
    kept = [i for i in items if i.get("type") != "reasoning"]
    if len(kept) == 1:
        item = kept[0]
        if item.get("type") == "message":
            parts = item.get("content") or []
            text = "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
            if "{" not in text and "}" not in text:
                return {"say": text}
        elif item.get("type") == "function_call":
            step = _function_step(item)
            if step is not None:
                return step
    return {"raw": kept or items}


def build_cassette(
    mission_id: str, records: Iterable[Mapping[str, Any]], threads: Mapping[str, str]
) -> Cassette:
    """A cassette from the proxy's records, each task's exchanges in the order they came;
    ``threads`` maps a thread id to its task (from the run's results)."""
    cassette = Cassette(mission_id=mission_id)
    for record in records:
        task_id = threads.get(str(record.get("thread")))
        if task_id is None:
            continue
        task = cassette.tasks.setdefault(task_id, CassetteTask())
        task.exchanges.append(
            Exchange(
                step=to_step(list(record.get("items") or []), record.get("error")),
                prompt=str(record.get("prompt") or ""),
                offered=list(record.get("offered") or []),
            )
        )
    return cassette


def dump_cassette(cassette: Cassette, path: Path) -> None:
    data = cassette.model_dump(mode="json")
    text = "# codex-mcp-wrapper cassette: `codex-mcp-wrapper run MISSION --replay THIS` plays it.\n"
    text += yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def load_cassette(path: Path) -> Cassette:
    """Read and check a cassette; ``InputError`` in one sentence when it is not one."""
    if not path.exists():
        raise InputError(f"{path}: no such cassette; record one with `run --record`.")
    text = read_text_file(path, "cassette", MAX_CASSETTE_BYTES, InputError)
    data = parse_document(text, f"{path}: not a cassette", "cassette", InputError)
    try:
        cassette = Cassette.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path}: not a cassette: {where}: {err['msg']}.") from exc
    if cassette.version != CASSETTE_VERSION:
        raise InputError(f"{path}: cassette version {cassette.version} is not {CASSETTE_VERSION}.")
    for task_id in cassette.tasks:
        parse_script(cassette.script(task_id, "strict"), f"{path}: task {task_id}")
    return cassette


def replay_mission(mission: Mission, cassette: Cassette, mode: ReplayMode) -> Mission:
    """``mission`` on the scripted model, each task playing its recorded exchanges."""
    missing = [t.id for t in mission.tasks if t.id not in cassette.tasks]
    if missing and mode == "strict":
        has = ", ".join(cassette.tasks) or "none"
        raise InputError(
            f"task {missing[0]} is not in the cassette (it has {has}); record the mission "
            "again, or replay with --replay-mode echo."
        )
    tasks = [
        t.model_copy(update={"script": cassette.script(str(t.id), mode)})
        if t.id in cassette.tasks
        else t.model_copy(update={"script": None})
        for t in mission.tasks
    ]
    return mission.model_copy(update={"tasks": tasks, "provider": "scripted"})


RECORDING = "recording.jsonl"  # in a recorded run's folder: its exchanges, as the proxy saw them


def write_cassette(run_dir: Path, threads: Mapping[str, str], mission_id: str, path: Path) -> int:
    """Write the cassette of the recorded run in ``run_dir`` (``threads``: thread id -> task
    id, from its results) to ``path``; how many exchanges it holds."""
    log = run_dir / RECORDING
    lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
    cassette = build_cassette(mission_id, (json.loads(line) for line in lines), threads)
    count = sum(len(t.exchanges) for t in cassette.tasks.values())
    if count == 0:  # never overwrite a good cassette with nothing
        raise InputError(
            f"the run made no model request through the recording proxy; {path} is left as it "
            "was (does the mission's provider take its requests from the proxy?)."
        )
    dump_cassette(cassette, path)
    return count
