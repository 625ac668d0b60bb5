"""Run events, their one JSON codec, and the bus that fans them out to subscribers (store,
progress, MCP, reports).

The runner publishes; it never writes a file or a report itself. ``to_record`` and
``from_record`` are the only translation of an event to and from JSON (what Temporal hosts
and the workflow send the submitter).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from codex_mcp_wrapper.engine.results import RunSummary, TaskResult, TaskState


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    mission_id: str
    mission: dict[str, Any]
    task_ids: tuple[str, ...]
    workspace_root: str
    owner: str | None = None  # the MCP client identity that started it (None: the owner's)


@dataclass(frozen=True)
class TaskUpdate:
    run_id: str
    task_id: str
    status: TaskState
    worker: str | None = None
    attempt: int = 0
    message: str = ""


@dataclass(frozen=True)
class CodexEvent:
    run_id: str
    task_id: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ThreadProgress:
    """A task's thread is open on a worker and has answered ``turns_done`` prompts."""

    run_id: str
    task_id: str
    thread_id: str
    worker: str
    turns_done: int


@dataclass(frozen=True)
class ModelRequest:
    """The scripted model received a request (only with the scripted provider)."""

    run_id: str
    task_id: str | None
    thread_id: str | None
    number: int


@dataclass(frozen=True)
class TaskFinished:
    run_id: str
    result: TaskResult


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    summary: RunSummary


Event = (
    RunStarted
    | TaskUpdate
    | CodexEvent
    | ThreadProgress
    | ModelRequest
    | TaskFinished
    | RunFinished
)
Subscriber = Callable[[Event], None]
EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        RunStarted,
        TaskUpdate,
        CodexEvent,
        ThreadProgress,
        ModelRequest,
        TaskFinished,
        RunFinished,
    )
}
# Fields holding models, read back with their own validation.
_MODELS: dict[str, type[BaseModel]] = {"result": TaskResult, "summary": RunSummary}


def to_record(event: Event) -> dict[str, Any]:
    """The event as a JSON object: ``type`` (its class) and its fields, results and summaries
    as their JSON; without its run id, which whoever reads it back knows."""
    record: dict[str, Any] = {"type": type(event).__name__}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name == "run_id":
            continue
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        elif isinstance(value, tuple):
            value = list(value)
        record[f.name] = value
    return record


def from_record(run_id: str, record: Mapping[str, Any]) -> Event:
    """The event ``to_record`` wrote, in run ``run_id``; ``ValueError`` when it is not one."""
    kind = record.get("type")
    cls = EVENT_TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name == "run_id" or f.name not in record:
            continue
        value = record[f.name]
        if f.name in _MODELS:
            try:
                value = _MODELS[f.name].model_validate(value)
            except ValidationError as exc:
                raise ValueError(f"{kind} {f.name}: {exc.error_count()} invalid fields") from exc
        elif f.name == "task_ids":
            value = tuple(value)
        values[f.name] = value
    try:
        return cls(run_id=run_id, **values)
    except TypeError as exc:  # a field missing
        raise ValueError(f"{kind}: {exc}") from exc


class EventBus:
    """Synchronous fan-out: a subscriber has the event before ``publish`` returns.

    Events are frozen and subscribers must not depend on each other's order: each one reads
    the event and keeps its own state (the store, the report writer, progress, MCP relays).
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def publish(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            subscriber(event)
