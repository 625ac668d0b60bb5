from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordingSink:
    """An EventSink that keeps what it is told (a real sink, not a mock: tests read its data)."""

    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    states: list[tuple[str, str, str | None, str]] = field(default_factory=list)
    threads: list[tuple[str, str, str, int]] = field(default_factory=list)

    def codex_event(self, task_id: str, method: str, params: dict[str, Any]) -> None:
        self.events.append((task_id, method, params))

    def task_state(self, task_id: str, state: str, worker: str | None, message: str) -> None:
        self.states.append((task_id, state, worker, message))

    def thread_progress(self, task_id: str, thread_id: str, worker: str, turns_done: int) -> None:
        self.threads.append((task_id, thread_id, worker, turns_done))

    def items(self, kind: str) -> list[dict[str, Any]]:
        return [
            p["item"]
            for _, m, p in self.events
            if m == "item/completed" and p.get("item", {}).get("type") == kind
        ]
