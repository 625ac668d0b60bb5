"""``RunStore``: the durable record of runs (SQLite in WAL mode) and their files; the writing
side, a bus subscriber, is ``recorder.RunRecorder``.

Layout under the state dir::

    state.db                          runs, tasks and threads (SQLite, WAL): an index of runs/
    runs/<run_id>/run.json            mission id, task ids, owner, times, the pid running it
    runs/<run_id>/mission.json        the validated mission
    runs/<run_id>/summary.json        the run summary (also printed by --json)
    runs/<run_id>/tasks/<id>/events.jsonl   every Codex notification of the task (redacted)
    runs/<run_id>/tasks/<id>/final.md       the task's final message
    runs/<run_id>/tasks/<id>/result.json    the task's result (redacted)
    runs/<run_id>/tasks/<id>/thread.json    the task's Codex thread (id, worker, turns done)
    runs/<run_id>/tasks/<id>/artifacts/     copied artifacts
    workers/<label>/codex-home        a worker's CODEX_HOME
    logs/worker-<label>.log           a worker's stderr

Every write is committed (or flushed) before ``publish`` returns, so a killed wrapper leaves a
consistent store; runs left ``running`` by a dead process are marked ``interrupted`` on open.
The run folders are the truth: a missing, empty or corrupt ``state.db`` is rebuilt from them
on open (``run_index``), with a one-line notice; a corrupt one is kept aside.
``RunStore`` is a context manager; ``RunStore.reader`` opens one that never writes (for
``runs list``, ``runs show``, status), which works on a read-only or full state dir.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from codex_mcp_wrapper import process
from codex_mcp_wrapper.engine import run_index
from codex_mcp_wrapper.engine.redaction import MASK
from codex_mcp_wrapper.engine.results import FINAL_STATUSES, RunSummary, TaskResult
from codex_mcp_wrapper.errors import InputError, MissionError, StateDirError
from codex_mcp_wrapper.missions.loading import parse_mission
from codex_mcp_wrapper.missions.model import Mission

RUN_ID = run_index.RUN_ID
SCHEMA = run_index.SCHEMA
SQLITE_BUSY_TIMEOUT = 30.0  # seconds another process may hold the write lock (runs share it)
SNAPSHOT_ATTEMPTS = 3  # copies of state.db a reader tries before reading through the WAL


def _wal_size(db_path: Path) -> int:
    """Bytes in the database's write-ahead log: 0 when there is none (nothing to replay)."""
    try:
        return db_path.with_name(db_path.name + "-wal").stat().st_size
    except FileNotFoundError:
        return 0


def _stamp(path: Path) -> tuple[int, int, int]:
    """What changes when a checkpoint writes into ``path``."""
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


