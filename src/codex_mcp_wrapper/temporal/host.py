"""A host: Temporal workers running mission workflows and task activities on this
machine's own fleet of ``codex app-server`` processes (its own state dir, homes and logs).

Two Temporal workers share one ``LocalBackend``: one polls the shared task queue (workflows
and tasks), one the host's own queue ``QUEUE@HOST`` (attempts continuing a thread this host
holds). The ``run_task`` activity opens the run's executor once per host and run (the
scripted model serves a run once), runs one attempt on it, and sends its events, artifacts and
the thread's rollout to the shared store; the attempt heartbeats while it runs, so a host that
dies is noticed and its tasks go to another host, and answers the steers of its task left in
the shared store (``steering.mailbox``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import shutil
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.worker import Worker

from codex_mcp_wrapper.codex.backend import LocalBackend
from codex_mcp_wrapper.codex.executor import LocalExecutor
from codex_mcp_wrapper.engine.assembly import Extras, RunWiring, assemble_run, run_redactor
from codex_mcp_wrapper.engine.events import Event, Subscriber, to_record
from codex_mcp_wrapper.engine.planning import task_config
from codex_mcp_wrapper.engine.redaction import Redactor
from codex_mcp_wrapper.engine.seams import TaskOutcome, TaskRequest
from codex_mcp_wrapper.engine.worktrees import Worktrees
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.settings import Settings, TemporalSettings
from codex_mcp_wrapper.temporal.carry import OUTCOME
from codex_mcp_wrapper.temporal.connect import connect, sandbox_runner, server_answers
from codex_mcp_wrapper.temporal.host_sink import HostSink
from codex_mcp_wrapper.temporal.shared import DirectoryStore, SharedStore
from codex_mcp_wrapper.temporal.steering import mailbox
from codex_mcp_wrapper.temporal.tracing import attempt_span
from codex_mcp_wrapper.temporal.workflow import (
    RUN_TASK,
    MissionWorkflow,
    host_queue,
    split_worker,
)

log = logging.getLogger("codex_mcp_wrapper.temporal")
ROLLOUT_POLLS = 100  # x 0.1 s: how long a finished attempt's rollout may take to appear


@dataclass
class _OpenRun:
    """A run's executor on this host, held open while its attempts run here."""

    users: int = 0
    executor: asyncio.Future[LocalExecutor] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    release: asyncio.Event = field(default_factory=asyncio.Event)
    holder: asyncio.Task[None] | None = None


