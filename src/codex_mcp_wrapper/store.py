"""``RunStore``: the durable record of runs (SQLite in WAL mode) and their files.

Layout under the state dir::

    state.db                          runs, tasks and threads (SQLite, WAL)
    runs/<run_id>/mission.json        the validated mission
    runs/<run_id>/summary.json        the run summary (also printed by --json)
    runs/<run_id>/tasks/<id>/events.jsonl   every Codex notification of the task (redacted)
    runs/<run_id>/tasks/<id>/final.md       the task's final message
    runs/<run_id>/tasks/<id>/artifacts/     copied artifacts
    workers/<label>/codex-home        a worker's CODEX_HOME
    logs/worker-<label>.log           a worker's stderr

Every write is committed (or flushed) before ``publish`` returns, so a killed wrapper leaves a
consistent store; runs left ``running`` by a dead process are marked ``interrupted`` on open.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import IO, Any

from codex_mcp_wrapper.errors import StateDirError
from codex_mcp_wrapper.events import (
    CodexEvent,
    Event,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskUpdate,
    ThreadProgress,
)
from codex_mcp_wrapper.redact import Redactor
from codex_mcp_wrapper.results import RunSummary, TaskResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    mission_id TEXT NOT NULL,
    status TEXT NOT NULL,
    pid INTEGER,
    created_at REAL NOT NULL,
    finished_at REAL,
    run_dir TEXT NOT NULL,
    workspace_root TEXT,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    worker TEXT,
    attempt INTEGER DEFAULT 0,
    thread_id TEXT,
    turns_done INTEGER DEFAULT 0,
    updated_at REAL NOT NULL,
    message TEXT,
    result TEXT,
    PRIMARY KEY (run_id, task_id)
);
CREATE TABLE IF NOT EXISTS threads (
    thread_id TEXT PRIMARY KEY,
    worker TEXT,
    run_id TEXT,
    task_id TEXT,
    updated_at REAL NOT NULL
);
"""


TRANSIENT_STATES = ("queued", "waiting")