class RunStore:
    """The runs of one state dir. ``RunStore(dir)`` opens it for writing (a run's bus
    subscriber); ``RunStore.reader(dir)`` for queries only."""

    def __init__(self, state_dir: Path, *, readonly: bool = False) -> None:
        self.state_dir = state_dir
        self.readonly = readonly
        try:
            if readonly:
                self.db = self._open_reader(state_dir)
            else:
                self.db = self._open_writable(state_dir)
                self.mark_interrupted()
        except (OSError, sqlite3.Error) as exc:
            raise StateDirError(
                f"the state dir {state_dir} is not usable ({exc}); choose another with "
                "--state-dir or $CODEX_MCP_WRAPPER_HOME, or free disk space."
            ) from exc

    @classmethod
    def reader(cls, state_dir: Path) -> RunStore:
        return cls(state_dir, readonly=True)

    @staticmethod
    def _open_readonly(path: Path) -> sqlite3.Connection:
        """A connection that writes nothing in the state dir, which may be read-only or full.

        ``mode=ro`` alone is not that: on a WAL database it needs the ``-wal`` and ``-shm``
        files, so it creates them (and, unable to remove them, leaves them behind), and where it
        cannot create them it fails ("unable to open database file"). So while no write-ahead
        log holds commits, every commit is in ``state.db`` itself and it is copied into memory
        through an ``immutable`` connection, which touches no other file. A writer that starts
        and checkpoints during the copy changes the file (or leaves a log): the copy is taken
        again. A log with commits in it means a writer is live or died before checkpointing;
        ``immutable`` would not see those commits, so then ``mode=ro`` reads them, sharing the
        ``-shm`` index the writer made.
        """
        if not path.exists():  # no run yet: an empty in-memory store with the same tables
            db = sqlite3.connect(":memory:", isolation_level=None)
            db.executescript(SCHEMA)
            return db
        for _ in range(SNAPSHOT_ATTEMPTS):
            if _wal_size(path):
                break
            before = _stamp(path)
            snapshot = sqlite3.connect(":memory:", isolation_level=None)
            source = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)
            try:
                source.backup(snapshot)
            except sqlite3.DatabaseError:
                snapshot.close()
                if _stamp(path) == before and not _wal_size(path):
                    raise  # not torn by a writer: the file itself is bad
                continue
            finally:
                source.close()
            if _stamp(path) == before and not _wal_size(path):
                snapshot.execute("SELECT 1 FROM runs LIMIT 1")
                return snapshot
            snapshot.close()
        shm = path.with_name(path.name + "-shm")
        try:
            db = sqlite3.connect(
                f"{path.as_uri()}?mode=ro",
                uri=True,
                timeout=SQLITE_BUSY_TIMEOUT,
                isolation_level=None,
            )
            db.execute("SELECT 1 FROM runs LIMIT 1")
        except sqlite3.OperationalError as exc:
            if shm.exists():
                raise
            raise StateDirError(
                f"the state dir {path.parent} cannot be read without write access: "
                f"{path.name}-wal holds commits and there is no {shm.name} to read them by "
                f"({exc}); run the command once where the state dir is writable."
            ) from exc
        return db

    def _open_reader(self, state_dir: Path) -> sqlite3.Connection:
        """A reader's connection (``_open_readonly``) on an index that knows every run folder.
        One that does not (missing, empty, corrupt, or missing runs) is repaired by a writer
        first; where the state dir cannot be written, it is rebuilt in memory."""
        path = state_dir / "state.db"
        db: sqlite3.Connection | None = None
        try:
            db = self._open_readonly(path)
            missing = run_index.unindexed(db, state_dir)
        except sqlite3.DatabaseError as exc:
            if not (run_index.is_corrupt(exc) or "no such table" in str(exc)):
                raise
            if db is not None:
                db.close()
            db, missing = None, run_index.run_folders(state_dir)
        if db is not None and not missing:
            return db
        try:
            RunStore(state_dir).close()  # the writer rebuilds the index for good, and says so
        except StateDirError:  # a read-only state dir: rebuild it in memory, for this reader
            memory = sqlite3.connect(":memory:", isolation_level=None)
            if db is not None:
                db.backup(memory)
            memory.executescript(SCHEMA)
            added = run_index.reindex(memory, state_dir, missing)
            if added:
                run_index.notice(path, added, run_index.problem(path, db is None), saved=False)
            return memory
        finally:
            if db is not None:
                db.close()
        return self._open_readonly(path)

    def _open_writable(self, state_dir: Path) -> sqlite3.Connection:
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "runs").mkdir(exist_ok=True)
        (state_dir / "logs").mkdir(exist_ok=True)
        probe = state_dir / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
        path = state_dir / "state.db"
        why = run_index.problem(path, corrupt=False)
        try:
            db, missing = run_index.connect(path, SQLITE_BUSY_TIMEOUT)
        except sqlite3.DatabaseError as exc:
            if not run_index.is_corrupt(exc):
                raise
            aside = run_index.set_aside(path)
            why = f"not a readable database ({exc}); the damaged file is kept as {aside.name}"
            db, missing = run_index.connect(path, SQLITE_BUSY_TIMEOUT)
        if missing:
            added = run_index.reindex(db, state_dir, missing)
            run_index.notice(path, added, why)
        elif why.startswith("not a readable"):
            run_index.notice(path, 0, why)
        return db

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    # -- reading --------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        if not RUN_ID.match(run_id):
            raise InputError(f"'{run_id}' is not a run id; see `codex-mcp-wrapper runs list`.")
        return self.state_dir / "runs" / run_id

    def require_run(self, run_id: str) -> dict[str, Any]:
        """The run's row with its tasks (as ``get_run``); InputError when there is none."""
        self.run_dir(run_id)
        info = self.get_run(run_id)
        if info is None:
            raise InputError(f"no run '{run_id}'; see `codex-mcp-wrapper runs list`.")
        return info

    def secrets_path(self, run_id: str) -> Path:
        """The run's mission with its secrets (0600), kept for resume and reply only."""
        self.run_dir(run_id)  # validates the id
        return self.state_dir / "secrets" / f"{run_id}.json"

    def read_mission(self, run_id: str) -> Mission:
        """The mission as the run ran it (variables expanded, paths absolute, secrets real)."""
        secrets = self.secrets_path(run_id)
        path = secrets if secrets.exists() else self.run_dir(run_id) / "mission.json"
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text)
        except (OSError, ValueError) as exc:
            raise MissionError(
                f"cannot read the mission of run {run_id} from {path} ({exc})."
            ) from exc
        if path != secrets and MASK in text:
            raise MissionError(
                f"the secrets of run {run_id} are gone ({secrets} was removed), so it cannot "
                "run again as it was; run the mission again from its file."
            )
        return parse_mission(data, str(path), expand=False)  # expanded when it first ran

    def summary(self, run_id: str) -> RunSummary | None:
        info = self.require_run(run_id)
        return RunSummary.model_validate(info["summary"]) if info.get("summary") else None

    def task_results(self, run_id: str) -> dict[str, TaskResult]:
        return {
            row["task_id"]: TaskResult.model_validate(row["result"])
            for row in self.task_rows(run_id)
            if row["result"]
        }

    def thread_origin(self, thread_id: str) -> tuple[str, str, str | None] | None:
        """The (run id, task id, worker) a Codex thread belongs to, or None."""
        row = self.db.execute(
            "SELECT run_id, task_id, worker FROM threads WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        return (str(row[0]), str(row[1]), row[2]) if row else None

    _RUN_COLUMNS = ("run_id", "mission_id", "status", "created_at", "finished_at", "run_dir")

    def _select_runs(self, where: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Run rows; a ``running`` run whose process is gone (dead, a zombie, or its pid now
        someone else's) reads as ``interrupted``, even from a reader that cannot write."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(runs)")}
        started = "pid_start" if "pid_start" in columns else "NULL"
        rows = self.db.execute(
            f"SELECT {', '.join(self._RUN_COLUMNS)}, summary, pid, {started} FROM runs {where}",
            args,
        ).fetchall()
        out = []
        for row in rows:
            info: dict[str, Any] = dict(zip(self._RUN_COLUMNS, row[:6], strict=True))
            if info["status"] == "running" and not process.is_running(row[7], row[8]):
                info["status"] = "interrupted"
            info["summary"] = json.loads(row[6]) if row[6] else None
            out.append(info)
        return out

    def list_runs(self, limit: int = 50, owner: str | None = None) -> list[dict[str, Any]]:
        """The newest runs; with ``owner``, only that identity's."""
        if owner is None:
            rows = self._select_runs("ORDER BY created_at DESC LIMIT ?", (limit,))
        else:
            rows = self._select_runs(
                "WHERE owner = ? ORDER BY created_at DESC LIMIT ?", (owner, limit)
            )
        return [
            {
                **{k: row[k] for k in self._RUN_COLUMNS},
                "counts": (row["summary"] or {}).get("counts", {}),
                "duration_ms": (row["summary"] or {}).get("duration_ms"),
            }
            for row in rows
        ]

    def mission_summaries(
        self, mission_id: str, limit: int, owner: str | None = None
    ) -> list[RunSummary]:
        """The summaries of the newest finished runs of ``mission_id`` (with ``owner``, only
        that identity's), newest first."""
        where = "WHERE mission_id = ? AND summary IS NOT NULL"
        args: tuple[Any, ...] = (mission_id,)
        if owner is not None:
            where, args = where + " AND owner = ?", (*args, owner)
        rows = self._select_runs(f"{where} ORDER BY created_at DESC LIMIT ?", (*args, limit))
        return [RunSummary.model_validate(row["summary"]) for row in rows]

    def run_owner(self, run_id: str) -> tuple[bool, str | None]:
        """(whether the run exists, the identity that started it: None for the owner's own
        runs and those recorded before identities existed)."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(runs)")}
        owner = "owner" if "owner" in columns else "NULL"
        row = self.db.execute(f"SELECT {owner} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return (row is not None, row[0] if row else None)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._select_runs("WHERE run_id = ?", (run_id,))
        if not rows:
            return None
        out = rows[0]
        out["tasks"] = self.task_rows(run_id)
        return out

    def task_rows(self, run_id: str) -> list[dict[str, Any]]:
        # A read-only reader of a state dir from 0.1.0 cannot add the column: read it as 0.
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(tasks)")}
        turns = "turns_done" if "turns_done" in columns else "0"
        rows = self.db.execute(
            f"SELECT task_id, idx, status, worker, attempt, thread_id, {turns}, message, result "
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

    def mark_interrupted(self) -> None:
        """Runs whose wrapper died are ``interrupted``, never left ``running``."""
        rows = self.db.execute(
            "SELECT run_id, pid, pid_start FROM runs WHERE status = 'running'"
        ).fetchall()
        for run_id, pid, pid_start in rows:
            if not process.is_running(pid, pid_start):
                self.db.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ? WHERE run_id = ?",
                    (time.time(), run_id),
                )
                self.db.execute(
                    "UPDATE tasks SET status = 'interrupted' WHERE run_id = ? AND status NOT IN "
                    f"({', '.join('?' * len(FINAL_STATUSES))})",
                    (run_id, *FINAL_STATUSES),
                )
