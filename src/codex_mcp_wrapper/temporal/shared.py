"""The store every host and the submitter reach: what is too big (or too secret) for
the workflow history travels here, the history carries only keys.

* ``missions/<run>.json``: the mission as it ran (0600: task env values are in it); hosts
  read it to open the run's provider and to give each task its config back.
* ``runs/<run>/events/<task>.<attempt>.<host>.jsonl``: each attempt's events (redacted by
  the host), tailed by the submitter onto its run's event bus.
* ``runs/<run>/artifacts/<task>/``: the files a task's ``artifacts`` globs collected.
* ``runs/<run>/outcomes/<task>.<attempt>.json``: each attempt's outcome as its host returned
  it (redacted): the submitter's copy of what a large mission's workflow carries slimmed.
* ``threads/<thread_id>/rollout-*.jsonl``: a thread's rollout after each attempt, so another
  host can resume the thread when the one that ran it is gone.
* ``runs/<run>/steer/<task>/<key>.json``: a steer of the task's running turn (its text: 0600),
  written by the submitter and taken by the host running the task's attempt, which answers in
  ``<key>.answer`` (``{"turn_id"}`` or ``{"error"}``, 0600); the submitter removes both, and
  the run's whole ``steer`` folder when it stops watching (``temporal/steering.py``).

``DirectoryStore`` keeps them under a directory every machine mounts (NFS, a shared disk, or
one machine's local disk); another store (an object store) implements ``SharedStore``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class SharedStore(Protocol):
    def write_mission(self, run_id: str, record: dict[str, Any]) -> None: ...

    def read_mission(self, run_id: str) -> dict[str, Any] | None: ...

    def append_events(self, run_id: str, key: str, events: list[dict[str, Any]]) -> None: ...

    def read_events(self, run_id: str, cursor: EventCursor) -> list[dict[str, Any]]:
        """Events appended since ``cursor`` (which moves on), attempt by attempt."""
        ...

    def put_artifacts(self, run_id: str, task_id: str, source: Path) -> None: ...

    def put_outcome(self, run_id: str, task_id: str, attempt: int, record: Any) -> None: ...

    def get_outcome(self, run_id: str, task_id: str, attempt: int) -> Any | None:
        """The outcome ``put_outcome`` kept (JSON data), or None."""
        ...

    def get_artifacts(self, run_id: str, task_id: str, dest: Path) -> list[str]: ...

    def put_rollout(self, thread_id: str, source: Path) -> None: ...

    def get_rollout(self, thread_id: str, dest: Path) -> Path | None:
        """Copy the thread's rollout into the folder ``dest``; None when there is none."""
        ...

    def post_steer(self, run_id: str, task_id: str, text: str) -> str:
        """Leave a steer of the task for its host; the key its answer comes under."""
        ...

    def take_steers(self, run_id: str, task_id: str) -> list[tuple[str, str]]:
        """The steers of the task nobody took yet, as (key, text), taken (once only)."""
        ...

    def answer_steer(self, run_id: str, task_id: str, key: str, answer: dict[str, Any]) -> None: ...

    def take_answer(self, run_id: str, task_id: str, key: str) -> dict[str, Any] | None:
        """The answer to the steer ``key``, removed; None while there is none."""
        ...

    def withdraw_steer(self, run_id: str, task_id: str, key: str) -> None:
        """Remove the steer ``key`` and its answer, whichever exist."""
        ...

    def clear_steers(self, run_id: str) -> None:
        """Remove every steer of the run and every answer (nobody watches it any more)."""
        ...