def _is_stream_chunk(method: str) -> bool:
    """Deltas repeat what the next ``item/completed`` carries whole; no flush for them."""
    return method.endswith(("Delta", "/delta")) or method == "account/rateLimits/updated"


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    def __init__(self, state_dir: Path, redactor: Redactor | None = None) -> None:
        self.state_dir = state_dir
        self.redactor = redactor or Redactor()
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            (state_dir / "runs").mkdir(exist_ok=True)
            (state_dir / "logs").mkdir(exist_ok=True)
            probe = state_dir / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
            self.db = sqlite3.connect(state_dir / "state.db", timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(tasks)")}
            if "turns_done" not in columns:  # a state dir from 0.1.0 before resume existed
                self.db.execute("ALTER TABLE tasks ADD COLUMN turns_done INTEGER DEFAULT 0")
        except (OSError, sqlite3.Error) as exc:
            raise StateDirError(
                f"the state dir {state_dir} is not usable ({exc}); choose another with "
                "--state-dir or $CODEX_MCP_WRAPPER_HOME, or free disk space."
            ) from exc
        self._event_files: dict[tuple[str, str], IO[str]] = {}
        self.mark_interrupted()

    def close(self) -> None:
        for fh in self._event_files.values():
            fh.close()
        self._event_files.clear()
        self.db.close()

    # -- reading --------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.state_dir / "runs" / run_id

    def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT run_id, mission_id, status, created_at, finished_at, run_dir FROM runs "
            "ORDER BY created_at DESC LIMIT ?",
            (limit,),
        ).fetchall()
        keys = ("run_id", "mission_id", "status", "created_at", "finished_at", "run_dir")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT run_id, mission_id, status, created_at, finished_at, run_dir, summary "
            "FROM runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            return None
        keys = ("run_id", "mission_id", "status", "created_at", "finished_at", "run_dir")
        out: dict[str, Any] = dict(zip(keys, row[:6], strict=True))
        out["summary"] = json.loads(row[6]) if row[6] else None
        out["tasks"] = self.task_rows(run_id)
        return out

    def task_rows(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT task_id, idx, status, worker, attempt, thread_id, turns_done, message, result "
            "FROM tasks WHERE run_id = ? ORDER BY idx",
            (run_id,),
        ).fetchall()
        out = []
        for task_id, idx, status, worker, attempt, thread_id, turns, message, result in rows:
            out.append(
                {
                    "task_id": task_id,
                    "index": idx,
                    "status": status,
                    "worker": worker,
                    "attempt": attempt,
                    "thread_id": thread_id,
                    "turns_done": turns or 0,
                    "message": message,
                    "result": json.loads(result) if result else None,
                }
            )
        return out

    def task_results(self, run_id: str) -> dict[str, TaskResult]:
        return {
            row["task_id"]: TaskResult.model_validate(row["result"])
            for row in self.task_rows(run_id)
            if row["result"]
        }

    def thread_worker(self, thread_id: str) -> str | None:
        row = self.db.execute(
            "SELECT worker FROM threads WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        return row[0] if row else None

    # -- writing (the bus subscriber) ----------------------------------------------------------
    def mark_interrupted(self) -> None:
        rows = self.db.execute("SELECT run_id, pid FROM runs WHERE status = 'running'").fetchall()
        for run_id, pid in rows:
            if pid != os.getpid() and not _pid_alive(pid):
                self.db.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ? WHERE run_id = ?",
                    (time.time(), run_id),
                )
                self.db.execute(
                    "UPDATE tasks SET status = 'interrupted' WHERE run_id = ? AND status NOT IN "
                    "('ok', 'failed', 'timeout', 'cancelled', 'skipped')",
                    (run_id,),
                )

    def __call__(self, event: Event) -> None:
        try:
            self._handle(event)
        except (OSError, sqlite3.Error) as exc:
            raise StateDirError(
                f"cannot record the run in {self.state_dir} ({exc}); free disk space or fix "
                "permissions, then `codex-mcp-wrapper resume` the run."
            ) from exc

    def _write_json(self, path: Path, data: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(self.redactor.data(data), fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _events_file(self, run_id: str, task_id: str) -> IO[str]:
        key = (run_id, task_id)
        fh = self._event_files.get(key)
        if fh is None:
            path = self.run_dir(run_id) / "tasks" / task_id / "events.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = path.open("a", encoding="utf-8")
            self._event_files[key] = fh
        return fh

    def _handle(self, event: Event) -> None:
        now = time.time()
        if isinstance(event, RunStarted):
            run_dir = self.run_dir(event.run_id)
            run_dir.mkdir(parents=True, exist_ok=True)
            self._write_json(run_dir / "mission.json", event.mission)
            self.db.execute(
                "INSERT INTO runs (run_id, mission_id, status, pid, created_at, run_dir, "
                "workspace_root) VALUES (?, ?, 'running', ?, ?, ?, ?) ON CONFLICT(run_id) DO "
                "UPDATE SET status = 'running', pid = excluded.pid, finished_at = NULL",
                (
                    event.run_id,
                    event.mission_id,
                    os.getpid(),
                    now,
                    str(run_dir),
                    event.workspace_root,
                ),
            )
            for idx, task_id in enumerate(event.task_ids):
                self.db.execute(
                    "INSERT INTO tasks (run_id, task_id, idx, status, updated_at) "
                    "VALUES (?, ?, ?, 'pending', ?) ON CONFLICT(run_id, task_id) DO NOTHING",
                    (event.run_id, task_id, idx, now),
                )
        elif isinstance(event, TaskUpdate):
            if event.status in TRANSIENT_STATES:
                return  # scheduling detail: shown live, not worth a write per task
            self.db.execute(
                "UPDATE tasks SET status = ?, worker = COALESCE(?, worker), attempt = ?, "
                "message = ?, updated_at = ? WHERE run_id = ? AND task_id = ?",
                (
                    event.status,
                    event.worker,
                    event.attempt,
                    self.redactor.text(event.message),
                    now,
                    event.run_id,
                    event.task_id,
                ),
            )
        elif isinstance(event, ThreadProgress):
            self.db.execute(
                "UPDATE tasks SET thread_id = ?, worker = ?, turns_done = ?, updated_at = ? "
                "WHERE run_id = ? AND task_id = ?",
                (event.thread_id, event.worker, event.turns_done, now, event.run_id, event.task_id),
            )
            self._record_thread(event.thread_id, event.worker, event.run_id, event.task_id, now)
        elif isinstance(event, CodexEvent):
            fh = self._events_file(event.run_id, event.task_id)
            record = {"ts": now, "method": event.method, "params": event.params}
            fh.write(self.redactor.text(json.dumps(record)) + "\n")
            if not _is_stream_chunk(event.method):
                fh.flush()  # a kill -9 loses at most the deltas since the last whole event
        elif isinstance(event, TaskFinished):
            self._task_finished(event.run_id, event.result, now)
        elif isinstance(event, RunFinished):
            self._run_finished(event.summary, now)

    def _task_finished(self, run_id: str, result: TaskResult, now: float) -> None:
        fh = self._event_files.pop((run_id, result.task_id), None)
        if fh is not None:
            fh.close()
        task_dir = self.run_dir(run_id) / "tasks" / result.task_id
        task_dir.mkdir(parents=True, exist_ok=True)
        if result.final_message is not None:
            (task_dir / "final.md").write_text(
                self.redactor.text(result.final_message), encoding="utf-8"
            )
        data = self.redactor.data(result.model_dump())
        self.db.execute(
            "UPDATE tasks SET status = ?, worker = ?, attempt = ?, thread_id = ?, message = ?, "
            "result = ?, updated_at = ? WHERE run_id = ? AND task_id = ?",
            (
                result.status,
                result.worker,
                result.attempts,
                result.thread_id,
                data.get("error"),
                json.dumps(data),
                now,
                run_id,
                result.task_id,
            ),
        )
        if result.thread_id:
            self._record_thread(result.thread_id, result.worker, run_id, result.task_id, now)

    def _record_thread(
        self, thread_id: str, worker: str | None, run_id: str, task_id: str, now: float
    ) -> None:
        self.db.execute(
            "INSERT INTO threads (thread_id, worker, run_id, task_id, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(thread_id) DO UPDATE SET "
            "worker = COALESCE(excluded.worker, worker), updated_at = excluded.updated_at",
            (thread_id, worker, run_id, task_id, now),
        )

    def _run_finished(self, summary: RunSummary, now: float) -> None:
        run_dir = self.run_dir(summary.run_id)
        summary.run_dir = str(run_dir)
        data = summary.model_dump()
        self._write_json(run_dir / "summary.json", data)
        self.db.execute(
            "UPDATE runs SET status = ?, finished_at = ?, summary = ? WHERE run_id = ?",
            (summary.status, now, json.dumps(self.redactor.data(data)), summary.run_id),
        )
