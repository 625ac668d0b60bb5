"""The run index (``state.db``) rebuilt from the run folders, which are the truth about runs.

Each folder under ``runs/`` holds everything its rows in ``state.db`` hold::

    runs/<run_id>/run.json                 mission id, task ids, owner, when it was created and
                                           last started, the process (pid) running it
    runs/<run_id>/mission.json             the mission as it ran (secrets redacted)
    runs/<run_id>/summary.json             the summary, once the run finished
    runs/<run_id>/tasks/<id>/result.json   a task's result, once it finished
    runs/<run_id>/tasks/<id>/thread.json   a task's Codex thread: id, worker, turns done

so a missing, empty or corrupt ``state.db`` loses nothing: ``RunStore`` finds the folders the
index does not know (``unindexed``) and puts their rows back (``reindex``), saying so in one
line. A run recorded before ``run.json`` existed is read from ``mission.json``,
``summary.json`` and the ``wrapper/thread`` lines of its tasks' ``events.jsonl``.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
RUN_FILE = "run.json"
MISSION_FILE = "mission.json"
SUMMARY_FILE = "summary.json"
RESULT_FILE = "result.json"
THREAD_FILE = "thread.json"
EVENTS_FILE = "events.jsonl"

log = logging.getLogger("codex_mcp_wrapper.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    mission_id TEXT NOT NULL,
    status TEXT NOT NULL,
    pid INTEGER,
    pid_start INTEGER,
    created_at REAL NOT NULL,
    finished_at REAL,
    run_dir TEXT NOT NULL,
    workspace_root TEXT,
    summary TEXT,
    owner TEXT
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


def connect(path: Path, busy_timeout: float) -> tuple[sqlite3.Connection, list[str]]:
    """The database at ``path`` with its tables, and the run folders it does not index."""
    db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(tasks)")}
        if "turns_done" not in columns:  # a state dir from 0.1.0 before resume existed
            db.execute("ALTER TABLE tasks ADD COLUMN turns_done INTEGER DEFAULT 0")
        run_columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
        if "pid_start" not in run_columns:  # added with pid-reuse checks
            db.execute("ALTER TABLE runs ADD COLUMN pid_start INTEGER")
        if "owner" not in run_columns:  # added with MCP client identities
            db.execute("ALTER TABLE runs ADD COLUMN owner TEXT")
        return db, unindexed(db, path.parent)
    except BaseException:
        db.close()
        raise


def is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    """SQLite says the file is not a database or is damaged (not: locked, full, read-only)."""
    return getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def problem(path: Path, corrupt: bool) -> str:
    """What was wrong with the index at ``path``, for the notice of its rebuild."""
    if not path.exists():
        return "missing"
    if path.stat().st_size == 0:
        return "empty (0 bytes)"
    return "not a readable database" if corrupt else "missing some runs"


def set_aside(path: Path) -> Path:
    """Move a damaged database (and its log files) out of the way, kept for a post-mortem."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("-wal", "-shm", ""):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.replace(aside.with_name(aside.name + suffix))
    return aside


@dataclass
class FolderRecord:
    """The rows of one run, as its folder tells them."""

    run: dict[str, Any]
    tasks: list[dict[str, Any]] = field(default_factory=list)
    threads: list[tuple[str, str | None, str]] = field(default_factory=list)  # thread, worker, task


def run_folders(state_dir: Path) -> list[str]:
    """The ids of the runs that have a folder (one holding its ``mission.json``)."""
    try:
        entries = list((state_dir / "runs").iterdir())
    except OSError:
        return []
    return sorted(p.name for p in entries if RUN_ID.match(p.name) and (p / MISSION_FILE).is_file())


def unindexed(db: sqlite3.Connection, state_dir: Path) -> list[str]:
    """Runs with a folder and no row in the index. Reads every row's id, so a damaged table
    raises ``sqlite3.DatabaseError`` here rather than in the middle of a query later."""
    known = {row[0] for row in db.execute("SELECT run_id FROM runs")}
    return [run_id for run_id in run_folders(state_dir) if run_id not in known]