@dataclass
class EventCursor:
    """How far the submitter has read each event log."""

    positions: dict[str, int] = field(default_factory=dict)


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _write_private(path: Path, record: Any) -> None:
    """Write ``record`` as JSON readable by this user only, replacing ``path`` at once."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh)
    os.replace(tmp, path)


class DirectoryStore:
    """A ``SharedStore`` in a directory all hosts and the submitter mount."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"<DirectoryStore {self.root}>"

    def _run(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def write_mission(self, run_id: str, record: dict[str, Any]) -> None:
        path = _private_dir(self.root / "missions") / f"{run_id}.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def read_mission(self, run_id: str) -> dict[str, Any] | None:
        path = self.root / "missions" / f"{run_id}.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return data

    def append_events(self, run_id: str, key: str, events: list[dict[str, Any]]) -> None:
        path = self._run(run_id) / "events" / f"{key}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(lines)  # one write per batch: a reader sees whole lines or none

    def read_events(self, run_id: str, cursor: EventCursor) -> list[dict[str, Any]]:
        folder = self._run(run_id) / "events"
        if not folder.is_dir():
            return []
        out: list[dict[str, Any]] = []
        for path in sorted(folder.glob("*.jsonl")):
            start = cursor.positions.get(path.name, 0)
            if path.stat().st_size <= start:
                continue
            with path.open("rb") as fh:
                fh.seek(start)
                data = fh.read()
            whole = data[: data.rfind(b"\n") + 1]  # a line still being written waits
            cursor.positions[path.name] = start + len(whole)
            out.extend(json.loads(line) for line in whole.splitlines() if line.strip())
        return out

    def put_artifacts(self, run_id: str, task_id: str, source: Path) -> None:
        if source.is_dir():
            shutil.copytree(source, self._run(run_id) / "artifacts" / task_id, dirs_exist_ok=True)

    def _outcome(self, run_id: str, task_id: str, attempt: int) -> Path:
        return self._run(run_id) / "outcomes" / f"{task_id}.{attempt}.json"

    def put_outcome(self, run_id: str, task_id: str, attempt: int, record: Any) -> None:
        path = self._outcome(run_id, task_id, attempt)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)

    def get_outcome(self, run_id: str, task_id: str, attempt: int) -> Any | None:
        try:
            return json.loads(self._outcome(run_id, task_id, attempt).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def get_artifacts(self, run_id: str, task_id: str, dest: Path) -> list[str]:
        source = self._run(run_id) / "artifacts" / task_id
        if not source.is_dir():
            return []
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())

    def put_rollout(self, thread_id: str, source: Path) -> None:
        folder = _private_dir(self.root / "threads" / thread_id)
        tmp = folder / f"{source.name}.tmp"  # Codex finds a rollout by its file name
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, folder / source.name)

    def get_rollout(self, thread_id: str, dest: Path) -> Path | None:
        folder = self.root / "threads" / thread_id
        found = sorted(folder.glob("rollout-*.jsonl")) if folder.is_dir() else []
        if not found:
            return None
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / found[-1].name
        shutil.copyfile(found[-1], target)
        return target

    def _steers(self, run_id: str, task_id: str) -> Path:
        return self._run(run_id) / "steer" / task_id

    def post_steer(self, run_id: str, task_id: str, text: str) -> str:
        key = f"{time.time_ns():020d}-{secrets.token_hex(4)}"  # steers are taken in order
        folder = _private_dir(self._steers(run_id, task_id))
        _write_private(folder / f"{key}.json", {"text": text})
        return key

    def take_steers(self, run_id: str, task_id: str) -> list[tuple[str, str]]:
        folder = self._steers(run_id, task_id)
        if not folder.is_dir():
            return []
        taken: list[tuple[str, str]] = []
        for path in sorted(folder.glob("*.json")):
            claimed = path.with_suffix(".taken")
            try:
                path.rename(claimed)  # atomic: one host takes it, or a withdraw removed it
            except FileNotFoundError:
                continue
            try:
                record = json.loads(claimed.read_text(encoding="utf-8"))
            except ValueError:
                continue  # not a steer the submitter wrote: left unanswered, it gives up
            finally:
                claimed.unlink(missing_ok=True)
            if isinstance(record, dict) and isinstance(record.get("text"), str):
                taken.append((path.stem, record["text"]))
        return taken

    def answer_steer(self, run_id: str, task_id: str, key: str, answer: dict[str, Any]) -> None:
        _write_private(_private_dir(self._steers(run_id, task_id)) / f"{key}.answer", answer)

    def take_answer(self, run_id: str, task_id: str, key: str) -> dict[str, Any] | None:
        path = self._steers(run_id, task_id) / f"{key}.answer"
        try:
            answer = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        path.unlink(missing_ok=True)
        return answer if isinstance(answer, dict) else {}

    def withdraw_steer(self, run_id: str, task_id: str, key: str) -> None:
        folder = self._steers(run_id, task_id)
        for name in (f"{key}.json", f"{key}.answer"):
            (folder / name).unlink(missing_ok=True)

    def clear_steers(self, run_id: str) -> None:
        shutil.rmtree(self._run(run_id) / "steer", ignore_errors=True)
