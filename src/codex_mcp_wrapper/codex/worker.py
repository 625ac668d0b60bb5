"""One Codex worker: a ``codex app-server`` process that the pool lends (``pool.Worker``).

``AppServerWorker`` owns its process (spawned by ``process.spawn`` in its own process group),
performs the ``initialize`` handshake with a deadline, answers Codex's approval requests, and
runs a task's prompts in one thread: ``thread/start`` (or ``thread/resume``, or ``thread/fork``
for a fork), then one ``turn.Turn`` per prompt (a review task's first is Codex's review), each
counted against the task's budget and open to ``steer``. How the task ended comes back as a
``TaskOutcome`` value.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from typing import Any

from codex_mcp_wrapper import __version__, process
from codex_mcp_wrapper.codex.attempt import (
    TASK_FAILURES,
    count_turn,
    record_failure,
    start_turn,
    token_guard,
)
from codex_mcp_wrapper.codex.jsonrpc import JsonRpcConnection, RpcError, ServerRequest
from codex_mcp_wrapper.codex.mcp_startup import task_servers_ready
from codex_mcp_wrapper.codex.server_requests import PendingItems, RunningTask, answer_request
from codex_mcp_wrapper.codex.threads import (
    fork_params,
    record_crash,
    thread_event,
    thread_params,
)
from codex_mcp_wrapper.codex.turn import TraceCarrier, Turn
from codex_mcp_wrapper.codex.worker_log import log_size, log_tail
from codex_mcp_wrapper.codex.worker_spec import WorkerSpec
from codex_mcp_wrapper.engine.approval_policies import fixed
from codex_mcp_wrapper.engine.seams import (
    ApprovalHandler,
    EventSink,
    TaskOutcome,
    TaskRequest,
    ToolHandler,
)
from codex_mcp_wrapper.errors import WorkerDied, WorkerError, WorkerStartError
from codex_mcp_wrapper.logs import bind

log = logging.getLogger("codex_mcp_wrapper.worker")
MEMORY_SAMPLE_INTERVAL = 1.0


class AppServerWorker:
    """A ``codex app-server`` process; runs several tasks at once, one thread each (the pool
    decides how many). Each thread's notifications reach only its own turn loop, and Codex's
    approval requests are routed by their ``threadId``."""

    def __init__(self, spec: WorkerSpec, approvals: ApprovalHandler | None = None) -> None:
        """``approvals`` answers the approval requests of threads whose run gave no handler."""
        self.spec = spec
        self.label = spec.label
        self._approvals = approvals or fixed("decline")
        self._timeouts = spec.timeouts
        self._log_start = 0  # where this process's lines begin in a log shared across runs
        self._proc: asyncio.subprocess.Process | None = None
        self._conn: JsonRpcConnection | None = None
        self._loaded_threads: set[str] = set()
        # Per thread resumed after a crash: the note its next prompt starts with.
        self._crash_notes: dict[str, str] = {}
        self.threads_run = 0  # threads started or resumed by this process (for recycling)
        self._running: dict[str, RunningTask] = {}  # thread id -> the task running in it
        self._turns: dict[str, Turn] = {}  # thread id -> its task's current turn (to steer)
        self._items = PendingItems()  # what pending file changes and tool calls are about
        self.log = bind(log, worker=spec.label)
        self.recent: deque[str] = deque(maxlen=10)
        self._memory: tuple[float, float | None] | None = None  # (when, MiB) last sampled

    def __repr__(self) -> str:
        pid = self._proc.pid if self._proc else None
        return f"<AppServerWorker {self.label} pid={pid} alive={self.alive}>"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def memory_mb(self) -> float | None:
        """Resident memory of this worker's process tree (Codex and what it runs), in MiB;
        sampled at most every MEMORY_SAMPLE_INTERVAL s (reading it costs ~5 ms of /proc)."""
        if not (self._proc and self.alive):
            return None
        now = time.monotonic()
        if self._memory is None or now - self._memory[0] >= MEMORY_SAMPLE_INTERVAL:
            self._memory = (now, process.tree_rss_mb(self._proc.pid))
        return self._memory[1]

    @property
    def alive(self) -> bool:
        return (
            self._proc is not None
            and self._proc.returncode is None
            and self._conn is not None
            and not self._conn.closed.is_set()
        )

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        spec = self.spec
        self._log_start = log_size(spec.log_path)
        try:
            self._proc = await process.spawn(
                [spec.codex_bin, "app-server", "--listen", "stdio://"],
                env=spec.env,
                cwd=spec.cwd,
                stderr_log=spec.log_path,
            )
        except OSError as exc:
            raise WorkerStartError(
                f"cannot start Codex worker {self.label} from {spec.codex_bin} ({exc.strerror}); "
                "check --codex-bin or run `codex-mcp-wrapper doctor`."
            ) from exc
        assert self._proc.stdout is not None and self._proc.stdin is not None
        self._conn = JsonRpcConnection(
            self._proc.stdout,
            self._proc.stdin,
            self._on_server_request,
            name=f"worker {self.label}",
            watch=self._items.watch,
        )
        self._conn.route_threads()  # each thread's notifications to its own inbox
        self._conn.start()
        try:
            await self._conn.request(
                "initialize",
                {
                    "clientInfo": {
                        "name": "codex_mcp_wrapper",
                        "title": "codex-mcp-wrapper",
                        "version": __version__,
                    },
                    "capabilities": {"experimentalApi": True},
                },
                timeout=self._timeouts.handshake,
            )
            await self._conn.notify("initialized")
        except WorkerError as exc:
            await self.aclose()
            tail = log_tail(spec.log_path, since=self._log_start)
            raise WorkerStartError(
                f"Codex worker {self.label} did not complete its start-up handshake ({exc})"
                + (f"; its log says: {tail}" if tail else "")
                + f"; see {spec.log_path}."
            ) from exc
        except BaseException:  # cancelled mid-handshake: never leave the process behind
            await asyncio.shield(self.aclose())
            raise

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.aclose()
        if self._proc is not None:
            await process.stop(self._proc, self._timeouts.term_grace)
        for path in self.spec.forget_on_close:
            path.unlink(missing_ok=True)

    async def _on_server_request(self, request: ServerRequest) -> dict[str, Any]:
        self.recent.append(f"request {request.method}")
        running = self._running.get(str(request.params.get("threadId")))
        return await answer_request(request, running, self._items, self._approvals)

    # -- running a task ----------------------------------------------------------------------
    def _conn_or_die(self) -> JsonRpcConnection:
        if self._conn is None or not self.alive:
            raise WorkerDied(f"worker {self.label} is not running.")
        return self._conn

    async def _open_thread(
        self, request: TaskRequest, running: RunningTask
    ) -> tuple[str, int, bool]:
        """The thread to run in, how many prompts it has answered already, and whether it was
        opened just now (its MCP servers start); from then on ``running`` receives the thread's
        approvals.

        Continues ``request.thread_id`` when given (from memory, or from its rollout file with
        ``thread/resume``); when Codex cannot resume it, starts a new thread from the first
        prompt and says so.
        """
        conn = self._conn_or_die()
        sink = running.sink
        params = thread_params(request.spec, self.spec.hidden_env)
        if request.thread_id:
            conn.inbox(request.thread_id)  # before resuming: its first notifications are kept
            self._running[request.thread_id] = running
        if request.thread_id and request.thread_id in self._loaded_threads:
            return request.thread_id, request.turns_done, False
        if request.thread_id:
            try:
                result = await conn.request(
                    "thread/resume",
                    {**params, "threadId": request.thread_id},
                    self._timeouts.request,
                )
                thread_id = str(result["thread"]["id"])
                self._loaded_threads.add(thread_id)
                self.threads_run += 1
                running.sink.codex_event(request.task_id, *thread_event(result, resumed=True))
                if request.after_crash:
                    self._crash_notes[thread_id] = record_crash(request.task_id, sink, result)
                return thread_id, request.turns_done, True
            except RpcError as exc:
                self._forget(request.thread_id)
                sink.task_state(
                    request.task_id,
                    "running",
                    self.label,
                    f"thread {request.thread_id} could not be resumed ({exc}); starting anew",
                )
        method = "thread/start" if request.fork is None else "thread/fork"
        if request.fork is not None:  # a copy of another task's thread
            params = fork_params(params, request.fork)
        elif request.spec.tools:  # the orchestrator's tools (an experimental app-server API)
            params["dynamicTools"] = list(request.spec.tools)
        result = await conn.request(method, params, self._timeouts.request)
        thread_id = str(result["thread"]["id"])
        self._running[thread_id] = running
        self._loaded_threads.add(thread_id)
        self.threads_run += 1
        sink.codex_event(request.task_id, *thread_event(result, False, request.fork))
        return thread_id, 0, True

    async def run(
        self,
        request: TaskRequest,
        sink: EventSink,
        approvals: ApprovalHandler | None = None,
        tools: ToolHandler | None = None,
    ) -> TaskOutcome:
        """Run the request's remaining prompts in one thread; failures come back as outcomes
        (``worker_broken`` when the process died or stopped answering). ``approvals`` answers
        this thread's approval requests, ``tools`` its calls of the orchestrator's tools."""
        running = RunningTask(
            request.run_id,
            request.task_id,
            sink,
            approvals or self._approvals,
            request.spec.cwd,
            tools,
        )
        recent: deque[str] = deque(maxlen=10)  # this task's last events, for error messages
        deadline = time.monotonic() + request.timeout_sec
        outcome = TaskOutcome(
            status="failed",
            worker=self.label,
            thread_id=request.thread_id,
            turns_done=request.turns_done,
            log_path=str(self.spec.log_path),
        )
        current: Turn | None = None
        try:
            thread_id, outcome.turns_done, opened = await self._open_thread(request, running)
            outcome.thread_id = thread_id  # known before anything else can fail: it is unloaded
            if opened:
                await task_servers_ready(
                    self._conn_or_die().inbox(thread_id),
                    request,
                    thread_id,
                    sink,
                    self._timeouts.mcp_start,
                    self.spec.log_path,
                )
            sink.thread_progress(request.task_id, outcome.thread_id, self.label, outcome.turns_done)
            note = self._crash_notes.pop(thread_id, "")
            for prompt in request.prompts[outcome.turns_done :]:
                start_turn(request, outcome)  # counted against the task's turn budget
                current = self._turns[thread_id] = self._turn(request, sink, thread_id, recent)
                current.token_check = token_guard(request, outcome)
                turn = await current.run(
                    note + prompt,
                    request.spec.output_schema,
                    request.spec.idle_timeout_sec,
                    deadline,
                    None if outcome.turns_done else request.spec.review,
                )
                note = ""
                count_turn(turn, outcome)
                sink.thread_progress(
                    request.task_id, outcome.thread_id, self.label, outcome.turns_done
                )
            outcome.status = "ok"
        except TASK_FAILURES as exc:
            record_failure(exc, outcome)
        except asyncio.CancelledError:
            await process.finish(self._abandon(current, outcome.thread_id))
            raise
        finally:
            if outcome.status != "ok":
                self.log.bind(run=request.run_id, task=request.task_id).info(
                    "attempt %d ended %s: %s", request.attempt, outcome.status, outcome.error
                )
            if outcome.thread_id:
                self._forget(outcome.thread_id)
        if outcome.thread_id and not outcome.worker_broken and outcome.status != "timeout":
            await self._unload(outcome.thread_id)
        return outcome

    def _turn(
        self, request: TaskRequest, sink: EventSink, thread_id: str, recent: deque[str]
    ) -> Turn:
        """The next turn of ``thread_id``, its events and retry notices going to ``sink``."""
        conn = self._conn_or_die()
        return Turn(
            conn,
            self.label,
            self.spec.log_path,
            thread_id,
            functools.partial(sink.codex_event, request.task_id),
            recent,
            self._timeouts,
            conn.inbox(thread_id),
            on_retry=functools.partial(sink.task_state, request.task_id, "running", self.label),
            model_url=str(request.spec.config.get("openai_base_url") or self.spec.model_url or "")
            or None,
            trace=sink.trace_context() if isinstance(sink, TraceCarrier) else None,
        )

    async def steer(self, run_id: str, task_id: str, text: str) -> str | None:
        """Add ``text`` to the running turn of a task of this worker; the turn's id, or None
        when the task has no turn running here."""
        for thread_id, running in list(self._running.items()):
            turn = self._turns.get(thread_id)
            if (running.run_id, running.task_id) == (run_id, task_id) and turn is not None:
                return await turn.steer(text)
        return None

    async def _abandon(self, turn: Turn | None, thread_id: str | None) -> None:
        """A task was cancelled: stop its turn, so the process goes on serving its other
        threads. A process that does not stop the turn is stopped, and so is one whose turn
        cannot be named yet (``turn/start`` unanswered) when no other thread runs on it."""
        if not self.alive:
            return
        if turn is not None and turn.turn_id:
            try:
                await turn.interrupt(turn.turn_id)
            except WorkerError as exc:
                self.log.warning("stopping the worker: a cancelled turn did not stop (%s)", exc)
                await self.aclose()
                return
        elif turn is not None and len(self._running) > 1:
            self.log.warning("a cancelled task's turn is starting; it ends on its own")
        elif turn is not None:
            await self.aclose()
            return
        if thread_id:
            self._forget(thread_id)
            await self._unload(thread_id)

    def _forget(self, thread_id: str) -> None:
        """The thread's task is over here: no more routing of its approvals or events."""
        self._running.pop(thread_id, None)
        self._turns.pop(thread_id, None)
        if self._conn is not None:
            self._conn.drop_inbox(thread_id)

    async def _unload(self, thread_id: str) -> None:
        """Let Codex unload a finished task's thread (it stays on disk for thread/resume):
        an app-server that keeps every thread loaded slows down as tasks accumulate."""
        self._loaded_threads.discard(thread_id)
        if self._conn is None or not self.alive:
            return
        with contextlib.suppress(WorkerError):
            await self._conn.request(
                "thread/unsubscribe", {"threadId": thread_id}, self._timeouts.unload
            )