def read_json(path: Path) -> Any:
    """The JSON of ``path``; None when it is missing or unreadable (a folder half written by a
    killed wrapper still gives what it has)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _thread_from_events(events: Path) -> dict[str, Any] | None:
    """A task's thread from the ``wrapper/thread`` lines of its transcript (runs recorded
    before ``thread.json``): the last thread id, and the worker whose home holds it."""
    found: dict[str, Any] | None = None
    try:
        with events.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if '"wrapper/thread"' not in line:
                    continue
                try:
                    params = json.loads(line).get("params") or {}
                except ValueError:
                    continue
                parts = Path(str(params.get("path") or "")).parts
                worker = parts[parts.index("workers") + 1] if "workers" in parts[:-1] else None
                found = {"thread_id": params.get("threadId"), "worker": worker, "turns_done": 0}
    except OSError:
        return None
    return found if found and found.get("thread_id") else None


def _run_row(run_dir: Path, mission: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The run's row, and its summary when it has finished since it last started."""
    info = read_json(run_dir / RUN_FILE) or {}
    summary = read_json(run_dir / SUMMARY_FILE)
    started = info.get("started_at")
    if isinstance(summary, dict) and (not started or (summary.get("finished_at") or 0) >= started):
        status, finished = summary.get("status", "failed"), summary.get("finished_at")
    else:  # not finished: running if its process lives, else RunStore marks it interrupted
        summary, status, finished = None, "running", None
    created = info.get("created_at") or (summary or {}).get("started_at")
    row = {
        "run_id": run_dir.name,
        "mission_id": str(info.get("mission_id") or mission.get("mission_id") or "mission"),
        "status": status,
        "pid": info.get("pid"),
        "pid_start": info.get("pid_start"),
        "created_at": created or (run_dir / MISSION_FILE).stat().st_mtime,
        "finished_at": finished,
        "run_dir": str(run_dir),
        "workspace_root": info.get("workspace_root") or mission.get("workspace_root"),
        "summary": json.dumps(summary) if summary else None,
        "owner": info.get("owner"),
    }
    return row, summary


def _task_row(task_dir: Path, idx: int, finished: dict[str, Any] | None) -> dict[str, Any]:
    """A task's row: its result (``result.json``, else the summary's), its thread
    (``thread.json``, else its transcript), ``interrupted`` when it has no result."""
    result = read_json(task_dir / RESULT_FILE) or finished
    result = result if isinstance(result, dict) else {}
    thread = read_json(task_dir / THREAD_FILE) or _thread_from_events(task_dir / EVENTS_FILE)
    thread = thread if isinstance(thread, dict) else {}
    return {
        "task_id": task_dir.name,
        "idx": idx,
        "status": result.get("status", "failed") if result else "interrupted",
        "worker": (result or thread).get("worker"),
        "attempt": result.get("attempts", 0),
        "thread_id": thread.get("thread_id") or result.get("thread_id"),
        "turns_done": thread.get("turns_done") or result.get("turns_done", 0),
        "message": result.get("error"),
        "result": json.dumps(result) if result else None,
    }


def read_folder(run_dir: Path) -> FolderRecord | None:
    """The rows of the run in ``run_dir``; None when its mission is unreadable."""
    mission = read_json(run_dir / MISSION_FILE)
    if not isinstance(mission, dict):
        return None
    run, summary = _run_row(run_dir, mission)
    info = read_json(run_dir / RUN_FILE) or {}
    task_ids = info.get("task_ids") or [
        t.get("id") for t in mission.get("tasks") or [] if isinstance(t, dict)
    ]
    finished = {t.get("task_id"): t for t in (summary or {}).get("tasks") or []}
    record = FolderRecord(run)
    for idx, task_id in enumerate(str(t) for t in task_ids if t):
        if not RUN_ID.match(task_id):
            continue  # not a folder name this wrapper writes
        task = _task_row(run_dir / "tasks" / task_id, idx, finished.get(task_id))
        record.tasks.append(task)
        if task["thread_id"]:
            record.threads.append((task["thread_id"], task["worker"], task_id))
    return record


def reindex(db: sqlite3.Connection, state_dir: Path, run_ids: list[str]) -> int:
    """Put the rows of ``run_ids`` back into the index from their folders, in one transaction;
    rows already there (another process got there first) are kept. How many runs it added."""
    now = time.time()
    added = 0
    db.execute("BEGIN IMMEDIATE")
    try:
        for run_id in run_ids:
            record = read_folder(state_dir / "runs" / run_id)
            if record is None:
                continue
            columns = ", ".join(record.run)
            marks = ", ".join("?" * len(record.run))
            cursor = db.execute(
                f"INSERT INTO runs ({columns}) VALUES ({marks}) ON CONFLICT(run_id) DO NOTHING",
                tuple(record.run.values()),
            )
            added += cursor.rowcount
            for task in record.tasks:
                db.execute(
                    "INSERT INTO tasks (run_id, task_id, idx, status, worker, attempt, thread_id, "
                    "turns_done, updated_at, message, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "?, ?) ON CONFLICT(run_id, task_id) DO NOTHING",
                    (
                        run_id,
                        *(task[k] for k in ("task_id", "idx", "status", "worker", "attempt")),
                        *(task[k] for k in ("thread_id", "turns_done")),
                        now,
                        task["message"],
                        task["result"],
                    ),
                )
            for thread_id, worker, task_id in record.threads:
                db.execute(
                    "INSERT INTO threads (thread_id, worker, run_id, task_id, updated_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(thread_id) DO NOTHING",
                    (thread_id, worker, run_id, task_id, now),
                )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return added


def notice(path: Path, added: int, why: str, *, saved: bool = True) -> None:
    """The one line saying the index was rebuilt (on stderr through logging's last resort, or
    the log of ``serve``)."""
    where = "" if saved else " (in memory only: the state dir is read-only)"
    log.warning(
        "notice: rebuilt the run index from %d run folder(s) under %s%s: %s was %s.",
        added,
        path.parent / "runs",
        where,
        path.name,
        why,
    )
