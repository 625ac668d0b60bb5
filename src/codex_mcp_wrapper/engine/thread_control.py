"""Thread control, the part of ``Runs`` that acts on Codex threads in flight: steering a
task's running turn, ``Runs.steer`` (by run and task: ``runs steer``) and
``Runs.steer_thread`` (by thread: the MCP ``codex-steer`` tool); cancelling a run, or one
running task of it, in the process driving it (``cancel_elsewhere``, for ``Runs.cancel``);
and forking a thread, ``Runs.fork`` (the MCP ``codex-fork`` tool: a new thread from a copy
of another's history).

A run going on in this process is steered through its backend (``Backend.steer``: the worker
running the task sends Codex ``turn/steer``); a run another process drives is reached
through that process's control endpoint (``engine.control``), which calls the same
``steer_here`` there. The text reaches the model with its next request of the same turn, and
the task's transcript records it as a ``wrapper/steer`` event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from codex_mcp_wrapper.engine.access import Identity, may_see
from codex_mcp_wrapper.engine.control import ask, steer_here
from codex_mcp_wrapper.engine.events import Subscriber
from codex_mcp_wrapper.engine.lifecycle import RunOptions
from codex_mcp_wrapper.engine.results import RunSummary, TaskResult
from codex_mcp_wrapper.engine.seams import ApprovalHandler, Backend, ForkSource
from codex_mcp_wrapper.engine.store import RunStore
from codex_mcp_wrapper.engine.tracker import RunTracker
from codex_mcp_wrapper.errors import InputError, NotCancellable, NotSteerable, WrapperError
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.settings import Settings


class ThreadControl:
    """Steering and forking, for ``Runs`` (which provides these attributes and methods)."""

    settings: Settings
    _live: dict[str, RunTracker]

    async def run(self, mission: Mission, options: RunOptions | None = None) -> RunSummary:
        raise NotImplementedError

    def _continuation(
        self, thread_id: str, prompt: str, client: Identity | None
    ) -> tuple[Mission, RunOptions]:
        raise NotImplementedError

    @property
    def backend(self) -> Backend:
        raise NotImplementedError

    def _visible(self, store: RunStore, run_id: str, client: Identity | None) -> str | None:
        raise NotImplementedError

    async def steer(
        self, run_id: str, task_id: str, text: str, client: Identity | None = None
    ) -> str:
        """Add ``text`` to the running turn of a task; the turn's id. ``NotSteerable`` (exit
        1) when the task has no turn running, or its run goes on nowhere this reaches."""
        if not text.strip():
            raise InputError("the text to steer with is empty; say what the task should do.")
        tracker = self._live.get(run_id)
        if tracker is not None and tracker.tasks and may_see(client, tracker.owner):
            return await steer_here(self.backend, run_id, tuple(tracker.tasks), task_id, text)
        request = {"op": "steer", "task_id": task_id, "text": text}
        nobody = NotSteerable(
            f"run {run_id} is not going on in any wrapper, so task '{task_id}' has no turn "
            "to steer."
        )
        answer = await self._ask_driver(run_id, request, client, nobody)
        return str(answer["turn_id"])

    async def cancel_elsewhere(
        self, run_id: str, task_id: str | None, client: Identity | None = None
    ) -> bool:
        """Cancel a run (or its running task ``task_id``) through the control endpoint of the
        process driving it (this one's too); True once the run's end (or the task's) is
        recorded. ``NotCancellable`` when no process drives the run, or the task is not
        running."""
        request: dict[str, Any] = {"op": "cancel"}
        if task_id is not None:
            request["task_id"] = task_id
        what = f"task '{task_id}' of run {run_id}" if task_id else f"run {run_id}"
        nobody = NotCancellable(
            f"{what} is not going on in any wrapper, so there is nothing to cancel."
        )
        answer = await self._ask_driver(run_id, request, client, nobody)
        return bool(answer.get("cancelled"))

    async def _ask_driver(
        self,
        run_id: str,
        request: dict[str, Any],
        client: Identity | None,
        nobody: WrapperError,
    ) -> dict[str, Any]:
        """The answer of the process driving ``run_id`` to ``request``; ``nobody`` when no
        process answers, its error (of ``nobody``'s class, with its exit code) when it
        refuses."""
        with RunStore.reader(self.settings.state_dir) as store:
            self._visible(store, run_id, client)
            run_dir = store.run_dir(run_id)
        answer = await ask(run_dir, request, self.settings.timeouts.control)
        if answer is None:
            raise nobody
        if "error" in answer:
            error = type(nobody)(str(answer["error"]))
            error.exit_code = int(answer.get("exit_code") or error.exit_code)
            raise error
        return answer

    async def steer_thread(
        self, thread_id: str, text: str, client: Identity | None = None
    ) -> tuple[str, str, str]:
        """Steer the running turn of the thread ``thread_id`` (a ``codex`` or ``codex-reply``
        call going on in this process); its (run id, task id, turn id)."""
        for run_id, tracker in list(self._live.items()):
            if not may_see(client, tracker.owner):
                continue
            for task_id, row in list(tracker.tasks.items()):
                if row.get("thread_id") == thread_id and not tracker.done.is_set():
                    return run_id, task_id, await self.steer(run_id, task_id, text, client)
        raise NotSteerable(
            f"no Codex call in thread '{thread_id}' is running here, so there is nothing to "
            "steer; continue the thread with codex-reply instead."
        )

    async def fork(
        self,
        thread_id: str,
        prompt: str,
        last_turn_id: str | None = None,
        observers: Sequence[Subscriber] = (),
        approvals: ApprovalHandler | None = None,
        client: Identity | None = None,
    ) -> TaskResult:
        """Send ``prompt`` in a new thread copied from ``thread_id`` (through ``last_turn_id``,
        when given: Codex's ``thread/fork``), with the settings of the task the thread belongs
        to; the new thread's result (its ``thread_id`` is the fork's). The original thread is
        left as it was."""
        mission, options = self._continuation(thread_id, prompt, client)
        forks = {
            task: ForkSource(thread, worker, last_turn_id)
            for task, (thread, worker) in (options.threads or {}).items()
        }
        options = replace(
            options, threads=None, forks=forks, observers=observers, approvals=approvals
        )
        summary = await self.run(mission, options)
        return summary.tasks[0]