class HostActivities:
    """The ``run_task`` activity of one host."""

    def __init__(
        self,
        settings: Settings,
        backend: LocalBackend,
        store: SharedStore,
        host: str,
        client: Client | None = None,
        hold: float = TemporalSettings.reconnect_within,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.store = store
        self.host = host
        self.client = client
        self.hold = hold  # a finished attempt's result waits this long for an absent server
        self._runs: dict[str, _OpenRun] = {}
        self._closing: dict[str, asyncio.Task[None]] = {}
        self._copies: set[asyncio.Task[None]] = set()
        self.observers: list[Subscriber] = []  # each attempt's events, as they happen (metrics)
        # Told each attempt's end here: run id, task id, its status (metrics)
        self.ended: list[Callable[[str, str, str], None]] = []

    def _mission(self, run_id: str) -> Mission:
        record = self.store.read_mission(run_id)
        if record is None:
            raise ApplicationError(
                f"host {self.host} cannot find run {run_id} in the shared store; give every "
                "host and the submitter the same --shared-dir.",
                type="MissingMission",
                non_retryable=True,
            )
        return Mission.model_validate(record)

    @contextlib.asynccontextmanager
    async def _executor(
        self, run_id: str, mission: Mission, redactor: Redactor
    ) -> AsyncIterator[LocalExecutor]:
        closing = self._closing.get(run_id)
        if closing is not None:  # that run's last attempt here is still letting go
            await asyncio.wait({closing})  # how it ended is not this attempt's business
        held = self._runs.get(run_id)
        if held is None:
            held = self._runs[run_id] = _OpenRun()
            held.holder = asyncio.create_task(self._hold(run_id, mission, redactor, held))
        held.users += 1
        try:
            yield await self._opened(held)
        finally:
            held.users -= 1
            if held.users == 0 and self._runs.get(run_id) is held:
                del self._runs[run_id]
                held.release.set()
                assert held.holder is not None
                self._closing[run_id] = held.holder
                held.holder.add_done_callback(lambda _: self._closing.pop(run_id, None))

    @staticmethod
    async def _opened(held: _OpenRun) -> LocalExecutor:
        """The run's executor once open; if it could not open, why (the holder's error).
        Waiting here never cancels the holder: other attempts may share it."""
        assert held.holder is not None
        either: set[asyncio.Future[Any]] = {held.executor, held.holder}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if held.executor.done():
            return held.executor.result()
        held.holder.result()  # raises what kept the executor from opening
        raise RuntimeError("the run's executor holder ended without opening it")

    async def _hold(
        self, run_id: str, mission: Mission, redactor: Redactor, held: _OpenRun
    ) -> None:
        run_dir = self.settings.state_dir / "runs" / run_id

        def publish(event: Event) -> None:
            self.store.append_events(run_id, f"_run.{self.host}", [redactor.data(to_record(event))])

        # Approvals are decided here: the mission's rules and approval hooks, then this
        # host's policy (nobody is asked across machines); the mission's tools run here.
        wiring = RunWiring(run_id, run_dir, Path(mission.workspace_root), publish, redactor)
        assembled = assemble_run(mission, self.settings, wiring, self.settings.workers, Extras())
        run_dir.mkdir(parents=True, exist_ok=True)
        async with self.backend.open(mission, assembled.context) as executor:
            # a run on hosts has no worktree tasks (TemporalBackend.check): the bare executor
            local = executor.inner if isinstance(executor, Worktrees) else executor
            assert isinstance(local, LocalExecutor)
            held.executor.set_result(local)
            await held.release.wait()

    def _home(self, label: str) -> Path:
        return self.settings.state_dir / "workers" / label / "codex-home"

    def _local_rollout(self, thread_id: str) -> Path | None:
        found = sorted(
            (self.settings.state_dir / "workers").glob(
                f"*/codex-home/sessions/**/rollout-*-{thread_id}.jsonl"
            )
        )
        return found[-1] if found else None

    def _place_thread(self, request: TaskRequest, labels: list[str]) -> TaskRequest:
        """Where this attempt continues its thread: on the worker of this host that holds it,
        else on one of this run's workers, its rollout copied in (from this host's homes or
        the shared store); with no rollout anywhere, the worker starts the thread anew."""
        if request.thread_id is None or not labels:
            return dataclasses.replace(request, thread_worker=None)
        host, label = split_worker(request.thread_worker)
        if host == self.host and label in labels:
            return dataclasses.replace(request, thread_worker=label)
        target = labels[0]
        sessions = self._home(target) / "sessions" / "imported"
        local = self._local_rollout(request.thread_id)
        if local is not None and local.is_relative_to(self._home(target)):
            placed: Path | None = local
        elif local is not None:
            sessions.mkdir(parents=True, exist_ok=True)
            placed = Path(shutil.copyfile(local, sessions / local.name))
        else:
            placed = self.store.get_rollout(request.thread_id, sessions)
        if placed is None:
            log.warning("no rollout of thread %s anywhere; it starts anew", request.thread_id)
            return dataclasses.replace(request, thread_worker=None)
        return dataclasses.replace(request, thread_worker=target)

    def _keep_thread(self, thread_id: str) -> None:
        """Copy the thread's rollout to the shared store once Codex has written it (it
        flushes after the attempt), in the background."""
        task = asyncio.create_task(self._copy_rollout(thread_id))
        self._copies.add(task)
        task.add_done_callback(self._copies.discard)

    async def _copy_rollout(self, thread_id: str) -> None:
        size, steady = -1, 0
        for _ in range(ROLLOUT_POLLS):  # polling a file Codex writes: no event to wait on
            rollout = self._local_rollout(thread_id)
            now = rollout.stat().st_size if rollout is not None else -1
            steady = steady + 1 if now == size and now > 0 else 0
            if rollout is not None and steady >= 2:
                try:
                    self.store.put_rollout(thread_id, rollout)
                except OSError as exc:
                    log.warning("cannot copy thread %s to the shared store: %s", thread_id, exc)
                return
            size = now
            await asyncio.sleep(0.1)
        log.warning("thread %s has no rollout to share; another host cannot resume it", thread_id)

    async def aclose(self, within: float = 10.0) -> None:
        """Let the rollout copies in flight finish (bounded)."""
        if self._copies:
            await asyncio.wait(set(self._copies), timeout=within)

    @activity.defn(name=RUN_TASK)
    async def run_task(self, request: TaskRequest) -> TaskOutcome:
        mission = self._mission(request.run_id)
        task = mission.tasks[request.index]
        redactor = run_redactor(mission)
        artifacts = self.settings.state_dir / "runs" / request.run_id / "artifacts"
        spec = dataclasses.replace(
            request.spec,
            config=task_config(task, mission),  # left out of the history: env values
            artifacts_dir=str(artifacts / request.task_id),
        )
        request = dataclasses.replace(request, spec=spec)
        sink = HostSink(self.store, request, self.host, redactor, self.observers)
        beat = asyncio.create_task(self._keepalive(sink, request.spec.idle_timeout_sec))
        thread_id = request.thread_id
        status = "interrupted"  # unless it ends with an outcome: handed back, cancelled
        try:
            async with self._executor(request.run_id, mission, redactor) as executor:
                request = self._place_thread(request, executor.pool.labels)
                steer = functools.partial(executor.steer, request.run_id, request.task_id)
                async with mailbox(self.store, request.run_id, request.task_id, steer):
                    with attempt_span(request, redactor.text) as traced:
                        outcome = await executor.execute(request, sink)
                        traced(outcome)
            thread_id, status = outcome.thread_id, outcome.status
        except asyncio.CancelledError:
            if activity.is_worker_shutdown():
                raise ApplicationError(
                    f"host {self.host} shut down before the task finished; it continues on "
                    "another host",
                    sink.details,
                    type="HostShutdown",
                    # Expected when a host stops: logged without a traceback (BENIGN).
                    category=ApplicationErrorCategory.BENIGN,
                ) from None
            raise
        finally:
            beat.cancel()
            for ended in self.ended:
                ended(request.run_id, request.task_id, status)
            thread_id = thread_id or sink.details.get("thread_id")
            if thread_id:
                self._keep_thread(thread_id)
        self.store.put_artifacts(request.run_id, request.task_id, artifacts / request.task_id)
        outcome.worker = sink.worker(outcome.worker)
        record = OUTCOME.dump_python(outcome, mode="json")
        self.store.put_outcome(request.run_id, request.task_id, request.attempt, record)
        await self._server_back(request.task_id)
        return outcome

    async def _server_back(self, task_id: str) -> None:
        """Hold a finished attempt's result while the server is away (bounded), so that it
        is delivered, not lost: a lost result would run the task again."""
        if self.client is None:
            return

        hold = self.hold  # the SDK itself gives up sending it after about 10 s
        told: list[float] = []

        def waiting(seconds: float) -> None:
            log.log(
                logging.DEBUG if told else logging.WARNING,
                "host %s: the Temporal server is away; the result of task %s waits for it "
                "(up to %g s)",
                self.host,
                task_id,
                hold,
            )
            told.append(seconds)

        if not await server_answers(self.client, hold, waiting):
            log.warning(
                "host %s: the Temporal server did not come back; task %s's result may "
                "be lost and the task run again",
                self.host,
                task_id,
            )

    @staticmethod
    async def _keepalive(sink: HostSink, idle_timeout: float) -> None:
        """Heartbeat while the attempt waits for a worker or a silent model: the workflow's
        heartbeat timeout then means this host is gone, never that it is slow."""
        every = max(0.5, min(5.0, idle_timeout / 3))
        while True:
            sink.heartbeat()
            await asyncio.sleep(every)


@dataclass(frozen=True)
class HostOptions:
    host: str  # this host's id: its own queue, and the prefix of its workers' labels
    drain: float = 10.0  # seconds running tasks get to finish on SIGTERM, then handed back
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None  # Prometheus metrics on METRICS_HOST:PORT (0: any port)


async def serve_host(
    settings: Settings,
    target: TemporalSettings,
    options: HostOptions,
    ready: Callable[[str], None] = lambda _: None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run this host until SIGTERM/SIGINT (or ``stop``): then running attempts get
    ``options.drain`` seconds, those still running are handed back (retried on another host),
    and every Codex process of the host is stopped."""
    client: Client = await connect(target, "host")
    backend = LocalBackend(settings)
    store = DirectoryStore(target.shared_dir)
    activities = HostActivities(
        settings, backend, store, options.host, client, target.reconnect_within
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    common: dict[str, Any] = {
        "activities": [activities.run_task],
        "max_concurrent_activities": settings.workers,
        "max_heartbeat_throttle_interval": timedelta(seconds=1),
        "graceful_shutdown_timeout": timedelta(seconds=options.drain),
    }
    announce: dict[str, Any] = {"host": options.host, "task_queue": target.task_queue}
    async with backend.warm(), contextlib.AsyncExitStack() as stack:
        metrics = stack.enter_context(_host_metrics(options, backend, activities))
        if metrics is not None:
            announce["metrics"] = metrics
        shared = Worker(
            client,
            task_queue=target.task_queue,
            workflows=[MissionWorkflow],
            workflow_runner=sandbox_runner(),
            **common,
        )
        own = Worker(client, task_queue=host_queue(target.task_queue, options.host), **common)
        async with shared, own:
            ready(json.dumps(announce))
            await stop.wait()
            log.info("host %s stopping: running tasks get %g s", options.host, options.drain)
        await activities.aclose()


@contextlib.contextmanager
def _host_metrics(
    options: HostOptions, backend: LocalBackend, activities: HostActivities
) -> Iterator[str | None]:
    """With ``options.metrics_port``: this host's metrics (its attempts' events, its fleet)
    served until the block ends; yields their HOST:PORT."""
    if options.metrics_port is None:
        yield None
        return
    from codex_mcp_wrapper.engine.metrics import RunMetrics  # prometheus_client: only then

    metrics = RunMetrics(backend.fleet.state)
    port = metrics.serve(options.metrics_host, options.metrics_port)
    activities.observers.append(metrics.observe)
    activities.ended.append(metrics.attempt_ended)
    try:
        yield f"{options.metrics_host}:{port}"
    finally:
        metrics.close()
