"""``HostSink``: an attempt's ``EventSink`` on a host. It heartbeats the activity, sends the
attempt's events (redacted) to the shared store, and tells this host's observers (metrics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import activity

from codex_mcp_wrapper.engine.events import (
    CodexEvent,
    Event,
    Subscriber,
    TaskUpdate,
    ThreadProgress,
    to_record,
)
from codex_mcp_wrapper.engine.redaction import Redactor
from codex_mcp_wrapper.engine.results import TaskState
from codex_mcp_wrapper.engine.seams import TaskRequest
from codex_mcp_wrapper.temporal.shared import SharedStore


class HostSink:
    """The attempt's ``EventSink`` on a host: heartbeats, and redacted events to the store."""

    def __init__(
        self,
        store: SharedStore,
        request: TaskRequest,
        host: str,
        redactor: Redactor,
        observers: Sequence[Subscriber] = (),
    ) -> None:
        self.observers = observers
        self.store = store
        self.run_id = request.run_id
        self.key = f"{request.task_id}.{request.attempt}.{host}"
        self.host = host
        self.redactor = redactor
        self.details: dict[str, Any] = {
            "thread_id": request.thread_id,
            "worker": request.thread_worker,
            "turns_done": request.turns_done,
        }

    def worker(self, label: str | None) -> str | None:
        return f"{self.host}/{label}" if label else None

    def heartbeat(self) -> None:
        activity.heartbeat(self.details)

    def publish(self, event: Event) -> None:  # backend events (model requests), and ours
        self.store.append_events(self.run_id, self.key, [self.redactor.data(to_record(event))])
        for observer in self.observers:  # this host's metrics: ids and states only
            observer(event)

    def codex_event(self, task_id: str, method: str, params: dict[str, Any]) -> None:
        self.heartbeat()
        self.publish(CodexEvent(self.run_id, task_id, method, params))

    def task_state(self, task_id: str, state: TaskState, worker: str | None, message: str) -> None:
        self.heartbeat()
        self.publish(TaskUpdate(self.run_id, task_id, state, self.worker(worker), 0, message))

    def thread_progress(self, task_id: str, thread_id: str, worker: str, turns_done: int) -> None:
        self.details = {
            "thread_id": thread_id,
            "worker": self.worker(worker),
            "turns_done": turns_done,
        }
        self.heartbeat()
        self.publish(
            ThreadProgress(self.run_id, task_id, thread_id, str(self.worker(worker)), turns_done)
        )
