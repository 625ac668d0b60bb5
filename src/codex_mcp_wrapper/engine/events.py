"""Run events and the bus that fans them out to subscribers (store, progress, MCP, reports).

The runner publishes; it never writes a file or a report itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
