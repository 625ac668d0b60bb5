"""``RunQueries``: what the application API answers about recorded and live runs (status,
show, list, reports, a task's files), for whoever asks: the server's owner (``client`` None)
sees every run, an MCP client only its own, and another's is to it a run that does not exist.
``Runs`` is these queries plus running."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from pathlib import Path

from codex_mcp_wrapper.engine.access import Identity, may_see
from codex_mcp_wrapper.engine.compare import RunComparison, compare_runs
from codex_mcp_wrapper.engine.patches import apply_change
from codex_mcp_wrapper.engine.reports import write_reports
from codex_mcp_wrapper.engine.results import RunSummary
from codex_mcp_wrapper.engine.run_state import Baselines, RunRecord, RunRow, RunState, TaskRow
from codex_mcp_wrapper.engine.store import RunStore
from codex_mcp_wrapper.engine.tracker import RunTracker
from codex_mcp_wrapper.errors import InputError, StateDirError
from codex_mcp_wrapper.settings import Settings

BASELINES = 20  # runs the run page offers to compare with


class RunQueries:
    """Reading runs: the store, and the trackers of the runs going on in this process."""

    settings: Settings
    _live: dict[str, RunTracker]

    def _visible(self, store: RunStore, run_id: str, client: Identity | None) -> str | None:
        """The owner of ``run_id`` if ``client`` may see it; else the sentence of a run that
        does not exist (an identity cannot tell another's runs from none)."""
        store.run_dir(run_id)  # a malformed id: its own sentence
        tracker = self._live.get(run_id)
        exists, owner = store.run_owner(run_id)
        if tracker is not None:
            exists, owner = True, tracker.owner
        if not exists or not may_see(client, owner):
            raise InputError(f"no run '{run_id}'; see `codex-mcp-wrapper runs list`.")
        return owner

    def status(self, run_id: str, client: Identity | None = None) -> RunState:
        """A run's state: live when it runs here, else as recorded (secrets redacted)."""
        tracker = self._live.get(run_id)
        if tracker is not None:
            if not may_see(client, tracker.owner):
                raise InputError(f"no run '{run_id}'; see `codex-mcp-wrapper runs list`.")
            return tracker.state()
        with RunStore.reader(self.settings.state_dir) as store:
            self._visible(store, run_id, client)
            info = store.require_run(run_id)
        if info.get("summary"):
            return RunState.of_summary(RunSummary.model_validate(info["summary"]))
        return RunState(
            run_id=run_id,
            mission_id=info["mission_id"],
            status=info["status"],
            done=info["status"] != "running",
            tasks=[
                TaskRow(
                    task_id=row["task_id"],
                    status=row["status"],
                    worker=row["worker"],
                    thread_id=row["thread_id"],
                )
                for row in info["tasks"]
            ],
        )

    def show(self, run_id: str, client: Identity | None = None) -> RunSummary | RunRecord:
        """Everything recorded of a run: its summary when it finished, else its rows."""
        with RunStore.reader(self.settings.state_dir) as store:
            self._visible(store, run_id, client)
            info = store.require_run(run_id)
        if info.get("summary"):
            return RunSummary.model_validate(info["summary"])
        return RunRecord.model_validate(info)

    def list(self, limit: int = 20, client: Identity | None = None) -> list[RunRow]:
        """The newest runs ``client`` may see (all of them for the owner and admins)."""
        owner = None if client is None or client.admin else client.name
        with RunStore.reader(self.settings.state_dir) as store:
            return [RunRow.model_validate(row) for row in store.list_runs(limit, owner)]

    def finished(self, run_id: str, client: Identity | None = None) -> RunSummary:
        """A finished run's summary; one sentence when the run has none yet."""
        shown = self.show(run_id, client)
        if not isinstance(shown, RunSummary):
            raise InputError(f"run '{run_id}' has not finished; see `codex-mcp-wrapper runs list`.")
        return shown

    def compare(self, base_id: str, run_id: str, client: Identity | None = None) -> RunComparison:
        """What changed from run ``base_id`` to run ``run_id`` (both finished)."""
        return compare_runs(self.finished(base_id, client), self.finished(run_id, client))

    def history(
        self, mission_id: str, limit: int = 20, client: Identity | None = None
    ) -> builtins.list[RunSummary]:
        """The last ``limit`` finished runs of ``mission_id``, oldest first."""
        owner = None if client is None or client.admin else client.name
        with RunStore.reader(self.settings.state_dir) as store:
            return list(reversed(store.mission_summaries(mission_id, limit, owner)))

    def last_ok(self, mission_id: str, before: str, client: Identity | None = None) -> str:
        """The newest run of ``mission_id`` that ended ok, other than ``before``."""
        for summary in reversed(self.history(mission_id, 50, client)):
            if summary.ok and summary.run_id != before:
                return summary.run_id
        raise InputError(
            f"no earlier run of mission '{mission_id}' ended ok; give --baseline RUN_ID."
        )

    def baselines(
        self, run_id: str, limit: int = BASELINES, client: Identity | None = None
    ) -> Baselines:
        """The finished runs of ``run_id``'s mission to compare it with, newest first, and
        the default: the newest that ended ok and started before it."""
        state = self.status(run_id, client)
        mission_id = state.mission_id
        started = state.summary.started_at if state.summary is not None else None
        others = [s for s in self.history(mission_id, limit + 1, client) if s.run_id != run_id]
        earlier = [s for s in others if started is None or s.started_at < started]
        default = next((s.run_id for s in reversed(earlier) if s.ok), None)
        rows = [RunRow.of_summary(s) for s in reversed(others)][:limit]
        return Baselines(run_id=run_id, mission_id=mission_id, runs=rows, default=default)

    def report(
        self, run_id: str, junit: Sequence[Path] = (), html: Sequence[Path] = ()
    ) -> tuple[Path, ...]:
        """Render a finished run's JUnit XML and HTML report again, in its run folder and at
        the extra paths given; returns the paths written. When the run folder cannot be
        written (a read-only or full state dir) it keeps the reports the run wrote, and only
        the extra paths are written; with none given that is an error."""
        with RunStore.reader(self.settings.state_dir) as store:
            summary = store.summary(run_id)
            run_dir = store.run_dir(run_id)
            mission = store.read_mission(run_id) if summary is not None else None
        if summary is None or mission is None:
            raise InputError(f"run '{run_id}' has not finished; see `codex-mcp-wrapper runs list`.")
        try:
            written = write_reports(summary, run_dir, mission.notes)
        except OSError as exc:
            if not (junit or html):
                raise StateDirError(
                    f"cannot write the reports into {run_dir} ({exc.strerror or exc}); the ones "
                    "the run wrote are there, or give --junit FILE / --html FILE to render them "
                    "elsewhere."
                ) from exc
            written = []
        copies = write_reports(summary, run_dir, mission.notes, junit, html, in_run_dir=False)
        return (*written, *copies)

    def task_file(
        self, run_id: str, task_id: str, name: str, client: Identity | None = None
    ) -> Path:
        """A file of a task's record (``events.jsonl``, ``final.md``, ``artifacts/NAME``),
        never a path outside the run's tasks folder."""
        with RunStore.reader(self.settings.state_dir) as store:
            self._visible(store, run_id, client)
            base = store.run_dir(run_id) / "tasks"
        path = (base / task_id / name).resolve()
        if not path.is_relative_to(base.resolve()) or not path.is_file():
            raise InputError(f"no {name} for task '{task_id}' of run '{run_id}'.")
        return path

    async def apply(
        self, run_id: str, task_id: str, commit: bool = False, client: Identity | None = None
    ) -> str:
        """Apply a worktree task's patch to the run's workspace, all or nothing (with
        ``commit``, commit the files it changes); what was done, in one line. The one action
        here: it needs the recorded run only, no backend."""
        with RunStore.reader(self.settings.state_dir) as store:
            self._visible(store, run_id, client)
            results = store.task_results(run_id)
            workspace = Path(store.read_mission(run_id).workspace_root)
        if task_id not in results:
            raise InputError(
                f"run {run_id} has no finished task '{task_id}' (tasks: {', '.join(results)})."
            )
        return await apply_change(results[task_id], workspace, run_id, commit)
