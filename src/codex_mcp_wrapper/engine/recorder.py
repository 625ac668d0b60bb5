"""``RunRecorder``: the bus subscriber that records a run in its ``RunStore`` (rows in SQLite,
files under ``runs/<run_id>/``), every secret redacted, each event committed or flushed before
``publish`` returns so a killed wrapper leaves a consistent record."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import IO, Any

from codex_mcp_wrapper import process
from codex_mcp_wrapper.engine.events import (
    CodexEvent,
    Event,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskUpdate,
    ThreadProgress,
)
from codex_mcp_wrapper.engine.redaction import Redactor
from codex_mcp_wrapper.engine.results import TRANSIENT_STATES, RunSummary, TaskResult
from codex_mcp_wrapper.engine.run_index import RESULT_FILE, RUN_FILE, THREAD_FILE, read_json
from codex_mcp_wrapper.engine.store import RunStore
from codex_mcp_wrapper.errors import StateDirError


def _is_stream_chunk(method: str) -> bool:
    """Deltas repeat what the next ``item/completed`` carries whole; no flush for them."""
    return method.endswith(("Delta", "/delta")) or method == "account/rateLimits/updated"


class RunRecorder:
    def __init__(self, store: RunStore, redactor: Redactor) -> None:
        if store.readonly:
            raise ValueError("a read-only RunStore cannot record a run")
        self.store = store
        self.db = store.db
        self.redactor = redactor
        self._event_files: dict[tuple[str, str], IO[str]] = {}

    def run_dir(self, run_id: str) -> Path:
        return self.store.run_dir(run_id)

    def close(self) -> None:
        for fh in self._event_files.values():
            fh.close()
        self._event_files.clear()

    def __call__(self, event: Event) -> None:
        try:
            self._handle(event)
        except (OSError, sqlite3.Error) as exc:
            raise StateDirError(
                f"cannot record the run in {self.store.state_dir} ({exc}); free disk space or fix "
                "permissions, then `codex-mcp-wrapper resume` the run."
            ) from exc

    def _write_json(self, path: Path, data: Any, *, private: bool = False) -> None:
        """Write ``data`` atomically: redacted, or as it is into a 0600 file when ``private``."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data if private else self.redactor.data(data), fh, indent=2)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError:  # a full disk: leave the last whole file, not a torn .tmp beside it
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise

    def _write_mission(self, run_id: str, record: dict[str, Any]) -> None:
        """``mission.json`` redacted for people; when that hid a secret, the mission as it ran
        goes to the run's 0600 secrets file, outside ``runs/``, for resume and reply."""
        self._write_json(self.run_dir(run_id) / "mission.json", record)
        secrets = self.store.secrets_path(run_id)
        if self.redactor.data(record) != record:
            self._write_json(secrets, record, private=True)
        else:
            secrets.unlink(missing_ok=True)

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
            self._run_started(event, now)
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
            thread = {"thread_id": event.thread_id, "worker": event.worker}
            self._write_json(
                self.run_dir(event.run_id) / "tasks" / event.task_id / THREAD_FILE,
                {**thread, "turns_done": event.turns_done},
            )
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

    def _run_started(self, event: RunStarted, now: float) -> None:
        """The run's row first, then its folder's files: a folder with its mission always has
        its row, so a rebuild of the index never races a run that is starting."""
        run_dir = self.run_dir(event.run_id)
        pid, pid_start = os.getpid(), process.start_time(os.getpid())
        self.db.execute(
            "INSERT INTO runs (run_id, mission_id, status, pid, pid_start, created_at, "
            "run_dir, workspace_root, owner) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(run_id) DO UPDATE SET status = 'running', pid = excluded.pid, "
            "pid_start = excluded.pid_start, finished_at = NULL",
            (
                event.run_id,
                event.mission_id,
                pid,
                pid_start,
                now,
                str(run_dir),
                event.workspace_root,
                event.owner,
            ),
        )
        for idx, task_id in enumerate(event.task_ids):
            self.db.execute(
                "INSERT INTO tasks (run_id, task_id, idx, status, updated_at) "
                "VALUES (?, ?, ?, 'pending', ?) ON CONFLICT(run_id, task_id) DO NOTHING",
                (event.run_id, task_id, idx, now),
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        before = run_dir / RUN_FILE
        created = (read_json(before) or {}).get("created_at", now)
        record = {
            "run_id": event.run_id,
            "mission_id": event.mission_id,
            "task_ids": list(event.task_ids),
            "workspace_root": event.workspace_root,
            "owner": event.owner,
            "created_at": created,
            "started_at": now,
            "pid": pid,
            "pid_start": pid_start,
        }
        self._write_json(before, record)
        self._write_mission(event.run_id, event.mission)

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
        self._write_json(task_dir / RESULT_FILE, data)
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
        data = summary.model_dump()
        self._write_json(run_dir / "summary.json", data)
        self.db.execute(
            "UPDATE runs SET status = ?, finished_at = ?, summary = ? WHERE run_id = ?",
            (summary.status, now, json.dumps(self.redactor.data(data)), summary.run_id),
        )
