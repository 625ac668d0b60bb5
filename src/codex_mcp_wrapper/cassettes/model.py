"""The cassette format (YAML), how a recorded exchange becomes a scripted-model step, and how a
mission replays a cassette.

A cassette carries its identity: the mission id, a digest of each task's prompts (its prompt
and follow-ups) and a digest of each exchange as it was recorded. A replay of another mission,
or of a task whose prompts changed, is refused unless forced (``identity_problems``);
``edited`` names the exchanges changed by hand since. Cassettes of version 1 have no digests:
they load, and say that nothing of them can be checked (``UNVERIFIED``)."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML

from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.inputs import parse_document, read_text_file
from codex_mcp_wrapper.missions.model import Mission, Task
from codex_mcp_wrapper.scripted.player import SHELL_TOOLS
from codex_mcp_wrapper.scripted.script import parse_script

CASSETTE_VERSION = 2  # 2: digests of the prompts and exchanges
READABLE_VERSIONS = (1, 2)
UNVERIFIED = (
    "it was recorded without digests (an older cassette), so its mission, prompts and "
    "exchanges cannot be checked; record it again to have them checked"
)
MAX_CASSETTE_BYTES = 50_000_000  # a long recorded run; read no further than this
ReplayMode = Literal["strict", "echo"]
_NAMESPACE = re.compile(r"^mcp__(.+?)_*$")


def digest(data: Any) -> str:
    """A short digest of JSON-like data (keys sorted): what a cassette records to notice a
    change, not a signature (whoever edits a cassette can write a new one)."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def prompts_digest(task: Task) -> str:
    """The digest of what a task asks: its prompt and its follow-ups, in order."""
    return digest([task.prompt, *task.follow_ups])


class Exchange(BaseModel):
    """One model request and its answer: the step that replays the answer, and what the request
    carried (its last user prompt, the tools Codex offered) to tell a diverging replay;
    ``digest`` of those three as recorded."""

    model_config = ConfigDict(extra="forbid")
    step: dict[str, Any]
    prompt: str = ""
    offered: list[str] = Field(default_factory=list)
    digest: str | None = None

    def content_digest(self) -> str:
        return digest({"step": self.step, "prompt": self.prompt, "offered": self.offered})


class CassetteTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompts_digest: str | None = None  # of the task's prompt and follow-ups when recorded
    exchanges: list[Exchange] = Field(default_factory=list)


class Cassette(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = CASSETTE_VERSION
    mission_id: str
    tasks: dict[str, CassetteTask] = Field(default_factory=dict)

    def script(self, task_id: str, mode: ReplayMode) -> dict[str, Any]:
        steps = [e.step for e in self.tasks[task_id].exchanges]
        return {"steps": steps, "strict": mode == "strict"}

    def unverified(self) -> bool:
        """Recorded without digests (version 1, or digests removed): nothing can be checked."""
        exchanges = [e for t in self.tasks.values() for e in t.exchanges]
        return any(t.prompts_digest is None for t in self.tasks.values()) or any(
            e.digest is None for e in exchanges
        )

    def edited(self) -> list[str]:
        """The exchanges whose content no longer matches the digest recorded with them."""
        return [
            f"task {task_id}, exchange {number}"
            for task_id, task in self.tasks.items()
            for number, exchange in enumerate(task.exchanges, start=1)
            if exchange.digest is not None and exchange.digest != exchange.content_digest()
        ]

    def warnings(self, source: str) -> list[str]:
        """What its digests say, a line each: exchanges edited by hand, or nothing to check."""
        lines = [
            f"warning: {source}: {where} was edited after it was recorded (its digest does not "
            "match); check that it is what you mean to replay."
            for where in self.edited()
        ]
        return lines + ([f"note: {source}: {UNVERIFIED}."] if self.unverified() else [])

    def seal(self, mission: Mission) -> None:
        """Record the identity: each task's prompts digest (from ``mission``, as it ran) and
        each exchange's digest."""
        prompts = {t.id: prompts_digest(t) for t in mission.tasks}
        for task_id, task in self.tasks.items():
            task.prompts_digest = prompts.get(task_id)
            for exchange in task.exchanges:
                exchange.digest = exchange.content_digest()


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
    """Write ``cassette`` as YAML 1.2, the version it is read as (a YAML 1.1 writer leaves
    ``1e3`` unquoted, which a YAML 1.2 reader takes for a number)."""
    data = cassette.model_dump(mode="json", exclude_none=True)
    writer = YAML(typ="safe", pure=True)
    writer.default_flow_style = False
    writer.allow_unicode = True
    writer.width = 100
    buffer = io.StringIO()
    writer.dump(data, buffer)
    text = "# codex-mcp-wrapper cassette: `codex-mcp-wrapper run MISSION --replay THIS` plays it.\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + buffer.getvalue(), encoding="utf-8")


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
        # a task id is the user's text: escaped, so the sentence stays one line
        where = ".".join(
            json.dumps(p, ensure_ascii=False)[1:-1] if isinstance(p, str) else str(p)
            for p in err["loc"]
        )
        raise InputError(f"{path}: not a cassette: {where}: {err['msg']}.") from exc
    if cassette.version not in READABLE_VERSIONS:
        raise InputError(
            f"{path}: cassette version {cassette.version} is not one this wrapper reads "
            f"({', '.join(map(str, READABLE_VERSIONS))}); upgrade codex-mcp-wrapper."
        )
    for task_id in cassette.tasks:
        parse_script(cassette.script(task_id, "strict"), f"{path}: task {task_id}")
    return cassette


def identity_problems(mission: Mission, cassette: Cassette, source: str) -> list[str]:
    """Why ``cassette`` is not a recording of ``mission`` as it is now: another mission id,
    or tasks whose prompts changed since; each one sentence."""
    problems = []
    if cassette.mission_id != mission.mission_id:
        problems.append(
            f"{source} is a recording of mission '{cassette.mission_id}', not "
            f"'{mission.mission_id}'"
        )
    for task in mission.tasks:
        recorded = cassette.tasks.get(str(task.id))
        if recorded and recorded.prompts_digest not in (None, prompts_digest(task)):
            problems.append(f"the prompts of task {task.id} changed since {source} was recorded")
    return problems


def replay_mission(
    mission: Mission,
    cassette: Cassette,
    mode: ReplayMode,
    source: str = "the cassette",
    force: bool = False,
) -> Mission:
    """``mission`` on the scripted model, each task playing its recorded exchanges. A cassette
    of another mission, or of prompts since changed, is an ``InputError`` unless ``force``."""
    problems = identity_problems(mission, cassette, source)
    if problems and not force:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(f"{problems[0]}{more}; record it again, or replay it anyway with --force.")
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


def write_cassette(run_dir: Path, threads: Mapping[str, str], mission: Mission, path: Path) -> int:
    """Write the cassette of the recorded run in ``run_dir`` (``threads``: thread id -> task
    id, from its results; ``mission``: as it ran) to ``path``, sealed with its identity; how
    many exchanges it holds."""
    log = run_dir / RECORDING
    lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
    cassette = build_cassette(mission.mission_id, (json.loads(line) for line in lines), threads)
    cassette.seal(mission)
    count = sum(len(t.exchanges) for t in cassette.tasks.values())
    if count == 0:  # never overwrite a good cassette with nothing
        raise InputError(
            f"the run made no model request through the recording proxy; {path} is left as it "
            "was (does the mission's provider take its requests from the proxy?)."
        )
    dump_cassette(cassette, path)
    return count
