"""One Codex worker: a ``codex app-server`` process behind the ``Worker`` protocol.

``AppServerWorker`` owns its process (spawned by ``process.spawn`` in its own process group),
performs the ``initialize`` handshake with a deadline, and runs a task's turns in one thread:
``thread/start`` (or ``thread/resume``), then ``turn/start`` per prompt, consuming notifications
until ``turn/completed`` under an idle and a wall-clock deadline. On a deadline it interrupts the
turn; if the turn does not stop, the caller kills the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from codex_mcp_wrapper import __version__, process
from codex_mcp_wrapper.errors import (
    ProtocolError,
    WorkerDied,
    WorkerError,
    WorkerStalled,
    WorkerStartError,
)
from codex_mcp_wrapper.execution import (
    ApprovalDecision,
    ApprovalHandler,
    EventSink,
    TaskOutcome,
    TaskRequest,
)
from codex_mcp_wrapper.jsonrpc import (
    CLOSED,
    JsonRpcConnection,
    Notification,
    RpcError,
    ServerRequest,
)
from codex_mcp_wrapper.mcp_startup import await_mcp_servers
from codex_mcp_wrapper.turn_errors import retryable_error, sandbox_failure

HANDSHAKE_TIMEOUT = 20.0
REQUEST_TIMEOUT = 30.0
INTERRUPT_GRACE = 5.0
MCP_START_TIMEOUT = 60.0
UNLOAD_TIMEOUT = 5.0
STDERR_TAIL_LINES = 5


@dataclass(frozen=True)
class WorkerSpec:
    label: str
    codex_bin: str
    codex_home: Path
    env: dict[str, str]
    log_path: Path
    cwd: Path | None = None


class Worker(Protocol):
    label: str

    @property
    def alive(self) -> bool: ...

    async def start(self) -> None: ...

    async def run(self, request: TaskRequest, sink: EventSink) -> TaskOutcome: ...

    async def aclose(self) -> None: ...


async def _decline(kind: str, task_id: str, params: dict[str, Any]) -> ApprovalDecision:
    return "decline"


@dataclass
class _TurnState:
    final_message: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    sandbox_error: str | None = None


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 8192))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept)


class AppServerWorker:
    """A ``codex app-server`` process; runs one task at a time."""

    def __init__(self, spec: WorkerSpec, approvals: ApprovalHandler = _decline) -> None:
        self.spec = spec
        self.label = spec.label
        self._approvals = approvals
        self._proc: asyncio.subprocess.Process | None = None
        self._conn: JsonRpcConnection | None = None
        self._loaded_threads: set[str] = set()
        self._current_task = ""
        self._current_sink: EventSink | None = None
        self.recent: deque[str] = deque(maxlen=10)

    def __repr__(self) -> str:
        pid = self._proc.pid if self._proc else None
        return f"<AppServerWorker {self.label} pid={pid} alive={self.alive}>"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

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
        )
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
                timeout=HANDSHAKE_TIMEOUT,
            )
            await self._conn.notify("initialized")
        except WorkerError as exc:
            await self.aclose()
            tail = _tail(spec.log_path)
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
            await process.stop(self._proc)

    # -- server requests (approvals) -------------------------------------------------------
    async def _decide(self, request: ServerRequest) -> str:
        """Ask the approval handler and record the decision in the task's transcript."""
        task_id = self._current_task
        decision = await self._approvals(request.method, task_id, request.params)
        if self._current_sink is not None:
            self._current_sink.codex_event(
                task_id,
                "wrapper/approval",
                {"request": request.method, "decision": decision, "params": request.params},
            )
        return decision

    async def _on_server_request(self, request: ServerRequest) -> dict[str, Any]:
        """Answer Codex's requests; approvals go to the handler, the rest get a neutral answer."""
        method = request.method
        self.recent.append(f"request {method}")
        if method in ("item/commandExecution/requestApproval", "item/fileChange/requestApproval"):
            return {"decision": await self._decide(request)}
        if method in ("execCommandApproval", "applyPatchApproval"):
            accepted = await self._decide(request) == "accept"
            return {"decision": "approved" if accepted else "denied"}
        if method == "item/permissions/requestApproval":
            accepted = await self._decide(request) == "accept"
            granted = request.params.get("permissions", {}) if accepted else {}
            return {"permissions": granted, "scope": "turn"}
        if method == "mcpServer/elicitation/request":
            accepted = await self._decide(request) == "accept"
            return {"action": "accept" if accepted else "decline", "content": None}
        if method == "item/tool/requestUserInput":
            return {"answers": {}}
        if method == "item/tool/call":
            return {"contentItems": [], "success": False}
        return {}

    # -- running a task ----------------------------------------------------------------------
    def _conn_or_die(self) -> JsonRpcConnection:
        if self._conn is None or not self.alive:
            raise WorkerDied(f"worker {self.label} is not running.")
        return self._conn

    def _thread_params(self, request: TaskRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "cwd": request.cwd,
            "sandbox": request.sandbox,
            "approvalPolicy": request.approval_policy,
            "config": dict(request.config),
        }
        if request.profile:
            params["config"]["profile"] = request.profile
        for key, value in (
            ("model", request.model),
            ("baseInstructions", request.base_instructions),
            ("developerInstructions", request.developer_instructions),
        ):
            if value is not None:
                params[key] = value
        return params

    async def _open_thread(self, request: TaskRequest, sink: EventSink) -> tuple[str, int]:
        """The thread to run in and how many prompts it has answered already.

        Continues ``request.thread_id`` when given (from memory, or from its rollout file with
        ``thread/resume``); when Codex cannot resume it, starts a new thread from the first
        prompt and says so.
        """
        conn = self._conn_or_die()
        params = self._thread_params(request)
        if request.thread_id and request.thread_id in self._loaded_threads:
            return request.thread_id, request.turns_done
        if request.thread_id:
            try:
                result = await conn.request(
                    "thread/resume", {**params, "threadId": request.thread_id}, REQUEST_TIMEOUT
                )
                thread_id = str(result["thread"]["id"])
                self._loaded_threads.add(thread_id)
                await self._await_mcp_servers(request, thread_id, sink)
                return thread_id, request.turns_done
            except RpcError as exc:
                sink.task_state(
                    request.task_id,
                    "running",
                    self.label,
                    f"thread {request.thread_id} could not be resumed ({exc}); starting anew",
                )
        result = await conn.request("thread/start", params, REQUEST_TIMEOUT)
        thread_id = str(result["thread"]["id"])
        self._loaded_threads.add(thread_id)
        await self._await_mcp_servers(request, thread_id, sink)
        return thread_id, 0

    async def _await_mcp_servers(
        self, request: TaskRequest, thread_id: str, sink: EventSink
    ) -> None:
        """Wait until the task's MCP servers are up: Codex does not wait for them before its
        first model request, so a slow server would silently be missing from the turn."""
        servers = request.config.get("mcp_servers") or {}
        if not servers:
            return

        def forward(method: str, params: dict[str, Any]) -> None:
            sink.codex_event(request.task_id, method, params)

        failures = await await_mcp_servers(
            self._conn_or_die(), thread_id, servers, forward, MCP_START_TIMEOUT
        )
        if failures:
            raise _McpServersFailed(
                f"MCP server(s) did not start: {'; '.join(failures)}; check their command and "
                f"env in mcp_servers (Codex's log: {self.spec.log_path})."
            )

    async def run(self, request: TaskRequest, sink: EventSink) -> TaskOutcome:
        """Run the request's remaining prompts in one thread; failures come back as outcomes
        (``worker_broken`` when the process died or stopped answering)."""
        self._current_task = request.task_id
        self._current_sink = sink
        deadline = time.monotonic() + request.timeout_sec
        outcome = TaskOutcome(
            status="running",
            worker=self.label,
            thread_id=request.thread_id,
            turns_done=request.turns_done,
            log_path=str(self.spec.log_path),
        )
        try:
            outcome.thread_id, outcome.turns_done = await self._open_thread(request, sink)
            sink.thread_progress(request.task_id, outcome.thread_id, self.label, outcome.turns_done)
            for prompt in request.prompts[outcome.turns_done :]:
                turn = await self._run_turn(request, outcome.thread_id, prompt, deadline, sink)
                for key, value in turn.usage.items():
                    outcome.usage[key] = outcome.usage.get(key, 0) + value
                if turn.final_message is not None:
                    outcome.final_message = turn.final_message
                if turn.sandbox_error:
                    raise _SandboxUnavailable(
                        "Codex's sandbox cannot start on this machine, so its commands did not "
                        f"run ({turn.sandbox_error}); enable unprivileged user namespaces, or use "
                        "sandbox: danger-full-access in a disposable environment."
                    )
                outcome.turns_done += 1
                sink.thread_progress(
                    request.task_id, outcome.thread_id, self.label, outcome.turns_done
                )
            outcome.status = "ok"
        except _TurnFailed as exc:
            outcome.status, outcome.error, outcome.retryable = "failed", str(exc), exc.retryable
        except _TurnTimedOut as exc:
            outcome.status, outcome.error = "timeout", str(exc)
        except (_SandboxUnavailable, _McpServersFailed) as exc:
            outcome.status, outcome.error = "failed", str(exc)
        except WorkerStalled as exc:
            outcome.status, outcome.error, outcome.worker_broken = "timeout", str(exc), True
        except WorkerError as exc:
            outcome.status, outcome.error = "failed", str(exc)
            outcome.retryable = outcome.worker_broken = True
        finally:
            self._current_task = ""
            self._current_sink = None
        if outcome.thread_id and not outcome.worker_broken and outcome.status != "timeout":
            await self._unload(outcome.thread_id)
        return outcome

    async def _unload(self, thread_id: str) -> None:
        """Let Codex unload a finished task's thread (it stays on disk for thread/resume):
        an app-server that keeps every thread loaded slows down as tasks accumulate."""
        self._loaded_threads.discard(thread_id)
        if self._conn is None or not self.alive:
            return
        with contextlib.suppress(WorkerError):
            await self._conn.request("thread/unsubscribe", {"threadId": thread_id}, UNLOAD_TIMEOUT)

    async def _run_turn(
        self,
        request: TaskRequest,
        thread_id: str,
        prompt: str,
        deadline: float,
        sink: EventSink,
    ) -> _TurnState:
        conn = self._conn_or_die()
        params: dict[str, Any] = {
            "threadId": thread_id,
            "input": [{"type": "text", "text": prompt}],
        }
        if request.output_schema is not None:
            params["outputSchema"] = request.output_schema
        result = await conn.request("turn/start", params, REQUEST_TIMEOUT)
        turn_id = str(result.get("turn", {}).get("id", ""))
        state = _TurnState()
        last_event = time.monotonic()
        while True:
            now = time.monotonic()
            idle_left = request.idle_timeout_sec - (now - last_event)
            wall_left = deadline - now
            wait = min(idle_left, wall_left)
            try:
                if wait <= 0:
                    raise TimeoutError
                async with asyncio.timeout(wait):
                    message = await conn.incoming.get()
            except TimeoutError:
                idle = idle_left <= wall_left
                await self._interrupt(conn, thread_id, turn_id, sink, request.task_id)
                if idle:
                    raise _TurnTimedOut(
                        f"no event from Codex for {request.idle_timeout_sec:g} s "
                        f"(idle_timeout_sec); the turn was interrupted. Last events: "
                        f"{', '.join(self.recent) or 'none'}."
                    ) from None
                raise _TurnTimedOut(
                    "the task ran past its wall-clock limit (timeout_sec); the turn was "
                    "interrupted."
                ) from None
            if message is CLOSED:
                tail = _tail(self.spec.log_path)
                raise WorkerDied(
                    f"Codex worker {self.label} exited during the turn"
                    + (f" (log: {tail})" if tail else "")
                    + f"; see {self.spec.log_path}."
                )
            assert isinstance(message, Notification)
            last_event = time.monotonic()
            method, p = message.method, message.params
            self.recent.append(method)
            if p.get("threadId") not in (None, thread_id):
                continue
            sink.codex_event(request.task_id, method, p)
            if method == "item/completed":
                item = p.get("item") or {}
                if item.get("type") == "agentMessage":
                    state.final_message = str(item.get("text", ""))
                state.sandbox_error = state.sandbox_error or sandbox_failure(item)
            elif method == "thread/tokenUsage/updated":
                last = (p.get("tokenUsage") or {}).get("last") or {}
                for key in ("inputTokens", "outputTokens", "totalTokens", "cachedInputTokens"):
                    if key in last:
                        state.usage[key] = state.usage.get(key, 0) + int(last[key])
            elif method == "turn/completed":
                turn = p.get("turn") or {}
                if turn.get("id") not in (None, turn_id):
                    continue  # a late end of an earlier, interrupted turn
                status = turn.get("status")
                if status == "completed":
                    return state
                error = turn.get("error") or {}
                reason = error.get("message") or f"the turn ended {status}"
                raise _TurnFailed(
                    f"Codex reported the turn {status}: {reason}", retryable_error(error)
                )

    async def _interrupt(
        self,
        conn: JsonRpcConnection,
        thread_id: str,
        turn_id: str,
        sink: EventSink,
        task_id: str,
    ) -> None:
        """Ask Codex to stop the turn and wait for it; a worker that does not stop is a stall."""
        try:
            await conn.request(
                "turn/interrupt", {"threadId": thread_id, "turnId": turn_id}, INTERRUPT_GRACE
            )
            async with asyncio.timeout(INTERRUPT_GRACE):
                while True:
                    message = await conn.incoming.get()
                    if message is CLOSED:
                        raise WorkerDied(f"worker {self.label} exited while interrupting")
                    assert isinstance(message, Notification)
                    if message.params.get("threadId") in (None, thread_id):
                        sink.codex_event(task_id, message.method, message.params)
                    if message.method == "turn/completed":
                        return
        except (TimeoutError, ProtocolError) as exc:
            raise WorkerStalled(
                f"worker {self.label} did not stop the turn within {INTERRUPT_GRACE:g} s"
            ) from exc


class _TurnFailed(Exception):
    """Codex ended the turn with status failed (model error, broken stream)."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class _McpServersFailed(Exception):
    """A task's MCP server failed to start: the task cannot do what it is for."""


class _SandboxUnavailable(Exception):
    """Sandboxed commands fail before they start (no user namespaces): not a model error."""


class _TurnTimedOut(Exception):
    """A deadline expired and the turn was interrupted."""
