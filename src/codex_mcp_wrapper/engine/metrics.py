"""Prometheus metrics of a process that runs tasks (``serve``): tasks by status, tasks
running, queue wait, worker slots, Codex processes and their memory, MCP calls.

``RunMetrics.observe`` is a run-event subscriber (it only reads the events); the slots come
from a callable the caller gives (the local fleet's ``state``), read at each scrape. Only
imported when ``--metrics-port`` is given: it loads ``prometheus_client``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from codex_mcp_wrapper.engine.events import Event, RunFinished, TaskFinished, TaskUpdate
from codex_mcp_wrapper.engine.seams import SlotsState
from codex_mcp_wrapper.errors import EnvironmentProblem

PREFIX = "codex_wrapper"
# Queue waits range from nothing (a free slot) to a mission's length (every slot busy).
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, float("inf"))
# An MCP call lasts from milliseconds (a status query) to a long turn.
CALL_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120, 600, float("inf"))
_WAITING = frozenset({"pending", "queued", "waiting", "retrying"})


class _Slots(Collector):
    """Reads the slots at each scrape."""

    def __init__(self, slots: Callable[[], SlotsState | None]) -> None:
        self._slots = slots

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self._slots() or SlotsState()
        slots = GaugeMetricFamily(f"{PREFIX}_worker_slots", "Task slots", labels=["state"])
        slots.add_metric(["busy"], state.busy)
        slots.add_metric(["free"], state.free)
        yield slots
        yield GaugeMetricFamily(
            f"{PREFIX}_codex_processes", "Codex app-server processes", value=len(state.memory_mb)
        )
        memory = GaugeMetricFamily(
            f"{PREFIX}_codex_resident_bytes",
            "Resident memory of each Codex process and what it runs",
            labels=["worker"],
        )
        for label, mib in sorted(state.memory_mb.items()):
            if mib is not None:
                memory.add_metric([label], mib * 1024 * 1024)
        yield memory


class RunMetrics:
    """The metrics, in a registry of their own; ``observe`` each run's events."""

    def __init__(self, slots: Callable[[], SlotsState | None] = lambda: None) -> None:
        self.registry = registry = CollectorRegistry()
        self.tasks = Counter(
            f"{PREFIX}_tasks", "Tasks that ended, by status", ["status"], registry=registry
        )
        self.running = Gauge(f"{PREFIX}_tasks_running", "Tasks running now", registry=registry)
        self.queue_wait = Histogram(
            f"{PREFIX}_queue_wait_seconds",
            "Time from a task queued to its running",
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.calls = Histogram(
            f"{PREFIX}_mcp_call_seconds",
            "MCP tool calls and their latency, by tool and outcome",
            ["tool", "outcome"],
            buckets=CALL_BUCKETS,
            registry=registry,
        )
        registry.register(_Slots(slots))
        self._since: dict[tuple[str, str], float] = {}  # a waiting task -> when it queued
        self._running: set[tuple[str, str]] = set()
        self._server: Any = None

    def observe(self, event: Event) -> None:
        """A run-event subscriber: counts ended tasks, times queue waits, tracks running."""
        if isinstance(event, TaskUpdate):
            key = (event.run_id, event.task_id)
            if event.status == "running":
                since = self._since.pop(key, None)
                if since is not None:
                    self.queue_wait.observe(time.monotonic() - since)
                self._running.add(key)
            elif event.status in _WAITING:
                self._since.setdefault(key, time.monotonic())
                self._running.discard(key)
        elif isinstance(event, TaskFinished):
            key = (event.run_id, event.result.task_id)
            self.tasks.labels(event.result.status).inc()
            self._since.pop(key, None)
            self._running.discard(key)
        elif isinstance(event, RunFinished):
            self._since = {k: v for k, v in self._since.items() if k[0] != event.run_id}
            self._running = {k for k in self._running if k[0] != event.run_id}
        self.running.set(len(self._running))

    def attempt_ended(self, run_id: str, task_id: str, status: str) -> None:
        """An attempt ended here (a host, which sees attempts, not the run's results)."""
        self.tasks.labels(status).inc()
        self._since.pop((run_id, task_id), None)
        self._running.discard((run_id, task_id))
        self.running.set(len(self._running))

    def call(self, tool: str, seconds: float, ok: bool) -> None:
        """One MCP tool call that took ``seconds``."""
        self.calls.labels(tool, "ok" if ok else "error").observe(seconds)

    def serve(self, host: str, port: int) -> int:
        """Expose the metrics on http://HOST:PORT/metrics (a thread); returns the port."""
        try:
            self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot serve metrics on {host}:{port} ({exc.strerror}); choose another "
                "--metrics-port."
            ) from exc
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
