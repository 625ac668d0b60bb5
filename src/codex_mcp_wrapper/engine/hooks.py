"""A run's hooks: the mission's hook commands and Python callables, run on the run's events.

* ``HookRunner`` is a bus subscriber running hooks on run events (commands get the event as
  JSON on stdin; Python hooks get the dict); their results are recorded as ``wrapper/hook``
  events; ``drain`` waits for those still running (each bounded by its timeout).
* ``engine.commands.run_command`` runs each hook command; ``engine.tools`` answers the
  orchestrator's tools.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from codex_mcp_wrapper.engine.commands import CommandResult, run_command
from codex_mcp_wrapper.engine.events import (
    CodexEvent,
    Event,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskUpdate,
)
from codex_mcp_wrapper.engine.seams import ApprovalDecision, ApprovalRequest
from codex_mcp_wrapper.missions.rules import Hook, HookEvent

log = logging.getLogger("codex_mcp_wrapper.hooks")

# A hook from Python: gets the event as a dict; an ``approval`` hook returns "accept" or
# "decline" (anything else: no opinion). May be async.
PythonHook = Callable[[dict[str, Any]], Any]


_TOOL_ITEMS = {"mcpToolCall": "tool_call", "commandExecution": "command"}


def hook_event(event: Event) -> tuple[HookEvent, str | None, dict[str, Any]] | None:
    """The hook event a run event is, its task, and the JSON a hook gets."""
    if isinstance(event, RunStarted):
        return (
            "run_start",
            None,
            {"run_id": event.run_id, "mission_id": event.mission_id, "tasks": list(event.task_ids)},
        )
    if isinstance(event, TaskUpdate) and event.status == "running":
        return (
            "task_start",
            event.task_id,
            {
                "run_id": event.run_id,
                "task_id": event.task_id,
                "worker": event.worker,
                "attempt": event.attempt,
            },
        )
    if isinstance(event, CodexEvent) and event.method == "item/completed":
        item = event.params.get("item") or {}
        kind = _TOOL_ITEMS.get(str(item.get("type")))
        if kind is not None:
            return (
                kind,
                event.task_id,
                {
                    "run_id": event.run_id,
                    "task_id": event.task_id,  # type: ignore[return-value]
                    "item": item,
                },
            )
    if isinstance(event, CodexEvent) and event.method == "wrapper/approval-rule":
        return (
            "approval",
            event.task_id,
            {"run_id": event.run_id, "task_id": event.task_id, **event.params},
        )
    if isinstance(event, TaskFinished):
        return (
            "task_end",
            event.result.task_id,
            {"run_id": event.run_id, **event.result.model_dump(mode="json")},
        )
    if isinstance(event, RunFinished):
        return "run_end", None, event.summary.model_dump(mode="json")
    return None


@dataclass
class HookRunner:
    """Runs the mission's hooks (and Python hooks) on the run's events; ``drain`` at the end."""

    run_id: str
    hooks: Sequence[Hook]
    python: Mapping[str, Sequence[PythonHook]] = field(default_factory=dict)
    publish: Callable[[Event], None] = lambda _: None
    redact: Callable[[Any], Any] = lambda value: value
    failures: list[str] = field(default_factory=list)  # required hooks that failed
    _running: set[asyncio.Task[None]] = field(default_factory=set)
    _started: set[str] = field(default_factory=set)

    def has(self, on: str) -> bool:
        return any(h.on == on for h in self.hooks) or bool(self.python.get(on))

    def __call__(self, event: Event) -> None:
        found = hook_event(event)
        if found is None:
            return
        on, task_id, payload = found
        if on == "approval":
            return  # approval hooks decide (``approval``); this event is what they decided
        if on == "task_start":
            if task_id in self._started:
                return  # a retry: the task started already
            self._started.add(str(task_id))
        if not self.has(on):
            return
        data = {"event": on, **self.redact(payload)}
        task = asyncio.get_running_loop().create_task(self._fire(on, task_id, data))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _fire(self, on: str, task_id: str | None, data: dict[str, Any]) -> None:
        for hook in [h for h in self.hooks if h.on == on]:
            result = await run_command(hook.run, data, hook.cwd, hook.timeout_sec)
            self._record(on, task_id, hook.run, result, hook.required)
        for function in self.python.get(on, ()):
            await self._call(function, data)

    async def _call(self, function: PythonHook, data: dict[str, Any]) -> Any:
        try:
            value = function(data)
            if inspect.isawaitable(value):
                value = await value
            return value
        except Exception as exc:  # noqa: BLE001 - a hook's failure is recorded, not raised
            log.warning("run %s: Python hook %r failed: %s", self.run_id, function, exc)
            return None

    def _record(
        self, on: str, task_id: str | None, run: str, result: CommandResult, required: bool
    ) -> None:
        if not result.ok:
            note = f"hook on {on} `{run}` failed: {result.error}"
            log.warning("run %s: %s", self.run_id, note)
            if required:
                self.failures.append(note)
        if task_id:
            self.publish(
                CodexEvent(
                    self.run_id,
                    task_id,
                    "wrapper/hook",
                    {
                        "on": on,
                        "run": run,
                        "exit_code": result.exit_code,
                        "output": result.output[-4000:],
                        "error": result.error,
                    },
                )
            )

    async def approval(self, request: ApprovalRequest) -> tuple[ApprovalDecision, str] | None:
        """What the approval hooks say: the first ``accept``/``decline`` printed wins."""
        data = {
            "event": "approval",
            "run_id": request.run_id,
            "task_id": request.task_id,
            "kind": request.kind,
            "subject": request.describe(),
            "command": request.command,
            "reason": request.reason,
        }
        data = self.redact(data)
        for hook in [h for h in self.hooks if h.on == "approval"]:
            result = await run_command(hook.run, data, hook.cwd, hook.timeout_sec)
            self._record("approval", request.task_id, hook.run, result, hook.required)
            answer = result.output.strip().lower().split()[:1] if result.ok else []
            if answer and answer[0] in ("accept", "decline"):
                return answer[0], f"hook `{hook.run}`"  # type: ignore[return-value]
        for function in self.python.get("approval", ()):
            value = await self._call(function, data)
            if value in ("accept", "decline"):
                return value, f"hook {getattr(function, '__name__', function)!s}"
        return None

    async def drain(self) -> None:
        """Wait for the hooks still running (each is bounded by its own timeout)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def cancel(self) -> None:
        """Stop the hooks still running (each kills its command as it ends)."""
        for task in self._running:
            task.cancel()
